use super::*;

#[test]
fn seeded_corp_matches_the_brief() {
    let d = Directory::seed();
    let zs = d.member("zhangsan").expect("zhangsan is seeded");
    assert_eq!((zs.name.as_str(), zs.main_department), ("张三", 3));
    assert_eq!(zs.departments().collect::<Vec<_>>(), vec![3]);
    assert_eq!(zs.private.email, "zhangsan@example.com");
    assert_eq!(d.member("wangwu").map(|m| m.status), Some(STATUS_DISABLED));
    assert_eq!(
        d.member("zhaoliu").map(|m| m.departments().collect()),
        Some(vec![2, 4])
    );
    assert_eq!(d.member("zhaoliu").map(|m| m.status), Some(STATUS_LEFT));
    assert_eq!(d.department(3).map(|x| x.parentid), Some(2));
    assert_eq!(d.tag(2).map(|t| t.parties.clone()), Some(vec![4]));
    assert_eq!(
        d.tag(3).map(|t| t.parties.clone()),
        Some(vec![2]),
        "a tag on 研发, the parent of zhangsan's 平台"
    );
}

#[test]
fn second_corp_has_another_zhangsan() {
    let (a, b) = (Directory::seed(), Directory::second());
    let (za, zb) = (
        a.member("zhangsan").expect("seeded"),
        b.member("zhangsan").expect("seeded"),
    );
    assert_eq!(zb.name, "张三丰");
    assert_ne!(za.private.email, zb.private.email);
    assert_ne!(za.private.mobile, zb.private.mobile);
    assert_ne!(za.avatar(), zb.avatar());
    assert_ne!(za.placements, zb.placements);
    assert!(b.member("lisi").is_some());
    assert_eq!(b.corp_name(), "远航贸易");
    assert_eq!(b.tags().len(), 1);
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
fn rename_keeps_the_index_and_tags_in_step() {
    let mut d = Directory::seed();
    assert_eq!(
        d.rename_member("ZHANGSAN", "zhangsan001").as_deref(),
        Some("zhangsan")
    );
    assert!(d.member("zhangsan").is_none());
    assert_eq!(
        d.member("ZhangSan001").map(|m| m.name.as_str()),
        Some("张三")
    );
    assert_eq!(
        d.tag(1).map(|t| t.users.clone()),
        Some(vec!["zhangsan001".to_string()])
    );
    assert!(d.rename_member("nobody", "x").is_none());
}

#[test]
fn department_subtree_is_recursive_and_parent_first() {
    let d = Directory::seed();
    let ids = |v: Option<Vec<&Department>>| v.map(|v| v.iter().map(|d| d.id).collect::<Vec<_>>());
    assert_eq!(ids(d.subtree(1)), Some(vec![1, 2, 4, 3]));
    assert_eq!(ids(d.subtree(2)), Some(vec![2, 3]));
    assert_eq!(ids(d.subtree(99)), None);
    let mut e: Vec<i64> = d.expand(&[2, 99]).into_iter().collect();
    e.sort();
    assert_eq!(e, vec![2, 3]);
}

#[test]
fn large_corp_is_deterministic_indexed_and_at_most_five_deep() {
    let d = Directory::large(5_000);
    assert_eq!(d.members().len(), 5_000);
    assert_eq!(d.departments().len(), 200);
    assert_eq!(
        d.member("U04999").map(|m| m.userid.as_str()),
        Some("u04999")
    );
    assert_eq!(d.department(1).map(|x| x.parentid), Some(0));
    for dept in d.departments() {
        let mut level = 1;
        let mut at = dept.id;
        while at != 1 {
            at = d.department(at).expect("parent exists").parentid;
            level += 1;
        }
        assert!(
            level <= MAX_DEPTH,
            "department {} at level {level}",
            dept.id
        );
    }
    for m in d.members() {
        assert!(m.departments().all(|x| d.department(x).is_some()));
    }
    let again = Directory::large(5_000);
    assert_eq!(
        again
            .member("u01234")
            .map(|m| (m.name.clone(), m.placements.clone())),
        d.member("u01234")
            .map(|m| (m.name.clone(), m.placements.clone()))
    );
    assert_eq!(d.subtree(1).map(|v| v.len()), Some(200));
}

#[test]
fn new_apps_do_not_receive_privacy_fields() {
    let d = Directory::seed();
    let zs = d.member("zhangsan").expect("seeded");
    let all = |_: i64| true;
    let new_app = zs.user_get_fields("示例科技", false, false, &all);
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
    let empty = zs.user_get_fields("示例科技", false, true, &all);
    assert_eq!(empty.get("email"), Some(&json!("")));
    let legacy = zs.user_get_fields("示例科技", true, false, &all);
    assert_eq!(legacy.get("email"), Some(&json!("zhangsan@example.com")));
    assert_eq!(legacy.get("gender"), Some(&json!("1")));
}

#[test]
fn user_get_department_lists_only_visible_departments_in_step() {
    let d = Directory::seed();
    let zl = d.member("zhaoliu").expect("seeded");
    let only_marketing = |id: i64| id == 4;
    let f = zl.user_get_fields("示例科技", false, false, &only_marketing);
    assert_eq!(f.get("department"), Some(&json!([4])));
    assert_eq!(f.get("order"), Some(&json!([0])));
    assert_eq!(f.get("is_leader_in_dept"), Some(&json!([0])));
    assert_eq!(f.get("main_department"), Some(&json!(2)));
}

#[test]
fn remove_keeps_the_index_and_tags_in_step() {
    let mut d = Directory::seed();
    let before = d.members().len();
    let lisi = d.member("lisi").map(|m| m.name.clone());
    assert_eq!(
        d.remove_member("ZHANGSAN").map(|m| m.userid),
        Some("zhangsan".to_string())
    );
    assert!(d.member("zhangsan").is_none());
    assert_eq!(d.members().len(), before - 1);
    assert_eq!(
        d.member("lisi").map(|m| m.name.clone()),
        lisi,
        "others still found"
    );
    assert!(d
        .tags()
        .iter()
        .all(|t| !t.users.iter().any(|u| u == "zhangsan")));
    assert!(d.remove_member("zhangsan").is_none());
}
