//! The contact directory of one simulated corp: departments, members and tags (seeded, or
//! generated for a large corp), indexed for fast lookups, and the JSON shapes WeCom gives them
//! (wecom-api.md §6 `user/get`, §5 `getuserdetail`, §7 departments/tags, §12 linked members).

mod seed;

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use seed::{
    department, member, tag, without_email, SplitMix, DEMO_PROFILE, GIVEN_NAMES, LEVELS, MAX_DEPTH,
    POSITIONS, SECOND_PROFILE, SURNAMES, TOPICS,
};

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

/// One member of a simulated corp.
#[derive(Debug, Clone)]
pub(super) struct Member {
    pub userid: String,
    pub name: String,
    /// WeCom's `alias`, used here for the member's English name.
    pub alias: String,
    pub position: String,
    pub telephone: String,
    /// The member's departments, each with its `order` and `is_leader_in_dept` entry.
    pub placements: Vec<Placement>,
    pub main_department: i64,
    pub direct_leader: Vec<String>,
    pub private: Private,
    pub status: i64,
    pub employee_no: String,
    /// Distinguishes the avatar and QR links of two corps' members who share a userid.
    pub pic_id: String,
}

/// One department of a member. §6 sends `department`, `order` and `is_leader_in_dept` as
/// three arrays in step; kept together here, they cannot fall out of step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Placement {
    pub department: i64,
    /// The member's sort order in the department.
    pub order: i64,
    pub is_leader: bool,
}

impl Placement {
    /// The member in `department`, not leading it, in the default order 0.
    pub fn member_of(department: i64) -> Self {
        Self {
            department,
            order: 0,
            is_leader: false,
        }
    }
}

/// The sensitive fields of a member: with the avatar and QR code, what `getuserdetail` gives
/// (§5) and what `user/get` withholds from apps created after 2022-06-20 (§6).
#[derive(Debug, Clone)]
pub(super) struct Private {
    /// `"0"` unknown, `"1"` male, `"2"` female (a string, §5/§6).
    pub gender: &'static str,
    pub mobile: String,
    pub email: String,
    pub biz_mail: String,
    pub address: String,
}

impl Member {
    /// The ids of the member's departments.
    pub fn departments(&self) -> impl Iterator<Item = i64> + '_ {
        self.placements.iter().map(|p| p.department)
    }

    /// The sensitive fields (§5, §6), all strings, under WeCom's names.
    fn private_fields(&self) -> [(&'static str, String); 7] {
        let p = &self.private;
        [
            ("gender", p.gender.to_string()),
            ("avatar", self.avatar()),
            ("qr_code", self.qr_code()),
            ("mobile", p.mobile.clone()),
            ("email", p.email.clone()),
            ("biz_mail", p.biz_mail.clone()),
            ("address", p.address.clone()),
        ]
    }

    /// The member's avatar URL. WeCom serves avatars from its own image host; the simulator only
    /// hands out URLs of the same shape and never serves them.
    pub fn avatar(&self) -> String {
        format!("https://wework.qpic.cn/wwpic/{}/0", self.pic_id)
    }

    /// The small avatar (`thumb_avatar`, §6).
    pub fn thumb_avatar(&self) -> String {
        format!("https://wework.qpic.cn/wwpic/{}/100", self.pic_id)
    }

    /// The member's personal QR code link (`qr_code`, §5/§6).
    pub fn qr_code(&self) -> String {
        format!(
            "https://open.work.weixin.qq.com/wwopen/userQRCode?vcode={}",
            self.pic_id
        )
    }

    /// The `user/get` body fields for this member (§6), as seen by an app that may view the
    /// departments for which `sees_department` is true.
    ///
    /// `department` lists only departments the app may view (§6), and `order` and
    /// `is_leader_in_dept`, which run parallel to it, are cut the same way. `main_department`
    /// is sent as it is even when the app cannot view it: the reference does not say it is
    /// filtered, and an id the app cannot resolve is the stricter case for a client.
    ///
    /// `legacy_app == false` models a self-built app created after 2022-06-20, which no longer
    /// receives avatar, gender, mobile, email, biz_mail, qr_code or address. Whether WeCom drops
    /// those keys or sends them empty is unconfirmed: by default they are dropped (a client that
    /// needs them must then cope with their absence, which also covers the empty case);
    /// `privacy_fields_empty` sends them as empty strings instead. `thumb_avatar` is withheld
    /// together with `avatar`: it is the same picture, and a client must not rely on it.
    pub fn user_get_fields(
        &self,
        corp_name: &str,
        legacy_app: bool,
        privacy_fields_empty: bool,
        sees_department: &dyn Fn(i64) -> bool,
    ) -> Map<String, Value> {
        let seen: Vec<&Placement> = self
            .placements
            .iter()
            .filter(|p| sees_department(p.department))
            .collect();
        let department: Vec<i64> = seen.iter().map(|p| p.department).collect();
        let order: Vec<i64> = seen.iter().map(|p| p.order).collect();
        let is_leader: Vec<i64> = seen.iter().map(|p| i64::from(p.is_leader)).collect();
        let mut m = Map::new();
        m.insert("userid".into(), json!(self.userid));
        m.insert("name".into(), json!(self.name));
        m.insert("department".into(), json!(department));
        m.insert("order".into(), json!(order));
        m.insert("position".into(), json!(self.position));
        m.insert("is_leader_in_dept".into(), json!(is_leader));
        m.insert("direct_leader".into(), json!(self.direct_leader));
        m.insert("telephone".into(), json!(self.telephone));
        m.insert("alias".into(), json!(self.alias));
        m.insert("main_department".into(), json!(self.main_department));
        m.insert("extattr".into(), self.extattr());
        m.insert("status".into(), json!(self.status));
        m.insert("external_position".into(), json!(self.position));
        m.insert(
            "external_profile".into(),
            json!({"external_corp_name": corp_name, "external_attr": []}),
        );
        // `open_userid` is only returned to third-party apps (§6, §8): a self-built app's
        // `user/get` does not carry it.
        let private = self.private_fields();
        let thumb = ("thumb_avatar", self.thumb_avatar());
        for (key, value) in private.into_iter().chain([thumb]) {
            if legacy_app {
                m.insert(key.into(), json!(value));
            } else if privacy_fields_empty {
                m.insert(key.into(), json!(""));
            }
        }
        m
    }

    fn extattr(&self) -> Value {
        json!({"attrs": [{"type": 0, "name": "工号", "text": {"value": self.employee_no}}]})
    }

    /// The `user_info` of `linkedcorp/user/get` for this member of linked corp `corp_id`
    /// (§12). The field list is the confirmed one of `linkedcorp/user/list`: `userid`, `corpid`,
    /// `name`, `department` (strings `"LINKEDID/DEPTID"`, only the shared departments, given in
    /// `departments`), `mobile`, `telephone`, `email`, `position`, `extattr`.
    ///
    /// Unconfirmed (§12) whether `userid` inside is qualified: the default is the bare userid
    /// beside `corpid`, the stricter form (a client must join them itself);
    /// `qualified_userid` sends `CORPID/USERID` instead. There is no `status` in the confirmed
    /// list, so none is sent: a disabled linked member looks like an active one, and one who
    /// left the linked corp is not found (60111).
    pub fn linked_user_info(
        &self,
        corp_id: &str,
        departments: &[i64],
        qualified_userid: bool,
    ) -> Value {
        let userid = if qualified_userid {
            format!("{corp_id}/{}", self.userid)
        } else {
            self.userid.clone()
        };
        let department: Vec<String> = departments
            .iter()
            .map(|d| format!("{corp_id}/{d}"))
            .collect();
        json!({
            "userid": userid,
            "corpid": corp_id,
            "name": self.name,
            "department": department,
            "mobile": self.private.mobile,
            "telephone": self.telephone,
            "email": self.private.email,
            "position": self.position,
            "extattr": {"attrs": []},
        })
    }

    /// The `getuserdetail` body fields for this member (§5): all strings.
    pub fn detail_fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("userid".into(), json!(self.userid));
        for (key, value) in self.private_fields() {
            m.insert(key.into(), json!(value));
        }
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

    /// The `linkedcorp/department/list` object of a department of linked corp `corp_id`
    /// (unconfirmed shape, see `api::linkedcorp_department_list`).
    pub fn to_linked_json(&self, corp_id: &str) -> Value {
        json!({
            "department_id": format!("{corp_id}/{}", self.id),
            "department_name": self.name,
            "parentid": format!("{corp_id}/{}", self.parentid),
            "order": self.order,
        })
    }
}

/// One tag with its members and departments.
///
/// `parties` is data, not a rule: it lists the department ids an admin tagged, nothing more.
/// `tag/get` answers them as `partylist` unexpanded; whether a member of a *sub*-department of
/// a tagged department counts as tagged is the client's decision (§7, unconfirmed). The
/// simulator itself expands tagged departments recursively only where WeCom documents that it
/// does: for the app's visible range (see `corp::Scope`).
#[derive(Debug, Clone)]
pub(super) struct Tag {
    pub tagid: i64,
    pub tagname: String,
    pub users: Vec<String>,
    pub parties: Vec<i64>,
}

/// The whole contact directory of one simulated corp, with indexes so that a corp of 50,000
/// members answers lookups in constant time.
#[derive(Debug, Clone)]
pub(super) struct Directory {
    members: Vec<Member>,
    departments: Vec<Department>,
    tags: Vec<Tag>,
    /// Lower-cased userid → index into `members` (§6: userids are case-insensitive).
    member_index: HashMap<String, usize>,
    /// Department id → index into `departments`.
    department_index: HashMap<i64, usize>,
    /// Department id → its children's ids, in `departments` order.
    children: HashMap<i64, Vec<i64>>,
}

impl Directory {
    /// A directory of these members, departments and tags, indexed.
    fn new(members: Vec<Member>, departments: Vec<Department>, tags: Vec<Tag>) -> Self {
        let member_index = members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.userid.to_ascii_lowercase(), i))
            .collect();
        let department_index = departments
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id, i))
            .collect();
        let mut children: HashMap<i64, Vec<i64>> = HashMap::new();
        for d in &departments {
            if d.parentid != d.id {
                children.entry(d.parentid).or_default().push(d.id);
            }
        }
        Self {
            members,
            departments,
            tags,
            member_index,
            department_index,
            children,
        }
    }

    /// The seeded demo corp: 示例科技 with R&D, Platform and Marketing; members in every status
    /// WeCom knows (active, disabled, not activated, left), one without any e-mail address, and
    /// one mixed-case userid to exercise
    /// the case-insensitive lookup of §6. Tag 3 is set on 研发 (2), the parent of 平台 (3), so
    /// that a client's rule for members of sub-departments of a tagged department (§7) meets a
    /// real case.
    pub fn seed() -> Self {
        let p = &DEMO_PROFILE;
        #[rustfmt::skip]
        let members = vec![
            member(p, "zhangsan", "张三", "Zhang San", "平台工程师", "1", &[3], 3, &[0], &["ZhouBa"], STATUS_ACTIVE, 1),
            member(p, "lisi", "李四", "Li Si", "市场经理", "2", &[4], 4, &[1], &["ZhouBa"], STATUS_ACTIVE, 2),
            member(p, "wangwu", "王五", "Wang Wu", "研发工程师", "1", &[2], 2, &[0], &[], STATUS_DISABLED, 3),
            member(p, "zhaoliu", "赵六", "Zhao Liu", "产品经理", "2", &[2, 4], 2, &[0, 0], &[], STATUS_LEFT, 4),
            member(p, "sunqi", "孙七", "Sun Qi", "实习生", "0", &[3], 3, &[0], &["zhangsan"], STATUS_NOT_ACTIVATED, 5),
            member(p, "ZhouBa", "周八", "Zhou Ba", "总经理", "1", &[1], 1, &[1], &[], STATUS_ACTIVE, 6),
            // A member with no e-mail at all (neither personal nor corporate).
            without_email(member(p, "qianjiu", "钱九", "Qian Jiu", "市场专员", "2", &[4], 4, &[0], &["lisi"], STATUS_ACTIVE, 7)),
        ];
        let departments = vec![
            department(1, "示例科技", "Example Tech", &["ZhouBa"], 0, 100_000_000),
            department(2, "研发", "R&D", &[], 1, 100_000_000),
            department(3, "平台", "Platform", &[], 2, 100_000_000),
            department(4, "市场", "Marketing", &["lisi"], 1, 99_999_000),
        ];
        let tags = vec![
            tag(1, "管理员", &["zhangsan"], &[]),
            tag(2, "值班", &[], &[4]),
            tag(3, "研发全员", &[], &[2]),
        ];
        Self::new(members, departments, tags)
    }

    /// A second, unrelated company, 远航贸易, whose directory also has a `zhangsan` — another
    /// person (张三丰, other e-mail, phone and departments) — and a `lisi`, so that anything
    /// keyed by userid alone mixes the two up visibly (§12).
    pub fn second() -> Self {
        let p = &SECOND_PROFILE;
        #[rustfmt::skip]
        let members = vec![
            member(p, "zhangsan", "张三丰", "Zhang Sanfeng", "销售总监", "1", &[2], 2, &[1], &[], STATUS_ACTIVE, 1),
            member(p, "lisi", "李思", "Li Si", "会计", "2", &[4], 4, &[0], &["zhangsan"], STATUS_ACTIVE, 2),
            member(p, "wangfang", "王芳", "Wang Fang", "销售代表", "2", &[3], 3, &[0], &["zhangsan"], STATUS_ACTIVE, 3),
        ];
        let departments = vec![
            department(1, "远航贸易", "Yuanhang Trading", &[], 0, 100_000_000),
            department(2, "销售", "Sales", &["zhangsan"], 1, 100_000_000),
            department(3, "华东区", "East China", &[], 2, 100_000_000),
            department(4, "财务", "Finance", &[], 1, 99_999_000),
        ];
        let tags = vec![tag(1, "销售精英", &["wangfang"], &[3])];
        Self::new(members, departments, tags)
    }

    /// A generated corp of `members` members (`u00001` …) over a department tree of about one
    /// department per 25 members, at most [`MAX_DEPTH`] levels deep, with three tags. The same
    /// `members` always gives the same corp.
    pub fn large(members: usize) -> Self {
        let mut rng = SplitMix(0x5EED_0000 ^ members as u64);
        let dept_count = (members / 25).max(1);
        let mut departments = Vec::with_capacity(dept_count);
        let mut depth = Vec::with_capacity(dept_count);
        departments.push(department(
            1,
            "大型集团",
            "Large Group",
            &["u00001"],
            0,
            100_000_000,
        ));
        depth.push(1usize);
        // Departments that may still take children (depth below MAX_DEPTH), by index.
        let mut open: Vec<usize> = vec![0];
        for i in 1..dept_count {
            let id = i as i64 + 1;
            // The first ten hang under the root (the corp's divisions); the rest anywhere open.
            let parent_index = if i <= 10 {
                0
            } else {
                open[rng.below(open.len())]
            };
            let level = depth[parent_index] + 1;
            let (topic, topic_en) = TOPICS[rng.below(TOPICS.len())];
            let (suffix, suffix_en) = LEVELS[level];
            let name = format!("{topic}{id}{suffix}");
            let name_en = format!("{topic_en} {suffix_en} {id}");
            let parentid = departments[parent_index].id;
            let order = 100_000_000 - (i as i64 % 1000) * 1000;
            departments.push(department(id, &name, name_en.trim(), &[], parentid, order));
            depth.push(level);
            if level < MAX_DEPTH {
                open.push(i);
            }
        }
        let mut list = Vec::with_capacity(members);
        for n in 1..=members {
            let userid = format!("u{n:05}");
            let (surname, surname_en) = SURNAMES[rng.below(SURNAMES.len())];
            let (given, given_en) = GIVEN_NAMES[rng.below(GIVEN_NAMES.len())];
            let main = if n == 1 || dept_count == 1 {
                1
            } else {
                2 + rng.below(dept_count - 1) as i64
            };
            let mut department = vec![main];
            // One member in forty also belongs to a second department.
            if n % 40 == 0 && dept_count > 2 {
                let other = 2 + rng.below(dept_count - 1) as i64;
                if other != main {
                    department.push(other);
                }
            }
            let status = match n {
                _ if n % 211 == 0 => STATUS_LEFT,
                _ if n % 101 == 0 => STATUS_NOT_ACTIVATED,
                _ if n % 97 == 0 => STATUS_DISABLED,
                _ => STATUS_ACTIVE,
            };
            let gender = if rng.below(2) == 0 { "1" } else { "2" };
            list.push(Member {
                name: format!("{surname}{given}"),
                alias: format!("{given_en} {surname_en}"),
                position: POSITIONS[rng.below(POSITIONS.len())].to_string(),
                telephone: format!("0755-{n:08}"),
                placements: department.into_iter().map(Placement::member_of).collect(),
                main_department: main,
                direct_leader: Vec::new(),
                private: Private {
                    gender,
                    mobile: format!("13{n:09}"),
                    email: format!("{userid}@large.example"),
                    biz_mail: format!("{userid}@large.wecom.work"),
                    address: "深圳市南山区大型路100号".to_string(),
                },
                status,
                employee_no: format!("L{n:06}"),
                pic_id: format!("sim3_{userid}"),
                userid,
            });
        }
        // A big tag of every 50th member, a tag on a whole division (recursive for
        // visibility, §7), and a small on-call tag mixing members and a department.
        let managers: Vec<String> = list.iter().step_by(50).map(|m| m.userid.clone()).collect();
        let on_call: Vec<String> = list.iter().take(10).map(|m| m.userid.clone()).collect();
        let mut tags = vec![Tag {
            tagid: 1,
            tagname: "经理".to_string(),
            users: managers,
            parties: vec![],
        }];
        if dept_count > 1 {
            tags.push(tag(2, "事业部全员", &[], &[2]));
        }
        tags.push(Tag {
            tagid: 3,
            tagname: "值班".to_string(),
            users: on_call,
            parties: if dept_count > 1 {
                vec![dept_count as i64]
            } else {
                vec![]
            },
        });
        Self::new(list, departments, tags)
    }

    /// The corp's name: its root department's.
    pub fn corp_name(&self) -> &str {
        self.department(1).map(|d| d.name.as_str()).unwrap_or("")
    }

    /// Every member, in directory order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Every department, in directory order.
    pub fn departments(&self) -> &[Department] {
        &self.departments
    }

    /// Every tag.
    pub fn tags(&self) -> &[Tag] {
        &self.tags
    }

    /// The member whose userid matches `userid` ignoring ASCII case (§6: userids are
    /// case-insensitive).
    pub fn member(&self, userid: &str) -> Option<&Member> {
        let i = *self.member_index.get(&userid.to_ascii_lowercase())?;
        self.members.get(i)
    }

    /// Mutable access to a member, same matching as [`Directory::member`]. The userid must not
    /// be changed through it (see [`Directory::rename_member`]).
    pub fn member_mut(&mut self, userid: &str) -> Option<&mut Member> {
        let i = *self.member_index.get(&userid.to_ascii_lowercase())?;
        self.members.get_mut(i)
    }

    /// Renames member `old` to `new` (an admin changing a UserId, §8), in tags too; the old
    /// userid as it was spelled, or `None` when `old` is no member.
    pub fn rename_member(&mut self, old: &str, new: &str) -> Option<String> {
        let i = self.member_index.remove(&old.to_ascii_lowercase())?;
        let member = self.members.get_mut(i)?;
        let old_id = std::mem::replace(&mut member.userid, new.to_string());
        self.member_index.insert(new.to_ascii_lowercase(), i);
        for tag in &mut self.tags {
            for u in &mut tag.users {
                if u.eq_ignore_ascii_case(&old_id) {
                    *u = new.to_string();
                }
            }
        }
        Some(old_id)
    }

    /// Removes member `userid` (an admin deleting them, §11 `delete_user`), from tags too; the
    /// member as they were, or `None` when there is no such member.
    pub fn remove_member(&mut self, userid: &str) -> Option<Member> {
        let i = *self.member_index.get(&userid.to_ascii_lowercase())?;
        let member = self.members.remove(i);
        for tag in &mut self.tags {
            tag.users
                .retain(|u| !u.eq_ignore_ascii_case(&member.userid));
        }
        self.member_index = self
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.userid.to_ascii_lowercase(), i))
            .collect();
        Some(member)
    }

    /// The department with this id.
    pub fn department(&self, id: i64) -> Option<&Department> {
        self.departments.get(*self.department_index.get(&id)?)
    }

    /// The direct children of department `id`.
    pub fn children(&self, id: i64) -> &[i64] {
        self.children.get(&id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// `id` and all its descendants, parents before children (`department/list` is recursive,
    /// §7), or `None` when `id` does not exist.
    pub fn subtree(&self, id: i64) -> Option<Vec<&Department>> {
        let root = self.department(id)?;
        let mut out = vec![root];
        let mut next = 0;
        // Breadth-first walk; `out` only grows with children of departments already in it,
        // and the children index never lists a department under itself.
        while next < out.len() {
            let parent = out[next].id;
            out.extend(
                self.children(parent)
                    .iter()
                    .filter_map(|c| self.department(*c)),
            );
            next += 1;
        }
        Some(out)
    }

    /// The ids of `roots` and all their descendants (unknown ids are skipped).
    pub fn expand(&self, roots: &[i64]) -> std::collections::HashSet<i64> {
        let mut seen = std::collections::HashSet::new();
        let mut stack: Vec<i64> = roots
            .iter()
            .copied()
            .filter(|d| self.department(*d).is_some())
            .collect();
        while let Some(d) = stack.pop() {
            if seen.insert(d) {
                stack.extend_from_slice(self.children(d));
            }
        }
        seen
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
mod tests;
