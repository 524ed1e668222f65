//! Reliability end to end, the slower failures: a store written by an earlier release opens in
//! this one (one fixture data directory per release in `tests/fixtures/`), a backup taken while
//! the server serves restores into a new server, a database that restarts, a disk that fills,
//! and a slow upstream under a crowd of logins.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use wecom_oidc::clock::{Clock, ManualClock, SharedClock, SystemClock};
use wecom_oidc::demo::RunningDemo;
use wecom_oidc::provider::Client;

mod common;

use common::{Outcome, CHALLENGE, VERIFIER};

const APP: &str = "app";
const APP_SECRET: &str = "app-secret-0123456789abcdef";
const APP_CB: &str = "http://127.0.0.1:9/app/callback";

fn app_client() -> Client {
    common::client(APP, Some(APP_SECRET), APP_CB, Default::default())
}

fn authorize_url(issuer: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("client_id", APP),
        ("redirect_uri", APP_CB),
        ("response_type", "code"),
        ("scope", "openid offline_access"),
        ("state", "st"),
        ("nonce", "n"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    common::authorize_url(issuer, &params)
}

/// A browser whose cookies the test can read and set.
fn browser_with(jar: Arc<reqwest::cookie::Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A login of the demo's auto-logged-in member by `b`: the client redirect's query.
async fn login(b: &reqwest::Client, issuer: &str) -> std::collections::HashMap<String, String> {
    Outcome::from(common::walk(b, &authorize_url(issuer, &[]), APP_CB).await).query()
}

/// `/token` as the confidential client, a 429 of the rate limiter retried (it answers before
/// the grant is looked at).
async fn token(issuer: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    for _ in 0..100 {
        let (status, body) = common::token(issuer, (APP, APP_SECRET), form).await;
        if status != StatusCode::TOO_MANY_REQUESTS {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    panic!("the /token rate limit never let the request through");
}

async fn redeem(issuer: &str, code: &str) -> Value {
    let (status, body) = token(
        issuer,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", APP_CB),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn refresh(issuer: &str, rt: &str) -> (StatusCode, Value) {
    token(
        issuer,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await
}

fn str_of(v: &Value, key: &str) -> String {
    common::str_of(v, key).to_owned()
}

/// A new grant of the confidential client: its refresh token.
async fn grant(issuer: &str) -> String {
    let q = login(&common::browser(), issuer).await;
    str_of(&redeem(issuer, &q["code"]).await, "refresh_token")
}

/// Refreshes `rt` (which must work) and checks that it rotated: the old token is spent, so a
/// second use is refused (RFC 9700 §4.14.2). Returns the successor.
async fn refresh_once(issuer: &str, rt: &str) -> String {
    let (status, body) = refresh(issuer, rt).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let next = str_of(&body, "refresh_token");
    assert_ne!(next, rt, "a refresh rotates the refresh token");
    next
}

/// The demo on a data directory `dir` (its `store/` and `keys/`) with `clock`.
async fn demo_on(dir: &Path, clock: SharedClock) -> RunningDemo {
    common::start_demo_with(
        Some("zhangsan"),
        vec![app_client()],
        Some(dir.to_owned()),
        clock,
    )
    .await
}

/// Copies the directory tree `from` into the new directory `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let dst = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &dst);
        } else {
            std::fs::copy(entry.path(), &dst).expect("copy");
        }
    }
}

/// Bytes the files below `path` occupy on disk (what `du` says, not their apparent size).
fn disk_usage(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(path).expect("read_dir").flatten() {
        let meta = entry.metadata().expect("metadata");
        total += if meta.is_dir() {
            disk_usage(&entry.path())
        } else {
            meta.blocks() * 512
        };
    }
    total
}

// ---------------------------------------------------------------------------------------------
// Upgrades: one fixture data directory per release
// ---------------------------------------------------------------------------------------------

/// Where the release fixtures live: `tests/fixtures/v<version>/`, each a backup (`store/`,
/// `keys/`, `backup.json`) of a demo server of that release plus [`Fixture`] in `fixture.json`.
fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// What a fixture's test knows about it.
#[derive(Debug, Serialize, Deserialize)]
struct Fixture {
    /// The release that made it.
    version: String,
    /// When (Unix seconds): the test runs its server's clock from here, so that nothing in the
    /// fixture expires as the years pass.
    created_at: i64,
    /// The confidential client's id, secret and redirect URI.
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    /// A refresh token of a grant in the store.
    refresh_token: String,
    /// The browser's cookies (the provider session among them), as `name=value` pairs.
    cookies: Vec<String>,
    /// The `sub` of the grant.
    sub: String,
}

/// Writes `tests/fixtures/v<this version>/`: run it once per release, and commit what it
/// writes (keep every earlier one), so that every later release is tested against the stores
/// this one leaves behind:
///
/// ```text
/// cargo test --test reliability2 write_release_fixture -- --ignored
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes tests/fixtures/v<version>/: run once per release and commit the result"]
async fn write_release_fixture() {
    let version = env!("CARGO_PKG_VERSION");
    let out = fixtures_root().join(format!("v{version}"));
    assert!(
        !out.exists(),
        "{} exists: a release's fixture is written once",
        out.display()
    );
    let data = tempfile::tempdir().expect("tempdir");
    let now = SystemClock.now();
    let d = demo_on(data.path(), Arc::new(ManualClock::new(now))).await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let b = browser_with(jar.clone());
    let q = login(&b, &d.issuer).await;
    let tokens = redeem(&d.issuer, &q["code"]).await;
    let claims = common::claims_of(&str_of(&tokens, "id_token"));
    let cookies = reqwest::cookie::CookieStore::cookies(
        jar.as_ref(),
        &url::Url::parse(&d.issuer).expect("issuer"),
    )
    .expect("the login left cookies");
    let fixture = Fixture {
        version: version.to_owned(),
        created_at: now,
        client_id: APP.into(),
        client_secret: APP_SECRET.into(),
        redirect_uri: APP_CB.into(),
        refresh_token: str_of(&tokens, "refresh_token"),
        cookies: cookies
            .to_str()
            .expect("ascii")
            .split("; ")
            .map(str::to_owned)
            .collect(),
        sub: str_of(&claims, "sub"),
    };
    wecom_oidc::backup::backup(d.store.as_ref(), &data.path().join("keys"), &out, now)
        .await
        .expect("backup");
    std::fs::write(
        out.join("fixture.json"),
        serde_json::to_vec_pretty(&fixture).expect("json"),
    )
    .expect("write fixture.json");
    println!(
        "wrote {} ({} bytes on disk)",
        out.display(),
        disk_usage(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_release_fixture_opens_with_its_session_and_its_refresh_token_rotates_once() {
    let mut releases: Vec<PathBuf> = std::fs::read_dir(fixtures_root())
        .expect("tests/fixtures")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("fixture.json").is_file())
        .collect();
    releases.sort();
    assert!(!releases.is_empty(), "no release fixture in tests/fixtures");
    for release in releases {
        // Small enough for the repository: sled preallocates, a fixture must not.
        let size = disk_usage(&release);
        assert!(size < 1 << 20, "{} takes {size} bytes", release.display());
        let fixture: Fixture = serde_json::from_slice(
            &std::fs::read(release.join("fixture.json")).expect("fixture.json"),
        )
        .expect("fixture");
        assert_eq!(fixture.client_id, APP);
        // The committed files stay as they are: the server opens (and may migrate) a copy.
        let data = tempfile::tempdir().expect("tempdir");
        copy_tree(&release.join("store"), &data.path().join("store"));
        copy_tree(&release.join("keys"), &data.path().join("keys"));
        // git keeps no file modes, and the key loader refuses a key others may read.
        for key in std::fs::read_dir(data.path().join("keys"))
            .expect("keys")
            .flatten()
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(key.path(), std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
        }
        let clock = Arc::new(ManualClock::new(fixture.created_at + 60));
        let d = demo_on(data.path(), clock).await;
        let issuer = &d.issuer;

        // The refresh token works once, rotates, and its successor works too.
        let next = refresh_once(issuer, &fixture.refresh_token).await;
        let (status, body) = refresh(issuer, &next).await;
        assert_eq!(status, StatusCode::OK, "{}: {body}", fixture.version);
        let claims = common::claims_of(&str_of(&body, "id_token"));
        assert_eq!(str_of(&claims, "sub"), fixture.sub, "{}", fixture.version);
        let (replay, body) = refresh(issuer, &fixture.refresh_token).await;
        assert_eq!(replay, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_grant");

        // The provider session still logs the browser in without WeCom (OIDC Core §3.1.2.1
        // prompt=none answers with a code only from a live session).
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let url = url::Url::parse(issuer).expect("issuer");
        for cookie in &fixture.cookies {
            jar.add_cookie_str(cookie, &url);
        }
        let w = common::walk(
            &browser_with(jar),
            &authorize_url(issuer, &[("prompt", "none")]),
            APP_CB,
        )
        .await;
        assert!(!w.went_through_wecom(), "{:?}", w.visited);
        let q = w.redirect_query();
        assert!(q.contains_key("code"), "{}: {q:?}", fixture.version);
        redeem(issuer, &q["code"]).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Backup while serving
// ---------------------------------------------------------------------------------------------

/// Serves the demo's admin routes on `<dir>/run/admin.sock`, as `serve` does: the socket path.
fn admin_socket(d: &RunningDemo, dir: &Path) -> PathBuf {
    let path = wecom_oidc::admin::socket_path_in(dir);
    let listener = wecom_oidc::admin::bind(&path).expect("admin socket");
    tokio::spawn(wecom_oidc::admin::serve(
        listener,
        wecom_oidc::admin::router(d.admin.clone()),
        std::future::pending(),
    ));
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_and_earlier_refresh_tokens_work_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = demo_on(&dir.path().join("old"), Arc::new(SystemClock)).await;
    let socket = admin_socket(&d, &dir.path().join("admin"));
    let mut before = Vec::new();
    for _ in 0..12 {
        before.push(grant(&d.issuer).await);
    }

    // Logins and refreshes go on during the backup, and all of them succeed.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let load = {
        let (issuer, stop, served) = (d.issuer.clone(), stop.clone(), served.clone());
        tokio::spawn(async move {
            let mut rt = grant(&issuer).await;
            while !stop.load(Ordering::Relaxed) {
                rt = refresh_once(&issuer, &rt).await;
                let q = login(&common::browser(), &issuer).await;
                redeem(&issuer, &q["code"]).await;
                served.fetch_add(2, Ordering::Relaxed);
            }
        })
    };
    while served.load(Ordering::Relaxed) < 4 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let target = dir.path().join("backup");
    let at_start = served.load(Ordering::Relaxed);
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wecom-oidc"))
        .arg("backup")
        .arg("--socket")
        .arg(&socket)
        .arg("--to")
        .arg(&target)
        .output()
        .await
        .expect("run backup");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let during = served.load(Ordering::Relaxed) - at_start;
    stop.store(true, Ordering::Relaxed);
    load.await.expect("the load ran without a failure");
    let summary: Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert!(summary["store"]["trees"]["refresh_tokens"].as_u64() >= Some(12));
    println!(
        "backup: {} records in {} ms, {during} requests served meanwhile",
        summary["store"]["records"], summary["took_ms"]
    );

    // A second backup into the same directory is refused: a backup never overwrites.
    let again = wecom_oidc::admin::client::request(
        &socket,
        axum::http::Method::POST,
        "/v1/backup",
        Some(serde_json::json!({ "to": target })),
    )
    .await
    .expect("admin answers");
    assert_eq!(again.status, axum::http::StatusCode::CONFLICT);

    // Restore into a new server's directories; its refresh tokens are those of the backup.
    let new = dir.path().join("new");
    wecom_oidc::backup::restore(&target, &new.join("store"), &new.join("keys"), false)
        .expect("restore");
    let restored = demo_on(&new, Arc::new(SystemClock)).await;
    let jwks = |issuer: String| async move {
        reqwest::get(format!("{issuer}/jwks"))
            .await
            .expect("jwks")
            .json::<Value>()
            .await
            .expect("json")
    };
    assert_eq!(
        jwks(d.issuer.clone()).await,
        jwks(restored.issuer.clone()).await,
        "the restored server signs with the backed-up keys"
    );
    for rt in &before {
        refresh_once(&restored.issuer, rt).await;
        let (status, body) = refresh(&restored.issuer, rt).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_grant");
    }
}
