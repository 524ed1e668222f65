//! The schema of the PostgreSQL store and how a database is brought up to it: [`MIGRATIONS`],
//! applied at start in one transaction under an advisory lock.

use super::{pg_error, PostgresStore};
use crate::storage::{Result, StorageError};

/// The schema, one migration per entry: entry `i` brings the schema to version `i + 1`. Append
/// only; never edit a released entry.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE auth_requests (
    key TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);

-- The pending count behind the /authorize flood cap, kept by triggers in 16 slots (a slot per
-- connection, so concurrent logins seldom wait for one another's counter row): counting is a sum
-- of 16 rows however many requests are pending.
CREATE TABLE auth_request_count (slot INT PRIMARY KEY, n BIGINT NOT NULL);
INSERT INTO auth_request_count SELECT s, 0 FROM generate_series(0, 15) AS s;
CREATE FUNCTION auth_request_count_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE auth_request_count
       SET n = n + (CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END)
     WHERE slot = pg_backend_pid() % 16;
    RETURN NULL;
END
$$;
CREATE TRIGGER auth_request_count_moved AFTER INSERT OR DELETE ON auth_requests
    FOR EACH ROW EXECUTE FUNCTION auth_request_count_moved();

CREATE TABLE auth_codes (
    key TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    redeemed BOOLEAN NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE access_tokens (
    key TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

CREATE TABLE refresh_tokens (
    key TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    spent BOOLEAN NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE revoked_grants (
    grant_id TEXT PRIMARY KEY,
    keep_until BIGINT NOT NULL
);
CREATE INDEX revoked_grants_keep_until ON revoked_grants (keep_until);

CREATE TABLE sessions (
    key TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE used_jtis (
    key TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX used_jtis_expires_at ON used_jtis (expires_at);

CREATE TABLE upstream_tokens (
    key TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE user_links (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE login_events (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    record TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX login_events_at ON login_events (at, id);
CREATE INDEX login_events_expires_at ON login_events (expires_at);
"#,
    r#"
-- What the instances of a cluster share (storage::cluster): the one signing key set, replaced by
-- compare-and-swap on its version, and named leases.
CREATE TABLE signing_keys (
    id INT PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until BIGINT NOT NULL
);
"#,
    r#"
-- The audit log of operator actions (console and admin socket), kept like the login events.
CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    record TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at, id);
CREATE INDEX audit_events_expires_at ON audit_events (expires_at);
"#,
    r#"
-- Device authorizations (RFC 8628): found by the device code's hash or the user code's hash.
CREATE TABLE device_authorizations (
    key TEXT PRIMARY KEY,
    user_key TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL,
    keep_until BIGINT NOT NULL
);
CREATE INDEX device_authorizations_keep_until ON device_authorizations (keep_until);
"#,
    r#"
-- Sign-outs everywhere (provider::offboarding): per person and upstream app, credentials from
-- logins before `not_before` are void, on every instance at once.
CREATE TABLE subject_marks (
    key TEXT PRIMARY KEY,
    not_before BIGINT NOT NULL,
    keep_until BIGINT NOT NULL
);
CREATE INDEX subject_marks_keep_until ON subject_marks (keep_until);
"#,
    r#"
-- The pending count in 256 slots instead of 16. A connection's slot is its backend pid modulo
-- the slot count, and the pids of one instance's 16 pooled connections collided modulo 16 (about
-- seven pairs shared a slot): a shared slot's row stays locked until its transaction's commit is
-- flushed, so logins on those connections queued behind one another's WAL flush. Counts already
-- in slots 0–15 stay where they are; the sum is unchanged.
INSERT INTO auth_request_count SELECT s, 0 FROM generate_series(16, 255) AS s;
CREATE OR REPLACE FUNCTION auth_request_count_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE auth_request_count
       SET n = n + (CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END)
     WHERE slot = pg_backend_pid() % 256;
    RETURN NULL;
END
$$;
"#,
    r#"
-- The statements that insert or take a pending request move their count slot themselves, in the
-- same statement, and mark their transaction `wecom_oidc.counted`; the trigger counts only the
-- rows of transactions not so marked: the expiry sweep, and instances of the release before
-- this one, still running during a rolling upgrade, which count through the trigger alone.
-- A WHEN condition is checked without calling the function: a marked row costs no PL/pgSQL call
-- and no separate UPDATE.
DROP TRIGGER auth_request_count_moved ON auth_requests;
CREATE TRIGGER auth_request_count_moved AFTER INSERT OR DELETE ON auth_requests
    FOR EACH ROW WHEN (current_setting('wecom_oidc.counted', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION auth_request_count_moved();
"#,
];

impl PostgresStore {
    /// Applies the migrations this database lacks; refuses a newer schema.
    pub(super) async fn migrate(&self) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| pg_error("begin", &e))?;
        // One migrator at a time per schema: the others wait here, then find nothing to do.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('wecom-oidc schema ' || current_schema()))",
            &[],
        )
        .await
        .map_err(|e| pg_error("advisory lock", &e))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (
                 version INT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(|e| pg_error("create schema_version", &e))?;
        let row = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
            .await
            .map_err(|e| pg_error("read schema_version", &e))?;
        let current: i32 = row.get(0);
        let known = MIGRATIONS.len() as i32;
        if current > known {
            return Err(StorageError::Backend(format!(
                "the database schema is version {current}, newer than this wecom-oidc knows \
                 (version {known}): a newer release has migrated it; run that release (or \
                 newer), not this one. Nothing was changed"
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let version = i as i32 + 1;
            tx.batch_execute(sql)
                .await
                .map_err(|e| pg_error(&format!("migration {version}"), &e))?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(|e| pg_error("record schema_version", &e))?;
            tracing::info!(version, "database schema migrated");
        }
        tx.commit().await.map_err(|e| pg_error("commit", &e))?;
        Ok(())
    }
}
