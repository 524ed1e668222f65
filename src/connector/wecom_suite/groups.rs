//! The `groups` claim of a suite or 代开发 login: the member's departments (`user/get`
//! `department`, only those the app may view, §6) by name, read with `department/get` in the
//! member's corp and cached per corp.
//!
//! Names are often not there to read (wecom-api.md §7): a 代开发 app gets no `name` until an
//! admin of the customer corp authorises it, and a third-party app gets the id in place of the
//! name. Such a department appears as `#` and its id (`#3`) — the form the self-built
//! connector's paths use for a department whose name cannot be read — so a group rule can
//! never mistake it for a name. A `change_auth` push forgets the corp's names, so names an
//! admin has just authorised are used at the next login.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::SharedClock;
use crate::connector::ConnectorError;

/// How long a department name (or its absence) is used before it is read again.
pub(super) const NAME_TTL_SECS: i64 = 600;

/// A department's name as cached: `None` when the app may not read it.
#[derive(Debug, Clone)]
struct Cached {
    name: Option<String>,
    fetched_at: i64,
}

/// The group string of department `id` whose `name` WeCom answered (absent, empty, or the id
/// itself: no name to be had).
pub(super) fn group_of(id: i64, name: Option<&str>) -> String {
    match name {
        Some(n) if !n.is_empty() && n != id.to_string() => n.to_owned(),
        _ => format!("#{id}"),
    }
}

/// Department names per corp.
#[derive(Debug, Default)]
pub(super) struct NameCache {
    /// (CorpID, department id) → name.
    names: Mutex<HashMap<(String, i64), Cached>>,
}

impl NameCache {
    /// The groups of a member of `corp` in `departments`. `read` asks WeCom for one
    /// department's name (`Ok(None)`: the app may not read it). A failure leaves that
    /// department's old name, or its `#id`: groups never fail a login.
    pub(super) async fn groups<F, Fut>(
        &self,
        clock: &SharedClock,
        corp: &str,
        departments: &[i64],
        read: F,
    ) -> Vec<String>
    where
        F: Fn(i64) -> Fut,
        Fut: std::future::Future<Output = Result<Option<String>, ConnectorError>>,
    {
        let now = clock.now();
        let mut out: Vec<String> = Vec::new();
        for &id in departments {
            let key = (corp.to_owned(), id);
            let cached = self.lock().get(&key).cloned();
            let name = match cached {
                Some(c) if now.saturating_sub(c.fetched_at) < NAME_TTL_SECS => c.name,
                old => match read(id).await {
                    Ok(name) => {
                        self.lock().insert(
                            key,
                            Cached {
                                name: name.clone(),
                                fetched_at: now,
                            },
                        );
                        name
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, department = id, "cannot read a WeCom department's name");
                        old.and_then(|c| c.name)
                    }
                },
            };
            let group = group_of(id, name.as_deref());
            if !out.contains(&group) {
                out.push(group);
            }
        }
        out
    }

    /// Forgets every name of `corp` (its authorisation changed).
    pub(super) fn forget(&self, corp: &str) {
        self.lock().retain(|(c, _), _| c != corp);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i64), Cached>> {
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn withheld_names_and_ids_in_place_of_names_become_hash_ids() {
        assert_eq!(group_of(3, Some("平台")), "平台");
        assert_eq!(group_of(3, None), "#3");
        assert_eq!(group_of(3, Some("")), "#3");
        assert_eq!(group_of(3, Some("3")), "#3", "third-party apps get the id");
    }

    #[tokio::test]
    async fn names_are_cached_per_corp_until_forgotten_or_stale() {
        let clock = ManualClock::new(1_000);
        let shared: SharedClock = Arc::new(clock.clone());
        let cache = NameCache::default();
        let calls = AtomicUsize::new(0);
        let read = |id: i64| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move { Ok(Some(format!("d{id}"))) }
        };
        let g = cache.groups(&shared, "wwa", &[2, 3, 2], read).await;
        assert_eq!(g, vec!["d2".to_owned(), "d3".to_owned()]);
        cache.groups(&shared, "wwa", &[2, 3], read).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "each read once, then cached"
        );
        cache.groups(&shared, "wwb", &[2], read).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "another corp is another cache"
        );
        cache.forget("wwa");
        cache.groups(&shared, "wwa", &[2], read).await;
        assert_eq!(calls.load(Ordering::SeqCst), 4, "forgotten");
        clock.advance(NAME_TTL_SECS);
        cache.groups(&shared, "wwb", &[2], read).await;
        assert_eq!(calls.load(Ordering::SeqCst), 5, "stale after the TTL");
    }

    #[tokio::test]
    async fn a_failed_read_keeps_the_old_name() {
        let clock = ManualClock::new(1_000);
        let shared: SharedClock = Arc::new(clock.clone());
        let cache = NameCache::default();
        cache
            .groups(&shared, "wwa", &[2], |_| async {
                Ok(Some("研发".to_owned()))
            })
            .await;
        clock.advance(NAME_TTL_SECS + 1);
        let g = cache
            .groups(&shared, "wwa", &[2, 5], |_| async {
                Err(ConnectorError::Unavailable("down".into()))
            })
            .await;
        assert_eq!(g, vec!["研发".to_owned(), "#5".to_owned()]);
    }
}
