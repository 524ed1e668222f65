//! Tests of the simulator's JSON API, by area, with the helpers they share.

mod corps;
mod directory;
mod identity;
mod token;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request};
use tower::ServiceExt;

use super::*;
use crate::clock::ManualClock;
use crate::simulator::{AppSpec, SimulatorConfig, VisibleRange};

const CORP: &str = "ww7f3c2a1b9d8e6f50";

const SECRET: &str = "demo-wecom-app-secret";

const CB: &str = "http://app.example.com:8080/callback";

fn setup(config: impl FnOnce(&mut SimulatorConfig)) -> (Simulator, ManualClock) {
    let clock = ManualClock::new(1_700_000_000);
    let mut c = SimulatorConfig::demo("http://127.0.0.1:9/wecom-sim");
    config(&mut c);
    (Simulator::new(c, Arc::new(clock.clone())), clock)
}

async fn send(sim: &Simulator, req: Request<Body>) -> (StatusCode, Vec<u8>) {
    let res = match sim.router().oneshot(req).await {
        Ok(res) => res,
        Err(never) => match never {},
    };
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body is readable");
    (status, body.to_vec())
}

async fn get_json(sim: &Simulator, uri: &str) -> Value {
    let req = Request::get(uri)
        .body(Body::empty())
        .expect("valid request");
    let (status, body) = send(sim, req).await;
    assert_eq!(status, StatusCode::OK, "WeCom answers HTTP 200 for {uri}");
    serde_json::from_slice(&body).expect("JSON body")
}

async fn post_json(sim: &Simulator, uri: &str, body: &str) -> Value {
    let req = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("valid request");
    let (status, body) = send(sim, req).await;
    assert_eq!(status, StatusCode::OK);
    serde_json::from_slice(&body).expect("JSON body")
}

/// An `access_token` of the primary app.
async fn token(sim: &Simulator) -> String {
    token_for(sim, CORP, SECRET).await
}

/// [`setup`], with an `access_token` of the primary app.
async fn ready(config: impl FnOnce(&mut SimulatorConfig)) -> (Simulator, ManualClock, String) {
    let (sim, clock) = setup(config);
    let t = token(&sim).await;
    (sim, clock, t)
}

/// GETs `/cgi-bin/{api}` (which may carry a query) with `access_token` `t` added.
async fn read(sim: &Simulator, t: &str, api: &str) -> Value {
    let sep = if api.contains('?') { '&' } else { '?' };
    get_json(sim, &format!("/cgi-bin/{api}{sep}access_token={t}")).await
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn assert_err(v: &Value, code: i64, msg: &str) {
    assert_eq!(v["errcode"], json!(code), "{v}");
    let m = v["errmsg"].as_str().unwrap_or("");
    assert!(m.starts_with(&format!("{msg}, hint: [")), "{v}");
    assert!(
        m.ends_with(&format!(
            "more info at https://open.work.weixin.qq.com/devtool/query?e={code}"
        )),
        "{v}"
    );
}

/// 60011, the answer to every read outside the app's visible range (§6, §7).
#[track_caller]
fn assert_no_privilege(v: &Value) {
    assert_err(
        v,
        60011,
        "no privilege to access/modify contact/party/agent",
    );
}

const AGENT: i64 = 1_000_002;

const SECOND: &str = "ww2b2b2b2b2b2b2b2b";

const SECOND_SECRET: &str = "second-corp-app-secret";

const LINKED: &str = "wwl1nked0c0rp00001";

fn spec(agent_id: i64, secret: &str) -> AppSpec {
    AppSpec {
        agent_id,
        secret: secret.to_string(),
        visible_range: VisibleRange::whole_corp(),
        trusted_domains: Vec::new(),
        legacy_app: false,
    }
}

async fn token_for(sim: &Simulator, corp: &str, secret: &str) -> String {
    let v = get_json(
        sim,
        &format!("/cgi-bin/gettoken?corpid={corp}&corpsecret={secret}"),
    )
    .await;
    v["access_token"].as_str().expect("token").to_string()
}

async fn user_get(sim: &Simulator, t: &str, userid: &str) -> Value {
    read(sim, t, &format!("user/get?userid={userid}")).await
}

async fn getuserinfo(sim: &Simulator, t: &str, code: &str) -> Value {
    read(sim, t, &format!("auth/getuserinfo?code={code}")).await
}

/// `getuserinfo` of a fresh code of the primary app for `userid` with `scope`.
async fn log_in(sim: &Simulator, t: &str, userid: &str, scope: &str) -> Value {
    getuserinfo(sim, t, &sim.issue_code(userid, scope, CB)).await
}

fn ids(v: &Value, list: &str, field: &str) -> Vec<i64> {
    v[list]
        .as_array()
        .map(|a| a.iter().filter_map(|d| d[field].as_i64()).collect())
        .unwrap_or_default()
}

/// A simulator whose primary app sees `range`, and a token of that app.
async fn ranged(range: VisibleRange) -> (Simulator, String) {
    let (sim, _, t) = ready(|_| {}).await;
    assert!(sim.set_visible_range(CORP, AGENT, range));
    (sim, t)
}

fn range(users: &[&str], departments: &[i64], tags: &[i64]) -> VisibleRange {
    VisibleRange {
        users: users.iter().map(|s| s.to_string()).collect(),
        departments: departments.to_vec(),
        tags: tags.to_vec(),
    }
}
