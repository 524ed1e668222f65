//! What seeded directories are made of: the contact profile of each seeded corp, member,
//! department and tag builders, and the deterministic name generator of large corps.

use super::{Department, Member, Placement, Private, Tag};

/// How a seeded corp's contact details are written, so that two corps' members never share
/// an e-mail, a phone number or an avatar.
pub(super) struct Profile {
    email_domain: &'static str,
    mail_domain: &'static str,
    mobile_prefix: &'static str,
    telephone_prefix: &'static str,
    address: &'static str,
    employee_prefix: &'static str,
    pic_prefix: &'static str,
}

pub(super) const DEMO_PROFILE: Profile = Profile {
    email_domain: "example.com",
    mail_domain: "example.wecom.work",
    mobile_prefix: "1380013",
    telephone_prefix: "010-6000",
    address: "北京市海淀区示例路1号",
    employee_prefix: "E",
    pic_prefix: "sim",
};

pub(super) const SECOND_PROFILE: Profile = Profile {
    email_domain: "yuanhang.example",
    mail_domain: "yuanhang.wecom.work",
    mobile_prefix: "1390021",
    telephone_prefix: "021-5000",
    address: "上海市浦东新区远航路8号",
    employee_prefix: "YH",
    pic_prefix: "sim2",
};

// One positional row per member keeps the seed tables readable at a glance.
#[allow(clippy::too_many_arguments)]
pub(super) fn member(
    p: &Profile,
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
    let placements = department
        .iter()
        .zip(is_leader_in_dept)
        .map(|(&department, &leads)| Placement {
            is_leader: leads == 1,
            ..Placement::member_of(department)
        })
        .collect();
    Member {
        userid: userid.to_string(),
        name: name.to_string(),
        alias: alias.to_string(),
        position: position.to_string(),
        telephone: format!("{}{serial:04}", p.telephone_prefix),
        placements,
        main_department,
        direct_leader: direct_leader.iter().map(|s| s.to_string()).collect(),
        private: Private {
            gender,
            mobile: format!("{}{serial:04}", p.mobile_prefix),
            email: format!("{lower}@{}", p.email_domain),
            biz_mail: format!("{lower}@{}", p.mail_domain),
            address: p.address.to_string(),
        },
        status,
        employee_no: format!("{}{serial:04}", p.employee_prefix),
        pic_id: format!("{}_{userid}", p.pic_prefix),
    }
}

/// `member` with neither a personal nor a corporate e-mail address.
pub(super) fn without_email(mut member: Member) -> Member {
    member.private.email.clear();
    member.private.biz_mail.clear();
    member
}

pub(super) fn department(
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

pub(super) fn tag(tagid: i64, tagname: &str, users: &[&str], parties: &[i64]) -> Tag {
    Tag {
        tagid,
        tagname: tagname.to_string(),
        users: users.iter().map(|s| s.to_string()).collect(),
        parties: parties.to_vec(),
    }
}

/// SplitMix64: a tiny deterministic generator, so that a generated corp is the same on every
/// run (tests and benchmarks compare like with like).
pub(super) struct SplitMix(pub(super) u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`); the modulo bias is irrelevant here.
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub(super) const SURNAMES: &[(&str, &str)] = &[
    ("王", "Wang"),
    ("李", "Li"),
    ("张", "Zhang"),
    ("刘", "Liu"),
    ("陈", "Chen"),
    ("杨", "Yang"),
    ("赵", "Zhao"),
    ("黄", "Huang"),
    ("周", "Zhou"),
    ("吴", "Wu"),
    ("徐", "Xu"),
    ("孙", "Sun"),
    ("胡", "Hu"),
    ("朱", "Zhu"),
    ("高", "Gao"),
    ("林", "Lin"),
];

pub(super) const GIVEN_NAMES: &[(&str, &str)] = &[
    ("伟", "Wei"),
    ("芳", "Fang"),
    ("娜", "Na"),
    ("敏", "Min"),
    ("静", "Jing"),
    ("强", "Qiang"),
    ("磊", "Lei"),
    ("洋", "Yang"),
    ("艳", "Yan"),
    ("勇", "Yong"),
    ("军", "Jun"),
    ("杰", "Jie"),
    ("涛", "Tao"),
    ("明", "Ming"),
    ("超", "Chao"),
    ("秀英", "Xiuying"),
    ("建华", "Jianhua"),
    ("晓东", "Xiaodong"),
];

pub(super) const TOPICS: &[(&str, &str)] = &[
    ("研发", "R&D"),
    ("销售", "Sales"),
    ("市场", "Marketing"),
    ("运营", "Operations"),
    ("客服", "Support"),
    ("财务", "Finance"),
    ("人力", "HR"),
    ("供应链", "Supply Chain"),
    ("质量", "Quality"),
    ("数据", "Data"),
];

/// Department name suffix by depth (root = 1).
pub(super) const LEVELS: &[(&str, &str)] = &[
    ("", ""),
    ("", ""),
    ("事业部", "Division"),
    ("中心", "Center"),
    ("部", "Dept"),
    ("组", "Team"),
];

pub(super) const POSITIONS: &[&str] = &["工程师", "经理", "专员", "主管", "分析师", "顾问", "助理"];

/// Deepest department level of a generated corp (root = 1).
pub(super) const MAX_DEPTH: usize = 5;
