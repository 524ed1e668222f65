//! Tests of the simulator's directory reads (§7): departments and tags.

use super::*;

use super::{assert_err, get_json, ids, keys, set, setup, spec, token, token_for, user_get};
use crate::simulator::CorpSeed;

/// Fields of one department in `department/list` and `department/get` (§7).
const DEPARTMENT_FIELDS: &[&str] = &[
    "id",
    "name",
    "name_en",
    "department_leader",
    "parentid",
    "order",
];

#[tokio::test]
async fn department_endpoints_have_section7_shapes() {
    let (sim, _) = setup(|_| {});
    let t = token(&sim).await;
    let v = get_json(
        &sim,
        &format!("/cgi-bin/department/list?access_token={t}&id=2"),
    )
    .await;
    let list = v["department"].as_array().expect("array");
    assert_eq!(list.len(), 2, "recursive: 研发 and 平台");
    assert_eq!(keys(&list[0]), set(DEPARTMENT_FIELDS));
    assert_eq!(list[1]["name"], json!("平台"));
    let v = get_json(&sim, &format!("/cgi-bin/department/list?access_token={t}")).await;
    assert_eq!(v["department"].as_array().map(Vec::len), Some(4));

    let v = get_json(
        &sim,
        &format!("/cgi-bin/department/simplelist?access_token={t}&id=1"),
    )
    .await;
    let list = v["department_id"].as_array().expect("array");
    assert_eq!(list.len(), 4);
    assert_eq!(keys(&list[0]), set(&["id", "parentid", "order"]));

    let v = get_json(
        &sim,
        &format!("/cgi-bin/department/get?access_token={t}&id=4"),
    )
    .await;
    assert_eq!(v["department"]["name"], json!("市场"));
    assert_eq!(v["department"]["parentid"], json!(1));
    assert_eq!(keys(&v["department"]), set(DEPARTMENT_FIELDS));
}

#[tokio::test]
async fn invalid_department_id_is_60123() {
    let (sim, _) = setup(|_| {});
    let t = token(&sim).await;
    for uri in [
        format!("/cgi-bin/department/get?access_token={t}&id=99"),
        format!("/cgi-bin/department/get?access_token={t}&id=abc"),
        format!("/cgi-bin/department/get?access_token={t}"),
        format!("/cgi-bin/department/list?access_token={t}&id=99"),
        format!("/cgi-bin/department/simplelist?access_token={t}&id=99"),
    ] {
        assert_err(&get_json(&sim, &uri).await, 60123, "invalid department id");
    }
}

#[tokio::test]
async fn tag_endpoints_have_section7_shapes() {
    let (sim, _) = setup(|_| {});
    let t = token(&sim).await;
    let v = get_json(&sim, &format!("/cgi-bin/tag/list?access_token={t}")).await;
    assert_eq!(
        v["taglist"],
        json!([
            {"tagid": 1, "tagname": "管理员"},
            {"tagid": 2, "tagname": "值班"},
            {"tagid": 3, "tagname": "研发全员"}
        ])
    );
    let v = get_json(&sim, &format!("/cgi-bin/tag/get?access_token={t}&tagid=1")).await;
    assert_eq!(
        keys(&v),
        set(&["errcode", "errmsg", "tagname", "userlist", "partylist"])
    );
    assert_eq!(
        v["userlist"],
        json!([{"userid": "zhangsan", "name": "张三"}])
    );
    let v = get_json(&sim, &format!("/cgi-bin/tag/get?access_token={t}&tagid=2")).await;
    assert_eq!(v["partylist"], json!([4]));
    let v = get_json(&sim, &format!("/cgi-bin/tag/get?access_token={t}&tagid=9")).await;
    assert_err(&v, 40068, "invalid tagid");
    assert_eq!(v["userlist"], json!([]));
}

#[tokio::test]
async fn large_corp_builds_fast_and_answers_simplelist() {
    let (sim, _) = setup(|_| {});
    let started = std::time::Instant::now();
    sim.add_corp(
        "wwlarge",
        CorpSeed::Large { members: 50_000 },
        spec(1_000_002, "large-secret"),
    );
    let built = started.elapsed();
    assert!(
        built < std::time::Duration::from_secs(10),
        "built in {built:?}"
    );
    let t = token_for(&sim, "wwlarge", "large-secret").await;
    let started = std::time::Instant::now();
    let v = get_json(
        &sim,
        &format!("/cgi-bin/department/simplelist?access_token={t}"),
    )
    .await;
    let listed = ids(&v, "department_id", "id");
    assert_eq!(listed.len(), 2_000);
    assert_eq!(listed[0], 1);
    assert_eq!(v["department_id"][0]["parentid"], json!(0));
    let v = user_get(&sim, &t, "U49999").await;
    assert_eq!(v["userid"], json!("u49999"));
    let dept = v["department"][0].as_i64().expect("a department");
    let d = get_json(
        &sim,
        &format!("/cgi-bin/department/get?access_token={t}&id={dept}"),
    )
    .await;
    assert_eq!(d["errcode"], json!(0));
    let v = get_json(&sim, &format!("/cgi-bin/tag/get?access_token={t}&tagid=1")).await;
    assert_eq!(v["userlist"].as_array().map(Vec::len), Some(1_000));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // The primary corp is unchanged, and the large corp's agent id may repeat it.
    assert_eq!(
        user_get(&sim, &token(&sim).await, "zhangsan").await["name"],
        json!("张三")
    );
}

/// §7: a third-party app reads the id in place of a department's name; a 代开发 app reads no
/// `name` (nor `name_en`) until the corp's admin authorises names, then the names.
#[tokio::test]
async fn department_names_are_ids_for_third_party_apps_and_withheld_for_customised_ones() {
    use crate::simulator::corp::AppKey;
    use crate::simulator::SuiteKind;
    let (sim, _) = setup(|_| {});
    for (id, kind) in [
        ("wwsuite3rd", SuiteKind::ThirdParty),
        ("wwsuitedk", SuiteKind::Customised),
    ] {
        sim.add_suite(crate::simulator::suite::unreachable_suite(id, kind));
        let _ = sim
            .install_suite(id, CORP, VisibleRange::whole_corp())
            .await;
    }
    let token_of = |suite: &str| {
        let agent_id = sim.suite_agent_id(suite, CORP).expect("installed");
        sim.mint_token(AppKey {
            corp_id: CORP.into(),
            agent_id,
        })
        .0
    };
    let (third, custom) = (token_of("wwsuite3rd"), token_of("wwsuitedk"));
    let get = |t: &str| format!("/cgi-bin/department/get?access_token={t}&id=2");
    let d = get_json(&sim, &get(&third)).await;
    assert_eq!(d["department"]["name"], "2", "{d}");
    let d = get_json(&sim, &get(&custom)).await;
    assert_eq!(d["errcode"], 0, "{d}");
    assert!(d["department"].get("name").is_none(), "{d}");
    assert!(d["department"].get("name_en").is_none(), "{d}");
    let list = get_json(
        &sim,
        &format!("/cgi-bin/department/list?access_token={custom}"),
    )
    .await;
    assert!(list["department"][0].get("name").is_none(), "{list}");

    let _ = sim
        .authorise_department_names("wwsuitedk", CORP, false)
        .await;
    let d = get_json(&sim, &get(&custom)).await;
    assert_eq!(d["department"]["name"], "研发", "{d}");
}
