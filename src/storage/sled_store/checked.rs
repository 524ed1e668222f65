//! An access token with what voids it besides its expiry (its grant's revocation, its person's
//! sign-out marks), read from sled in one synchronous call. Each read is an in-process tree
//! lookup, so the three stay three (one per tree, as before); composing them here rather than
//! through the store's async methods saves a boxed future per read, and the record is shared
//! from the decode cache instead of copied.

use std::sync::Arc;

use super::Trees;
use crate::storage::{AccessToken, CheckedAccessToken, Result, StorageError, SubjectMarks};

impl Trees {
    /// The access token under `key`, decoded again only when its stored bytes changed.
    pub(super) fn find_access_token_shared(&self, key: &str) -> Result<Arc<AccessToken>> {
        let table = &self.access_tokens;
        match table.sled("get", table.tree.get(key))? {
            Some(bytes) => self
                .access_token_decodes
                .decode(key, bytes, |b| table.decode(b)),
            None => Err(StorageError::NotFound),
        }
    }

    pub(super) fn find_access_token_checked_now(&self, key: &str) -> Result<CheckedAccessToken> {
        let token = self.find_access_token_shared(key)?;
        let grant_revoked = self.is_grant_revoked(&token.grant_id)?;
        let marks = SubjectMarks::read_now(&token.identity, |mark| self.find_subject_mark(mark))?;
        Ok(CheckedAccessToken {
            token,
            grant_revoked,
            marks,
        })
    }
}
