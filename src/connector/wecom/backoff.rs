//! Per-API back-off after WeCom's rate limit (45009, wecom-api.md §1): a blocked API is not
//! called again until its block ends.

use std::time::Duration;

/// The first block after a 45009: WeCom's minute-level block (wecom-api.md §1).
const FIRST_BLOCK: Duration = Duration::from_secs(60);
/// The longest block: WeCom's hour-level block (wecom-api.md §1).
const LONGEST_BLOCK: Duration = Duration::from_secs(3600);

/// Per-API back-off after WeCom's 45009. WeCom does not say whether a block is the minute-level
/// (60 s) or the hour-level (60 min) one, so the first block waits 60 s and each 45009 that
/// follows a block (no success in between) doubles it, up to 60 min: a minute block costs one
/// minute, an hour block is reached in six calls instead of sixty a minute. A success resets it.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    blocks: std::sync::Mutex<std::collections::HashMap<&'static str, Block>>,
}

/// One API's block.
#[derive(Debug, Clone, Copy)]
struct Block {
    until: std::time::Instant,
    /// The length the next block gets if WeCom still refuses once this one ends.
    next: Duration,
}

impl Backoff {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<&'static str, Block>> {
        self.blocks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How much longer `path` is blocked, if it is.
    pub(crate) fn blocked_for(&self, path: &'static str) -> Option<Duration> {
        let now = std::time::Instant::now();
        self.lock()
            .get(path)
            .and_then(|b| b.until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// Records a 45009 on `path` and returns how long it is now blocked.
    pub(crate) fn rate_limited(&self, path: &'static str) -> Duration {
        let now = std::time::Instant::now();
        let mut blocks = self.lock();
        // A block that ended long ago says nothing about this one.
        let length = blocks
            .get(path)
            .filter(|b| b.until + LONGEST_BLOCK > now)
            .map_or(FIRST_BLOCK, |b| b.next);
        blocks.insert(
            path,
            Block {
                until: now + length,
                next: (length * 2).min(LONGEST_BLOCK),
            },
        );
        length
    }

    /// A call to `path` succeeded: its escalation starts over.
    pub(crate) fn succeeded(&self, path: &'static str) {
        let mut blocks = self.lock();
        if !blocks.is_empty() {
            blocks.remove(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_blocks_the_api_for_60_s_then_escalates_to_an_hour_wecom_api_1() {
        let b = Backoff::default();
        assert!(b.blocked_for("/cgi-bin/user/get").is_none());
        assert_eq!(b.rate_limited("/cgi-bin/user/get"), FIRST_BLOCK);
        let left = b.blocked_for("/cgi-bin/user/get").expect("blocked");
        assert!(left > Duration::from_secs(55) && left <= FIRST_BLOCK);
        // Other APIs are not blocked (WeCom's limits are per API).
        assert!(b.blocked_for("/cgi-bin/gettoken").is_none());
        let mut last = FIRST_BLOCK;
        for _ in 0..10 {
            last = b.rate_limited("/cgi-bin/user/get");
        }
        assert_eq!(last, LONGEST_BLOCK);
        b.succeeded("/cgi-bin/user/get");
        assert!(b.blocked_for("/cgi-bin/user/get").is_none());
        assert_eq!(b.rate_limited("/cgi-bin/user/get"), FIRST_BLOCK);
    }
}
