//! A finished login's writes in PostgreSQL ([`Store::start_login`](crate::storage::Store)): the
//! browser's previous session taken, the new session, its code and the callback's login event
//! ([`Store::start_login_recorded`](crate::storage::Store)) inserted — one transaction, one
//! commit (one WAL flush), its statements pipelined on one connection.
//!
//! Round trips: without a previous session, `BEGIN`, the inserts and `COMMIT` go out together
//! (one round trip); with one, `BEGIN` and its `DELETE … RETURNING` go first (the new session
//! takes over its clients, a decision made here on the returned record), then the inserts and
//! `COMMIT` (two). The separate calls took a commit each and a round trip each, five in all.
//!
//! The transaction runs in a task of its own: a request dropped half-way (the browser went away)
//! must not hand its connection back to the pool inside an open transaction. The inserts have no
//! `ON CONFLICT`: a taken key is a unique violation, which aborts the transaction, so the
//! pipelined `COMMIT` ends it as a rollback and nothing of the login is written.

use deadpool_postgres::Pool;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::{decode, encode, pg_error, pool_error, PostgresStore};
use crate::storage::{LoginEvent, NewLogin, Result, Session, StorageError};

const TAKE_SESSION: &str = "DELETE FROM sessions WHERE key = $1 RETURNING record";
const INSERT_SESSION: &str = "INSERT INTO sessions (key, record, expires_at) VALUES ($1, $2, $3)";
const INSERT_CODE: &str =
    "INSERT INTO auth_codes (key, record, redeemed, expires_at) VALUES ($1, $2, $3, $4)";
const INSERT_EVENT: &str = "INSERT INTO login_events (at, record, expires_at) VALUES ($1, $2, $3)";

/// The owned inputs of the transaction's task.
struct Login {
    previous: Option<String>,
    session_key: String,
    session: Session,
    code: Option<(String, String, bool, i64)>,
    /// The login event: when, its record, until when it is kept.
    event: Option<(i64, String, i64)>,
}

impl PostgresStore {
    pub(super) async fn start_login_now(
        &self,
        login: &NewLogin<'_>,
        event: Option<&LoginEvent>,
    ) -> Result<Option<Session>> {
        let owned = Login {
            previous: login.previous.map(str::to_owned),
            session_key: login.session_key.to_owned(),
            session: login.session.clone(),
            code: login
                .code
                .map(|(key, code)| {
                    encode(code).map(|r| (key.to_owned(), r, code.redeemed, code.expires_at))
                })
                .transpose()?,
            event: event
                .map(|e| encode(e).map(|r| (e.at, r, e.expires_at)))
                .transpose()?,
        };
        let pool = self.pool.clone();
        let timeout = self.timeout;
        tokio::spawn(async move { start_login(&pool, timeout, owned).await })
            .await
            .map_err(|e| StorageError::Backend(format!("postgres start login: {e}")))?
    }
}

/// A unique violation is a taken key; anything else as [`pg_error`] says.
fn login_error(err: &tokio_postgres::Error) -> StorageError {
    if err.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StorageError::AlreadyExists
    } else {
        pg_error("start login", err)
    }
}

async fn start_login(
    pool: &Pool,
    timeout: std::time::Duration,
    login: Login,
) -> Result<Option<Session>> {
    let client = pool.get().await.map_err(|e| pool_error(&e, timeout))?;
    // Cached per connection: a round trip each on a connection's first login only.
    let prepare = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .prepare_cached(sql)
                .await
                .map_err(|e| login_error(&e))
        }
    };
    let take = prepare(TAKE_SESSION).await?;
    let insert_session = prepare(INSERT_SESSION).await?;
    let insert_code = prepare(INSERT_CODE).await?;
    let insert_event = prepare(INSERT_EVENT).await?;

    // Each request goes out when its future is first polled, so `biased` joins (polled in
    // order) send them in order, pipelined, and wait for all the answers.
    let begin = client.batch_execute("BEGIN");
    // With a previous session, BEGIN goes out with its take; without, with the inserts below.
    let mut session = login.session;
    let (begin, previous) = match &login.previous {
        Some(key) => {
            let params: [&(dyn ToSql + Sync); 1] = [key];
            let (begun, taken) = tokio::join!(biased; begin, client.query_opt(&take, &params));
            let previous = begun
                .and(taken)
                .map_err(|e| login_error(&e))
                .and_then(|row| {
                    row.map(|r| decode::<Session>("sessions", r.get(0)))
                        .transpose()
                });
            match previous {
                Ok(previous) => (None, previous),
                Err(e) => {
                    // Nothing was written; end the transaction before the connection goes back.
                    let _ = client.batch_execute("ROLLBACK").await;
                    return Err(e);
                }
            }
        }
        None => (Some(begin), None),
    };
    if let Some(previous) = &previous {
        session.carry_over(previous);
    }
    let record = encode(&session)?;
    let session_params: [&(dyn ToSql + Sync); 3] =
        [&login.session_key, &record, &session.expires_at];
    let begun = async {
        match begin {
            Some(begin) => begin.await,
            None => Ok(()),
        }
    };
    let inserted_session = client.execute(&insert_session, &session_params);
    let inserted_code = async {
        match &login.code {
            Some((key, record, redeemed, expires_at)) => {
                let params: [&(dyn ToSql + Sync); 4] = [key, record, redeemed, expires_at];
                client.execute(&insert_code, &params).await.map(|_| ())
            }
            None => Ok(()),
        }
    };
    let inserted_event = async {
        match &login.event {
            Some((at, record, expires_at)) => {
                let params: [&(dyn ToSql + Sync); 3] = [at, record, expires_at];
                client.execute(&insert_event, &params).await.map(|_| ())
            }
            None => Ok(()),
        }
    };
    // After an error above the transaction is aborted and this COMMIT rolls it back.
    let commit = client.batch_execute("COMMIT");
    let (b, s, c, e, committed) = tokio::join!(
        biased;
        begun,
        inserted_session,
        inserted_code,
        inserted_event,
        commit
    );
    b.and(s)
        .and(c)
        .and(e)
        .and(committed)
        .map_err(|e| login_error(&e))?;
    Ok(previous)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::testing::TestSchema;
    use super::super::tests::one_connection;
    use super::*;
    use crate::identity::Identity;
    use crate::storage::{AuthCode, Store};

    fn session(user_id: &str, clients: &[&str]) -> Session {
        Session {
            sid: crate::random::token(16),
            identity: Identity {
                user_id: user_id.into(),
                username: user_id.into(),
                ..Identity::default()
            },
            connector_id: "wecom".into(),
            auth_time: 100,
            last_seen: 100,
            expires_at: 4_000_000_000,
            clients: clients.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn code() -> AuthCode {
        super::super::tests::code(4_000_000_000)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_login_whose_code_key_is_taken_writes_nothing_and_keeps_the_previous_session() {
        let Some(schema) = TestSchema::for_test(
            "a_login_whose_code_key_is_taken_writes_nothing_and_keeps_the_previous_session",
        )
        .await
        else {
            return;
        };
        let store = one_connection(&schema).await;
        let old = session("zhangsan", &["app-a"]);
        store.create_session("old", &old).await.expect("create");
        store
            .create_auth_code("taken", &code())
            .await
            .expect("code");
        let new = session("zhangsan", &["app-b"]);
        let login = NewLogin {
            previous: Some("old"),
            session_key: "new",
            session: &new,
            code: Some(("taken", &code())),
        };
        assert!(matches!(
            store.start_login(&login).await,
            Err(StorageError::AlreadyExists)
        ));
        // Rolled back as a whole: the old session is still there, the new one is not.
        assert_eq!(store.find_session("old").await.expect("old session"), old);
        assert!(matches!(
            store.find_session("new").await,
            Err(StorageError::NotFound)
        ));
        // The one connection is usable again, outside any transaction: what the next login
        // writes is committed, so another instance sees it.
        let fresh = code();
        let login = NewLogin {
            code: Some(("fresh", &fresh)),
            ..login
        };
        assert_eq!(store.start_login(&login).await.expect("login"), Some(old));
        let other = schema.store().await;
        assert_eq!(
            other.find_session("new").await.expect("new").clients,
            vec!["app-a", "app-b"]
        );
        assert!(
            !other
                .redeem_auth_code("fresh")
                .await
                .expect("code")
                .redeemed
        );
        schema.drop_schema().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_login_dropped_half_way_still_ends_its_transaction() {
        let Some(schema) =
            TestSchema::for_test("a_login_dropped_half_way_still_ends_its_transaction").await
        else {
            return;
        };
        let store = one_connection(&schema).await;
        store
            .create_session("old", &session("zhangsan", &[]))
            .await
            .expect("create");
        let new = session("zhangsan", &["app-a"]);
        let login = NewLogin {
            previous: Some("old"),
            session_key: "new",
            session: &new,
            code: None,
        };
        // The browser goes away once the request has started: its future is dropped.
        let mut started = Box::pin(store.start_login(&login));
        assert!(futures_util::poll!(started.as_mut()).is_pending());
        drop(started);
        // The login completes and commits on its own; another instance sees it.
        let other = schema.store().await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while other.find_session("new").await.is_err() {
            assert!(
                Instant::now() < deadline,
                "the dropped login never committed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // And the connection went back to the pool outside a transaction.
        store
            .create_session("after", &session("lisi", &[]))
            .await
            .expect("create");
        assert!(other.find_session("after").await.is_ok());
        schema.drop_schema().await;
    }
}
