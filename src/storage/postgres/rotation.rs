//! Refresh-token rotation in PostgreSQL (RFC 9700 §4.14.2): one statement spends the old token
//! and inserts its successor and the new access token, so the three writes commit together or
//! not at all — a database that goes away mid-way leaves the old token unspent.

use tokio_postgres::error::SqlState;

use super::{decode, encode, pg_error, PostgresStore};
use crate::storage::{RefreshToken, Result, Rotation, StorageError, Store};

/// The rotation. The `UPDATE` re-checks `NOT spent` once it holds the row lock (module docs of
/// the store), so of racing rotations in any instance exactly one gets the row; the inserts take
/// their rows from it, so a loser (or an unknown key) inserts nothing. A taken new key fails the
/// whole statement with a unique violation.
const ROTATE: &str = "
WITH spent AS (
    UPDATE refresh_tokens SET spent = true WHERE key = $1 AND NOT spent RETURNING record
), successor AS (
    INSERT INTO refresh_tokens (key, record, spent, expires_at)
    SELECT $2, $3, $4, $5 FROM spent
), access AS (
    INSERT INTO access_tokens (key, record, expires_at)
    SELECT $6, $7, $8 FROM spent
)
SELECT record FROM spent";

impl PostgresStore {
    pub(super) async fn rotate_refresh_token_now(
        &self,
        key: &str,
        rotation: &Rotation<'_>,
    ) -> Result<RefreshToken> {
        let op = "rotate refresh token";
        let (client, stmt) = self.prepared(op, ROTATE).await?;
        let (refresh, access) = (rotation.refresh, rotation.access);
        let row = client
            .query_opt(
                &stmt,
                &[
                    &key,
                    &rotation.refresh_key,
                    &encode(refresh)?,
                    &refresh.spent,
                    &refresh.expires_at,
                    &rotation.access_key,
                    &encode(access)?,
                    &access.expires_at,
                ],
            )
            .await
            .map_err(|e| match e.code() {
                Some(&SqlState::UNIQUE_VIOLATION) => StorageError::AlreadyExists,
                _ => pg_error(op, &e),
            })?;
        drop(client);
        if let Some(row) = row {
            let mut before: RefreshToken = decode("refresh_tokens", row.get::<_, &str>(0))?;
            before.spent = false;
            return Ok(before);
        }
        // No row: spent already (a replay, or the loser of a race), or unknown.
        let mut spent = self.find_refresh_token(key).await?;
        spent.spent = true;
        Ok(spent)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::testing::{test_url, TestSchema};
    use super::super::tests::{access, refresh};
    use super::*;

    /// An expiry no test reaches.
    const FAR: i64 = 4_000_000_000;

    /// Rotates `old` to the successor under "new" and the access token under "access".
    async fn rotate(store: &PostgresStore, old: &str) -> Result<RefreshToken> {
        let (successor, access) = (refresh(FAR), access(FAR));
        let rotation = Rotation {
            refresh_key: "new",
            refresh: &successor,
            access_key: "access",
            access: &access,
        };
        store.rotate_refresh_token(old, &rotation).await
    }

    /// A connection to the schema outside any store.
    async fn session(schema: &TestSchema) -> tokio_postgres::Client {
        let (client, conn) = schema
            .config()
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client
    }

    /// The database loses the connection after the rotation has spent the old token and before
    /// it has stored the successor: nothing is spent, nothing stored, and the old token rotates
    /// once the database is back (RFC 9700 §4.14.2; the grant of a client told
    /// `temporarily_unavailable` survives).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rotation_whose_connection_is_killed_mid_way_spends_nothing() {
        let test = "a_rotation_whose_connection_is_killed_mid_way_spends_nothing";
        let Some(url) = test_url(test) else {
            return;
        };
        let schema = TestSchema::create(&url).await;
        // A name of its own, to find this store's connection among other tests' sessions.
        let name = format!("rotation-cut-{}", crate::random::token(8));
        let mut config = schema.config();
        config.application_name(&name);
        let store = std::sync::Arc::new(PostgresStore::connect(config).await.expect("store"));
        store
            .create_refresh_token("old", &refresh(FAR))
            .await
            .expect("create");

        // Another session holds the successor's key in an open transaction, so the rotation's
        // INSERT waits for it — after its UPDATE has spent the old token.
        let blocker = session(&schema).await;
        blocker
            .batch_execute(
                "BEGIN; INSERT INTO refresh_tokens (key, record, spent, expires_at)
                 VALUES ('new', '{}', false, 0)",
            )
            .await
            .expect("hold the key");
        let rotating = {
            let store = store.clone();
            tokio::spawn(async move { rotate(&store, "old").await })
        };
        let killer = session(&schema).await;
        let waited = Instant::now();
        let pid: i32 = loop {
            let row = killer
                .query_opt(
                    "SELECT pid FROM pg_stat_activity
                     WHERE application_name = $1 AND wait_event_type = 'Lock'",
                    &[&name],
                )
                .await
                .expect("pg_stat_activity");
            if let Some(row) = row {
                break row.get(0);
            }
            assert!(waited.elapsed() < Duration::from_secs(10), "never blocked");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        // The rotation holds the old token's row: its UPDATE has run.
        let locked = killer
            .execute(
                "SELECT 1 FROM refresh_tokens WHERE key = 'old' FOR UPDATE NOWAIT",
                &[],
            )
            .await
            .expect_err("the old token's row is locked by the rotation");
        assert_eq!(locked.code(), Some(&SqlState::LOCK_NOT_AVAILABLE));

        killer
            .execute("SELECT pg_terminate_backend($1)", &[&pid])
            .await
            .expect("terminate");
        let result = rotating.await.expect("task");
        assert!(
            matches!(result, Err(StorageError::Unavailable(_))),
            "{result:?}"
        );
        blocker.batch_execute("ROLLBACK").await.expect("rollback");

        // The pool may hand out the killed connection once more before it notices the close.
        let recovering = Instant::now();
        let old = loop {
            match store.find_refresh_token("old").await {
                Err(StorageError::Unavailable(_))
                    if recovering.elapsed() < Duration::from_secs(5) =>
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                other => break other.expect("old"),
            }
        };
        assert!(!old.spent, "the cut rotation spent the old token");
        assert!(matches!(
            store.find_refresh_token("new").await,
            Err(StorageError::NotFound)
        ));
        assert!(matches!(
            store.find_access_token("access").await,
            Err(StorageError::NotFound)
        ));
        // The client's retry rotates the old token.
        let before = rotate(&store, "old").await.expect("retry");
        assert!(!before.spent);
        assert_eq!(
            store.find_refresh_token("new").await.expect("new"),
            refresh(FAR)
        );
        drop((blocker, killer));
        schema.drop_schema().await;
    }
}
