//! The store's flusher thread ("sled-flush"): a caller that needs its writes on disk queues,
//! the thread takes every caller queued so far, flushes once and wakes them all together
//! (the store's module docs, "Durability").

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::Trees;
use crate::storage::sled_reopen::Slot;
use crate::storage::{Result, StorageError};

/// The flusher thread and its queue of waiting callers.
pub(super) struct Flusher {
    queue: Arc<FlushQueue>,
    thread: Option<JoinHandle<()>>,
}

/// Callers waiting for the next flush, and the thread's wake-up.
struct FlushQueue {
    state: Mutex<FlushState>,
    wake: Condvar,
}

#[derive(Default)]
struct FlushState {
    /// Callers whose writes the next flush must cover.
    waiting: Vec<oneshot::Sender<std::result::Result<(), String>>>,
    /// Set when the store is dropped: the thread serves who waits, then ends.
    stop: bool,
}

impl FlushQueue {
    fn state(&self) -> std::sync::MutexGuard<'_, FlushState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Flusher {
    pub(super) fn start(trees: Arc<Slot<Trees>>) -> Result<Flusher> {
        let queue = Arc::new(FlushQueue {
            state: Mutex::new(FlushState::default()),
            wake: Condvar::new(),
        });
        let q = queue.clone();
        let thread = std::thread::Builder::new()
            .name("sled-flush".into())
            .spawn(move || flusher_loop(&q, &trees))
            .map_err(|e| StorageError::Backend(format!("cannot start the sled flusher: {e}")))?;
        Ok(Flusher {
            queue,
            thread: Some(thread),
        })
    }

    /// Waits for a flush that starts after this call.
    pub(super) async fn flush(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        let first = {
            let mut state = self.queue.state();
            state.waiting.push(tx);
            state.waiting.len() == 1
        };
        // The thread sleeps only with an empty queue: later callers need not wake it.
        if first {
            self.queue.wake.notify_one();
        }
        match rx.await {
            Ok(result) => result.map_err(StorageError::Backend),
            Err(_) => Err(StorageError::Backend("the sled flusher stopped".into())),
        }
    }

    /// Ends the thread once it has served who waits. The thread holds the database open: the
    /// store ends it before its trees are dropped, so the directory's lock is released when
    /// the store is.
    pub(super) fn stop(&mut self) {
        self.queue.state().stop = true;
        self.queue.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Takes every queued caller, flushes once, answers them all; until the store is dropped.
fn flusher_loop(queue: &FlushQueue, slot: &Arc<Slot<Trees>>) {
    loop {
        let batch = {
            let mut state = queue.state();
            while state.waiting.is_empty() && !state.stop {
                state = queue
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if state.waiting.is_empty() {
                return; // stopped, nobody waits
            }
            std::mem::take(&mut state.waiting)
        };
        // Every caller in `batch` queued after its writes, and the flush starts now. A panic
        // inside sled fails this batch, not the thread: later flushes are still served.
        let flushed = slot.get().and_then(|trees| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| trees.flush()))
                .unwrap_or_else(|_| Err(StorageError::Backend("sled flush panicked".into())))
        });
        // A failed write to disk leaves sled failing until it is reopened (`sled_reopen`).
        let result = slot.watch(flushed).map_err(|e| e.to_string());
        for waiter in batch {
            // A caller that went away no longer needs the answer.
            let _ = waiter.send(result.clone());
        }
    }
}
