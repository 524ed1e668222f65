//! The `groups` claim: a member's departments (names, full paths such as `/研发/平台`,
//! optionally ids) and tags, as one flat array of strings that Grafana's
//! `groups_attribute_path` / `role_attribute_path` and GitLab's `groups_attribute` use as-is.
//!
//! WeCom has no "groups of a user" call (wecom-api.md §7): the department structure comes from
//! `department/simplelist`, names from `department/get` for the departments members actually
//! log in from, tags from `tag/list` + `tag/get` per tag. The walk is cached with a TTL and
//! refreshed in the background when stale, so a login never waits for it except the very first
//! one after start (single flight: concurrent first logins share one walk).
//!
//! Every department call answers only inside the app's visible range (wecom-api.md §7, §12), so
//! the top of what the app sees need not be the corp's root: paths are written from the root
//! (id 1) when the app sees the whole chain, and from `#ID` of the first hidden ancestor when it
//! does not (see [`Snapshot::paths`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::api::ApiClient;
use super::with_token_in;
use crate::clock::SharedClock;
use crate::connector::token_cache::TokenCache;
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
    /// With each department path, the paths of its ancestors (`/研发` with `/研发/平台`), so a
    /// rule on a parent department admits members of its sub-departments.
    pub parents: bool,
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
            parents: false,
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
        self.parents = false;
        self.ids = false;
        self.tags = false;
        for kind in kinds {
            match kind {
                "names" => self.names = true,
                "paths" => self.paths = true,
                "parents" => self.parents = true,
                "ids" => self.ids = true,
                "tags" => self.tags = true,
                other => {
                    return Err(format!(
                        "{other:?} is not one of names, paths, parents, ids, tags"
                    ))
                }
            }
        }
        Ok(self)
    }

    /// Whether the directory has to be read at all.
    fn needs_departments(&self) -> bool {
        self.names || self.paths || self.parents || self.ids
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

/// WeCom's root department: the corp itself (id 1, parent 0). It never appears in a path.
const ROOT_DEPARTMENT: i64 = 1;

/// One walk of the directory's structure: which departments the app sees and under which
/// parent (`department/simplelist`, one call whatever the corp's size), and the tags.
#[derive(Debug, Default, Clone)]
pub(crate) struct Snapshot {
    /// id → parent id, for every department in the app's visible range.
    parents: HashMap<i64, i64>,
    tags: Vec<TagSnapshot>,
    /// Unix seconds of the walk (or of the failure, minus the TTL, see below).
    fetched_at: i64,
}

/// Where a department hangs: the chain of visible departments from just below the root (or
/// below the first ancestor the app cannot see) down to it.
#[derive(Debug, PartialEq, Eq)]
struct Lineage {
    /// Visible departments, top first, the department itself last; the root is left out.
    chain: Vec<i64>,
    /// The nearest ancestor the app cannot see (outside its visible range), when the chain
    /// does not reach the root.
    hidden_above: Option<i64>,
}

impl Snapshot {
    /// The department's lineage; `None` for a department outside the visible range or a
    /// structure that loops.
    fn lineage(&self, id: i64) -> Option<Lineage> {
        let mut chain = Vec::new();
        let mut current = id;
        // The tree is at most a few dozen levels deep; the bound stops a cyclic answer.
        for _ in 0..64 {
            if current == ROOT_DEPARTMENT || current == 0 {
                chain.reverse();
                return Some(Lineage {
                    chain,
                    hidden_above: None,
                });
            }
            let Some(parent) = self.parents.get(&current) else {
                if chain.is_empty() {
                    return None;
                }
                chain.reverse();
                return Some(Lineage {
                    chain,
                    hidden_above: Some(current),
                });
            };
            chain.push(current);
            current = *parent;
        }
        None
    }

    /// Every visible department id `departments` and their ancestors cover.
    fn with_ancestors(&self, departments: &[i64]) -> HashSet<i64> {
        let mut out = HashSet::new();
        for d in departments {
            out.insert(*d);
            if let Some(l) = self.lineage(*d) {
                out.extend(l.chain);
            }
        }
        out
    }

    /// The departments whose names the `groups` of a member in `departments` need.
    fn names_needed(&self, departments: &[i64], o: &GroupOptions) -> HashSet<i64> {
        let mut out = HashSet::new();
        for d in departments {
            if o.names && (*d == ROOT_DEPARTMENT || self.parents.contains_key(d)) {
                out.insert(*d);
            }
            if o.paths || o.parents {
                if let Some(l) = self.lineage(*d) {
                    out.extend(l.chain);
                }
            }
        }
        out
    }

    /// The `groups` strings of a member in `departments`, in a stable order, without repeats.
    /// `names` holds the department names known (a department whose name is missing gets no
    /// name and no path).
    pub(crate) fn groups(
        &self,
        userid: &str,
        departments: &[i64],
        names: &HashMap<i64, String>,
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
                if let Some(name) = names.get(id) {
                    push(name.clone());
                }
            }
            if o.paths || o.parents {
                if let Some(paths) = self.paths(*id, names) {
                    let (own, ancestors) = paths.split_last().expect("non-empty");
                    if o.parents {
                        for p in ancestors {
                            push(p.clone());
                        }
                    }
                    if o.paths || o.parents {
                        push(own.clone());
                    }
                }
            }
            if o.ids {
                push(id.to_string());
            }
        }
        if o.tags {
            let lower = userid.to_ascii_lowercase();
            // A tag on a department counts for the members of its sub-departments too: WeCom
            // expands tagged departments recursively for visibility (wecom-api.md §7), and
            // "tagged 研发" is meant for everyone in R&D.
            let covered = self.with_ancestors(departments);
            for tag in &self.tags {
                if tag.users.contains(&lower) || covered.iter().any(|d| tag.departments.contains(d))
                {
                    push(tag.name.clone());
                }
            }
        }
        out
    }

    /// The paths of the department and of each of its visible ancestors, top first, the
    /// department's own last: `/研发`, `/研发/平台`. When an ancestor is outside the app's
    /// visible range its name cannot be read, so the paths start with `#ID` of that ancestor:
    /// `#2/平台` — never mistaken for a path from the root (`/…`). `None` for the root, a
    /// department the app cannot see, or one whose chain has a name missing.
    fn paths(&self, id: i64, names: &HashMap<i64, String>) -> Option<Vec<String>> {
        let lineage = self.lineage(id)?;
        if lineage.chain.is_empty() {
            return None;
        }
        let mut current = match lineage.hidden_above {
            Some(hidden) => format!("#{hidden}"),
            None => String::new(),
        };
        let mut out = Vec::with_capacity(lineage.chain.len());
        for d in &lineage.chain {
            current.push('/');
            current.push_str(names.get(d)?);
            out.push(current.clone());
        }
        Some(out)
    }
}

/// A department name read with `department/get`, or the fact that the app may not read it.
#[derive(Debug, Clone)]
struct CachedName {
    name: Option<String>,
    fetched_at: i64,
}

/// The cached directory of one WeCom app.
pub(crate) struct DirectoryCache {
    api: ApiClient,
    tokens: Arc<TokenCache>,
    clock: SharedClock,
    options: GroupOptions,
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    /// Department names, read one by one with `department/get` as members of those
    /// departments log in: a large corp's thousands of departments are never all fetched.
    names: RwLock<HashMap<i64, CachedName>>,
    /// Held during the first walk so concurrent first logins share it.
    first_load: tokio::sync::Mutex<()>,
    /// Set while a background refresh runs, so at most one runs.
    refreshing: Arc<AtomicBool>,
}

crate::secret::debug_showing!(DirectoryCache: options);

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
            names: RwLock::new(HashMap::new()),
            first_load: tokio::sync::Mutex::new(()),
            refreshing: Arc::new(AtomicBool::new(false)),
        })
    }

    /// How many departments and tags the last walk saw, and when (`None`: not walked yet;
    /// the directory is read for the first login that asks for `groups`).
    pub(crate) fn size(&self) -> Option<(usize, usize, i64)> {
        self.current()
            .map(|s| (s.parents.len(), s.tags.len(), s.fetched_at))
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

    fn ttl(&self) -> i64 {
        i64::try_from(self.options.cache_ttl.as_secs()).unwrap_or(i64::MAX)
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
        let wanted = snapshot.names_needed(departments, &self.options);
        let names = self.names_of(&wanted).await;
        snapshot.groups(userid, departments, &names, &self.options)
    }

    /// The names of `ids`, from the cache or `department/get` (stale or missing ones, a few at
    /// a time). A department the app may not read is remembered as such for the TTL.
    async fn names_of(&self, ids: &HashSet<i64>) -> HashMap<i64, String> {
        let now = self.clock.now();
        let ttl = self.ttl();
        let mut known = HashMap::new();
        let mut missing = Vec::new();
        {
            let cache = self.names.read().unwrap_or_else(|p| p.into_inner());
            for id in ids {
                match cache.get(id) {
                    Some(c) if now.saturating_sub(c.fetched_at) < ttl => {
                        if let Some(name) = &c.name {
                            known.insert(*id, name.clone());
                        }
                    }
                    _ => missing.push(*id),
                }
            }
        }
        // One by one: a member's lineage is a handful of departments, each read once per TTL.
        for id in missing {
            let api = &self.api;
            let answer =
                with_token_in(
                    &self.tokens,
                    |t| async move { api.get_department(&t, id).await },
                )
                .await;
            let mut cache = self.names.write().unwrap_or_else(|p| p.into_inner());
            {
                match answer {
                    Ok(r) => {
                        let name = r.department.map(|d| d.name).filter(|n| !n.is_empty());
                        if let Some(name) = &name {
                            known.insert(id, name.clone());
                        }
                        cache.insert(
                            id,
                            CachedName {
                                name,
                                fetched_at: now,
                            },
                        );
                    }
                    // Outside the visible range (wecom-api.md §7, §12): no name to be had.
                    Err(ConnectorError::Upstream {
                        code:
                            super::NO_PRIVILEGE | super::USER_NOT_VISIBLE | super::DEPARTMENT_INVALID,
                        ..
                    }) => {
                        cache.insert(
                            id,
                            CachedName {
                                name: None,
                                fetched_at: now,
                            },
                        );
                    }
                    Err(e) => {
                        // Keep an old name rather than none.
                        if let Some(CachedName {
                            name: Some(old), ..
                        }) = cache.get(&id)
                        {
                            known.insert(id, old.clone());
                        }
                        tracing::warn!(error = %e, department = id, "cannot read a WeCom department's name");
                    }
                }
            }
        }
        known
    }

    /// Starts a background refresh when `s` is older than the TTL and none is running.
    fn refresh_if_stale(self: &Arc<Self>, s: &Snapshot) {
        if self.clock.now().saturating_sub(s.fetched_at) < self.ttl() {
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
        now.saturating_sub(self.ttl())
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

    /// The structure (`department/simplelist`: one call, ids and parents only — WeCom's advice
    /// for large corps over the slow `department/list`, wecom-api.md §7) and the tags
    /// (`tag/list`, then `tag/get` per tag).
    async fn walk(&self) -> Result<Snapshot, ConnectorError> {
        let api = &self.api;
        let mut snapshot = Snapshot::default();
        if self.options.needs_departments() || self.options.tags {
            match with_token_in(&self.tokens, |t| async move {
                api.list_departments_simple(&t).await
            })
            .await
            {
                Ok(list) => {
                    snapshot.parents = list
                        .department_id
                        .into_iter()
                        .map(|d| (d.id, d.parentid))
                        .collect();
                }
                // A visible range of single members covers no department: no structure.
                Err(ConnectorError::Upstream {
                    code: super::NO_PRIVILEGE,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        if self.options.tags {
            let list =
                with_token_in(&self.tokens, |t| async move { api.list_tags(&t).await }).await?;
            for tag in list.taglist {
                let id = tag.tagid;
                let members =
                    match with_token_in(&self.tokens, |t| async move { api.get_tag(&t, id).await })
                        .await
                    {
                        Ok(m) => m,
                        // A tag listed but not readable by this app: skip it, keep the others.
                        Err(ConnectorError::Upstream {
                            code: super::NO_PRIVILEGE,
                            ..
                        }) => continue,
                        Err(e) => return Err(e),
                    };
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

    fn names() -> HashMap<i64, String> {
        HashMap::from([
            (1, "示例科技".to_owned()),
            (2, "研发".to_owned()),
            (3, "平台".to_owned()),
            (4, "市场".to_owned()),
        ])
    }

    fn corp() -> Snapshot {
        Snapshot {
            parents: HashMap::from([(1, 0), (2, 1), (3, 2), (4, 1)]),
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
                TagSnapshot {
                    name: "研发全员".into(),
                    users: HashSet::new(),
                    departments: HashSet::from([2]),
                },
            ],
            fetched_at: 0,
        }
    }

    #[test]
    fn groups_carry_department_names_full_paths_and_tags() {
        let g = corp().groups("ZhangSan", &[3], &names(), &GroupOptions::default());
        assert_eq!(g, vec!["平台", "/研发/平台", "管理员", "研发全员"]);
    }

    #[test]
    fn a_tag_on_a_parent_department_covers_its_sub_departments() {
        let o = GroupOptions {
            names: false,
            paths: false,
            ..GroupOptions::default()
        };
        assert_eq!(corp().groups("x", &[3], &names(), &o), vec!["研发全员"]);
        assert_eq!(corp().groups("x", &[2], &names(), &o), vec!["研发全员"]);
        assert!(corp().groups("x", &[1], &names(), &o).is_empty());
    }

    #[test]
    fn parents_add_every_ancestor_path() {
        let o = GroupOptions {
            names: false,
            parents: true,
            tags: false,
            ..GroupOptions::default()
        };
        let g = corp().groups("x", &[3], &names(), &o);
        assert_eq!(g, vec!["/研发", "/研发/平台"]);
    }

    #[test]
    fn department_tag_applies_to_its_members_and_ids_are_optional() {
        let o = GroupOptions {
            ids: true,
            ..GroupOptions::default()
        };
        let g = corp().groups("lisi", &[4], &names(), &o);
        assert_eq!(g, vec!["市场", "/市场", "4", "值班"]);
    }

    #[test]
    fn the_root_department_has_a_name_but_no_path() {
        let g = corp().groups("boss", &[1], &names(), &GroupOptions::default());
        assert_eq!(g, vec!["示例科技"]);
    }

    /// wecom-api.md §7: a range that is the 研发 sub-tree lists 研发 with `parentid` 1, which
    /// the app cannot see. 1 is the root, left out of every path anyway: paths stay complete.
    #[test]
    fn a_sub_tree_range_below_the_root_still_gives_full_paths() {
        let s = Snapshot {
            parents: HashMap::from([(2, 1), (3, 2)]),
            ..Snapshot::default()
        };
        let g = s.groups("x", &[3], &names(), &GroupOptions::default());
        assert_eq!(g, vec!["平台", "/研发/平台"]);
        let g = s.groups("x", &[2], &names(), &GroupOptions::default());
        assert_eq!(g, vec!["研发", "/研发"]);
    }

    /// A range of only 平台 (3): its parent 研发 (2) is hidden and has no readable name, so
    /// the path says where it hangs by id, and can never equal a path from the root.
    #[test]
    fn a_hidden_ancestor_is_written_as_its_id() {
        let s = Snapshot {
            parents: HashMap::from([(3, 2)]),
            ..Snapshot::default()
        };
        let mut known = names();
        known.remove(&2);
        let o = GroupOptions {
            parents: true,
            ..GroupOptions::default()
        };
        let g = s.groups("x", &[3], &known, &o);
        assert_eq!(g, vec!["平台", "#2/平台"]);
    }

    #[test]
    fn a_member_only_range_gives_ids_but_no_names_or_paths() {
        let s = Snapshot::default();
        let o = GroupOptions {
            ids: true,
            ..GroupOptions::default()
        };
        assert_eq!(s.groups("x", &[3], &HashMap::new(), &o), vec!["3"]);
    }

    #[test]
    fn only_the_names_on_a_members_lineage_are_needed() {
        let wanted = corp().names_needed(&[3], &GroupOptions::default());
        assert_eq!(wanted, HashSet::from([2, 3]));
        let o = GroupOptions {
            paths: false,
            ..GroupOptions::default()
        };
        assert_eq!(corp().names_needed(&[3], &o), HashSet::from([3]));
    }

    #[test]
    fn unknown_departments_and_cycles_do_not_panic() {
        let mut s = corp();
        s.parents.insert(8, 9);
        s.parents.insert(9, 8);
        let mut n = names();
        n.insert(8, "环".into());
        let g = s.groups("x", &[77, 8], &n, &GroupOptions::default());
        assert!(g.contains(&"环".to_owned()));
    }

    #[test]
    fn group_kinds_parse_and_reject_unknown_entries() {
        let o = GroupOptions::default()
            .with_kinds(["paths", "parents", "tags"])
            .expect("valid");
        assert!(o.paths && o.parents && o.tags && !o.names && !o.ids);
        assert!(GroupOptions::default().with_kinds(["roles"]).is_err());
    }
}
