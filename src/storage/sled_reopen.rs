//! Reopening the sled database after an I/O failure, so that a server whose disk filled up
//! recovers by itself once space returns.
//!
//! sled remembers the first I/O error of its background writer and fails every later call with
//! it until the database is opened again (its "global error"). So a full disk, left alone,
//! would keep the store failing long after the space came back. The store therefore keeps its
//! open database in a [`Slot`]: a call that fails with `Unavailable` (sled's I/O errors) asks
//! the slot to recover, and one thread at a time lets the broken database go (sled holds the
//! directory's lock until its last handle drops), opens the directory again — sled replays its
//! log, so everything flushed before the failure is there, and what was not flushed was never
//! confirmed to a client (the durability barrier failed) — and puts the new one in. Until then
//! calls answer `Unavailable` at once. Attempts are [`RETRY_EVERY`] apart while the disk stays
//! full.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use super::{unavailable, Result, StorageError};

/// The pause before each reopening attempt (and so between attempts while the disk is full).
pub const RETRY_EVERY: Duration = Duration::from_millis(500);

/// How long a reopening waits for the last handle of the broken database to go.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Opens the database again.
type Reopen<T> = Box<dyn Fn() -> Result<T> + Send + Sync>;

/// The open database (`T`: the store's trees), replaced after an I/O failure.
pub(super) struct Slot<T> {
    current: RwLock<Option<Arc<T>>>,
    /// Whether a recovery thread runs.
    recovering: AtomicBool,
    /// `None`: a store that cannot be reopened (a temporary one); failures stay failures.
    reopen: Option<Reopen<T>>,
}

impl<T: Send + Sync + 'static> Slot<T> {
    pub(super) fn new(open: T, reopen: Option<Reopen<T>>) -> Arc<Self> {
        Arc::new(Slot {
            current: RwLock::new(Some(Arc::new(open))),
            recovering: AtomicBool::new(false),
            reopen,
        })
    }

    /// The open database, or `Unavailable` while it is being reopened.
    pub(super) fn get(&self) -> Result<Arc<T>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                StorageError::Unavailable(
                    "the store is being reopened after an I/O failure (disk full?)".into(),
                )
            })
    }

    /// Passes `result` on; an `Unavailable` one starts a recovery first.
    pub(super) fn watch<R>(self: &Arc<Self>, result: Result<R>) -> Result<R> {
        if matches!(result, Err(StorageError::Unavailable(_))) {
            self.recover();
        }
        result
    }

    /// Starts the recovery thread unless one runs (or the store cannot be reopened).
    pub(super) fn recover(self: &Arc<Self>) {
        if self.reopen.is_none() || self.recovering.swap(true, Ordering::SeqCst) {
            return;
        }
        let slot = Arc::downgrade(self);
        let started = std::thread::Builder::new()
            .name("sled-reopen".into())
            .spawn(move || run(&slot));
        if started.is_err() {
            self.recovering.store(false, Ordering::SeqCst);
        }
    }
}

/// Reopens until it works, or until the store is dropped.
fn run<T: Send + Sync + 'static>(slot: &Weak<Slot<T>>) {
    loop {
        std::thread::sleep(RETRY_EVERY);
        let Some(s) = slot.upgrade() else {
            return; // the store was dropped
        };
        let Some(reopen) = &s.reopen else {
            return;
        };
        let old = s
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(old) = old {
            let weak = Arc::downgrade(&old);
            drop(old);
            let since = Instant::now();
            while weak.strong_count() > 0 && since.elapsed() < RELEASE_WAIT {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        match reopen() {
            Ok(fresh) => {
                *s.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(fresh));
                s.recovering.store(false, Ordering::SeqCst);
                tracing::warn!("the store was reopened after an I/O failure");
                return;
            }
            Err(e) => unavailable::note(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[test]
    fn an_unavailable_result_gets_the_database_reopened_and_other_errors_do_not() {
        let opened = Arc::new(AtomicUsize::new(0));
        let fail_next = Arc::new(AtomicBool::new(true));
        let (o, f) = (opened.clone(), fail_next.clone());
        let slot = Slot::new(
            0usize,
            Some(Box::new(move || {
                // The first attempt meets a disk that is still full.
                if f.swap(false, Ordering::SeqCst) {
                    return Err(StorageError::Unavailable("still full".into()));
                }
                Ok(o.fetch_add(1, Ordering::SeqCst) + 1)
            })),
        );
        let _ = slot.watch::<()>(Err(StorageError::Backend("a bug".into())));
        assert_eq!(
            *slot.get().expect("open"),
            0,
            "a Backend error reopens nothing"
        );
        let _ = slot.watch::<()>(Err(StorageError::Unavailable("disk full".into())));
        let since = Instant::now();
        while slot.get().ok().map(|t| *t) != Some(1) {
            assert!(since.elapsed() < Duration::from_secs(10), "never reopened");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(opened.load(Ordering::SeqCst), 1);
        assert!(!slot.recovering.load(Ordering::SeqCst));
    }

    #[test]
    fn a_store_that_cannot_be_reopened_keeps_its_database() {
        let slot = Slot::new(7u8, None);
        let _ = slot.watch::<()>(Err(StorageError::Unavailable("disk full".into())));
        std::thread::sleep(RETRY_EVERY + Duration::from_millis(100));
        assert_eq!(*slot.get().expect("open"), 7);
    }
}
