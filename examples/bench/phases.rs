//! What is measured beyond single endpoints: complete logins, `/token` alone on codes prepared
//! beforehand, and the simulator's share of a login.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use hyper::Method;

use crate::browser::{token_answer, BenchClient, Browser, PreparedCode};
use crate::conn::{Reconnecting, RequestSpec};
use crate::options::Options;
use crate::phase::{measure, PhaseResult};
use crate::{err, Error, Result, MEMBER};

/// The scope of the measured logins.
pub const LOGIN_SCOPE: &str = "openid profile email";

/// A login phase.
pub struct Logins {
    pub phase: PhaseResult,
    /// Logins that got their tokens, the warm-up's included (each stored a code).
    pub completed: usize,
}

/// Complete logins: authorize → simulator → callback → token → userinfo, one worker per
/// browser. Keeps up to 64 of the access tokens issued, for the userinfo phase.
pub async fn logins(
    opts: &Options,
    browsers: Vec<Browser>,
    server_pid: u32,
    ticks: f64,
    client: &BenchClient,
    tokens: Arc<Mutex<Vec<String>>>,
) -> Result<Logins> {
    let browsers: Vec<Arc<Browser>> = browsers.into_iter().map(Arc::new).collect();
    let workers = browsers.len();
    let client = client.clone();
    let completed = Arc::new(AtomicUsize::new(0));
    let counter = completed.clone();
    let phase = measure(opts, server_pid, ticks, workers, move |i, shared| {
        let browser = browsers[i].clone();
        let client = client.clone();
        let tokens = tokens.clone();
        let counter = counter.clone();
        async move {
            shared
                .work_forever(async || {
                    let code = browser.code(&client, LOGIN_SCOPE).await?;
                    let answer = browser.token(&client, &code).await?;
                    counter.fetch_add(1, Ordering::Relaxed);
                    browser.userinfo(&answer.access_token).await?;
                    let mut t = tokens.lock().unwrap_or_else(|p| p.into_inner());
                    if t.len() < 64 {
                        t.push(answer.access_token);
                    }
                    Ok(())
                })
                .await;
        }
    })
    .await?;
    Ok(Logins {
        phase,
        completed: completed.load(Ordering::Relaxed),
    })
}

/// Prepares up to `count` codes for `client` with the given browsers, within `limit`.
pub async fn prepare_codes(
    browsers: Vec<Browser>,
    client: &BenchClient,
    count: usize,
    limit: Duration,
) -> Result<Vec<PreparedCode>> {
    let out = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let deadline = Instant::now() + limit;
    let mut set = tokio::task::JoinSet::new();
    for browser in browsers {
        let client = client.clone();
        let out = out.clone();
        set.spawn_local(async move {
            loop {
                if Instant::now() >= deadline
                    || out.lock().unwrap_or_else(|p| p.into_inner()).len() >= count
                {
                    return Ok::<_, Error>(());
                }
                let code = browser.code(&client, LOGIN_SCOPE).await?;
                out.lock().unwrap_or_else(|p| p.into_inner()).push(code);
            }
        });
    }
    while let Some(joined) = set.join_next().await {
        joined??;
    }
    let codes = std::mem::take(&mut *out.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(codes)
}

/// A `/token` phase on prepared codes.
pub struct Exchanges {
    pub phase: PhaseResult,
    /// The id_token `alg` seen.
    pub alg: String,
    /// Codes sent, the warm-up's included (each code is sent once).
    pub codes_sent: usize,
}

/// `/token` alone on prepared codes; each code is used once.
pub async fn token_phase(
    opts: &Options,
    addrs: &[SocketAddr],
    server_pid: u32,
    ticks: f64,
    client: &BenchClient,
    codes: Vec<PreparedCode>,
) -> Result<Exchanges> {
    let given = codes.len();
    let codes = Arc::new(Mutex::new(codes));
    let left = codes.clone();
    let alg = Arc::new(Mutex::new(String::new()));
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", client.id, client.secret))
    );
    let redirect_uri = client.redirect_uri.clone();
    let alg_out = alg.clone();
    let addrs = addrs.to_vec();
    let phase = measure(
        opts,
        server_pid,
        ticks,
        opts.connections,
        move |i, shared| {
            // Connections spread round-robin over the instances.
            let mut conn = Reconnecting::new(addrs[i % addrs.len()]);
            let codes = codes.clone();
            let basic = basic.clone();
            let redirect_uri = redirect_uri.clone();
            let alg = alg_out.clone();
            // The request is built before its clock starts.
            let next = move || {
                let code = codes.lock().unwrap_or_else(|p| p.into_inner()).pop()?;
                let body = serde_urlencoded::to_string([
                    ("grant_type", "authorization_code"),
                    ("code", code.code.as_str()),
                    ("redirect_uri", redirect_uri.as_str()),
                    ("code_verifier", code.verifier.as_str()),
                ])
                .unwrap_or_default();
                Some(RequestSpec {
                    method: Method::POST,
                    path: "/token".into(),
                    headers: vec![
                        ("authorization", basic.clone()),
                        (
                            "content-type",
                            "application/x-www-form-urlencoded".to_string(),
                        ),
                    ],
                    body: Bytes::from(body),
                })
            };
            async move {
                shared
                    .work(next, async |spec| {
                        let a = conn.send(&spec).await?;
                        let answer = token_answer(a.status, &serde_json::from_slice(&a.body)?)?;
                        let mut a = alg.lock().unwrap_or_else(|p| p.into_inner());
                        if a.is_empty() {
                            *a = answer.alg;
                        }
                        Ok(())
                    })
                    .await;
            }
        },
    )
    .await?;
    let alg = alg.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let codes_sent = given - left.lock().unwrap_or_else(|p| p.into_inner()).len();
    Ok(Exchanges {
        phase,
        alg,
        codes_sent,
    })
}

/// The simulator's share of a login, measured alone: the PC login page (auto-login answers a
/// redirect with a code), `auth/getuserinfo` and `user/get`, exactly the three simulator
/// requests a login causes. `upstream_url` is a real login URL produced by `/authorize` (its
/// `state` is replaced each time); `access_token` is a WeCom token from `gettoken`.
pub async fn simulator_only(
    opts: &Options,
    addr: SocketAddr,
    server_pid: u32,
    ticks: f64,
    upstream_url: &str,
    access_token: &str,
) -> Result<PhaseResult> {
    let base = url::Url::parse(upstream_url)?;
    let mount = base
        .path()
        .split_once("/wwlogin/")
        .or_else(|| base.path().split_once("/connect/"))
        .map(|(prefix, _)| prefix.to_string())
        .ok_or_else(|| err("unexpected upstream login URL"))?;
    let token = access_token.to_string();
    measure(opts, server_pid, ticks, opts.browsers, move |_, shared| {
        let base = base.clone();
        let mount = mount.clone();
        let token = token.clone();
        async move {
            let mut conn = Reconnecting::new(addr);
            shared
                .work_forever(async || {
                    let outcome = sim_login(&mut conn, &base, &mount, &token).await;
                    if outcome.is_err() {
                        conn.reset();
                    }
                    outcome
                })
                .await;
        }
    })
    .await
}

/// One login's worth of simulator requests.
async fn sim_login(
    conn: &mut Reconnecting,
    base: &url::Url,
    mount: &str,
    token: &str,
) -> Result<()> {
    let mut page = base.clone();
    let pairs: Vec<(String, String)> = base
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "state" {
                (k, wecom_oidc::random::alphanumeric(22))
            } else {
                (k, v)
            }
        })
        .collect();
    page.query_pairs_mut().clear().extend_pairs(pairs);
    let a = conn
        .send(&RequestSpec::get(format!(
            "{}?{}",
            page.path(),
            page.query().unwrap_or("")
        )))
        .await?;
    let back = url::Url::parse(
        a.location
            .as_deref()
            .ok_or_else(|| err(format!("simulator login page answered {}", a.status)))?,
    )?;
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| err("the simulator redirect has no code"))?;
    let q = |pairs: &[(&str, &str)]| serde_urlencoded::to_string(pairs).unwrap_or_default();
    for path in [
        format!(
            "{mount}/cgi-bin/auth/getuserinfo?{}",
            q(&[("access_token", token), ("code", &code)])
        ),
        format!(
            "{mount}/cgi-bin/user/get?{}",
            q(&[("access_token", token), ("userid", MEMBER)])
        ),
    ] {
        let a = conn.send(&RequestSpec::get(path)).await?;
        let v: serde_json::Value = serde_json::from_slice(&a.body)?;
        if a.status != 200 || v["errcode"] != 0 {
            return Err(err(format!(
                "simulator API answered errcode {}",
                v["errcode"]
            )));
        }
    }
    Ok(())
}
