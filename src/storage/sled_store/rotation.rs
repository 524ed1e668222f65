//! Refresh-token rotation in sled (RFC 9700 §4.14.2): the old token spent, its successor and the
//! new access token stored, in one sled transaction over both trees. sled 0.34 runs a
//! transaction under its global write lock, which every other operation takes for reading once a
//! transaction has been used, so it is serializable against the compare-and-swaps of the other
//! methods; and it seals its writes into the log as one batch that recovery replays whole or not
//! at all, so a failure (an I/O error, a full disk) or a crash leaves all three writes or none.

use sled::transaction::{abort, TransactionError, Transactional};

use super::{sled_error, Trees};
use crate::storage::{RefreshToken, Result, Rotation, StorageError};

impl Trees {
    pub(super) fn rotate_refresh_token_now(
        &self,
        key: &str,
        rotation: &Rotation<'_>,
    ) -> Result<RefreshToken> {
        let (refresh, access) = (&self.refresh_tokens, &self.access_tokens);
        let new_refresh = refresh.encode(rotation.refresh)?;
        let new_access = access.encode(rotation.access)?;
        // The successors' index entries before the transaction writes them (`expiry`): if it
        // aborts, they are stale entries the sweep drops. The spent token keeps its end.
        refresh.index(
            Some(rotation.refresh.expires_at),
            rotation.refresh_key.as_bytes(),
        )?;
        access.index(
            Some(rotation.access.expires_at),
            rotation.access_key.as_bytes(),
        )?;
        let outcome = (&refresh.tree, &access.tree).transaction(|(refresh_tx, access_tx)| {
            let Some(bytes) = refresh_tx.get(key)? else {
                return abort(StorageError::NotFound);
            };
            let before: RefreshToken = refresh.decode(&bytes).or_else(abort)?;
            if before.spent {
                // Already used: nothing is written, and the caller treats this as a replay.
                return Ok(before);
            }
            if refresh_tx.get(rotation.refresh_key)?.is_some()
                || access_tx.get(rotation.access_key)?.is_some()
            {
                return abort(StorageError::AlreadyExists);
            }
            let mut spent = before.clone();
            spent.spent = true;
            let spent = refresh.encode(&spent).or_else(abort)?;
            refresh_tx.insert(key, spent)?;
            refresh_tx.insert(rotation.refresh_key, new_refresh.as_slice())?;
            access_tx.insert(rotation.access_key, new_access.as_slice())?;
            Ok(before)
        });
        outcome.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => sled_error("transaction", "refresh_tokens", &e),
        })
    }
}
