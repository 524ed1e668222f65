//! The [`Store`] for several instances: PostgreSQL through a pool of `tokio-postgres`
//! connections (deadpool), so every call waits without holding a runtime thread.
//!
//! # Atomicity across processes
//!
//! Every single-use operation is one statement whose `WHERE` re-checks the state after the row
//! lock is taken, so two instances racing for a record cannot both win (PostgreSQL's default
//! READ COMMITTED re-evaluates an `UPDATE`/`DELETE`'s condition on the newest row version):
//!
//! - an authorization code is redeemed by `UPDATE … SET redeemed = true WHERE … AND NOT redeemed
//!   RETURNING` (RFC 6749 §4.1.2), a refresh token spent likewise, in the same statement that
//!   stores its successor and the new access token (`postgres::rotation`, RFC 9700 §4.14.2);
//! - a pending authorization request or a session is taken by `DELETE … RETURNING`;
//! - creates are `INSERT … ON CONFLICT DO NOTHING`: no row inserted means `AlreadyExists`
//!   (a used `jti`, RFC 7523 §3, included);
//! - a session is touched by compare-and-swap on its record, so two clients logging in through
//!   one session at once are both remembered;
//! - a finished login's writes (the previous session taken, the new session, its code and its
//!   login event) are one statement (`login`).
//!
//! # Durability
//!
//! A statement returns once its transaction has committed, and PostgreSQL commits durably (WAL
//! `fsync`, with the server's default `synchronous_commit = on`). So [`Store::flush`] has
//! nothing left to do and returns at once; [`Store::is_persistent`] is true.
//!
//! Three writes commit without waiting for their WAL flush ([`relaxed!`], and `pending`'s
//! statements, which also move the pending count themselves): a pending
//! authorization request stored, one taken, and a code redeemed. None of them is answered as a
//! credential: the request's redirect to the upstream hands nothing out (sled leaves it to its
//! periodic flush too: a lost one costs a repeated login), and the take and the redemption are
//! followed, on their success path, by a synchronous commit (the login's session and code, the
//! code's access token) before anything is answered. WAL is one sequence, so that commit's flush
//! makes every earlier commit durable with it: a code, token or session is still answered only
//! once everything it rests on is on disk. Each is still atomic and seen at once by every
//! instance; a database crash within its WAL writer delay may only undo it (the request is
//! pending again, the code redeemable again by the client that never got its tokens).
//!
//! # Schema
//!
//! [`MIGRATIONS`] are embedded and applied at start in one transaction under an advisory lock, so
//! instances starting at once apply them once; `schema_version` records each. A database whose
//! schema is newer than this binary knows is refused (an older binary would misread it).
//! Records are JSON text (the same serde shapes as sled's); the columns beside them are what the
//! statements select on.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    AccessToken, AuditEvent, AuthCode, AuthRequest, CheckedAccessToken, DeviceAuthorization,
    DeviceChange, LoginEvent, NewLogin, RefreshToken, Result, Session, SigningKeySet, StorageError,
    Store, Subject, SubjectGrants, SubjectMarks, UpstreamToken,
};

/// `$sql` (one statement) in a transaction that commits without waiting for its WAL flush:
/// `set_config(…, true)` is `SET LOCAL`, so the setting ends with the statement's own
/// transaction and never reaches the connection's next one. Only for the writes the module
/// docs list; the statement must select `FROM relaxed` (or join it) so that the setting is
/// evaluated. `$sql` may begin with more common table expressions (`, name AS (…) INSERT …`).
macro_rules! relaxed {
    ($($sql:tt)+) => {
        concat!(
            "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)) ",
            $($sql)+
        )
    };
}

// After `relaxed!`, which they use.
mod device;
mod login;
mod marks;
mod pending;
mod rotation;
mod schema;
mod subject_scan;

pub use schema::MIGRATIONS;

/// Connections kept in the pool. Enough for the conformance races and a busy instance; each
/// PostgreSQL connection costs the server a process, so N instances cost N times this.
pub const POOL_SIZE: usize = 16;

/// How long a call waits for a free connection or a new one before failing (503 upstream of it,
/// never a hang).
pub const POOL_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection pool of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections kept at most ([`POOL_SIZE`]).
    pub size: usize,
    /// How long a call waits for a free connection, and for a new one to be made
    /// ([`POOL_TIMEOUT`]); past it the call fails `Unavailable` instead of queueing on.
    pub timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            size: POOL_SIZE,
            timeout: POOL_TIMEOUT,
        }
    }
}

/// A [`Store`] on PostgreSQL. Cheap to share behind an `Arc`.
pub struct PostgresStore {
    pool: Pool,
    /// The pool's wait bound, for the error that reports it.
    timeout: Duration,
}

// Nothing in it is useful and safe to show (the pool's config holds the password).
impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

/// A connection string as the configuration gives it: `postgres://user@host:port/db`, with the
/// password kept apart so that the URL can be shown.
pub fn parse_url(url: &str) -> std::result::Result<tokio_postgres::Config, String> {
    let parsed = url::Url::parse(url)
        .map_err(|e| format!("is not a URL like postgres://user@host/db: {e}"))?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(format!(
            "must start with postgres:// (found {}://)",
            parsed.scheme()
        ));
    }
    if parsed.password().is_some() {
        return Err(
            "must not contain a password: give it through store_password_env (or PGPASSWORD)"
                .into(),
        );
    }
    let config = tokio_postgres::Config::from_str(url)
        .map_err(|e| format!("is not a PostgreSQL URL like postgres://user@host/db: {e}"))?;
    if config.get_user().is_none() {
        return Err("names no user: postgres://USER@host/db".into());
    }
    if config.get_hosts().is_empty() {
        return Err("names no host: postgres://user@HOST/db".into());
    }
    Ok(config)
}

/// Whether `err` is PostgreSQL refusing to read a stored record's JSON: a string with the
/// escape `\u0000` (a NUL character, which serde writes and PostgreSQL's JSON operators cannot
/// turn into text; SQLSTATE 22P05). The statement failed as a whole and changed nothing, so the
/// caller can make the same reads and writes without JSON operators.
fn unreadable_json(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&tokio_postgres::error::SqlState::UNTRANSLATABLE_CHARACTER)
}

/// A PostgreSQL error as a backend error: the SQLSTATE and the server's message, never its
/// DETAIL (which quotes row values) nor a parameter.
///
/// A lost or refused connection, and the server classes that mean "not now" (08 connection
/// exception, 53 insufficient resources — a full disk among them —, 57P01–57P03 shutting
/// down or starting up) are [`StorageError::Unavailable`]: the request may be retried once the
/// database is back. Anything else (a constraint, a syntax error: a bug) is `Backend`.
fn pg_error(op: &str, err: &tokio_postgres::Error) -> StorageError {
    match err.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            let message = format!("postgres {op}: {} ({code})", db.message());
            let transient = code.starts_with("08")
                || code.starts_with("53")
                || matches!(code, "57P01" | "57P02" | "57P03");
            if transient {
                StorageError::Unavailable(message)
            } else {
                StorageError::Backend(message)
            }
        }
        // No answer from the server: the connection was refused, broke or timed out.
        None => StorageError::Unavailable(format!("postgres {op}: {err}")),
    }
}

/// A pool failure: no connection could be made, or none came free within the pool's timeouts
/// (a slow or saturated database). Both are worth a retry later.
fn pool_error(err: &deadpool_postgres::PoolError, timeout: Duration) -> StorageError {
    match err {
        deadpool_postgres::PoolError::Backend(e) => pg_error("connect", e),
        deadpool_postgres::PoolError::Timeout(kind) => StorageError::Unavailable(format!(
            "postgres pool: no connection within {} ms ({kind:?}): the database is slow, \
             saturated or unreachable",
            timeout.as_millis()
        )),
        other => StorageError::Unavailable(format!("postgres pool: {other}")),
    }
}

fn encode<T: Serialize>(record: &T) -> Result<String> {
    serde_json::to_string(record).map_err(|e| {
        StorageError::Backend(format!("cannot encode a record: {:?} error", e.classify()))
    })
}

/// Decodes without serde_json's message, which quotes values (see the sled backend).
fn decode<T: DeserializeOwned>(table: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        StorageError::Backend(format!(
            "cannot decode a record in {table}: {:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

/// The records of `rows` (first column), skipping any that cannot be decoded: one bad record
/// must not hide the others from an operator's list.
fn decode_rows<T: DeserializeOwned>(table: &str, rows: &[tokio_postgres::Row]) -> Vec<T> {
    rows.iter()
        .filter_map(|row| match decode(table, row.get::<_, &str>(0)) {
            Ok(record) => Some(record),
            Err(err) => {
                tracing::warn!(error = %err, "skipping an undecodable record");
                None
            }
        })
        .collect()
}

impl PostgresStore {
    /// Connects a pool with `config` (TLS when the server offers it, per the URL's `sslmode`,
    /// certificates checked against the system's roots) and brings the schema up to date.
    ///
    /// Fails if the server cannot be reached, refuses the login, or holds a schema newer than
    /// [`MIGRATIONS`] knows.
    pub async fn connect(config: tokio_postgres::Config) -> Result<PostgresStore> {
        Self::connect_with(config, PoolSettings::default()).await
    }

    /// [`PostgresStore::connect`] with a pool of `settings`.
    pub async fn connect_with(
        config: tokio_postgres::Config,
        settings: PoolSettings,
    ) -> Result<PostgresStore> {
        let tls = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls())
            .map_err(|e| StorageError::Backend(format!("postgres TLS setup: {e}")))?
            .build();
        let tls = postgres_openssl::MakeTlsConnector::new(tls);
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(settings.timeout))
            .create_timeout(Some(settings.timeout))
            .build()
            .map_err(|e| StorageError::Backend(format!("postgres pool: {e}")))?;
        let store = PostgresStore {
            pool,
            timeout: settings.timeout,
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| pool_error(&e, self.timeout))
    }

    /// A pooled connection with `sql` prepared on it (cached per connection).
    async fn prepared(
        &self,
        op: &str,
        sql: &str,
    ) -> Result<(deadpool_postgres::Object, tokio_postgres::Statement)> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(|e| pg_error(op, &e))?;
        Ok((client, stmt))
    }

    /// Runs `sql` with `params`; the number of rows it changed.
    async fn execute(
        &self,
        op: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64> {
        let (client, stmt) = self.prepared(op, sql).await?;
        client
            .execute(&stmt, params)
            .await
            .map_err(|e| pg_error(op, &e))
    }

    /// Appends a record to a log table (`login_events`, `audit_events`); the serial id keeps
    /// records of the same second apart and in order.
    async fn append(
        &self,
        table: &'static str,
        at: i64,
        record: &str,
        expires_at: i64,
    ) -> Result<()> {
        let sql = format!("INSERT INTO {table} (at, record, expires_at) VALUES ($1, $2, $3)");
        self.execute(
            &format!("append to {table}"),
            &sql,
            &[&at, &record, &expires_at],
        )
        .await?;
        Ok(())
    }

    /// The newest `limit` records of a log table, newest first.
    async fn newest<T: DeserializeOwned>(
        &self,
        table: &'static str,
        limit: usize,
    ) -> Result<Vec<T>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let op = format!("list {table}");
        let sql = format!("SELECT record FROM {table} ORDER BY at DESC, id DESC LIMIT $1");
        let (client, stmt) = self.prepared(&op, &sql).await?;
        let rows = client
            .query(&stmt, &[&limit])
            .await
            .map_err(|e| pg_error(&op, &e))?;
        Ok(decode_rows(table, &rows))
    }

    /// Runs `sql` with `params`; its row, if any.
    async fn query_opt(
        &self,
        op: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<tokio_postgres::Row>> {
        let (client, stmt) = self.prepared(op, sql).await?;
        client
            .query_opt(&stmt, params)
            .await
            .map_err(|e| pg_error(op, &e))
    }

    /// An `INSERT … ON CONFLICT DO NOTHING`: `AlreadyExists` when nothing was inserted.
    async fn create(
        &self,
        op: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<()> {
        match self.execute(op, sql, params).await? {
            0 => Err(StorageError::AlreadyExists),
            _ => Ok(()),
        }
    }

    /// Runs `sql` with `params`; its row, `NotFound` without one.
    async fn row(
        &self,
        op: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<tokio_postgres::Row> {
        self.query_opt(op, sql, params)
            .await?
            .ok_or(StorageError::NotFound)
    }

    /// A compare-and-swap on one record (`select` reads it by key, `update` writes it only where
    /// it is still exactly the text read): `change` gets the stored text and answers the text to
    /// write over it (`None`: nothing to write) and the call's result. Under READ COMMITTED the
    /// UPDATE re-checks the record on the newest row version once it holds the row lock, so of
    /// two racing changes one writes and the other sees no row changed, reads again and applies
    /// itself to the newer record: neither is lost. Two prepared statements, two round trips (a
    /// transaction with `SELECT … FOR UPDATE` took six).
    async fn swap_record<R>(
        &self,
        op: &str,
        [select, update]: [&str; 2],
        key: &str,
        change: impl Fn(&str) -> Result<(Option<String>, R)>,
    ) -> Result<R> {
        let client = self.client().await?;
        let select = client
            .prepare_cached(select)
            .await
            .map_err(|e| pg_error(op, &e))?;
        let update = client
            .prepare_cached(update)
            .await
            .map_err(|e| pg_error(op, &e))?;
        loop {
            let row = client
                .query_opt(&select, &[&key])
                .await
                .map_err(|e| pg_error(op, &e))?
                .ok_or(StorageError::NotFound)?;
            let current: &str = row.get(0);
            let (write, result) = change(current)?;
            let Some(new) = write else {
                return Ok(result);
            };
            let changed = client
                .execute(&update, &[&key, &new, &current])
                .await
                .map_err(|e| pg_error(op, &e))?;
            if changed == 1 {
                return Ok(result);
            }
            // Changed (or taken) meanwhile: judge again on what is there now.
        }
    }

    /// The JSON record of the row `sql` returns, decoded; `NotFound` without a row.
    async fn record<T: DeserializeOwned>(
        &self,
        table: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<T> {
        let row = self.row(table, sql, params).await?;
        decode(table, row.get::<_, &str>(0))
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_auth_request(&self, key: &str, req: &AuthRequest) -> Result<()> {
        self.create_auth_request_now(key, req).await
    }

    async fn create_auth_request_within(
        &self,
        key: &str,
        req: &AuthRequest,
        cap: usize,
    ) -> Result<bool> {
        self.create_auth_request_within_now(key, req, cap).await
    }

    async fn take_auth_request(&self, key: &str) -> Result<AuthRequest> {
        self.take_auth_request_now(key).await
    }

    async fn count_auth_requests(&self) -> Result<usize> {
        self.count_auth_requests_now().await
    }

    async fn create_auth_code(&self, key: &str, code: &AuthCode) -> Result<()> {
        self.create(
            "create auth code",
            "INSERT INTO auth_codes (key, record, redeemed, expires_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&key, &encode(code)?, &code.redeemed, &code.expires_at],
        )
        .await
    }

    async fn redeem_auth_code(&self, key: &str) -> Result<AuthCode> {
        Ok(self.redeem_auth_code_marked_now(key).await?.0)
    }

    async fn redeem_auth_code_marked(&self, key: &str) -> Result<(AuthCode, SubjectMarks)> {
        self.redeem_auth_code_marked_now(key).await
    }

    async fn create_access_token(&self, key: &str, token: &AccessToken) -> Result<()> {
        self.create(
            "create access token",
            "INSERT INTO access_tokens (key, record, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&key, &encode(token)?, &token.expires_at],
        )
        .await
    }

    async fn find_access_token(&self, key: &str) -> Result<AccessToken> {
        self.record(
            "access_tokens",
            "SELECT record FROM access_tokens WHERE key = $1",
            &[&key],
        )
        .await
    }

    async fn find_access_token_checked(&self, key: &str) -> Result<CheckedAccessToken> {
        self.find_access_token_checked_now(key).await
    }

    async fn delete_access_token(&self, key: &str) -> Result<()> {
        self.execute(
            "delete access token",
            "DELETE FROM access_tokens WHERE key = $1",
            &[&key],
        )
        .await?;
        Ok(())
    }

    async fn revoke_grant(&self, grant_id: &str, keep_until: i64) -> Result<()> {
        self.execute(
            "revoke grant",
            "INSERT INTO revoked_grants (grant_id, keep_until) VALUES ($1, $2)
             ON CONFLICT (grant_id) DO UPDATE
             SET keep_until = GREATEST(revoked_grants.keep_until, EXCLUDED.keep_until)",
            &[&grant_id, &keep_until],
        )
        .await?;
        Ok(())
    }

    async fn is_grant_revoked(&self, grant_id: &str) -> Result<bool> {
        Ok(self
            .query_opt(
                "is grant revoked",
                "SELECT 1 FROM revoked_grants WHERE grant_id = $1",
                &[&grant_id],
            )
            .await?
            .is_some())
    }

    async fn create_session(&self, key: &str, session: &Session) -> Result<()> {
        self.create(
            "create session",
            "INSERT INTO sessions (key, record, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&key, &encode(session)?, &session.expires_at],
        )
        .await
    }

    async fn find_session(&self, key: &str) -> Result<Session> {
        self.record(
            "sessions",
            "SELECT record FROM sessions WHERE key = $1",
            &[&key],
        )
        .await
    }

    async fn touch_session(&self, key: &str, client_id: &str, now: i64) -> Result<Session> {
        // By compare-and-swap, like sled's: two clients logging in through one session at once
        // are both remembered.
        let sql = [
            "SELECT record FROM sessions WHERE key = $1",
            "UPDATE sessions SET record = $2 WHERE key = $1 AND record = $3",
        ];
        self.swap_record("touch session", sql, key, |current| {
            let mut session: Session = decode("sessions", current)?;
            session.touch(client_id, now);
            let touched = encode(&session)?;
            // Unchanged: already recorded (a repeated login of the same client in one second).
            Ok(((touched != current).then_some(touched), session))
        })
        .await
    }

    async fn take_session(&self, key: &str) -> Result<Session> {
        self.record(
            "sessions",
            "DELETE FROM sessions WHERE key = $1 RETURNING record",
            &[&key],
        )
        .await
    }

    async fn start_login(&self, login: &NewLogin<'_>) -> Result<Option<Session>> {
        self.start_login_now(login, None).await
    }

    async fn start_login_recorded(
        &self,
        login: &NewLogin<'_>,
        event: &LoginEvent,
    ) -> Result<Option<Session>> {
        self.start_login_now(login, Some(event)).await
    }

    async fn take_sessions_of(&self, subject: &Subject) -> Result<Vec<Session>> {
        // One statement: each row is deleted (and returned) by exactly one of racing calls.
        // Records are JSON text; a sign-out is rare enough for a scan.
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "DELETE FROM sessions
                 WHERE (record::jsonb #>> '{identity,user_id}') = $1
                   AND (record::jsonb ->> 'connector_id') = ANY($2)
                 RETURNING record",
            )
            .await
            .map_err(|e| pg_error("take sessions of", &e))?;
        let rows = match client
            .query(&stmt, &[&subject.user_id, &subject.connectors])
            .await
        {
            Ok(rows) => rows,
            Err(e) if unreadable_json(&e) => {
                // The statement deleted nothing; its connection goes back before the scan.
                drop(client);
                return self.take_sessions_of_in_rust(subject).await;
            }
            Err(e) => return Err(pg_error("take sessions of", &e)),
        };
        rows.iter()
            .map(|row| decode("sessions", row.get::<_, &str>(0)))
            .collect()
    }

    async fn find_grants_of(&self, subject: &Subject, now: i64) -> Result<SubjectGrants> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT record::jsonb ->> 'grant_id', false FROM auth_codes
                 WHERE expires_at >= $3
                   AND $1 IN (record::jsonb #>> '{identity,user_id}', record::jsonb #>> '{identity,upstream_id}')
                   AND (COALESCE(record::jsonb #>> '{identity,connector_id}', '') = ''
                        OR (record::jsonb #>> '{identity,connector_id}') = ANY($2))
                 UNION ALL
                 SELECT record::jsonb ->> 'grant_id', false FROM access_tokens
                 WHERE expires_at >= $3
                   AND $1 IN (record::jsonb #>> '{identity,user_id}', record::jsonb #>> '{identity,upstream_id}')
                   AND (COALESCE(record::jsonb #>> '{identity,connector_id}', '') = ''
                        OR (record::jsonb #>> '{identity,connector_id}') = ANY($2))
                 UNION ALL
                 SELECT record::jsonb ->> 'grant_id', NOT spent FROM refresh_tokens
                 WHERE expires_at >= $3
                   AND $1 IN (record::jsonb #>> '{identity,user_id}', record::jsonb #>> '{identity,upstream_id}')
                   AND (COALESCE(record::jsonb #>> '{identity,connector_id}', '') = ''
                        OR (record::jsonb #>> '{identity,connector_id}') = ANY($2))",
            )
            .await
            .map_err(|e| pg_error("find grants of", &e))?;
        let rows = match client
            .query(&stmt, &[&subject.user_id, &subject.connectors, &now])
            .await
        {
            Ok(rows) => rows,
            Err(e) if unreadable_json(&e) => {
                drop(client);
                return self.find_grants_of_in_rust(subject, now).await;
            }
            Err(e) => return Err(pg_error("find grants of", &e)),
        };
        let mut found = SubjectGrants::default();
        for row in rows {
            if let Some(grant) = row.get::<_, Option<&str>>(0) {
                found.add(grant, row.get(1));
            }
        }
        Ok(found)
    }

    async fn save_subject_mark(&self, key: &str, not_before: i64, keep_until: i64) -> Result<()> {
        self.execute(
            "save subject mark",
            "INSERT INTO subject_marks (key, not_before, keep_until) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE
             SET not_before = GREATEST(subject_marks.not_before, EXCLUDED.not_before),
                 keep_until = GREATEST(subject_marks.keep_until, EXCLUDED.keep_until)",
            &[&key, &not_before, &keep_until],
        )
        .await?;
        Ok(())
    }

    async fn find_subject_mark(&self, key: &str) -> Result<i64> {
        let row = self
            .row(
                "find subject mark",
                "SELECT not_before FROM subject_marks WHERE key = $1",
                &[&key],
            )
            .await?;
        Ok(row.get(0))
    }

    async fn create_refresh_token(&self, key: &str, token: &RefreshToken) -> Result<()> {
        self.create(
            "create refresh token",
            "INSERT INTO refresh_tokens (key, record, spent, expires_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&key, &encode(token)?, &token.spent, &token.expires_at],
        )
        .await
    }

    async fn find_refresh_token(&self, key: &str) -> Result<RefreshToken> {
        let row = self
            .row(
                "find refresh token",
                "SELECT record, spent FROM refresh_tokens WHERE key = $1",
                &[&key],
            )
            .await?;
        let mut token: RefreshToken = decode("refresh_tokens", row.get::<_, &str>(0))?;
        token.spent = row.get(1);
        Ok(token)
    }

    async fn rotate_refresh_token(
        &self,
        key: &str,
        rotation: &super::Rotation<'_>,
    ) -> Result<RefreshToken> {
        self.rotate_refresh_token_now(key, rotation).await
    }

    async fn create_device_authorization(
        &self,
        device_key: &str,
        user_key: &str,
        record: &DeviceAuthorization,
    ) -> Result<()> {
        self.create_device_authorization_now(device_key, user_key, record)
            .await
    }

    async fn find_device_authorization(
        &self,
        user_key: &str,
    ) -> Result<(String, DeviceAuthorization)> {
        self.find_device_authorization_now(user_key).await
    }

    async fn update_device_authorization(
        &self,
        device_key: &str,
        change: DeviceChange<'_>,
    ) -> Result<DeviceAuthorization> {
        self.update_device_authorization_now(device_key, change)
            .await
    }

    async fn create_used_jti(&self, key: &str, expires_at: i64) -> Result<()> {
        self.create(
            "record used jti",
            "INSERT INTO used_jtis (key, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&key, &expires_at],
        )
        .await
    }

    async fn find_upstream_token(&self, key: &str) -> Result<UpstreamToken> {
        self.record(
            "upstream_tokens",
            "SELECT record FROM upstream_tokens WHERE key = $1",
            &[&key],
        )
        .await
    }

    async fn save_upstream_token(&self, key: &str, token: &UpstreamToken) -> Result<()> {
        self.execute(
            "save upstream token",
            "INSERT INTO upstream_tokens (key, record, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE
             SET record = EXCLUDED.record, expires_at = EXCLUDED.expires_at",
            &[&key, &encode(token)?, &token.expires_at],
        )
        .await?;
        Ok(())
    }

    async fn delete_upstream_token(&self, key: &str) -> Result<()> {
        self.execute(
            "delete upstream token",
            "DELETE FROM upstream_tokens WHERE key = $1",
            &[&key],
        )
        .await?;
        Ok(())
    }

    async fn find_user_link(&self, key: &str) -> Result<String> {
        let row = self
            .row(
                "find user link",
                "SELECT value FROM user_links WHERE key = $1",
                &[&key],
            )
            .await?;
        Ok(row.get(0))
    }

    async fn save_user_link(&self, key: &str, value: &str) -> Result<()> {
        self.execute(
            "save user link",
            "INSERT INTO user_links (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&key, &value],
        )
        .await?;
        Ok(())
    }

    async fn delete_expired(&self, now: i64) -> Result<usize> {
        // One statement per table, each atomic per row: a record renewed meanwhile (a fresh
        // upstream token under the same key) no longer matches and stays.
        const SWEEPS: &[(&str, &str)] = &[
            (
                "auth_requests",
                "DELETE FROM auth_requests WHERE expires_at < $1",
            ),
            ("auth_codes", "DELETE FROM auth_codes WHERE expires_at < $1"),
            (
                "access_tokens",
                "DELETE FROM access_tokens WHERE expires_at < $1",
            ),
            (
                "revoked_grants",
                "DELETE FROM revoked_grants WHERE keep_until < $1",
            ),
            (
                "upstream_tokens",
                "DELETE FROM upstream_tokens WHERE expires_at < $1",
            ),
            (
                "refresh_tokens",
                "DELETE FROM refresh_tokens WHERE expires_at < $1",
            ),
            ("used_jtis", "DELETE FROM used_jtis WHERE expires_at < $1"),
            ("sessions", "DELETE FROM sessions WHERE expires_at < $1"),
            (
                "subject_marks",
                "DELETE FROM subject_marks WHERE keep_until < $1",
            ),
            (
                "login_events",
                "DELETE FROM login_events WHERE expires_at < $1",
            ),
            (
                "audit_events",
                "DELETE FROM audit_events WHERE expires_at < $1",
            ),
            (
                "device_authorizations",
                "DELETE FROM device_authorizations WHERE keep_until < $1",
            ),
            // Lapsed leases only; the signing key set is never swept.
            ("leases", "DELETE FROM leases WHERE until < $1"),
        ];
        let mut removed = 0u64;
        for (table, sql) in SWEEPS {
            removed += self
                .execute(&format!("sweep {table}"), sql, &[&now])
                .await?;
        }
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    async fn create_login_event(&self, event: &LoginEvent) -> Result<()> {
        self.append("login_events", event.at, &encode(event)?, event.expires_at)
            .await
    }

    async fn list_login_events(&self, limit: usize) -> Result<Vec<LoginEvent>> {
        self.newest("login_events", limit).await
    }

    async fn create_audit_event(&self, event: &AuditEvent) -> Result<()> {
        self.append("audit_events", event.at, &encode(event)?, event.expires_at)
            .await
    }

    async fn list_audit_events(&self, limit: usize) -> Result<Vec<AuditEvent>> {
        self.newest("audit_events", limit).await
    }

    async fn list_sessions(&self, now: i64, limit: usize) -> Result<Vec<Session>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (client, stmt) = self
            .prepared(
                "list sessions",
                "SELECT record FROM sessions WHERE expires_at >= $1 \
                 ORDER BY (record::jsonb->>'last_seen')::bigint DESC LIMIT $2",
            )
            .await?;
        let rows = client
            .query(&stmt, &[&now, &limit])
            .await
            .map_err(|e| pg_error("list sessions", &e))?;
        Ok(decode_rows("sessions", &rows))
    }

    async fn flush(&self) -> Result<()> {
        // Nothing to do: every call above returned after its commit, and a PostgreSQL commit is
        // durable (module docs).
        Ok(())
    }

    async fn find_signing_keys(&self) -> Result<SigningKeySet> {
        self.record(
            "signing_keys",
            "SELECT record FROM signing_keys WHERE id = 1",
            &[],
        )
        .await
    }

    async fn save_signing_keys(
        &self,
        expected_version: Option<i64>,
        set: &SigningKeySet,
    ) -> Result<()> {
        let record = encode(set)?;
        let changed = match expected_version {
            // Of instances starting at once, exactly one insert lands.
            None => {
                self.execute(
                    "insert signing keys",
                    "INSERT INTO signing_keys (id, version, record) VALUES (1, $1, $2)
                     ON CONFLICT (id) DO NOTHING",
                    &[&set.version, &record],
                )
                .await?
            }
            // Compare-and-swap on the version read.
            Some(v) => {
                self.execute(
                    "replace signing keys",
                    "UPDATE signing_keys SET version = $1, record = $2
                     WHERE id = 1 AND version = $3",
                    &[&set.version, &record, &v],
                )
                .await?
            }
        };
        match (changed, expected_version) {
            (0, Some(_)) => match self.find_signing_keys().await {
                Err(StorageError::NotFound) => Err(StorageError::NotFound),
                _ => Err(StorageError::AlreadyExists),
            },
            (0, None) => Err(StorageError::AlreadyExists),
            _ => Ok(()),
        }
    }

    async fn acquire_lease(&self, name: &str, owner: &str, now: i64, until: i64) -> Result<bool> {
        // One statement: inserts a free lease, or takes over a lapsed one or extends our own;
        // a lease held by someone else is left alone and nothing is returned.
        let row = self
            .query_opt(
                "acquire lease",
                "INSERT INTO leases (name, owner, until) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, until = EXCLUDED.until
                 WHERE leases.until <= $4 OR leases.owner = EXCLUDED.owner
                 RETURNING owner",
                &[&name, &owner, &until, &now],
            )
            .await?;
        Ok(row.is_some())
    }

    async fn release_lease(&self, name: &str, owner: &str) -> Result<()> {
        self.execute(
            "release lease",
            "DELETE FROM leases WHERE name = $1 AND owner = $2",
            &[&name, &owner],
        )
        .await?;
        Ok(())
    }

    fn is_persistent(&self) -> bool {
        true
    }

    fn is_shared(&self) -> bool {
        true
    }
}

/// Test support: a fresh schema per store on the server named by [`testing::TEST_URL_ENV`].
#[cfg(any(test, feature = "testkit"))]
pub mod testing;

#[cfg(test)]
mod tests;
