//! Pending authorization requests in PostgreSQL, and their count behind the `/authorize` flood
//! cap: a sum of 256 count slots (`auth_request_count`), a connection's slot being its backend
//! pid modulo 256, so that concurrent logins seldom wait for one another's counter row.
//!
//! # Who moves the count
//!
//! Each statement here moves its own slot in the statement that inserts or takes the request (a
//! data-modifying common table expression), and marks its transaction `wecom_oidc.counted`
//! (`SET LOCAL`, through `set_config(…, true)`). The row trigger `auth_request_count_moved`
//! moves the count for every insert and delete of a transaction not so marked: the expiry sweep,
//! and the statements of an instance of an earlier release still running against this schema
//! during a rolling upgrade (those releases counted through the trigger alone). So every request
//! is counted exactly once, whoever inserted or took it; skipping the trigger spares each
//! insert and take a PL/pgSQL call and a separate `UPDATE` through it (migration 7).
//!
//! Like the code's redemption, these commit without waiting for their WAL flush (the `relaxed!`
//! statements of `postgres`, whose module docs say why that is safe).

use super::{encode, PostgresStore};
use crate::storage::{AuthRequest, Result, StorageError};

/// The settings of a statement that moves the count itself: relaxed like `relaxed!`, and
/// marked so that the trigger leaves its rows alone. Both end with the statement's transaction.
macro_rules! counted {
    ($sql:literal) => {
        concat!(
            "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true), \
             set_config('wecom_oidc.counted', 'on', true)) ",
            $sql
        )
    };
}

/// A pending request stored: the slot moves up only when the row was inserted.
const CREATE: &str = counted!(
    ", ins AS (INSERT INTO auth_requests (key, record, expires_at)
               SELECT $1, $2, $3 FROM relaxed ON CONFLICT DO NOTHING RETURNING 1),
     counted AS (UPDATE auth_request_count SET n = n + 1
                 WHERE slot = pg_backend_pid() % 256 AND EXISTS (SELECT 1 FROM ins))
     SELECT EXISTS (SELECT 1 FROM ins)"
);

/// The cap and the insert decided on one snapshot of the pending count, so a request at the cap
/// is told so even when others are taken meanwhile (RFC 6749 §4.1.2.1
/// `temporarily_unavailable`), and a taken key is told apart from it.
const CREATE_WITHIN: &str = counted!(
    ", pending AS (SELECT COALESCE(SUM(n), 0)::BIGINT AS n FROM auth_request_count),
     ins AS (INSERT INTO auth_requests (key, record, expires_at)
             SELECT $1, $2, $3 FROM relaxed, pending WHERE pending.n < $4
             ON CONFLICT DO NOTHING RETURNING 1),
     counted AS (UPDATE auth_request_count SET n = n + 1
                 WHERE slot = pg_backend_pid() % 256 AND EXISTS (SELECT 1 FROM ins))
     SELECT pending.n < $4, EXISTS (SELECT 1 FROM ins) FROM pending"
);

/// A pending request taken (single use: of racing takes one gets the row): the slot moves down
/// only when a row was deleted.
const TAKE: &str = counted!(
    ", taken AS (DELETE FROM auth_requests USING relaxed WHERE key = $1 RETURNING record),
     counted AS (UPDATE auth_request_count SET n = n - 1
                 WHERE slot = pg_backend_pid() % 256 AND EXISTS (SELECT 1 FROM taken))
     SELECT record FROM taken"
);

impl PostgresStore {
    pub(super) async fn create_auth_request_now(&self, key: &str, req: &AuthRequest) -> Result<()> {
        let row = self
            .row(
                "create auth request",
                CREATE,
                &[&key, &encode(req)?, &req.expires_at],
            )
            .await?;
        if row.get::<_, bool>(0) {
            Ok(())
        } else {
            Err(StorageError::AlreadyExists)
        }
    }

    pub(super) async fn create_auth_request_within_now(
        &self,
        key: &str,
        req: &AuthRequest,
        cap: usize,
    ) -> Result<bool> {
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        let row = self
            .row(
                "create auth request",
                CREATE_WITHIN,
                &[&key, &encode(req)?, &req.expires_at, &cap],
            )
            .await?;
        let (under_cap, inserted): (bool, bool) = (row.get(0), row.get(1));
        match (under_cap, inserted) {
            (_, true) => Ok(true),
            (false, false) => Ok(false),
            (true, false) => Err(StorageError::AlreadyExists),
        }
    }

    pub(super) async fn take_auth_request_now(&self, key: &str) -> Result<AuthRequest> {
        self.record("auth_requests", TAKE, &[&key]).await
    }

    pub(super) async fn count_auth_requests_now(&self) -> Result<usize> {
        let row = self
            .row(
                "count auth requests",
                "SELECT COALESCE(SUM(n), 0)::BIGINT FROM auth_request_count",
                &[],
            )
            .await?;
        Ok(usize::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::schema_or_skip;
    use super::super::tests::{one_connection, pending_request};
    use crate::storage::Store;

    /// The statements of the release before migration 7, as its instances still send them
    /// during a rolling upgrade: the trigger alone counts their rows.
    const EARLIER_CREATE: &str = "WITH relaxed AS (SELECT set_config('synchronous_commit', \
        'off', true)) INSERT INTO auth_requests (key, record, expires_at) \
        SELECT $1, $2, $3 FROM relaxed ON CONFLICT DO NOTHING";
    const EARLIER_TAKE: &str = "WITH relaxed AS (SELECT set_config('synchronous_commit', \
        'off', true)) DELETE FROM auth_requests USING relaxed WHERE key = $1 RETURNING record";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_of_an_earlier_release_and_of_this_one_are_counted_once_each_way() {
        let schema = schema_or_skip!(
            "requests_of_an_earlier_release_and_of_this_one_are_counted_once_each_way"
        );
        // One connection: the earlier release's statements run on the very connection this
        // release's marked ones used, so a mark that outlived its statement would show.
        let store = one_connection(&schema).await;
        let record = super::super::encode(&pending_request()).expect("encode");
        let earlier = |sql: &'static str, key: &'static str| {
            let (store, record) = (&store, &record);
            async move {
                let client = store.client().await.expect("client");
                if sql == EARLIER_CREATE {
                    let expires_at = 4_000_000_000i64;
                    client.execute(sql, &[&key, record, &expires_at]).await
                } else {
                    client.execute(sql, &[&key]).await
                }
                .expect("an earlier release's statement")
            }
        };
        let count = || async { store.count_auth_requests().await.expect("count") };
        let request = pending_request();

        assert_eq!(earlier(EARLIER_CREATE, "old-1").await, 1);
        store
            .create_auth_request("new-1", &request)
            .await
            .expect("create");
        assert!(store
            .create_auth_request_within("new-2", &request, 10)
            .await
            .expect("create within"));
        assert_eq!(earlier(EARLIER_CREATE, "old-2").await, 1);
        assert_eq!(count().await, 4);
        // A taken key counts nothing either way.
        assert!(store.create_auth_request("new-1", &request).await.is_err());
        assert_eq!(earlier(EARLIER_CREATE, "new-2").await, 0);
        assert_eq!(count().await, 4);

        // Each takes what the other stored.
        store.take_auth_request("old-1").await.expect("take");
        assert_eq!(earlier(EARLIER_TAKE, "new-1").await, 1);
        assert_eq!(count().await, 2);
        // A key already taken moves nothing.
        assert!(store.take_auth_request("new-1").await.is_err());
        assert_eq!(earlier(EARLIER_TAKE, "old-1").await, 0);
        assert_eq!(count().await, 2);

        // The sweep deletes through the trigger.
        store.delete_expired(4_000_000_001).await.expect("sweep");
        assert_eq!(count().await, 0);
        schema.drop_schema().await;
    }
}
