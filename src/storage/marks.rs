//! What voids a credential besides its expiry, read together with the credential: the sign-out
//! marks of its person ([`Store::save_subject_mark`]) and its grant's revocation
//! ([`Store::revoke_grant`]). Every use of a code or an access token checks them, so a store that
//! answers over the network reads them in the same statement as the credential (one round trip
//! instead of up to four); the embedded stores compose the single calls
//! ([`SubjectMarks::read`]).

use std::sync::Arc;

use super::{AccessToken, Result, StorageError, Store};
use crate::identity::Identity;

/// The store key of the sign-out mark of `user_id` as named by `connector_id`. A PostgreSQL
/// statement forms the same key from a stored record (`postgres::marks`), so the two must agree;
/// the conformance suite saves marks under this key and expects them read with the record.
pub fn subject_mark_key(connector_id: &str, user_id: &str) -> String {
    // Connector ids are config identifiers without line breaks, so the key is unambiguous.
    // Pushed rather than `format!`ed: every use of an access token builds one.
    let mut key = String::with_capacity(connector_id.len() + 1 + user_id.len());
    key.push_str(connector_id);
    key.push('\n');
    key.push_str(user_id);
    key
}

/// The `not_before` of the sign-out marks of a credential's person, both under the connector
/// the credential names (`Identity::connector_id`): of its `user_id`, and of its `upstream_id`
/// when it has one (for a client with pairwise subjects, the person's own id). `None`: no mark.
///
/// A record that names no connector (written before records kept it) gets neither: which
/// connector it came from depends on its client's configuration, which the store does not know,
/// so the caller reads those marks itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubjectMarks {
    /// The mark of (`connector_id`, `user_id`).
    pub of_user: Option<i64>,
    /// The mark of (`connector_id`, `upstream_id`).
    pub of_upstream: Option<i64>,
}

impl SubjectMarks {
    /// The marks of `identity`, read one by one from `store`.
    pub async fn read<S: Store + ?Sized>(store: &S, identity: &Identity) -> Result<SubjectMarks> {
        let [user, upstream] = Self::keys(identity);
        let mut marks = SubjectMarks::default();
        if let Some(key) = user {
            marks.of_user = optional(store.find_subject_mark(&key).await)?;
        }
        if let Some(key) = upstream {
            marks.of_upstream = optional(store.find_subject_mark(&key).await)?;
        }
        Ok(marks)
    }

    /// [`SubjectMarks::read`] for a store that reads a mark synchronously (`find`: the mark's
    /// `not_before` under a key, `NotFound` if none), without a future per read.
    pub fn read_now(
        identity: &Identity,
        mut find: impl FnMut(&str) -> Result<i64>,
    ) -> Result<SubjectMarks> {
        let [user, upstream] = Self::keys(identity);
        let mut read = |key: Option<String>| match key {
            Some(key) => optional(find(&key)),
            None => Ok(None),
        };
        Ok(SubjectMarks {
            of_user: read(user)?,
            of_upstream: read(upstream)?,
        })
    }

    /// The keys of the marks of `identity`: of its `user_id`, and of its `upstream_id` when it
    /// has one; neither when it names no connector.
    fn keys(identity: &Identity) -> [Option<String>; 2] {
        if identity.connector_id.is_empty() {
            return [None, None];
        }
        let of = |user_id: &str| subject_mark_key(&identity.connector_id, user_id);
        [
            Some(of(&identity.user_id)),
            identity.upstream_id.as_deref().map(of),
        ]
    }
}

/// An access token as every use of it needs it ([`Store::find_access_token_checked`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedAccessToken {
    /// The token's record, shared: a store may hand out the record it decoded before.
    pub token: Arc<AccessToken>,
    /// Whether its grant is revoked ([`Store::is_grant_revoked`]).
    pub grant_revoked: bool,
    /// The sign-out marks of its person.
    pub marks: SubjectMarks,
}

impl CheckedAccessToken {
    /// The token under `key` with its grant's revocation and its marks, read one by one.
    pub async fn read<S: Store + ?Sized>(store: &S, key: &str) -> Result<CheckedAccessToken> {
        let token = Arc::new(store.find_access_token(key).await?);
        let grant_revoked = store.is_grant_revoked(&token.grant_id).await?;
        let marks = SubjectMarks::read(store, &token.identity).await?;
        Ok(CheckedAccessToken {
            token,
            grant_revoked,
            marks,
        })
    }
}

/// `NotFound` as `None`.
fn optional<T>(result: Result<T>) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(StorageError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStore;
    use std::collections::HashMap;

    #[test]
    fn a_marks_key_is_the_connector_a_line_feed_and_the_user() {
        // Marks saved before are found under this key, and PostgreSQL forms the same in SQL.
        assert_eq!(subject_mark_key("wecom", "zhangsan"), "wecom\nzhangsan");
        assert_eq!(subject_mark_key("", "张三"), "\n张三");
    }

    fn person(connector_id: &str, upstream_id: Option<&str>) -> Identity {
        Identity {
            user_id: "zhangsan".into(),
            connector_id: connector_id.into(),
            upstream_id: upstream_id.map(str::to_owned),
            ..Identity::default()
        }
    }

    #[tokio::test]
    async fn the_synchronous_read_finds_what_the_store_read_finds() {
        let store = MemoryStore::new();
        let saved = [("wecom\nzhangsan", 100), ("wecom\nZhangSan", 200)];
        for (key, not_before) in saved {
            store
                .save_subject_mark(key, not_before, i64::MAX)
                .await
                .expect("save");
        }
        let table: HashMap<&str, i64> = saved.into_iter().collect();
        let find = |key: &str| table.get(key).copied().ok_or(StorageError::NotFound);
        for who in [
            person("wecom", Some("ZhangSan")),
            person("wecom", None),
            person("wecom", Some("nobody")),
            person("other", Some("ZhangSan")),
            person("", Some("ZhangSan")),
        ] {
            let from_store = SubjectMarks::read(&store, &who).await.expect("read");
            let now = SubjectMarks::read_now(&who, find).expect("read now");
            assert_eq!(now, from_store, "{who:?}");
        }
        let both = SubjectMarks::read_now(&person("wecom", Some("ZhangSan")), find);
        let expected = SubjectMarks {
            of_user: Some(100),
            of_upstream: Some(200),
        };
        assert_eq!(both.expect("read now"), expected);
    }

    #[test]
    fn a_failed_mark_read_is_an_error_not_an_absent_mark() {
        let down = |_: &str| Err(StorageError::Unavailable("down".into()));
        let read = SubjectMarks::read_now(&person("wecom", None), down);
        assert!(matches!(read, Err(StorageError::Unavailable(_))));
        // A record that names no connector reads no mark here (its caller reads them).
        let untold = SubjectMarks::read_now(&person("", None), down);
        assert_eq!(untold.expect("no read"), SubjectMarks::default());
    }
}
