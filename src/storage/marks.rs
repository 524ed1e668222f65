//! What voids a credential besides its expiry, read together with the credential: the sign-out
//! marks of its person ([`Store::save_subject_mark`]) and its grant's revocation
//! ([`Store::revoke_grant`]). Every use of a code or an access token checks them, so a store that
//! answers over the network reads them in the same statement as the credential (one round trip
//! instead of up to four); the embedded stores compose the single calls
//! ([`SubjectMarks::read`]).

use super::{AccessToken, Result, StorageError, Store};
use crate::identity::Identity;

/// The store key of the sign-out mark of `user_id` as named by `connector_id`. A PostgreSQL
/// statement forms the same key from a stored record (`postgres::marks`), so the two must agree;
/// the conformance suite saves marks under this key and expects them read with the record.
pub fn subject_mark_key(connector_id: &str, user_id: &str) -> String {
    // Connector ids are config identifiers without line breaks, so the key is unambiguous.
    format!("{connector_id}\n{user_id}")
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
        if identity.connector_id.is_empty() {
            return Ok(SubjectMarks::default());
        }
        let of = |user_id: &str| subject_mark_key(&identity.connector_id, user_id);
        let of_user = optional(store.find_subject_mark(&of(&identity.user_id)).await)?;
        let of_upstream = match &identity.upstream_id {
            Some(own) => optional(store.find_subject_mark(&of(own)).await)?,
            None => None,
        };
        Ok(SubjectMarks {
            of_user,
            of_upstream,
        })
    }
}

/// An access token as every use of it needs it ([`Store::find_access_token_checked`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedAccessToken {
    /// The token's record.
    pub token: AccessToken,
    /// Whether its grant is revoked ([`Store::is_grant_revoked`]).
    pub grant_revoked: bool,
    /// The sign-out marks of its person.
    pub marks: SubjectMarks,
}

impl CheckedAccessToken {
    /// The token under `key` with its grant's revocation and its marks, read one by one.
    pub async fn read<S: Store + ?Sized>(store: &S, key: &str) -> Result<CheckedAccessToken> {
        let token = store.find_access_token(key).await?;
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
