//! A finished login's writes in PostgreSQL ([`Store::start_login`](crate::storage::Store)): the
//! browser's previous session taken, the new session, its code and the callback's login event
//! ([`Store::start_login_recorded`](crate::storage::Store)) inserted — one statement, so one
//! transaction, one commit (one WAL flush) and one round trip, with or without a previous
//! session. (The separate calls took a commit and a round trip each, five in all; a transaction
//! of pipelined statements took two round trips and six statements with `BEGIN` and `COMMIT`.)
//!
//! The new session takes over the previous one's clients ([`Session::carry_over`]) in the
//! statement itself, on the record it deletes: the previous session's clients first, then the
//! new session's own that it lacks. The inserts have no `ON CONFLICT`: a taken key is a unique
//! violation, which fails the statement as a whole, so nothing of the login is written. A
//! previous session whose JSON PostgreSQL cannot parse fails it likewise; the same writes then
//! go out as a transaction of single statements ([`in_steps`]).
//!
//! The statement runs in a task of its own: a request dropped half-way (the browser went away)
//! still has its login written or not written as a whole, and its connection goes back to the
//! pool with the answer read.

use deadpool_postgres::Pool;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::{decode, encode, pg_error, pool_error, unreadable_json, PostgresStore};
use crate::storage::{LoginEvent, NewLogin, Result, Session, StorageError};

/// `$1` the previous session's key (NULL: none), `$2`–`$4` the new session's key, record and
/// expiry, `$5` its person's user id and `$6` its own clients (without repeats), `$7`–`$10` the
/// code (NULL key: none), `$11`–`$13` the login event (NULL time: none). Answers the previous
/// session's record as taken (NULL: none).
///
/// The record stored is `$3` unless the previous session was the same person's
/// ([`Session::is_same_person`]): then `$3` with `clients` replaced by the previous session's
/// clients followed by those of `$6` it lacks, in order.
const LOGIN: &str = "
WITH prev AS (DELETE FROM sessions WHERE key = $1::text RETURNING record),
p AS (SELECT record::jsonb AS j FROM prev),
new AS (
    SELECT CASE WHEN p.j #>> '{identity,user_id}' = $5::text THEN
        jsonb_set($3::text::jsonb, '{clients}', to_jsonb(
            ARRAY(SELECT theirs.c
                  FROM jsonb_array_elements_text(p.j -> 'clients') WITH ORDINALITY AS theirs(c, i)
                  ORDER BY theirs.i)
            || ARRAY(SELECT own.c FROM unnest($6::text[]) WITH ORDINALITY AS own(c, i)
                     WHERE NOT (p.j -> 'clients') ? own.c ORDER BY own.i)))::text
    ELSE $3::text END AS record
    FROM (SELECT 1) AS one LEFT JOIN p ON true),
s AS (INSERT INTO sessions (key, record, expires_at) SELECT $2::text, new.record, $4::bigint FROM new),
c AS (INSERT INTO auth_codes (key, record, redeemed, expires_at)
      SELECT $7::text, $8::text, $9::boolean, $10::bigint WHERE $7::text IS NOT NULL),
e AS (INSERT INTO login_events (at, record, expires_at)
      SELECT $11::bigint, $12::text, $13::bigint WHERE $11::bigint IS NOT NULL)
SELECT (SELECT record FROM prev)";

/// The owned inputs of the statement's task.
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
    // Cached per connection: a round trip on a connection's first login only.
    let statement = client
        .prepare_cached(LOGIN)
        .await
        .map_err(|e| login_error(&e))?;
    let session = &login.session;
    let record = encode(session)?;
    // What `Session::carry_over` appends: each of the session's own clients once.
    let mut own: Vec<&str> = Vec::with_capacity(session.clients.len());
    for client in &session.clients {
        if !own.contains(&client.as_str()) {
            own.push(client);
        }
    }
    let (code_key, code_record, redeemed, code_expires) = match &login.code {
        Some((key, record, redeemed, expires_at)) => (
            Some(key.as_str()),
            Some(record.as_str()),
            Some(*redeemed),
            Some(*expires_at),
        ),
        None => (None, None, None, None),
    };
    let (event_at, event_record, event_expires) = match &login.event {
        Some((at, record, expires_at)) => (Some(*at), Some(record.as_str()), Some(*expires_at)),
        None => (None, None, None),
    };
    let params: [&(dyn ToSql + Sync); 13] = [
        &login.previous,
        &login.session_key,
        &record,
        &session.expires_at,
        &session.identity.user_id,
        &own,
        &code_key,
        &code_record,
        &redeemed,
        &code_expires,
        &event_at,
        &event_record,
        &event_expires,
    ];
    let row = match client.query_one(&statement, &params).await {
        Ok(row) => row,
        // The previous session's JSON holds a `\u0000` escape (a NUL character), which
        // PostgreSQL's JSON operators refuse: the statement changed nothing, so the same writes
        // go out one by one, the clients carried over here.
        Err(e) if unreadable_json(&e) => return in_steps(client, &login).await,
        Err(e) => return Err(login_error(&e)),
    };
    row.get::<_, Option<&str>>(0)
        .map(|previous| decode::<Session>("sessions", previous))
        .transpose()
}

/// [`LOGIN`]'s writes as a transaction of single statements that read no JSON.
async fn in_steps(mut client: deadpool_postgres::Object, login: &Login) -> Result<Option<Session>> {
    let tx = client.transaction().await.map_err(|e| login_error(&e))?;
    let previous = match &login.previous {
        Some(key) => tx
            .query_opt(
                "DELETE FROM sessions WHERE key = $1 RETURNING record",
                &[key],
            )
            .await
            .map_err(|e| login_error(&e))?
            .map(|row| decode::<Session>("sessions", row.get(0)))
            .transpose()?,
        None => None,
    };
    let mut session = login.session.clone();
    if let Some(previous) = &previous {
        session.carry_over(previous);
    }
    tx.execute(
        "INSERT INTO sessions (key, record, expires_at) VALUES ($1, $2, $3)",
        &[&login.session_key, &encode(&session)?, &session.expires_at],
    )
    .await
    .map_err(|e| login_error(&e))?;
    if let Some((key, record, redeemed, expires_at)) = &login.code {
        tx.execute(
            "INSERT INTO auth_codes (key, record, redeemed, expires_at) VALUES ($1, $2, $3, $4)",
            &[key, record, redeemed, expires_at],
        )
        .await
        .map_err(|e| login_error(&e))?;
    }
    if let Some((at, record, expires_at)) = &login.event {
        tx.execute(
            "INSERT INTO login_events (at, record, expires_at) VALUES ($1, $2, $3)",
            &[at, record, expires_at],
        )
        .await
        .map_err(|e| login_error(&e))?;
    }
    // Dropped without a commit (an error above), the transaction rolls back.
    tx.commit().await.map_err(|e| login_error(&e))?;
    Ok(previous)
}

#[cfg(test)]
mod tests {
    use super::super::tests::schema_or_skip;
    use std::time::{Duration, Instant};

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
        let schema = schema_or_skip!(
            "a_login_whose_code_key_is_taken_writes_nothing_and_keeps_the_previous_session"
        );
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
    async fn a_previous_session_whose_json_postgres_cannot_read_is_still_carried_over() {
        let schema = schema_or_skip!(
            "a_previous_session_whose_json_postgres_cannot_read_is_still_carried_over"
        );
        let store = one_connection(&schema).await;
        // A name with a NUL character: serde writes `\u0000`, which PostgreSQL's JSON operators
        // refuse (SQLSTATE 22P05).
        let mut old = session("zhangsan", &["app-a"]);
        old.identity.name = Some("zhang\u{0}san".into());
        store.create_session("old", &old).await.expect("create");
        let new = session("zhangsan", &["app-b"]);
        let event = crate::storage::LoginEvent {
            at: 100,
            user_id: Some("zhangsan".into()),
            client_id: Some("app-b".into()),
            address: None,
            outcome: "success".into(),
            grant: None,
            reason: None,
            request_id: None,
            expires_at: 4_000_000_000,
        };
        let login = NewLogin {
            previous: Some("old"),
            session_key: "new",
            session: &new,
            code: Some(("code", &code())),
        };
        assert_eq!(
            store
                .start_login_recorded(&login, &event)
                .await
                .expect("login"),
            Some(old)
        );
        assert_eq!(
            store.find_session("new").await.expect("new").clients,
            vec!["app-a", "app-b"]
        );
        assert!(!store.redeem_auth_code("code").await.expect("code").redeemed);
        assert_eq!(
            store.list_login_events(5).await.expect("events"),
            vec![event]
        );
        assert!(matches!(
            store.find_session("old").await,
            Err(StorageError::NotFound)
        ));
        schema.drop_schema().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_login_dropped_half_way_still_ends_its_transaction() {
        let schema = schema_or_skip!("a_login_dropped_half_way_still_ends_its_transaction");
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
