//! `[admin]`: the web console at `/admin` (absent: no console). Admins are named the way the
//! upstream names people and groups — an upstream user id (for WeCom: the UserId) or one of the
//! strings a connector puts in the `groups` claim (for WeCom: department names or paths, tag
//! names, department ids when enabled) — so the core matches them without knowing the upstream.

use toml::{Table, Value};

use crate::identity::Identity;
use crate::validate::Validator;

const ADMIN_KEYS: &[&str] = &["users", "groups", "connector", "idle_timeout"];

/// The console's idle timeout unless `[admin] idle_timeout` says otherwise: 30 minutes.
pub const DEFAULT_IDLE_TIMEOUT: i64 = 1800;

/// Who may use the console, and how long its sessions last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    /// Upstream user ids of admins (`users`).
    pub users: Vec<String>,
    /// Groups whose members are admins (`groups`), as the connector names them in `groups`.
    pub groups: Vec<String>,
    /// The connector admins sign in through (`connector`); `None`: the first.
    pub connector: Option<String>,
    /// Seconds without a request after which a console session ends (`idle_timeout`).
    pub idle_timeout: i64,
}

impl AdminSettings {
    /// Whether `identity`, as the console's connector vouched for it, is an admin.
    pub fn admits(&self, identity: &Identity) -> bool {
        let is = |id: &str| self.users.iter().any(|u| u == id);
        is(&identity.user_id)
            || identity.upstream_id.as_deref().is_some_and(is)
            || identity
                .groups
                .iter()
                .any(|g| self.groups.iter().any(|a| a == g))
    }
}

/// A list of non-empty strings at `t[name]`; every bad entry is a problem.
fn strings(v: &mut Validator<'_>, t: &Table, key: &str) -> Vec<String> {
    match t.get(key.rsplit('.').next().unwrap_or(key)) {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) if !s.trim().is_empty() => out.push(s.trim().to_owned()),
                    _ => v.problem(&format!("{key}[{i}]"), "must be a non-empty string"),
                }
            }
            out
        }
        Some(other) => {
            v.problem(
                key,
                format!("must be a list of strings, found {}", other.type_str()),
            );
            Vec::new()
        }
    }
}

/// Parses `[admin]`; every problem is recorded in `v`. `connectors` are the configured
/// connector ids (the console's `connector` must be one of them).
pub(super) fn parse(
    v: &mut Validator<'_>,
    value: Option<&Value>,
    connectors: Option<&[String]>,
) -> Option<Option<AdminSettings>> {
    let t = match value {
        None => return Some(None),
        Some(Value::Table(t)) => t,
        Some(_) => {
            v.problem("admin", "must be a table ([admin])");
            return None;
        }
    };
    let before = v.problems.len();
    v.unknown_keys(t, "admin", ADMIN_KEYS);
    let users = strings(v, t, "admin.users");
    let groups = strings(v, t, "admin.groups");
    if users.is_empty() && groups.is_empty() {
        v.problem(
            "admin",
            "names no admin: set users (upstream user ids) or groups (departments, tags)",
        );
    }
    let connector = v.string(t, "admin.connector", "connector");
    if let (Some(id), Some(known)) = (&connector, connectors) {
        if !known.iter().any(|k| k == id) {
            v.problem(
                "admin.connector",
                format!("no connector is named {id:?} (known: {})", known.join(", ")),
            );
        }
    }
    let idle_timeout = match v.integer(t, "admin.idle_timeout", "idle_timeout") {
        None => DEFAULT_IDLE_TIMEOUT,
        Some(n) if (60..=86_400).contains(&n) => n,
        Some(_) => {
            v.problem("admin.idle_timeout", "must be between 60 and 86400 seconds");
            DEFAULT_IDLE_TIMEOUT
        }
    };
    (v.problems.len() == before).then_some(Some(AdminSettings {
        users,
        groups,
        connector,
        idle_timeout,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (Option<Option<AdminSettings>>, Vec<String>) {
        let t: Table = toml::from_str(text).unwrap();
        let env = |_: &str| None;
        let mut v = Validator::new(&env);
        let known = vec!["wecom".to_owned(), "branch".to_owned()];
        let out = parse(&mut v, t.get("admin"), Some(&known));
        (out, v.problems)
    }

    #[test]
    fn no_section_means_no_console() {
        assert_eq!(parsed("").0, Some(None));
    }

    #[test]
    fn users_groups_connector_and_idle_timeout_are_read() {
        let (s, problems) = parsed(
            "[admin]\nusers = [\"zhangsan\"]\ngroups = [\"/研发/平台\", \"管理员\"]\nconnector = \"branch\"\nidle_timeout = 600\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        let s = s.unwrap().unwrap();
        assert_eq!(s.users, ["zhangsan"]);
        assert_eq!(s.groups, ["/研发/平台", "管理员"]);
        assert_eq!(s.connector.as_deref(), Some("branch"));
        assert_eq!(s.idle_timeout, 600);
    }

    #[test]
    fn every_problem_of_the_section_is_reported_at_once() {
        let (s, problems) = parsed(
            "[admin]\nusers = [\"\", 3]\ngroups = \"ops\"\nconnector = \"nope\"\nidle_timeout = 5\ncolour = 1\n",
        );
        assert_eq!(s, None);
        for key in [
            "admin.colour",
            "admin.users[0]",
            "admin.users[1]",
            "admin.groups",
            "admin.connector",
            "admin.idle_timeout",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(key)),
                "{key} missing from {problems:?}"
            );
        }
    }

    #[test]
    fn a_section_naming_nobody_is_refused() {
        let (s, problems) = parsed("[admin]\nidle_timeout = 600\n");
        assert_eq!(s, None);
        assert!(problems[0].contains("names no admin"), "{problems:?}");
        let (s, _) = parsed("[admin]\nusers = []\n");
        assert_eq!(
            s, None,
            "an empty list admits nobody, which is surely a mistake"
        );
    }

    #[test]
    fn admins_are_matched_by_user_id_current_id_or_group() {
        let s = AdminSettings {
            users: vec!["zhangsan".into()],
            groups: vec!["管理员".into()],
            connector: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        };
        let person = |user: &str, groups: &[&str]| Identity {
            user_id: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Identity::default()
        };
        assert!(s.admits(&person("zhangsan", &[])));
        assert!(s.admits(&person("lisi", &["市场", "管理员"])));
        assert!(!s.admits(&person("lisi", &["市场"])));
        assert!(!s.admits(&person("ZhangSan", &[])), "ids are exact");
        let renamed = Identity {
            upstream_id: Some("zhangsan".into()),
            ..person("old-id", &[])
        };
        assert!(s.admits(&renamed));
    }
}
