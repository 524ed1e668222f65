//! The simulated corp's contact directory: seeded departments, members and tags, and the JSON
//! shapes WeCom gives them (wecom-api.md §6 `user/get`, §5 `getuserdetail`, §7 departments/tags).

use serde_json::{json, Map, Value};

/// Member status values of `user/get` (wecom-api.md §6).
pub(super) const STATUS_ACTIVE: i64 = 1;
/// Disabled by an admin.
pub(super) const STATUS_DISABLED: i64 = 2;
/// Invited but never activated.
pub(super) const STATUS_NOT_ACTIVATED: i64 = 4;
/// Left the corp.
pub(super) const STATUS_LEFT: i64 = 5;

/// Whether `status` is one WeCom documents for a member.
pub(super) fn is_known_status(status: i64) -> bool {
    matches!(
        status,
        STATUS_ACTIVE | STATUS_DISABLED | STATUS_NOT_ACTIVATED | STATUS_LEFT
    )
}

/// One member of the simulated corp.
#[derive(Debug, Clone)]
pub(super) struct Member {
    pub userid: String,
    pub name: String,
    /// WeCom's `alias`, used here for the member's English name.
    pub alias: String,
    pub position: String,
    pub mobile: String,
    /// `"0"` unknown, `"1"` male, `"2"` female (a string, §5/§6).
    pub gender: &'static str,
    pub email: String,
    pub biz_mail: String,
    pub telephone: String,
    pub address: String,
    pub department: Vec<i64>,
    pub order: Vec<i64>,
    pub is_leader_in_dept: Vec<i64>,
    pub direct_leader: Vec<String>,
    pub main_department: i64,
    pub status: i64,
    pub employee_no: String,
}

impl Member {
    /// The member's avatar URL. WeCom serves avatars from its own image host; the simulator only
    /// hands out URLs of the same shape and never serves them.
    pub fn avatar(&self) -> String {
        format!("https://wework.qpic.cn/wwpic/sim_{}/0", self.userid)
    }

    /// The small avatar (`thumb_avatar`, §6).
    pub fn thumb_avatar(&self) -> String {
        format!("https://wework.qpic.cn/wwpic/sim_{}/100", self.userid)
    }

    /// The member's personal QR code link (`qr_code`, §5/§6).
    pub fn qr_code(&self) -> String {
        format!(
            "https://open.work.weixin.qq.com/wwopen/userQRCode?vcode=sim_{}",
            self.userid
        )
    }

    /// The `user/get` body fields for this member (§6).
    ///
    /// `legacy_app == false` models a self-built app created after 2022-06-20, which no longer
    /// receives avatar, gender, mobile, email, biz_mail, qr_code or address. Whether WeCom drops
    /// those keys or sends them empty is unconfirmed: by default they are dropped (a client that
    /// needs them must then cope with their absence, which also covers the empty case);
    /// `privacy_fields_empty` sends them as empty strings instead. `thumb_avatar` is withheld
    /// together with `avatar`: it is the same picture, and a client must not rely on it.
    pub fn user_get_fields(
        &self,
        legacy_app: bool,
        privacy_fields_empty: bool,
    ) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("userid".into(), json!(self.userid));
        m.insert("name".into(), json!(self.name));
        m.insert("department".into(), json!(self.department));
        m.insert("order".into(), json!(self.order));
        m.insert("position".into(), json!(self.position));
        m.insert("is_leader_in_dept".into(), json!(self.is_leader_in_dept));
        m.insert("direct_leader".into(), json!(self.direct_leader));
        m.insert("telephone".into(), json!(self.telephone));
        m.insert("alias".into(), json!(self.alias));
        m.insert("main_department".into(), json!(self.main_department));
        m.insert(
            "extattr".into(),
            json!({"attrs": [{"type": 0, "name": "工号", "text": {"value": self.employee_no}}]}),
        );
        m.insert("status".into(), json!(self.status));
        m.insert("external_position".into(), json!(self.position));
        m.insert(
            "external_profile".into(),
            json!({"external_corp_name": "示例科技", "external_attr": []}),
        );
        // `open_userid` is only returned to third-party apps (§6, §8): a self-built app's
        // `user/get` does not carry it.
        let private = [
            ("avatar", self.avatar()),
            ("thumb_avatar", self.thumb_avatar()),
            ("gender", self.gender.to_string()),
            ("mobile", self.mobile.clone()),
            ("email", self.email.clone()),
            ("biz_mail", self.biz_mail.clone()),
            ("qr_code", self.qr_code()),
            ("address", self.address.clone()),
        ];
        for (key, value) in private {
            if legacy_app {
                m.insert(key.into(), json!(value));
            } else if privacy_fields_empty {
                m.insert(key.into(), json!(""));
            }
        }
        m
    }

    /// The `getuserdetail` body fields for this member (§5): all strings.
    pub fn detail_fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("userid".into(), json!(self.userid));
        m.insert("gender".into(), json!(self.gender));
        m.insert("avatar".into(), json!(self.avatar()));
        m.insert("qr_code".into(), json!(self.qr_code()));
        m.insert("mobile".into(), json!(self.mobile));
        m.insert("email".into(), json!(self.email));
        m.insert("biz_mail".into(), json!(self.biz_mail));
        m.insert("address".into(), json!(self.address));
        m
    }
}

/// One department.
#[derive(Debug, Clone)]
pub(super) struct Department {
    pub id: i64,
    pub name: String,
    pub name_en: String,
    pub department_leader: Vec<String>,
    /// 0 for the root department (id 1).
    pub parentid: i64,
    pub order: i64,
}

impl Department {
    /// The `department/list` and `department/get` object (§7).
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "name_en": self.name_en,
            "department_leader": self.department_leader,
            "parentid": self.parentid,
            "order": self.order,
        })
    }

    /// The `department/simplelist` object (§7).
    pub fn to_simple_json(&self) -> Value {
        json!({"id": self.id, "parentid": self.parentid, "order": self.order})
    }
}

/// One tag with its members and departments.
#[derive(Debug, Clone)]
pub(super) struct Tag {
    pub tagid: i64,
    pub tagname: String,
    pub users: Vec<String>,
    pub parties: Vec<i64>,
}

/// The whole contact directory of the simulated corp.
#[derive(Debug, Clone)]
pub(super) struct Directory {
    pub members: Vec<Member>,
    pub departments: Vec<Department>,
    pub tags: Vec<Tag>,
}

// One positional row per member keeps the seed table readable at a glance.
#[allow(clippy::too_many_arguments)]
fn member(
    userid: &str,
    name: &str,
    alias: &str,
    position: &str,
    gender: &'static str,
    department: &[i64],
    main_department: i64,
    is_leader_in_dept: &[i64],
    direct_leader: &[&str],
    status: i64,
    serial: u32,
) -> Member {
    let lower = userid.to_ascii_lowercase();
    Member {
        userid: userid.to_string(),
        name: name.to_string(),
        alias: alias.to_string(),
        position: position.to_string(),
        mobile: format!("1380013{serial:04}"),
        gender,
        email: format!("{lower}@example.com"),
        biz_mail: format!("{lower}@example.wecom.work"),
        telephone: format!("010-6000{serial:04}"),
        address: "北京市海淀区示例路1号".to_string(),
        department: department.to_vec(),
        order: department.iter().map(|_| 0).collect(),
        is_leader_in_dept: is_leader_in_dept.to_vec(),
        direct_leader: direct_leader.iter().map(|s| s.to_string()).collect(),
        main_department,
        status,
        employee_no: format!("E{serial:04}"),
    }
}

fn department(
    id: i64,
    name: &str,
    name_en: &str,
    leaders: &[&str],
    parentid: i64,
    order: i64,
) -> Department {
    Department {
        id,
        name: name.to_string(),
        name_en: name_en.to_string(),
        department_leader: leaders.iter().map(|s| s.to_string()).collect(),
        parentid,
        order,
    }
}

impl Directory {
    /// The seeded corp: 示例科技 with R&D, Platform and Marketing; members in every status WeCom
    /// knows (active, disabled, not activated, left) and one mixed-case userid to exercise the
    /// case-insensitive lookup of §6.
    pub fn seed() -> Self {
        let members = vec![
            member(
                "zhangsan",
                "张三",
                "Zhang San",
                "平台工程师",
                "1",
                &[3],
                3,
                &[0],
                &["ZhouBa"],
                STATUS_ACTIVE,
                1,
            ),
            member(
                "lisi",
                "李四",
                "Li Si",
                "市场经理",
                "2",
                &[4],
                4,
                &[1],
                &["ZhouBa"],
                STATUS_ACTIVE,
                2,
            ),
            member(
                "wangwu",
                "王五",
                "Wang Wu",
                "研发工程师",
                "1",
                &[2],
                2,
                &[0],
                &[],
                STATUS_DISABLED,
                3,
            ),
            member(
                "zhaoliu",
                "赵六",
                "Zhao Liu",
                "产品经理",
                "2",
                &[2, 4],
                2,
                &[0, 0],
                &[],
                STATUS_LEFT,
                4,
            ),
            member(
                "sunqi",
                "孙七",
                "Sun Qi",
                "实习生",
                "0",
                &[3],
                3,
                &[0],
                &["zhangsan"],
                STATUS_NOT_ACTIVATED,
                5,
            ),
            member(
                "ZhouBa",
                "周八",
                "Zhou Ba",
                "总经理",
                "1",
                &[1],
                1,
                &[1],
                &[],
                STATUS_ACTIVE,
                6,
            ),
        ];
        let departments = vec![
            department(1, "示例科技", "Example Tech", &["ZhouBa"], 0, 100_000_000),
            department(2, "研发", "R&D", &[], 1, 100_000_000),
            department(3, "平台", "Platform", &[], 2, 100_000_000),
            department(4, "市场", "Marketing", &["lisi"], 1, 99_999_000),
        ];
        let tags = vec![
            Tag {
                tagid: 1,
                tagname: "管理员".to_string(),
                users: vec!["zhangsan".to_string()],
                parties: vec![],
            },
            Tag {
                tagid: 2,
                tagname: "值班".to_string(),
                users: vec![],
                parties: vec![4],
            },
        ];
        Self {
            members,
            departments,
            tags,
        }
    }

    /// The member whose userid matches `userid` ignoring ASCII case (§6: userids are
    /// case-insensitive).
    pub fn member(&self, userid: &str) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| m.userid.eq_ignore_ascii_case(userid))
    }

    /// Mutable access to a member, same matching as [`Directory::member`].
    pub fn member_mut(&mut self, userid: &str) -> Option<&mut Member> {
        self.members
            .iter_mut()
            .find(|m| m.userid.eq_ignore_ascii_case(userid))
    }

    /// The department with this id.
    pub fn department(&self, id: i64) -> Option<&Department> {
        self.departments.iter().find(|d| d.id == id)
    }

    /// `id` and all its descendants, parents before children (`department/list` is recursive,
    /// §7), or `None` when `id` does not exist.
    pub fn subtree(&self, id: i64) -> Option<Vec<&Department>> {
        let root = self.department(id)?;
        let mut out = vec![root];
        let mut next = 0;
        // Breadth-first walk; the seeded tree has no cycles, and `out` only grows with children
        // of departments already in it, so each department is visited once.
        while next < out.len() {
            let parent = out[next].id;
            out.extend(
                self.departments
                    .iter()
                    .filter(|d| d.parentid == parent && d.id != parent),
            );
            next += 1;
        }
        Some(out)
    }

    /// The tag with this id.
    pub fn tag(&self, tagid: i64) -> Option<&Tag> {
        self.tags.iter().find(|t| t.tagid == tagid)
    }

    /// Display name of the member's main department, for the login pages.
    pub fn main_department_name(&self, member: &Member) -> &str {
        self.department(member.main_department)
            .map(|d| d.name.as_str())
            .unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_corp_matches_the_brief() {
        let d = Directory::seed();
        let zs = d.member("zhangsan").expect("zhangsan is seeded");
        assert_eq!((zs.name.as_str(), zs.main_department), ("张三", 3));
        assert_eq!(zs.department, vec![3]);
        assert_eq!(zs.email, "zhangsan@example.com");
        assert_eq!(d.member("wangwu").map(|m| m.status), Some(STATUS_DISABLED));
        assert_eq!(
            d.member("zhaoliu").map(|m| m.department.clone()),
            Some(vec![2, 4])
        );
        assert_eq!(d.member("zhaoliu").map(|m| m.status), Some(STATUS_LEFT));
        assert_eq!(d.department(3).map(|x| x.parentid), Some(2));
        assert_eq!(d.tag(2).map(|t| t.parties.clone()), Some(vec![4]));
    }

    #[test]
    fn userid_lookup_ignores_case() {
        let d = Directory::seed();
        assert_eq!(
            d.member("ZHANGSAN").map(|m| m.userid.as_str()),
            Some("zhangsan")
        );
        assert_eq!(
            d.member("zhouba").map(|m| m.userid.as_str()),
            Some("ZhouBa")
        );
        assert!(d.member("nobody").is_none());
    }

    #[test]
    fn department_subtree_is_recursive_and_parent_first() {
        let d = Directory::seed();
        let ids =
            |v: Option<Vec<&Department>>| v.map(|v| v.iter().map(|d| d.id).collect::<Vec<_>>());
        assert_eq!(ids(d.subtree(1)), Some(vec![1, 2, 4, 3]));
        assert_eq!(ids(d.subtree(2)), Some(vec![2, 3]));
        assert_eq!(ids(d.subtree(99)), None);
    }

    #[test]
    fn new_apps_do_not_receive_privacy_fields() {
        let d = Directory::seed();
        let zs = d.member("zhangsan").expect("seeded");
        let new_app = zs.user_get_fields(false, false);
        for key in [
            "avatar",
            "thumb_avatar",
            "gender",
            "mobile",
            "email",
            "biz_mail",
            "qr_code",
            "address",
        ] {
            assert!(!new_app.contains_key(key), "{key} must be withheld");
        }
        assert_eq!(new_app.get("name"), Some(&json!("张三")));
        let empty = zs.user_get_fields(false, true);
        assert_eq!(empty.get("email"), Some(&json!("")));
        let legacy = zs.user_get_fields(true, false);
        assert_eq!(legacy.get("email"), Some(&json!("zhangsan@example.com")));
        assert_eq!(legacy.get("gender"), Some(&json!("1")));
    }
}
