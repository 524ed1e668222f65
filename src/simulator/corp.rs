//! Simulated corps and their self-built apps: each corp has its own directory, apps with their
//! own secret, trusted domains and visible range (可见范围), and links to other corps (互联企业 /
//! 上下游) whose members may log in to its apps (wecom-api.md §1, §4, §12).

use std::collections::HashSet;

use super::directory::{Directory, Member};

/// An app's visible range (可见范围, §12). All three empty = the whole corp (the default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisibleRange {
    /// Members, by userid (case-insensitive like every userid, §6).
    pub users: Vec<String>,
    /// Departments, each with all its sub-departments.
    pub departments: Vec<i64>,
    /// Tags: their members, and their departments with all sub-departments.
    pub tags: Vec<i64>,
}

impl VisibleRange {
    /// The whole corp.
    pub fn whole_corp() -> Self {
        Self::default()
    }

    /// Whether this is the whole corp (nothing listed).
    pub fn is_whole_corp(&self) -> bool {
        self.users.is_empty() && self.departments.is_empty() && self.tags.is_empty()
    }
}

/// Another self-built app of a simulated corp.
#[derive(Clone)]
pub struct AppSpec {
    /// The AgentId, unique within its corp.
    pub agent_id: i64,
    /// The app secret for `gettoken` (§1: each app has its own).
    pub secret: String,
    /// Who the app is for (§12).
    pub visible_range: VisibleRange,
    /// `host[:port]` accepted as OAuth redirect domains (可信域名, §2, §9); empty accepts any.
    pub trusted_domains: Vec<String>,
    /// `true` for an app created before 2022-06-20, which still receives the privacy fields of
    /// `user/get` (§6).
    pub legacy_app: bool,
}

// The secret never reaches a log line.
crate::secret::debug_showing!(AppSpec: agent_id, visible_range, trusted_domains, legacy_app);

/// Which directory a simulated corp starts with.
#[derive(Debug, Clone)]
pub enum CorpSeed {
    /// Today's seeded corp (示例科技: 研发, 平台, 市场; zhangsan, lisi, wangwu, zhaoliu, sunqi,
    /// ZhouBa; tags 管理员, 值班 and 研发全员 on 研发).
    Demo,
    /// 远航贸易, a different company whose directory also has a member `zhangsan` (张三丰, a
    /// different person), plus `lisi` and `wangfang`; departments 1 远航贸易, 2 销售, 3 华东区
    /// (under 销售), 4 财务; tag 1 销售精英.
    Second,
    /// A generated corp of `members` members (`u00001` …) spread over a department tree of
    /// about one department per 25 members, at most 5 levels deep (department 1 is the root),
    /// and three tags (1 经理: every 50th member; 2 on department 2; 3 值班). Deterministic.
    Large {
        /// How many members.
        members: usize,
    },
}

impl CorpSeed {
    pub(super) fn directory(&self) -> Directory {
        match self {
            CorpSeed::Demo => Directory::seed(),
            CorpSeed::Second => Directory::second(),
            CorpSeed::Large { members } => Directory::large(*members),
        }
    }
}

/// Which app of which corp: what a token, a code and a `user_ticket` are bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct AppKey {
    pub corp_id: String,
    pub agent_id: i64,
}

/// One self-built app as the simulator keeps it.
#[derive(Clone)]
pub(super) struct App {
    pub agent_id: i64,
    pub secret: String,
    pub range: VisibleRange,
    pub trusted_domains: Vec<String>,
    pub legacy_app: bool,
    /// `false`: the server's IP is not in 企业可信IP, and every token-protected API answers
    /// 60020 while `gettoken` still succeeds (§1).
    pub ip_trusted: bool,
    /// What `department/*` answers as a department's `name` (§7).
    pub department_names: DepartmentNames,
}

/// What an app's `department/get` and `department/list` answer as `name` (wecom-api.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DepartmentNames {
    /// The names (self-built apps).
    Shown,
    /// No `name` (nor `name_en`) at all: a 代开发 app before an admin authorised names.
    Withheld,
    /// The id, as a string, in place of the name: third-party apps.
    Ids,
}

impl App {
    pub fn from_spec(spec: AppSpec) -> Self {
        Self {
            agent_id: spec.agent_id,
            secret: spec.secret,
            range: spec.visible_range,
            trusted_domains: spec.trusted_domains,
            legacy_app: spec.legacy_app,
            ip_trusted: true,
            department_names: DepartmentNames::Shown,
        }
    }

    /// Whether `domain` (`host[:port]` of a redirect URI) is one of the app's trusted domains.
    /// Matching is exact, port included (§2 "Domain rule"); hosts compare case-insensitively as
    /// DNS names do. No trusted domain configured accepts any.
    pub fn is_trusted_domain(&self, domain: &str) -> bool {
        is_trusted(&self.trusted_domains, domain)
    }
}

/// The trusted-domain rule shared by [`App`] and `SimulatorConfig`.
pub(super) fn is_trusted(trusted: &[String], domain: &str) -> bool {
    trusted.is_empty() || trusted.iter().any(|t| t.eq_ignore_ascii_case(domain))
}

// The secret never reaches a log line.
crate::secret::debug_showing! {
    App: agent_id, range, trusted_domains, legacy_app, ip_trusted, department_names
}

/// A linked corp whose members (in `departments`, recursively; empty = all) may use this
/// corp's apps.
#[derive(Debug, Clone)]
pub(super) struct Link {
    pub corp_id: String,
    pub departments: Vec<i64>,
}

/// One simulated corp.
#[derive(Debug)]
pub(super) struct Corp {
    pub corp_id: String,
    pub directory: Directory,
    /// The first is the corp's default app (the login page's app when `agentid` is absent).
    pub apps: Vec<App>,
    pub links: Vec<Link>,
    /// The one non-member WeChat user of this corp (openid is unique within a corp, §4).
    pub non_member_openid: String,
}

impl Corp {
    pub fn app(&self, agent_id: i64) -> Option<&App> {
        self.apps.iter().find(|a| a.agent_id == agent_id)
    }

    pub fn app_mut(&mut self, agent_id: i64) -> Option<&mut App> {
        self.apps.iter_mut().find(|a| a.agent_id == agent_id)
    }

    pub fn link(&self, linked_corp_id: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.corp_id == linked_corp_id)
    }
}

/// The departments of linked corp `linked` shared with a corp through `link`: the listed
/// departments and all below them, or the whole linked corp when none are listed.
pub(super) fn shared_departments(linked: &Directory, link: &Link) -> HashSet<i64> {
    if link.departments.is_empty() {
        linked.expand(&[1])
    } else {
        linked.expand(&link.departments)
    }
}

/// What an app may see of its corp's directory, worked out once per request from its visible
/// range (§12).
///
/// Rules, from the reference:
/// - a member is in range when listed in `users`, in a listed department or any department
///   below it, or carrying a listed tag — directly, or through a tagged department or any
///   department below one (WeCom expands tagged departments recursively for visibility, §7);
/// - the departments the app sees are the listed ones and the tagged ones of listed tags,
///   each with everything below it. Members listed one by one add no department: §7 says
///   department calls answer only departments *inside* the range, and a member is not a
///   department (strictest for a client: a range of single members sees no department at all;
///   `SimulatorQuirks::member_range_shows_own_departments` adds those members' own departments);
/// - the tags the app sees are the listed ones (whole corp: all).
#[derive(Debug)]
pub(super) struct Scope {
    whole: bool,
    users: HashSet<String>,
    /// Departments whose members are in range (recursive).
    departments: HashSet<i64>,
    /// Departments shown only because the quirk adds listed members' own departments.
    shown_departments: HashSet<i64>,
    tags: HashSet<i64>,
}

impl Scope {
    pub fn of(directory: &Directory, range: &VisibleRange, members_add_departments: bool) -> Self {
        if range.is_whole_corp() {
            return Self {
                whole: true,
                users: HashSet::new(),
                departments: HashSet::new(),
                shown_departments: HashSet::new(),
                tags: HashSet::new(),
            };
        }
        let mut users: HashSet<String> =
            range.users.iter().map(|u| u.to_ascii_lowercase()).collect();
        let mut roots = range.departments.clone();
        let tags: HashSet<i64> = range
            .tags
            .iter()
            .copied()
            .filter(|t| directory.tag(*t).is_some())
            .collect();
        for tag in directory.tags().iter().filter(|t| tags.contains(&t.tagid)) {
            users.extend(tag.users.iter().map(|u| u.to_ascii_lowercase()));
            roots.extend_from_slice(&tag.parties);
        }
        let departments = directory.expand(&roots);
        let mut shown_departments = HashSet::new();
        if members_add_departments {
            for u in &range.users {
                if let Some(m) = directory.member(u) {
                    shown_departments.extend(m.departments());
                }
            }
        }
        Self {
            whole: false,
            users,
            departments,
            shown_departments,
            tags,
        }
    }

    pub fn is_whole_corp(&self) -> bool {
        self.whole
    }

    /// Whether the member is in the app's visible range.
    pub fn sees_member(&self, member: &Member) -> bool {
        self.whole
            || self.users.contains(&member.userid.to_ascii_lowercase())
            || member.departments().any(|d| self.departments.contains(&d))
    }

    /// Whether the app may see department `id`.
    pub fn sees_department(&self, id: i64) -> bool {
        self.whole || self.departments.contains(&id) || self.shown_departments.contains(&id)
    }

    /// Whether the app may see tag `tagid`.
    pub fn sees_tag(&self, tagid: i64) -> bool {
        self.whole || self.tags.contains(&tagid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(users: &[&str], departments: &[i64], tags: &[i64]) -> VisibleRange {
        VisibleRange {
            users: users.iter().map(|s| s.to_string()).collect(),
            departments: departments.to_vec(),
            tags: tags.to_vec(),
        }
    }

    fn member<'a>(d: &'a Directory, userid: &str) -> &'a Member {
        d.member(userid).expect("seeded")
    }

    #[test]
    fn whole_corp_sees_everything() {
        let d = Directory::seed();
        let s = Scope::of(&d, &VisibleRange::whole_corp(), false);
        assert!(s.is_whole_corp());
        assert!(d.members().iter().all(|m| s.sees_member(m)));
        assert!(s.sees_department(1) && s.sees_tag(2));
    }

    #[test]
    fn department_range_is_recursive() {
        let d = Directory::seed();
        let s = Scope::of(&d, &range(&[], &[2], &[]), false);
        assert!(s.sees_member(member(&d, "zhangsan")), "平台 is under 研发");
        assert!(
            s.sees_member(member(&d, "zhaoliu")),
            "one of two departments suffices"
        );
        assert!(!s.sees_member(member(&d, "lisi")));
        assert!(s.sees_department(3) && !s.sees_department(1) && !s.sees_department(4));
        assert!(!s.sees_tag(1));
    }

    #[test]
    fn member_range_sees_no_department_unless_the_quirk_says_so() {
        let d = Directory::seed();
        let s = Scope::of(&d, &range(&["LISI"], &[], &[]), false);
        assert!(s.sees_member(member(&d, "lisi")));
        assert!(!s.sees_member(member(&d, "zhangsan")));
        assert!(!s.sees_department(4));
        let s = Scope::of(&d, &range(&["lisi"], &[], &[]), true);
        assert!(s.sees_department(4));
    }

    #[test]
    fn tag_range_covers_tagged_members_and_tagged_departments_recursively() {
        let d = Directory::seed();
        let s = Scope::of(&d, &range(&[], &[], &[3]), false);
        assert!(
            s.sees_member(member(&d, "zhangsan")),
            "平台 is under tagged 研发"
        );
        assert!(s.sees_member(member(&d, "wangwu")));
        assert!(!s.sees_member(member(&d, "lisi")));
        assert!(s.sees_tag(3) && !s.sees_tag(1));
        assert!(s.sees_department(2) && s.sees_department(3));
        let s = Scope::of(&d, &range(&[], &[], &[1]), false);
        assert!(s.sees_member(member(&d, "zhangsan")));
        assert!(!s.sees_member(member(&d, "ZhouBa")));
    }

    #[test]
    fn app_spec_debug_hides_the_secret() {
        let spec = AppSpec {
            agent_id: 1,
            secret: "s3cr3t-value".into(),
            visible_range: VisibleRange::whole_corp(),
            trusted_domains: vec![],
            legacy_app: false,
        };
        assert!(!format!("{spec:?}").contains("s3cr3t-value"));
        assert!(!format!("{:?}", App::from_spec(spec)).contains("s3cr3t-value"));
    }
}
