//! In-memory maps with a cap (console sessions, the built-in client's pending logins and
//! results): a new entry makes room by dropping the oldest, so a flood of sign-ins cannot grow
//! memory without bound.

use std::collections::HashMap;
use std::hash::Hash;

/// Inserts `value` under `key` into `map`, first removing the entry with the smallest `age`
/// (the oldest) when `map` already holds `max` entries.
pub fn insert_evicting_oldest<K, V, A>(
    map: &mut HashMap<K, V>,
    max: usize,
    key: K,
    value: V,
    age: impl Fn(&V) -> A,
) where
    K: Hash + Eq + Clone,
    A: Ord,
{
    if map.len() >= max {
        let oldest = map
            .iter()
            .min_by_key(|(_, v)| age(v))
            .map(|(k, _)| k.clone());
        if let Some(oldest) = oldest {
            map.remove(&oldest);
        }
    }
    map.insert(key, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_drops_its_oldest_entry_for_a_new_one() {
        let mut map = HashMap::from([("a", 3), ("b", 1), ("c", 2)]);
        insert_evicting_oldest(&mut map, 3, "d", 4, |v| *v);
        assert_eq!(map.len(), 3);
        assert!(!map.contains_key("b"), "the oldest made room");
        insert_evicting_oldest(&mut map, 5, "e", 0, |v| *v);
        assert_eq!(map.len(), 4, "below the cap nothing is dropped");
    }
}
