//! The durability barrier: a response that hands out a credential (a token response, a code
//! redirect, a session cookie) or confirms its end (revocation, logout) waits until the writes
//! behind it are on disk, so a `kill -9` right after the response never loses what a client
//! already holds.
//!
//! # Group commit
//!
//! One `fsync` per request would cap a busy server at the disk's sync rate. Instead every caller
//! registers for the next flush *round* and waits for it; a round covers every caller that
//! registered before it started (their writes are done by then). At most one round runs at a
//! time, so callers that arrive during a flush share the next one: under load, N concurrent
//! requests cost about two flushes instead of N.
//!
//! One task runs the rounds while anybody waits. Before it starts a round it yields once to the
//! runtime, so the requests that are ready to run at that moment do their writes and join this
//! round instead of the next: larger batches, fewer flushes per request. A backend flushes
//! without a thread hop of ours (sled hands the `fsync` to a dedicated flusher thread of its
//! own, PostgreSQL has nothing to do); the waiters of a round are woken together by one
//! `watch` update. A caller that goes away (the client disconnected) never stalls the others,
//! and a panicking flush fails its round instead of stopping the barrier.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use super::{StorageError, Store};

/// The outcome of the latest finished flush round.
#[derive(Debug, Clone)]
struct Completion {
    /// Rounds are numbered from 1; 0 means none has finished yet.
    round: u64,
    /// Its result (the error as text: `StorageError` is not `Clone`).
    result: Result<(), String>,
}

/// Round bookkeeping, under one mutex that is never held across an await.
#[derive(Debug)]
struct Rounds {
    /// The round a caller registering now waits for: the next one to start.
    next: u64,
    /// Whether somebody waits for round `next`.
    wanted: bool,
    /// Whether the task that runs rounds is alive (it ends when nobody waits).
    active: bool,
}

/// Shared state of a [`Durability`].
struct Inner {
    store: Arc<dyn Store>,
    rounds: Mutex<Rounds>,
    done: watch::Sender<Completion>,
}

impl Inner {
    fn rounds(&self) -> std::sync::MutexGuard<'_, Rounds> {
        self.rounds.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Group-commit barrier over a [`Store`]; cheap to clone (clones share one batch).
#[derive(Clone)]
pub struct Durability {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durability")
            .field("persistent", &self.inner.store.is_persistent())
            .finish_non_exhaustive()
    }
}

impl Durability {
    /// A barrier for `store`. Spawns nothing until the first [`Durability::barrier`].
    pub fn new(store: Arc<dyn Store>) -> Self {
        let (done, _) = watch::channel(Completion {
            round: 0,
            result: Ok(()),
        });
        Self {
            inner: Arc::new(Inner {
                store,
                rounds: Mutex::new(Rounds {
                    next: 1,
                    wanted: false,
                    active: false,
                }),
                done,
            }),
        }
    }

    /// Returns once every write this task made before the call is durable, sharing the flush
    /// with every concurrent caller. Immediately for a store that keeps nothing across restarts
    /// ([`Store::is_persistent`] false). Must be called inside a tokio runtime.
    pub async fn barrier(&self) -> Result<(), StorageError> {
        if !self.inner.store.is_persistent() {
            return Ok(());
        }
        // Subscribe before registering, so the completion of our round cannot be missed.
        let mut done = self.inner.done.subscribe();
        let target = {
            let mut r = self.inner.rounds();
            // Round `next` has not started: it starts after this registration, so it covers
            // every write we made before it.
            r.wanted = true;
            if !r.active {
                r.active = true;
                tokio::spawn(run_rounds(self.inner.clone()));
            }
            r.next
        };
        loop {
            {
                let c = done.borrow_and_update();
                // A later round also started after we registered, so its success covers us.
                if c.round >= target {
                    return c.result.clone().map_err(StorageError::Backend);
                }
            }
            if done.changed().await.is_err() {
                return Err(StorageError::Backend("durability barrier stopped".into()));
            }
        }
    }
}

/// Runs flush rounds until nobody waits for another.
async fn run_rounds(inner: Arc<Inner>) {
    loop {
        // Let the requests that are ready now make their writes and register for this round.
        tokio::task::yield_now().await;
        let round = {
            let mut r = inner.rounds();
            if !r.wanted {
                r.active = false;
                return;
            }
            r.wanted = false;
            r.next += 1;
            r.next - 1
        };
        // If the flush panics, the guard fails this round and lets the next caller start a new
        // rounds task; the waiters of this round are released with an error, not left hanging.
        let mut guard = PanicGuard {
            inner: inner.clone(),
            round,
            armed: true,
        };
        let result = match inner.store.flush().await {
            Ok(()) => Ok(()),
            Err(e) => {
                // Every round fails alike while the disk is full: the cause once a minute.
                super::unavailable::note(&format_args!("durability flush failed: {e}"));
                Err(e.to_string())
            }
        };
        guard.armed = false;
        drop(guard);
        inner.done.send_replace(Completion { round, result });
    }
}

/// Fails a round whose flush unwound or was cancelled (see [`run_rounds`]).
struct PanicGuard {
    inner: Arc<Inner>,
    round: u64,
    /// Cleared once the flush returned: only an unwinding flush fails the round here.
    armed: bool,
}

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Unwinding from a panicking flush, or dropped mid-flush (the runtime shutting down).
        let panicked = std::thread::panicking();
        {
            let mut r = self.inner.rounds();
            let runtime = tokio::runtime::Handle::try_current();
            match runtime {
                // Callers already wait for the next round: a new task runs it.
                Ok(handle) if panicked && r.wanted => {
                    handle.spawn(run_rounds(self.inner.clone()));
                }
                _ => r.active = false,
            }
        }
        let why = if panicked {
            "durability flush panicked"
        } else {
            "durability flush cancelled"
        };
        self.inner.done.send_replace(Completion {
            round: self.round,
            result: Err(why.into()),
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::storage::hooked::{Hooked, StoreHook};
    use crate::storage::{MemoryStore, Result as StoreResult};

    /// How the test store's flush behaves.
    #[derive(Clone, Copy, PartialEq)]
    enum Flush {
        /// Takes a while and succeeds.
        Slow,
        /// Takes a while and fails.
        SlowAndFailing,
        /// The first flush panics (a backend bug); later ones succeed at once.
        PanicsFirst,
    }

    /// A persistent-looking store's hook: its flush behaves as `mode` says and counts itself;
    /// every other method is the memory store's.
    struct FlushProbe {
        inner: MemoryStore,
        mode: Flush,
        flushes: AtomicUsize,
        /// Bumped by `write`, read by `flush`: the highest write a flush covered.
        writes: AtomicU64,
        covered: AtomicU64,
    }

    impl FlushProbe {
        fn write(&self) -> u64 {
            self.writes.fetch_add(1, Ordering::SeqCst) + 1
        }
    }

    #[async_trait::async_trait]
    impl StoreHook for FlushProbe {
        fn inner(&self) -> &dyn Store {
            &self.inner
        }

        async fn flush(&self) -> StoreResult<()> {
            if self.mode == Flush::PanicsFirst {
                if self.flushes.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("backend bug");
                }
                return Ok(());
            }
            let covered = self.writes.load(Ordering::SeqCst);
            // A slow disk: the flush takes long enough for other barriers to queue behind it.
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.covered.fetch_max(covered, Ordering::SeqCst);
            self.flushes.fetch_add(1, Ordering::SeqCst);
            if self.mode == Flush::SlowAndFailing {
                return Err(StorageError::Backend("disk full".into()));
            }
            Ok(())
        }

        fn is_persistent(&self) -> bool {
            true
        }
    }

    fn store(mode: Flush) -> Arc<Hooked<FlushProbe>> {
        Arc::new(Hooked(FlushProbe {
            inner: MemoryStore::new(),
            mode,
            flushes: AtomicUsize::new(0),
            writes: AtomicU64::new(0),
            covered: AtomicU64::new(0),
        }))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_barriers_share_flushes_and_each_write_is_covered() {
        let store = store(Flush::Slow);
        let durability = Durability::new(store.clone());
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let (d, s) = (durability.clone(), store.clone());
            tasks.push(tokio::spawn(async move {
                let mine = s.write();
                d.barrier().await.expect("barrier");
                // Released only by a flush that began after our write.
                assert!(s.covered.load(Ordering::SeqCst) >= mine);
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let flushes = store.flushes.load(Ordering::SeqCst);
        assert!(
            (1..=8).contains(&flushes),
            "64 concurrent requests took {flushes} flushes"
        );
    }

    #[tokio::test]
    async fn sequential_barriers_each_wait_for_their_own_flush() {
        let store = store(Flush::Slow);
        let durability = Durability::new(store.clone());
        for i in 1..=3 {
            let mine = store.write();
            durability.barrier().await.expect("barrier");
            assert!(store.covered.load(Ordering::SeqCst) >= mine);
            assert_eq!(store.flushes.load(Ordering::SeqCst), i);
        }
    }

    #[tokio::test]
    async fn a_failed_flush_fails_the_barrier() {
        let durability = Durability::new(store(Flush::SlowAndFailing));
        assert!(matches!(
            durability.barrier().await,
            Err(StorageError::Backend(_))
        ));
    }

    #[tokio::test]
    async fn a_panicking_flush_fails_its_round_and_the_next_barrier_still_works() {
        let store = store(Flush::PanicsFirst);
        let durability = Durability::new(store.clone());
        assert!(matches!(
            durability.barrier().await,
            Err(StorageError::Backend(_))
        ));
        durability
            .barrier()
            .await
            .expect("a new round after the panic");
        assert_eq!(store.flushes.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_store_is_released_once_the_barrier_and_its_rounds_are_done() {
        let store = store(Flush::Slow);
        let durability = Durability::new(store.clone());
        durability.barrier().await.expect("barrier");
        drop(durability);
        // The rounds task ends at its next turn, when nobody waits for another round.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        // A store still held would keep a sled directory locked after the server let it go.
        assert_eq!(Arc::strong_count(&store), 1);
    }

    #[tokio::test]
    async fn memory_store_barrier_is_immediate() {
        let durability = Durability::new(Arc::new(MemoryStore::new()));
        durability.barrier().await.expect("barrier");
    }
}
