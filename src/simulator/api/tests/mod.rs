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

async fn token(sim: &Simulator) -> String {
    let v = get_json(
        sim,
        &format!("/cgi-bin/gettoken?corpid={CORP}&corpsecret={SECRET}"),
    )
    .await;
    v["access_token"].as_str().expect("token").to_string()
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
    get_json(
        sim,
        &format!("/cgi-bin/user/get?access_token={t}&userid={userid}"),
    )
    .await
}

async fn getuserinfo(sim: &Simulator, t: &str, code: &str) -> Value {
    get_json(
        sim,
        &format!("/cgi-bin/auth/getuserinfo?access_token={t}&code={code}"),
    )
    .await
}

fn ids(v: &Value, list: &str, field: &str) -> Vec<i64> {
    v[list]
        .as_array()
        .map(|a| a.iter().filter_map(|d| d[field].as_i64()).collect())
        .unwrap_or_default()
}

fn range(users: &[&str], departments: &[i64], tags: &[i64]) -> VisibleRange {
    VisibleRange {
        users: users.iter().map(|s| s.to_string()).collect(),
        departments: departments.to_vec(),
        tags: tags.to_vec(),
    }
}
