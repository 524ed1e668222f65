//! Records that let several instances over one shared store act as one provider: the signing
//! key set every instance signs with, and named leases that let exactly one instance do a piece
//! of work (e.g. fetch an upstream token) while the others wait for its result.
//!
//! Storage knows nothing of what the keys sign or what a lease guards; the callers
//! (`tokens::shared`, the connectors) give them meaning.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::tokens::{KeyStatus, SigningAlg};

/// One private signing key kept in the store. Its `Debug` output redacts the key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSigningKey {
    /// RFC 7638 thumbprint of the key; checked against the key on every load.
    pub kid: String,
    /// The JWS algorithm the key signs with.
    pub alg: SigningAlg,
    /// The PKCS#8 PEM private key.
    pub private_pem: String,
    /// When the key was generated (Unix seconds).
    pub created_at: i64,
    /// Active (signs) or retiring (only still published).
    pub status: KeyStatus,
    /// For a retiring key: when its grace period ends (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retire_at: Option<i64>,
}

// Written by hand so that a private key never reaches a log line through `{:?}`. The record is
// taken apart field by field, so that a field added later does not compile until it is shown or
// redacted here on purpose.
impl fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let StoredSigningKey {
            kid,
            alg,
            private_pem: _,
            created_at,
            status,
            retire_at,
        } = self;
        f.debug_struct("StoredSigningKey")
            .field("kid", kid)
            .field("alg", alg)
            .field("private_pem", &"<redacted>")
            .field("created_at", created_at)
            .field("status", status)
            .field("retire_at", retire_at)
            .finish()
    }
}

/// The whole signing key set of a shared store, replaced as one record so that every instance
/// sees either the set before a rotation or the set after it, never half of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeySet {
    /// Grows by one with every change; what [`crate::storage::Store::save_signing_keys`]
    /// compares, and what a running instance compares to see whether it must reload.
    pub version: i64,
    /// Every key, active ones and retiring ones.
    pub keys: Vec<StoredSigningKey>,
}

/// A named lease as the memory and sled backends keep it: who holds it and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LeaseRecord {
    /// The holder's opaque id.
    pub(crate) owner: String,
    /// Unix seconds at which the lease lapses by itself (its holder may have died).
    pub(crate) until: i64,
}

impl LeaseRecord {
    /// Whether `owner` may take (or extend) this lease at `now`: it has lapsed, or it is theirs.
    pub(crate) fn may_be_taken_by(&self, owner: &str, now: i64) -> bool {
        self.until <= now || self.owner == owner
    }

    /// The lease `owner` holds until `until` once it takes the `current` one (`None`: free), or
    /// `None` when someone else still holds it at `now`.
    pub(crate) fn claim(
        current: Option<&LeaseRecord>,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Option<LeaseRecord> {
        if current.is_some_and(|l| !l.may_be_taken_by(owner, now)) {
            return None;
        }
        Some(LeaseRecord {
            owner: owner.to_owned(),
            until,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_signing_key_debug_redacts_the_private_key() {
        let key = StoredSigningKey {
            kid: "kid-1".into(),
            alg: SigningAlg::Rs256,
            private_pem: "-----BEGIN PRIVATE KEY-----secret-bytes".into(),
            created_at: 1,
            status: KeyStatus::Active,
            retire_at: None,
        };
        let shown = format!(
            "{:?}",
            SigningKeySet {
                version: 1,
                keys: vec![key]
            }
        );
        assert!(!shown.contains("secret-bytes"), "{shown}");
        assert!(!shown.contains("BEGIN"), "{shown}");
        assert!(shown.contains("kid-1"), "{shown}");
    }

    #[test]
    fn a_lease_may_be_taken_once_lapsed_or_by_its_holder() {
        let lease = LeaseRecord {
            owner: "a".into(),
            until: 100,
        };
        assert!(lease.may_be_taken_by("a", 50));
        assert!(!lease.may_be_taken_by("b", 99));
        assert!(lease.may_be_taken_by("b", 100));
        assert_eq!(
            LeaseRecord::claim(None, "b", 50, 200),
            Some(LeaseRecord {
                owner: "b".into(),
                until: 200
            })
        );
        assert_eq!(LeaseRecord::claim(Some(&lease), "b", 99, 200), None);
        assert_eq!(
            LeaseRecord::claim(Some(&lease), "a", 99, 300).map(|l| l.until),
            Some(300),
            "the holder extends it"
        );
    }
}
