//! End-to-end checks behind the benchmark (`examples/bench/`, `docs/performance.md`): the
//! simulator-only counter endpoint the bench reads, and the issue-7 rule it checks, one WeCom
//! `gettoken` per token lifetime whatever the number of logins.

mod common;

use wecom_oidc::demo::{RunningDemo, SIMULATOR_PATH};
use wecom_oidc::simulator::{SimulatorStats, STATS_PATH};

async fn start() -> RunningDemo {
    common::start_demo(Some("zhangsan"), Vec::new()).await
}

async fn stats(d: &RunningDemo) -> SimulatorStats {
    let stats = common::get_json(format!("{}{SIMULATOR_PATH}{STATS_PATH}", d.issuer)).await;
    serde_json::from_value(stats).expect("stats JSON")
}

#[tokio::test]
async fn many_concurrent_logins_cost_exactly_one_gettoken_call_per_token_lifetime() {
    let d = start().await;
    assert_eq!(
        stats(&d).await.gettoken_calls,
        0,
        "nothing is fetched at start"
    );
    // Eight browsers at once, each with its own cookie jar, through the demo relying party:
    // authorize → simulator → callback → token → userinfo.
    let logins: Vec<_> = (0..8)
        .map(|_| {
            let url = format!("{}/demo/login", d.issuer);
            tokio::spawn(async move {
                let browser = reqwest::Client::builder()
                    .cookie_store(true)
                    .build()
                    .expect("client");
                let resp = browser.get(url).send().await.expect("login completes");
                let status = resp.status();
                let page = resp.text().await.expect("result page");
                assert_eq!(status, reqwest::StatusCode::OK, "{page}");
            })
        })
        .collect();
    for login in logins {
        login.await.expect("login task");
    }
    let after = stats(&d).await;
    assert_eq!(after.gettoken_calls, 1, "single flight, cached token");
    assert_eq!(after.gettoken_calls, d.simulator.gettoken_calls());
}
