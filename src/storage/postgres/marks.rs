//! A code or an access token read with what voids it ([`crate::storage::marks`]), in one
//! statement: the sign-out marks of its person and, for an access token, its grant's
//! revocation. One round trip and one pooled connection instead of up to four of each.
//!
//! The marks' keys are formed in SQL from the stored record's identity exactly as
//! [`subject_mark_key`](crate::storage::subject_mark_key) forms them: the connector id, a line
//! feed, the user id (or the upstream id). A record that names no connector joins no mark, as
//! [`SubjectMarks::read`] reads none. Records are JSON text; the statement parses the one
//! record once (`::jsonb`, behind `OFFSET 0` so that the planner does not copy the cast into
//! each key expression). A record PostgreSQL cannot parse ([`Read::Unreadable`]) is read the
//! single way instead.

use std::sync::Arc;

use super::{decode, pg_error, unreadable_json, PostgresStore};
use crate::storage::{AuthCode, CheckedAccessToken, Result, StorageError, SubjectMarks};

/// The joins that add the marks of the credential row `c`, whose parsed record is `r.j`, as
/// `mu` (of its user id) and `mo` (of its upstream id). `subject_marks.key` is its primary key,
/// so each join adds at most one row.
macro_rules! marks_of_c {
    () => {
        " CROSS JOIN LATERAL (SELECT c.record::jsonb AS j OFFSET 0) AS r
          LEFT JOIN subject_marks AS mu
            ON mu.key = NULLIF(r.j #>> '{identity,connector_id}', '') || E'\\n'
                        || (r.j #>> '{identity,user_id}')
          LEFT JOIN subject_marks AS mo
            ON mo.key = NULLIF(r.j #>> '{identity,connector_id}', '') || E'\\n'
                        || (r.j #>> '{identity,upstream_id}')"
    };
}

/// The code redeemed (as `redeem_auth_code`'s first statement: of racing redemptions exactly one
/// gets the row) with its marks, read on the statement's snapshot.
const REDEEM_MARKED: &str = relaxed!(concat!(
    ", c AS (UPDATE auth_codes SET redeemed = true FROM relaxed
             WHERE key = $1 AND NOT redeemed RETURNING record)
     SELECT c.record, mu.not_before, mo.not_before FROM c",
    marks_of_c!()
));

/// The access token with its grant's revocation and its marks.
const FIND_ACCESS_CHECKED: &str = concat!(
    "SELECT c.record,
            EXISTS (SELECT 1 FROM revoked_grants WHERE grant_id = r.j ->> 'grant_id'),
            mu.not_before, mo.not_before
     FROM access_tokens AS c",
    marks_of_c!(),
    " WHERE c.key = $1"
);

/// The marks in columns `first` and `first + 1` of `row`.
fn marks(row: &tokio_postgres::Row, first: usize) -> SubjectMarks {
    SubjectMarks {
        of_user: row.get(first),
        of_upstream: row.get(first + 1),
    }
}

/// The code redeemed alone, for a record the statement above cannot read.
const REDEEM: &str = relaxed!(
    "UPDATE auth_codes SET redeemed = true FROM relaxed
     WHERE key = $1 AND NOT redeemed RETURNING record"
);

/// What a statement that reads a record's JSON answered.
enum Read {
    /// Its row, if any.
    Row(Option<tokio_postgres::Row>),
    /// PostgreSQL refused the record's JSON: a string with the escape `\u0000` (a NUL character,
    /// which serde writes and PostgreSQL's JSON operators cannot turn into text). The statement
    /// failed as a whole, so it changed nothing; the caller reads the single way.
    Unreadable,
}

impl PostgresStore {
    /// Runs `sql` (one that parses a stored record as JSON) with `key`.
    async fn read_json(&self, op: &str, sql: &str, key: &str) -> Result<Read> {
        let (client, statement) = self.prepared(op, sql).await?;
        match client.query_opt(&statement, &[&key]).await {
            Ok(row) => Ok(Read::Row(row)),
            Err(e) if unreadable_json(&e) => Ok(Read::Unreadable),
            Err(e) => Err(pg_error(op, &e)),
        }
    }

    pub(super) async fn redeem_auth_code_marked_now(
        &self,
        key: &str,
    ) -> Result<(AuthCode, SubjectMarks)> {
        let (row, read) = match self
            .read_json("redeem auth code", REDEEM_MARKED, key)
            .await?
        {
            Read::Row(row) => {
                let read = row.as_ref().map(|row| marks(row, 1));
                (row, read)
            }
            Read::Unreadable => (
                self.query_opt("redeem auth code", REDEEM, &[&key]).await?,
                None,
            ),
        };
        let Some(row) = row else {
            // Absent, or redeemed before: a replay is refused whatever the marks say.
            let mut used: AuthCode = self
                .record(
                    "auth_codes",
                    "SELECT record FROM auth_codes WHERE key = $1",
                    &[&key],
                )
                .await?;
            used.redeemed = true;
            return Ok((used, SubjectMarks::default()));
        };
        let mut before: AuthCode = decode("auth_codes", row.get::<_, &str>(0))?;
        before.redeemed = false;
        let read = match read {
            Some(read) => read,
            None => SubjectMarks::read(self, &before.identity).await?,
        };
        Ok((before, read))
    }

    pub(super) async fn find_access_token_checked_now(
        &self,
        key: &str,
    ) -> Result<CheckedAccessToken> {
        match self
            .read_json("find access token", FIND_ACCESS_CHECKED, key)
            .await?
        {
            Read::Row(Some(row)) => Ok(CheckedAccessToken {
                token: Arc::new(decode("access_tokens", row.get::<_, &str>(0))?),
                grant_revoked: row.get(1),
                marks: marks(&row, 2),
            }),
            Read::Row(None) => Err(StorageError::NotFound),
            Read::Unreadable => CheckedAccessToken::read(self, key).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::schema_or_skip;
    use super::super::tests::{access, code};
    use crate::storage::{subject_mark_key, Store, SubjectMarks};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_record_whose_json_postgres_cannot_read_is_still_read_with_its_marks() {
        let schema = schema_or_skip!(
            "a_record_whose_json_postgres_cannot_read_is_still_read_with_its_marks"
        );
        let store = schema.store().await;
        // A name with a NUL character: serde writes `\u0000`, which PostgreSQL's JSON operators
        // refuse (SQLSTATE 22P05).
        let mut token = access(4_000_000_000);
        token.identity.name = Some("zhang\u{0}san".into());
        token.identity.connector_id = "wecom".into();
        let mark = subject_mark_key("wecom", &token.identity.user_id);
        store
            .save_subject_mark(&mark, 1_700_000_000, 4_000_000_000)
            .await
            .expect("mark");
        store
            .revoke_grant(&token.grant_id, 4_000_000_000)
            .await
            .expect("revoke");
        let expected = SubjectMarks {
            of_user: Some(1_700_000_000),
            of_upstream: None,
        };
        store
            .create_access_token("at", &token)
            .await
            .expect("token");
        let checked = store.find_access_token_checked("at").await.expect("read");
        assert_eq!(*checked.token, token);
        assert!(checked.grant_revoked);
        assert_eq!(checked.marks, expected);

        let mut code = code(4_000_000_000);
        code.identity = token.identity.clone();
        store.create_auth_code("c", &code).await.expect("code");
        let (before, marks) = store.redeem_auth_code_marked("c").await.expect("redeem");
        assert_eq!((before, marks), (code, expected));
        let (again, _) = store.redeem_auth_code_marked("c").await.expect("again");
        assert!(again.redeemed, "redeemed exactly once");
        schema.drop_schema().await;
    }
}
