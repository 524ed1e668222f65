//! A store that goes away mid-request, for tests (testkit): a wrapper around a real store whose
//! calls all fail `Unavailable` once a chosen number of writes have gone through — a database
//! that stops, or a disk that fills, between two writes of one request. A test cuts the store at
//! every point of an operation in turn and checks that no cut leaves a half-done state behind
//! (a refresh token spent without a successor, RFC 9700 §4.14.2).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use super::hooked::{Hooked, StoreHook};
use super::{Result, StorageError, Store};

/// No cut: every call goes through.
const NEVER: usize = usize::MAX;

/// The hook of a store that fails every call once [`Outage::cut_after_writes`]'s writes are
/// used up.
pub struct Outage {
    inner: Arc<dyn Store>,
    /// Writes still let through before the cut ([`NEVER`]: no cut).
    writes_left: AtomicUsize,
}

impl Outage {
    /// `inner`, with no cut.
    pub fn new(inner: Arc<dyn Store>) -> Hooked<Outage> {
        Hooked(Outage {
            inner,
            writes_left: AtomicUsize::new(NEVER),
        })
    }

    /// Lets the next `writes` writes through; from the one after, every call (reads too) fails
    /// `Unavailable`, as against a database that went away.
    pub fn cut_after_writes(&self, writes: usize) {
        self.writes_left.store(writes, Ordering::SeqCst);
    }

    /// The store is back: every call goes through again.
    pub fn restore(&self) {
        self.writes_left.store(NEVER, Ordering::SeqCst);
    }

    /// Whether a call may go through; a write uses up one of the writes left.
    fn pass(&self, write: bool) -> Result<()> {
        let left = self.writes_left.load(Ordering::SeqCst);
        if left == NEVER {
            return Ok(());
        }
        if left == 0 {
            return Err(StorageError::Unavailable("the test cut the store".into()));
        }
        if write {
            self.writes_left.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

#[async_trait]
impl StoreHook for Outage {
    fn inner(&self) -> &dyn Store {
        &*self.inner
    }

    fn before(&self, write: bool) -> Result<()> {
        self.pass(write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStore;

    #[tokio::test]
    async fn calls_fail_unavailable_once_the_writes_before_the_cut_are_used_and_pass_after_restore()
    {
        let outage = Outage::new(Arc::new(MemoryStore::new()));
        outage.cut_after_writes(1);
        assert!(
            outage.is_grant_revoked("g").await.is_ok(),
            "a read before the cut"
        );
        outage
            .revoke_grant("g", 10)
            .await
            .expect("the one write let through");
        assert!(matches!(
            outage.is_grant_revoked("g").await,
            Err(StorageError::Unavailable(_))
        ));
        assert!(matches!(
            outage.revoke_grant("h", 10).await,
            Err(StorageError::Unavailable(_))
        ));
        outage.restore();
        assert!(outage.is_grant_revoked("g").await.expect("back"));
        assert!(!outage.is_grant_revoked("h").await.expect("back"));
    }
}
