//! The `groups` claim: a member's departments (names, full paths such as `/研发/平台`,
//! optionally ids) and tags, as one flat array of strings that Grafana's
//! `groups_attribute_path` / `role_attribute_path` and GitLab's `groups_attribute` use as-is.
//!
//! WeCom has no "groups of a user" call (wecom-api.md §7): departments come from
//! `department/list`, tags from `tag/list` + `tag/get` per tag. That walk is cached with a TTL
//! and refreshed in the background when stale, so a login never waits for it except the very
//! first one after start (single flight: concurrent first logins share one walk).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::api::ApiClient;
use super::token_cache::TokenCache;
use super::with_token_in;
use crate::clock::SharedClock;
use crate::connector::ConnectorError;

/// After a failed walk, the next attempt (in the background) comes this much later, so a
/// directory WeCom refuses us is not asked for on every login.
const RETRY_AFTER_FAILURE_SECS: i64 = 60;

/// Which strings the `groups` claim carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupOptions {
    /// Department names (`平台`).
    pub names: bool,
    /// Department paths below the corp's root department (`/研发/平台`).
    pub paths: bool,
    /// Department ids as decimal strings (`3`).
    pub ids: bool,
    /// Tag names.
    pub tags: bool,
    /// How long a directory walk is used before it is refreshed in the background.
    pub cache_ttl: Duration,
}

impl Default for GroupOptions {
    fn default() -> Self {
        Self {
            names: true,
            paths: true,
            ids: false,
            tags: true,
            cache_ttl: Duration::from_secs(600),
        }
    }
}

impl GroupOptions {
    /// Parses the config list (`names`, `paths`, `ids`, `tags`); `Err` names the bad entry.
    pub fn with_kinds<'a>(
        mut self,
        kinds: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, String> {
        self.names = false;
        self.paths = false;
        self.ids = false;
        self.tags = false;
        for kind in kinds {
            match kind {
                "names" => self.names = true,
                "paths" => self.paths = true,
                "ids" => self.ids = true,
                "tags" => self.tags = true,
                other => return Err(format!("{other:?} is not one of names, paths, ids, tags")),
            }
        }
        Ok(self)
    }

    /// Whether the directory has to be read at all.
    fn needs_departments(&self) -> bool {
        self.names || self.paths || self.ids
    }
}

/// One tag and who carries it.
#[derive(Debug, Default, Clone)]
struct TagSnapshot {
    name: String,
    /// Lower-cased UserIds (UserIds are case-insensitive, §6).
    users: HashSet<String>,
    departments: HashSet<i64>,
}

/// One directory walk.
#[derive(Debug, Default, Clone)]
pub(crate) struct Snapshot {
    /// id → (name, parent id).
    departments: HashMap<i64, (String, i64)>,
    tags: Vec<TagSnapshot>,
    /// Unix seconds of the walk (or of the failure, minus the TTL, see below).
    fetched_at: i64,
}

impl Snapshot {
    /// The department's names from just below the root down to it; `None` for the root
    /// itself or a department we cannot see.
    fn path(&self, id: i64) -> Option<String> {
        let mut names = Vec::new();
        let mut current = id;
        // The tree is at most a few dozen levels deep; the bound stops a cyclic answer.
        for _ in 0..64 {
            let (name, parent) = self.departments.get(&current)?;
            if !self.departments.contains_key(parent) {
                // `current` is the topmost department we can see: the corp's root.
                break;
            }
            names.push(name.as_str());
            current = *parent;
        }
        if names.is_empty() {
            return None;
        }
        names.reverse();
        Some(format!("/{}", names.join("/")))
    }

    /// The `groups` strings of a member in `departments`, in a stable order, without repeats.
    pub(crate) fn groups(
        &self,
        userid: &str,
        departments: &[i64],
        o: &GroupOptions,
    ) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut push = |s: String| {
            if !s.is_empty() && !out.contains(&s) {
                out.push(s);
            }
        };
        for id in departments {
            if o.names {
                if let Some((name, _)) = self.departments.get(id) {
                    push(name.clone());
                }
            }
            if o.paths {
                if let Some(path) = self.path(*id) {
                    push(path);
                }
            }
            if o.ids {
                push(id.to_string());
            }
        }
        if o.tags {
            let lower = userid.to_ascii_lowercase();
            for tag in &self.tags {
                // §7: tagged directly, or through one of the member's departments.
                if tag.users.contains(&lower)
                    || departments.iter().any(|d| tag.departments.contains(d))
                {
                    push(tag.name.clone());
                }
            }
        }
        out
    }
}

/// The cached directory of one WeCom app.
pub(crate) struct DirectoryCache {
    api: ApiClient,
    tokens: Arc<TokenCache>,
    clock: SharedClock,
    options: GroupOptions,
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    /// Held during the first walk so concurrent first logins share it.
    first_load: tokio::sync::Mutex<()>,
    /// Set while a background refresh runs, so at most one runs.
    refreshing: Arc<AtomicBool>,
}

impl std::fmt::Debug for DirectoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryCache")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl DirectoryCache {
    pub(crate) fn new(
        api: ApiClient,
        tokens: Arc<TokenCache>,
        clock: SharedClock,
        options: GroupOptions,
    ) -> Arc<Self> {
        Arc::new(Self {
            api,
            tokens,
            clock,
            options,
            snapshot: RwLock::new(None),
            first_load: tokio::sync::Mutex::new(()),
            refreshing: Arc::new(AtomicBool::new(false)),
        })
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn store(&self, snapshot: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(snapshot));
    }

    /// The member's `groups`. Never fails a login: a directory WeCom will not give us is
    /// logged and yields no groups (fewer groups can only mean fewer rights at the client).
    pub(crate) async fn groups(self: &Arc<Self>, userid: &str, departments: &[i64]) -> Vec<String> {
        let snapshot = match self.current() {
            Some(s) => {
                self.refresh_if_stale(&s);
                s
            }
            None => {
                let _guard = self.first_load.lock().await;
                match self.current() {
                    Some(s) => s,
                    None => {
                        self.store(self.walk_or_placeholder().await);
                        self.current().unwrap_or_default()
                    }
                }
            }
        };
        snapshot.groups(userid, departments, &self.options)
    }

    /// Starts a background refresh when `s` is older than the TTL and none is running.
    fn refresh_if_stale(self: &Arc<Self>, s: &Snapshot) {
        let ttl = i64::try_from(self.options.cache_ttl.as_secs()).unwrap_or(i64::MAX);
        if self.clock.now().saturating_sub(s.fetched_at) < ttl {
            return;
        }
        if self
            .refreshing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let started = this.clock.now();
            match this.walk().await {
                Ok(mut fresh) => {
                    fresh.fetched_at = started;
                    this.store(fresh);
                }
                Err(e) => {
                    // Keep serving the old walk rather than no groups; try again later.
                    tracing::warn!(error = %e, "cannot refresh the WeCom directory cache");
                    if let Some(old) = this.current() {
                        let mut kept = (*old).clone();
                        kept.fetched_at = this.retry_date(started);
                        this.store(kept);
                    }
                }
            }
            this.refreshing.store(false, Ordering::Release);
        });
    }

    /// The `fetched_at` that makes the next attempt come [`RETRY_AFTER_FAILURE_SECS`] after
    /// `now`.
    fn retry_date(&self, now: i64) -> i64 {
        let ttl = i64::try_from(self.options.cache_ttl.as_secs()).unwrap_or(i64::MAX);
        now.saturating_sub(ttl)
            .saturating_add(RETRY_AFTER_FAILURE_SECS)
    }

    /// A full walk, or after a failure an empty snapshot dated so that the next attempt comes
    /// [`RETRY_AFTER_FAILURE_SECS`] later.
    async fn walk_or_placeholder(&self) -> Snapshot {
        let started = self.clock.now();
        match self.walk().await {
            Ok(mut s) => {
                s.fetched_at = started;
                s
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "cannot read the WeCom directory for the groups claim; check that the app \
                     may read the contacts (通讯录) it logs people in from"
                );
                Snapshot {
                    fetched_at: self.retry_date(started),
                    ..Snapshot::default()
                }
            }
        }
    }

    async fn walk(&self) -> Result<Snapshot, ConnectorError> {
        let api = &self.api;
        let mut snapshot = Snapshot::default();
        if self.options.needs_departments() {
            let list = with_token_in(
                &self.tokens,
                |t| async move { api.list_departments(&t).await },
            )
            .await?;
            snapshot.departments = list
                .department
                .into_iter()
                .map(|d| (d.id, (d.name, d.parentid)))
                .collect();
        }
        if self.options.tags {
            let list =
                with_token_in(&self.tokens, |t| async move { api.list_tags(&t).await }).await?;
            for tag in list.taglist {
                let id = tag.tagid;
                let members =
                    with_token_in(&self.tokens, |t| async move { api.get_tag(&t, id).await })
                        .await?;
                snapshot.tags.push(TagSnapshot {
                    name: tag.tagname,
                    users: members
                        .userlist
                        .into_iter()
                        .map(|u| u.userid.to_ascii_lowercase())
                        .collect(),
                    departments: members.partylist.into_iter().collect(),
                });
            }
        }
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corp() -> Snapshot {
        Snapshot {
            departments: HashMap::from([
                (1, ("示例科技".to_owned(), 0)),
                (2, ("研发".to_owned(), 1)),
                (3, ("平台".to_owned(), 2)),
                (4, ("市场".to_owned(), 1)),
            ]),
            tags: vec![
                TagSnapshot {
                    name: "管理员".into(),
                    users: HashSet::from(["zhangsan".to_owned()]),
                    departments: HashSet::new(),
                },
                TagSnapshot {
                    name: "值班".into(),
                    users: HashSet::new(),
                    departments: HashSet::from([4]),
                },
            ],
            fetched_at: 0,
        }
    }

    #[test]
    fn groups_carry_department_names_full_paths_and_tags() {
        let g = corp().groups("ZhangSan", &[3], &GroupOptions::default());
        assert_eq!(g, vec!["平台", "/研发/平台", "管理员"]);
    }

    #[test]
    fn department_tag_applies_to_its_members_and_ids_are_optional() {
        let o = GroupOptions {
            ids: true,
            ..GroupOptions::default()
        };
        let g = corp().groups("lisi", &[4], &o);
        assert_eq!(g, vec!["市场", "/市场", "4", "值班"]);
    }

    #[test]
    fn the_root_department_has_a_name_but_no_path() {
        let g = corp().groups("boss", &[1], &GroupOptions::default());
        assert_eq!(g, vec!["示例科技"]);
    }

    #[test]
    fn unknown_departments_and_cycles_do_not_panic() {
        let mut s = corp();
        s.departments.insert(8, ("环".into(), 9));
        s.departments.insert(9, ("环2".into(), 8));
        let g = s.groups("x", &[77, 8], &GroupOptions::default());
        assert!(g.contains(&"环".to_owned()));
    }

    #[test]
    fn group_kinds_parse_and_reject_unknown_entries() {
        let o = GroupOptions::default()
            .with_kinds(["paths", "tags"])
            .expect("valid");
        assert!(o.paths && o.tags && !o.names && !o.ids);
        assert!(GroupOptions::default().with_kinds(["roles"]).is_err());
    }
}
