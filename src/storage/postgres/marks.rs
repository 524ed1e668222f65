//! A code or an access token read with what voids it ([`crate::storage::marks`]), in one
//! statement: the sign-out marks of its person and, for an access token, its grant's
//! revocation. One round trip and one pooled connection instead of up to four of each.
//!
//! The marks' keys are formed in SQL from the stored record's identity exactly as
//! [`subject_mark_key`](crate::storage::subject_mark_key) forms them: the connector id, a line
//! feed, the user id (or the upstream id). A record that names no connector joins no mark, as
//! [`SubjectMarks::read`] reads none. Records are JSON text; the statement parses the one
//! record once (`::jsonb`, behind `OFFSET 0` so that the planner does not copy the cast into
//! each key expression).

use super::{decode, PostgresStore};
use crate::storage::{AuthCode, CheckedAccessToken, Result, SubjectMarks};

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

/// The marks in columns 2 and 3 of `row`.
fn marks(row: &tokio_postgres::Row, first: usize) -> SubjectMarks {
    SubjectMarks {
        of_user: row.get(first),
        of_upstream: row.get(first + 1),
    }
}

impl PostgresStore {
    pub(super) async fn redeem_auth_code_marked_now(
        &self,
        key: &str,
    ) -> Result<(AuthCode, SubjectMarks)> {
        match self
            .query_opt("redeem auth code", REDEEM_MARKED, &[&key])
            .await?
        {
            Some(row) => {
                let mut before: AuthCode = decode("auth_codes", row.get::<_, &str>(0))?;
                before.redeemed = false;
                Ok((before, marks(&row, 1)))
            }
            // Absent, or redeemed before: a replay is refused whatever the marks say.
            None => {
                let mut used: AuthCode = self
                    .record(
                        "auth_codes",
                        "SELECT record FROM auth_codes WHERE key = $1",
                        &[&key],
                    )
                    .await?;
                used.redeemed = true;
                Ok((used, SubjectMarks::default()))
            }
        }
    }

    pub(super) async fn find_access_token_checked_now(
        &self,
        key: &str,
    ) -> Result<CheckedAccessToken> {
        let row = self
            .row("find access token", FIND_ACCESS_CHECKED, &[&key])
            .await?;
        Ok(CheckedAccessToken {
            token: decode("access_tokens", row.get::<_, &str>(0))?,
            grant_revoked: row.get(1),
            marks: marks(&row, 2),
        })
    }
}
