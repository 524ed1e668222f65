//! A person's sessions and grants found in Rust, for when PostgreSQL cannot read a record's JSON.
//!
//! `take_sessions_of` and `find_grants_of` filter in SQL through `record::jsonb`, and one
//! scanned record holding a `\u0000` escape (a NUL in somebody's display name, say) fails the
//! whole statement with SQLSTATE 22P05. A sign-out must not fail because of another person's
//! record, so the store then reads the rows as text and decides with the same [`Subject`] rules
//! as the other stores. Only sign-outs meeting such a record pay for the longer scan.

use super::{decode, pg_error, PostgresStore};
use crate::storage::{
    AccessToken, AuthCode, RefreshToken, Result, Session, Subject, SubjectGrants,
};

impl PostgresStore {
    /// [`Store::take_sessions_of`](crate::storage::Store::take_sessions_of), decided in Rust.
    pub(super) async fn take_sessions_of_in_rust(&self, subject: &Subject) -> Result<Vec<Session>> {
        let client = self.client().await?;
        let fail = |e: tokio_postgres::Error| pg_error("take sessions of", &e);
        let rows = client
            .query("SELECT key, record FROM sessions", &[])
            .await
            .map_err(fail)?;
        let mut taken = Vec::new();
        for row in rows {
            let (key, text): (&str, &str) = (row.get(0), row.get(1));
            let Ok(session) = decode::<Session>("sessions", text) else {
                continue;
            };
            if !subject.owns_session(&session) {
                continue;
            }
            // Deleted only as it was read: of racing calls, exactly one takes each session.
            let deleted = client
                .execute(
                    "DELETE FROM sessions WHERE key = $1 AND record = $2",
                    &[&key, &text],
                )
                .await
                .map_err(fail)?;
            if deleted == 1 {
                taken.push(session);
            }
        }
        Ok(taken)
    }

    /// [`Store::find_grants_of`](crate::storage::Store::find_grants_of), decided in Rust.
    pub(super) async fn find_grants_of_in_rust(
        &self,
        subject: &Subject,
        now: i64,
    ) -> Result<SubjectGrants> {
        let client = self.client().await?;
        let fail = |e: tokio_postgres::Error| pg_error("find grants of", &e);
        let mut found = SubjectGrants::default();
        let codes = "SELECT record, false FROM auth_codes WHERE expires_at >= $1";
        let access = "SELECT record, false FROM access_tokens WHERE expires_at >= $1";
        let refresh = "SELECT record, NOT spent FROM refresh_tokens WHERE expires_at >= $1";
        for (table, sql) in [
            ("auth_codes", codes),
            ("access_tokens", access),
            ("refresh_tokens", refresh),
        ] {
            for row in client.query(sql, &[&now]).await.map_err(fail)? {
                let text: &str = row.get(0);
                let owner = match table {
                    "auth_codes" => {
                        decode::<AuthCode>(table, text).map(|c| (c.identity, c.grant_id))
                    }
                    "access_tokens" => {
                        decode::<AccessToken>(table, text).map(|t| (t.identity, t.grant_id))
                    }
                    _ => decode::<RefreshToken>(table, text).map(|t| (t.identity, t.grant_id)),
                };
                if let Ok((identity, grant_id)) = owner {
                    if subject.owns(&identity) {
                        found.add(&grant_id, row.get(1));
                    }
                }
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{access, code, refresh, schema_or_skip};
    use crate::identity::Identity;
    use crate::storage::{Session, Store, Subject};

    fn session(user_id: &str, name: Option<&str>) -> Session {
        Session {
            sid: crate::random::token(16),
            identity: Identity {
                user_id: user_id.into(),
                username: user_id.into(),
                name: name.map(str::to_owned),
                ..Identity::default()
            },
            connector_id: "wecom".into(),
            auth_time: 100,
            last_seen: 100,
            expires_at: 4_000_000_000,
            clients: vec!["client".into()],
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sign_out_meeting_a_record_postgres_cannot_read_still_finds_and_takes_everything() {
        let schema = schema_or_skip!(
            "a_sign_out_meeting_a_record_postgres_cannot_read_still_finds_and_takes_everything"
        );
        let store = schema.store().await;
        // Another person's records with a NUL in the name: serde writes `\u0000`, which
        // PostgreSQL's JSON operators refuse (SQLSTATE 22P05) for the whole scanning statement.
        let odd = Some("li\u{0}si");
        store
            .create_session("lisi", &session("lisi", odd))
            .await
            .expect("lisi's session");
        let mut lisi_token = access(4_000_000_000);
        lisi_token.identity = session("lisi", odd).identity;
        lisi_token.grant_id = "lisi-grant".into();
        store
            .create_access_token("lisi-at", &lisi_token)
            .await
            .expect("lisi's token");

        let mine = session("zhangsan", None);
        store.create_session("zs", &mine).await.expect("session");
        let mut c = code(4_000_000_000);
        c.grant_id = "grant-of-code".into();
        store.create_auth_code("c", &c).await.expect("code");
        store
            .create_access_token("at", &access(4_000_000_000))
            .await
            .expect("token");
        store
            .create_refresh_token("rt", &refresh(4_000_000_000))
            .await
            .expect("refresh");

        let zhangsan = Subject {
            user_id: "zhangsan".into(),
            connectors: vec!["wecom".into()],
        };
        let grants = store
            .find_grants_of(&zhangsan, 1_000)
            .await
            .expect("grants");
        assert_eq!(
            grants.grant_ids.iter().cloned().collect::<Vec<_>>(),
            ["grant", "grant-of-code"]
        );
        assert_eq!(grants.live_refresh_tokens, 1);
        let taken = store.take_sessions_of(&zhangsan).await.expect("take");
        assert_eq!(taken, vec![mine]);
        assert!(store
            .take_sessions_of(&zhangsan)
            .await
            .expect("again")
            .is_empty());
        // Lisi's records are untouched.
        assert_eq!(
            store
                .find_session("lisi")
                .await
                .expect("lisi's session")
                .identity
                .name
                .as_deref(),
            odd
        );
        schema.drop_schema().await;
    }
}
