//! How long the simulator remembers a credential it minted (codes, tokens, tickets), and how
//! many it holds at most: the maps stay bounded under any traffic (the demo serves tens of
//! thousands of logins a minute in the bench).
//!
//! An entry is dropped once it can no longer change an answer: an unknown code answers 40029
//! exactly like an expired one, so a code goes when it expires; an expired token or ticket
//! answers a different error than an unknown one (42001 vs 40014, 84014 vs 84015), so it is
//! kept for one more lifetime first. Each map also has a cap on live entries, far above what a
//! test or the demo keeps (one token per app per 2 h, and codes redeemed within seconds), so
//! that a client minting codes it never redeems cannot grow memory for the 5 minutes they
//! live: at the cap the entry that ends first makes room, and presenting it then answers as
//! for an expired one. WeCom states no such cap (wecom-api.md is silent); its own limits are
//! per-minute call quotas, which a test double need not spend memory on.

use std::collections::HashMap;

/// Live login codes at most, per map (self-built apps; suites). 5 minutes at 30 logins per
/// second, each started and never finished.
pub(super) const MAX_CODES: usize = 10_000;

/// Access tokens (and suite tokens) at most, per map: WeCom answers the same token while one
/// is valid, so a well-behaved provider holds one per app; `gettoken` loops do not.
pub(super) const MAX_TOKENS: usize = 1_000;

/// `user_ticket`s at most: one per in-app `snsapi_privateinfo` login, 30 minutes each.
pub(super) const MAX_TICKETS: usize = 10_000;

/// Install auth codes at most (one per suite installation, 5 minutes each).
pub(super) const MAX_AUTH_CODES: usize = 1_000;

/// Inserts a credential ending at `ends(&value)` into `map`, after dropping every entry that
/// ended `grace` seconds or more before `now`, and — when `map` still holds `cap` entries —
/// the one that ends first.
pub(super) fn insert<V>(
    map: &mut HashMap<String, V>,
    now: i64,
    grace: i64,
    cap: usize,
    key: String,
    value: V,
    ends: impl Fn(&V) -> i64,
) {
    map.retain(|_, v| ends(v) + grace > now);
    crate::bounded::insert_evicting_oldest(map, cap, key, value, ends);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(map: &HashMap<String, i64>) -> Vec<&str> {
        let mut k: Vec<&str> = map.keys().map(String::as_str).collect();
        k.sort_unstable();
        k
    }

    #[test]
    fn an_entry_goes_once_its_grace_after_expiry_has_passed() {
        let mut map = HashMap::new();
        insert(&mut map, 100, 50, 10, "a".into(), 110, |v| *v);
        insert(&mut map, 100, 50, 10, "b".into(), 200, |v| *v);
        // At 159 "a" (ended at 110) is within its 50 s of grace: an expired-token answer.
        insert(&mut map, 159, 50, 10, "c".into(), 300, |v| *v);
        assert_eq!(keys(&map), ["a", "b", "c"]);
        insert(&mut map, 160, 50, 10, "d".into(), 300, |v| *v);
        assert_eq!(keys(&map), ["b", "c", "d"]);
    }

    #[test]
    fn without_grace_an_expired_entry_goes_at_the_next_insert() {
        let mut map = HashMap::new();
        insert(&mut map, 0, 0, 10, "a".into(), 5, |v| *v);
        insert(&mut map, 5, 0, 10, "b".into(), 10, |v| *v);
        assert_eq!(keys(&map), ["b"]);
    }

    #[test]
    fn at_the_cap_the_entry_that_ends_first_makes_room() {
        let mut map = HashMap::new();
        for (key, ends) in [("a", 30), ("b", 10), ("c", 20)] {
            insert(&mut map, 0, 0, 3, key.into(), ends, |v| *v);
        }
        insert(&mut map, 0, 0, 3, "d".into(), 40, |v| *v);
        assert_eq!(keys(&map), ["a", "c", "d"]);
        assert_eq!(map.len(), 3);
    }
}
