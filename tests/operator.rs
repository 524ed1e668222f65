//! End-to-end tests of the operator experience (issue 6): health, readiness and metrics
//! endpoints, the `check` doctor against the WeCom simulator, snippets and client listings.
//! Each test starts its own demo (provider + simulator) on `127.0.0.1:0`.

use std::sync::Arc;

use reqwest::redirect::Policy;
use wecom_oidc::clock::SystemClock;
use wecom_oidc::demo::{self, DemoOptions, RunningDemo};

async fn start_demo(auto_login: Option<&str>) -> RunningDemo {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    demo::spawn(DemoOptions {
        listener,
        issuer: None,
        auto_login: auto_login.map(str::to_owned),
        extra_clients: Vec::new(),
        data_dir: None,
        clock: Arc::new(SystemClock),
    })
    .await
    .expect("demo starts")
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// Follows redirects by hand from `url`; returns the final response.
async fn walk(client: &reqwest::Client, base: &str, url: &str) -> reqwest::Response {
    let mut next = url.to_owned();
    for _ in 0..10 {
        let resp = client.get(&next).send().await.expect("request");
        if !resp.status().is_redirection() {
            return resp;
        }
        let location = resp
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .expect("redirect has a Location")
            .to_owned();
        next = if location.starts_with('/') {
            format!("{base}{location}")
        } else {
            location
        };
    }
    panic!("more than 10 redirects from {url}");
}

#[tokio::test]
async fn healthz_answers_ok_without_touching_dependencies() {
    let d = start_demo(None).await;
    let resp = reqwest::get(format!("{}/healthz", d.issuer)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(
        d.simulator.gettoken_calls(),
        0,
        "liveness must not call WeCom"
    );
}

#[tokio::test]
async fn readyz_is_ready_when_store_keys_and_wecom_token_are_available() {
    let d = start_demo(None).await;
    let resp = reqwest::get(format!("{}/readyz", d.issuer)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(d.simulator.gettoken_calls(), 1);
    // A second probe is served from the token cache: readiness does not spend WeCom's quota.
    let resp = reqwest::get(format!("{}/readyz", d.issuer)).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(d.simulator.gettoken_calls(), 1);
}

#[tokio::test]
async fn readyz_is_unavailable_when_wecom_refuses_the_token() {
    let d = start_demo(None).await;
    d.simulator.fail_next("/cgi-bin/gettoken", 60020, 1);
    let resp = reqwest::get(format!("{}/readyz", d.issuer)).await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "not ready");
    let failing: Vec<&serde_json::Value> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .collect();
    assert_eq!(failing.len(), 1, "{body}");
    assert_eq!(failing[0]["name"], "connector:wecom");
    assert!(failing[0]["detail"].as_str().unwrap().contains("60020"));
    // Once WeCom accepts again, the service becomes ready without a restart.
    let resp = reqwest::get(format!("{}/readyz", d.issuer)).await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_logins_and_wecom_calls() {
    let d = start_demo(Some("zhangsan")).await;
    let b = browser();
    let page = walk(&b, &d.issuer, &format!("{}/demo/login", d.issuer)).await;
    assert_eq!(page.status(), 200, "the demo login completes");
    let resp = reqwest::get(format!("{}/metrics", d.issuer)).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    assert!(
        text.contains(
            "wecom_oidc_http_requests_total{method=\"GET\",route=\"/callback/{connector}\",status=\"302\"} 1\n"
        ),
        "{text}"
    );
    assert!(text.contains(
        "wecom_oidc_http_requests_total{method=\"POST\",route=\"/token\",status=\"200\"} 1\n"
    ));
    assert!(text.contains("wecom_oidc_logins_total{outcome=\"success\"} 1\n"));
    assert!(text.contains(
        "wecom_oidc_wecom_api_calls_total{endpoint=\"/cgi-bin/gettoken\",errcode=\"0\"} 1\n"
    ));
    assert!(text.contains(
        "wecom_oidc_wecom_api_calls_total{endpoint=\"/cgi-bin/auth/getuserinfo\",errcode=\"0\"} 1\n"
    ));
    assert!(text.contains("wecom_oidc_wecom_token_cache_total{result=\"refresh\"} 1\n"));
    assert!(text.contains(
        "wecom_oidc_wecom_api_duration_seconds_count{endpoint=\"/cgi-bin/user/get\"} 1\n"
    ));
    // No concrete path or query (with its code) ever becomes a label.
    assert!(!text.contains('?'), "{text}");
    assert!(!text.contains("/callback/wecom"), "{text}");
}
