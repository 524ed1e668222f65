//! Remembers the decoded form of records by their exact stored bytes, so a record read again
//! unchanged is not decoded again.
//!
//! It caches decoding, not records: the store is read on every lookup as before, and the
//! remembered value is used only when the bytes just read are exactly the bytes it was decoded
//! from. A record changed, deleted or written by anyone else is therefore seen at once; the
//! cache cannot make a lookup answer anything the store does not hold now. `/userinfo` reads
//! the same access token record again and again, and decoding its JSON was the largest part of
//! that endpoint's own work (docs/performance.md). The decoded value is handed out shared
//! (`Arc`), not copied: a copy of an access token and its drop cost about as much as the
//! sled read itself.
//!
//! Bounded: at most [`CAPACITY`] entries (each the record's bytes, shared with the store's own
//! page, and its decoded copy: a few KB); when full it starts over empty.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Most entries kept.
pub const CAPACITY: usize = 256;

/// Decoded records by key, each with the bytes it was decoded from.
pub struct DecodeCache<T> {
    entries: Mutex<HashMap<String, (sled::IVec, Arc<T>)>>,
}

impl<T> Default for DecodeCache<T> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> DecodeCache<T> {
    /// The record stored as `bytes` under `key`: remembered if these are the bytes it was
    /// decoded from, else `decode(bytes)` (remembered when it succeeds).
    pub fn decode<E>(
        &self,
        key: &str,
        bytes: sled::IVec,
        decode: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        if let Some((seen, value)) = self.lock().get(key) {
            if *seen == bytes {
                return Ok(Arc::clone(value));
            }
        }
        let value = Arc::new(decode(&bytes)?);
        let mut entries = self.lock();
        if entries.len() >= CAPACITY && !entries.contains_key(key) {
            entries.clear();
        }
        entries.insert(key.to_owned(), (bytes, Arc::clone(&value)));
        Ok(value)
    }

    /// Entries held now (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (sled::IVec, Arc<T>)>> {
        // A panic while holding the lock leaves a whole map: entries are inserted whole.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn parse(calls: &Cell<u32>) -> impl Fn(&[u8]) -> Result<String, ()> + '_ {
        move |b| {
            calls.set(calls.get() + 1);
            String::from_utf8(b.to_vec()).map_err(|_| ())
        }
    }

    #[test]
    fn the_same_bytes_are_decoded_once_and_changed_bytes_again() {
        let cache = DecodeCache::default();
        let calls = Cell::new(0);
        let v1 = sled::IVec::from(&b"first record, long enough not to be inlined"[..]);
        assert_eq!(
            cache.decode("k", v1.clone(), parse(&calls)),
            Ok(Arc::new(v1_text()))
        );
        assert_eq!(
            cache.decode("k", v1.clone(), parse(&calls)),
            Ok(Arc::new(v1_text()))
        );
        assert_eq!(calls.get(), 1, "unchanged bytes are not decoded again");
        // Rewritten under the same key (by this or another writer): the new value is decoded.
        let v2 = sled::IVec::from(&b"second record"[..]);
        assert_eq!(
            cache.decode("k", v2, parse(&calls)),
            Ok(Arc::new("second record".to_owned()))
        );
        assert_eq!(calls.get(), 2);
        assert_eq!(
            cache.decode("k", v1, parse(&calls)),
            Ok(Arc::new(v1_text()))
        );
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn unchanged_bytes_share_one_decoded_value_and_changed_bytes_get_their_own() {
        let cache = DecodeCache::default();
        let calls = Cell::new(0);
        let v1 = sled::IVec::from(&b"first record, long enough not to be inlined"[..]);
        let first = cache.decode("k", v1.clone(), parse(&calls)).expect("v1");
        let again = cache.decode("k", v1, parse(&calls)).expect("v1 again");
        assert!(
            Arc::ptr_eq(&first, &again),
            "a hit hands out the same value, not a copy"
        );
        let v2 = sled::IVec::from(&b"second record"[..]);
        let changed = cache.decode("k", v2, parse(&calls)).expect("v2");
        assert!(!Arc::ptr_eq(&first, &changed));
        assert_eq!(
            *first,
            v1_text(),
            "a value handed out earlier stays as it was"
        );
    }

    fn v1_text() -> String {
        "first record, long enough not to be inlined".to_owned()
    }

    #[test]
    fn a_failed_decode_is_not_remembered() {
        let cache = DecodeCache::default();
        let calls = Cell::new(0);
        let bad = sled::IVec::from(&[0xff, 0xfe][..]);
        assert!(cache.decode("k", bad.clone(), parse(&calls)).is_err());
        assert!(cache.decode("k", bad, parse(&calls)).is_err());
        assert_eq!(calls.get(), 2);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache = DecodeCache::default();
        let calls = Cell::new(0);
        for i in 0..CAPACITY * 3 + 7 {
            let key = format!("k{i}");
            cache
                .decode(&key, sled::IVec::from(key.as_bytes()), parse(&calls))
                .expect("decoded");
            assert!(cache.len() <= CAPACITY);
        }
    }
}
