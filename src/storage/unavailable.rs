//! What the server says in its log while its store is unavailable (`StorageError::Unavailable`:
//! the database down or restarting, the disk full): the cause once a minute, not once per
//! request. During an outage every request fails the same way, and a log line per request would
//! bury the cause (and fill the disk that may be the very problem).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The shortest gap between two log lines about an unavailable store.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// Lets one event through per period and counts the ones it held back.
#[derive(Debug)]
pub struct Throttle {
    period: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    /// A throttle letting one event through per `period`.
    pub const fn new(period: Duration) -> Self {
        Throttle {
            period,
            state: Mutex::new((None, 0)),
        }
    }

    /// Whether an event at `now` is let through; if so, how many were held back since the last
    /// one that was.
    pub fn pass(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (last, held) = &mut *state;
        match last {
            Some(at) if now.saturating_duration_since(*at) < self.period => {
                *held += 1;
                None
            }
            _ => {
                *last = Some(now);
                Some(std::mem::take(held))
            }
        }
    }
}

/// One throttle for the process: whichever request meets the outage first reports it. A
/// process-wide value because the outage is the store's, shared by every part that meets it.
static LOG: Throttle = Throttle::new(LOG_EVERY);

/// Logs `cause` unless an unavailable store was already logged within [`LOG_EVERY`].
pub fn note(cause: &dyn std::fmt::Display) {
    if let Some(held_back) = LOG.pass(Instant::now()) {
        tracing::error!(
            error = %cause,
            held_back,
            "the store is unavailable; requests that need it are answered \
             temporarily_unavailable (logged at most once a minute)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_period_passes_and_the_rest_are_counted() {
        let throttle = Throttle::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(throttle.pass(t0), Some(0));
        for s in 1..=59 {
            assert_eq!(throttle.pass(t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(throttle.pass(t0 + Duration::from_secs(60)), Some(59));
        assert_eq!(throttle.pass(t0 + Duration::from_secs(61)), None);
    }
}
