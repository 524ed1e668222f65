//! Reliability end to end, the slower failures: a store written by an earlier release opens in
//! this one (one fixture data directory per release in `tests/fixtures/`), a backup taken while
//! the server serves restores into a new server, a database that restarts, a disk that fills,
//! and a slow upstream under a crowd of logins.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use wecom_oidc::clock::{Clock, ManualClock, SharedClock, SystemClock};
use wecom_oidc::demo::RunningDemo;
use wecom_oidc::provider::Client;

mod common;

use common::{Outcome, CHALLENGE, VERIFIER};

const APP: &str = "app";

/// The tests that load the machine (a crowd, a mixed load, a database restart) take turns: on
/// two shared cores, one test's load would otherwise show up as another's slow answers.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const APP_SECRET: &str = "app-secret-0123456789abcdef";
const APP_CB: &str = "http://127.0.0.1:9/app/callback";

fn app_client() -> Client {
    common::client(APP, Some(APP_SECRET), APP_CB, Default::default())
}

fn authorize_url(issuer: &str, extra: &[(&str, &str)]) -> String {
    let mut params = common::pkce(CHALLENGE).to_vec();
    params.extend_from_slice(extra);
    let scope = "openid offline_access";
    common::code_request_url(issuer, (APP, APP_CB), scope, ("st", "n"), &params)
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
    let http = reqwest::Client::new();
    let answer = common::app_token_patiently(&http, issuer, form).await;
    answer.expect("a /token answer")
}

/// The form of a code exchange (RFC 6749 §4.1.3) with PKCE.
fn code_form(code: &str) -> Vec<(&str, &str)> {
    common::code_form(code, APP_CB, &[("code_verifier", VERIFIER)])
}

async fn redeem(issuer: &str, code: &str) -> Value {
    let (status, body) = token(issuer, &code_form(code)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn refresh(issuer: &str, rt: &str) -> (StatusCode, Value) {
    token(issuer, &common::refresh_form(rt)).await
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
    let _turn = HEAVY.lock().await;
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
    common::assert_success(&out, "backup");
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
    let jwks = |issuer: String| async move { common::get_json(format!("{issuer}/jwks")).await };
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

// ---------------------------------------------------------------------------------------------
// The database restarts
// ---------------------------------------------------------------------------------------------

/// One answer the mixed load read.
#[derive(Debug, Clone)]
struct Answer {
    /// What was asked.
    what: &'static str,
    /// When it was asked.
    at: Instant,
    took: Duration,
    status: u16,
    retry_after: bool,
    /// The OAuth `error`, from a JSON body or from a redirect to the client.
    error: Option<String>,
}

/// What one instance's client holds, and every answer it read.
#[derive(Debug, Default)]
struct Book {
    /// Refresh tokens received in a 200.
    current: Vec<String>,
    /// Refresh tokens whose refresh was refused while the database went down: the client keeps
    /// them and retries.
    uncertain: Vec<String>,
    answers: Vec<Answer>,
}

fn answer_of(what: &'static str, at: Instant, resp: &reqwest::Response) -> Answer {
    Answer {
        what,
        at,
        took: at.elapsed(),
        status: resp.status().as_u16(),
        retry_after: resp.headers().contains_key(reqwest::header::RETRY_AFTER),
        error: None,
    }
}

/// A token request without retries (the load counts a 429 as an answer like any other).
async fn token_once(
    http: &reqwest::Client,
    issuer: &str,
    form: &[(&str, &str)],
) -> (Answer, Value) {
    let at = Instant::now();
    let resp = http
        .post(format!("{issuer}/token"))
        .basic_auth(APP, Some(APP_SECRET))
        .form(form)
        .send()
        .await
        .expect("the server answers");
    let mut a = answer_of("token", at, &resp);
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    a.took = at.elapsed();
    a.error = body["error"].as_str().map(str::to_owned);
    (a, body)
}

/// Logins, code exchanges, refreshes, userinfo, discovery and JWKS against `issuer` until
/// `stop`, every answer written to `book`.
async fn mixed_load(issuer: String, book: Arc<std::sync::Mutex<Book>>, stop: Arc<AtomicBool>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let mut access_token: Option<String> = None;
    let note = |a: Answer| book.lock().expect("book").answers.push(a);
    while !stop.load(Ordering::Relaxed) {
        for (what, path) in [
            ("discovery", "/.well-known/openid-configuration"),
            ("jwks", "/jwks"),
        ] {
            let at = Instant::now();
            let resp = http
                .get(format!("{issuer}{path}"))
                .send()
                .await
                .expect("answer");
            note(answer_of(what, at, &resp));
        }
        // A login: its redirects are answers too (the walk reports the last one).
        let at = Instant::now();
        let w = common::try_walk(
            &common::browser(),
            &authorize_url(&issuer, &[]),
            APP_CB,
            |_| None,
        )
        .await
        .expect("the server answers");
        let mut a = Answer {
            what: "login",
            at,
            took: at.elapsed(),
            status: w.status.as_u16(),
            retry_after: w.headers.contains_key(reqwest::header::RETRY_AFTER),
            error: None,
        };
        let code = match &w.body {
            None => {
                let q = w.redirect_query();
                a.error = q.get("error").cloned();
                q.get("code").cloned()
            }
            Some(_) => None,
        };
        note(a);
        if let Some(code) = code {
            let (a, body) = token_once(&http, &issuer, &code_form(&code)).await;
            if a.status == 200 {
                book.lock()
                    .expect("book")
                    .current
                    .push(str_of(&body, "refresh_token"));
                access_token = Some(str_of(&body, "access_token"));
            }
            note(a);
        }
        let rt = book.lock().expect("book").current.pop();
        if let Some(rt) = rt {
            let (a, body) = token_once(
                &http,
                &issuer,
                &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
            )
            .await;
            let mut b = book.lock().expect("book");
            match a.status {
                200 => b.current.insert(0, str_of(&body, "refresh_token")),
                // Refused before the grant was looked at.
                429 => b.current.insert(0, rt),
                _ => b.uncertain.push(rt),
            }
            b.answers.push(a);
        }
        if let Some(token) = &access_token {
            let at = Instant::now();
            let resp = http
                .get(format!("{issuer}/userinfo"))
                .bearer_auth(token)
                .send()
                .await
                .expect("answer");
            note(answer_of("userinfo", at, &resp));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One instance (provider and simulator, the confidential client, auto-login) on the
/// PostgreSQL store at `config` with a pool of `pool`.
async fn serve_on_postgres(
    config: tokio_postgres::Config,
    pool: wecom_oidc::storage::postgres::PoolSettings,
) -> common::Served {
    let store = wecom_oidc::storage::PostgresStore::connect_with(config, pool)
        .await
        .expect("connect");
    common::serve_with_simulator(
        common::ServeOptions {
            auto_login: Some("zhangsan"),
            clients: vec![app_client()],
            store: Some(Arc::new(store)),
            ..Default::default()
        },
        |sim, base| vec![common::demo_app(sim, base, "wecom")],
    )
    .await
}

async fn readyz(issuer: &str) -> u16 {
    reqwest::get(format!("{issuer}/readyz"))
        .await
        .expect("readyz answers")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_is_answered_503_with_retry_after_and_both_instances_recover_by_themselves(
) {
    let _turn = HEAVY.lock().await;
    use wecom_oidc::storage::pg_local::LocalPostgres;
    use wecom_oidc::storage::postgres::testing::TestSchema;
    use wecom_oidc::storage::postgres::PoolSettings;

    let test = "a_database_restart_is_answered_503_with_retry_after_and_both_instances_recover";
    let Some(pg) = LocalPostgres::start(test) else {
        return;
    };
    let pg = Arc::new(pg);
    let schema = TestSchema::create(&pg.url()).await;
    let pool = PoolSettings {
        size: 4,
        timeout: Duration::from_secs(2),
    };
    let mut instances = Vec::new();
    for _ in 0..2 {
        instances.push(serve_on_postgres(schema.config(), pool).await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let books: Vec<_> = (0..2)
        .map(|_| Arc::new(std::sync::Mutex::new(Book::default())))
        .collect();
    let loads: Vec<_> = instances
        .iter()
        .zip(&books)
        .map(|(s, b)| tokio::spawn(mixed_load(s.issuer.clone(), b.clone(), stop.clone())))
        .collect();
    let ok_tokens = |books: &[Arc<std::sync::Mutex<Book>>]| {
        books
            .iter()
            .map(|b| b.lock().expect("book").current.len())
            .min()
            .unwrap_or(0)
    };
    while ok_tokens(&books) < 3 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Down.
    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.stop())
        .await
        .expect("stop");
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for s in &instances {
        assert_eq!(
            readyz(&s.issuer).await,
            503,
            "/readyz fails while the database is down"
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Up again: each instance is ready again without a restart.
    let p = pg.clone();
    // The database may answer before `pg_ctl start` returns: "surely down" ends here.
    let starting = Instant::now();
    tokio::task::spawn_blocking(move || p.start_again())
        .await
        .expect("start");
    let up = Instant::now();
    let mut recovered = Vec::new();
    for s in &instances {
        while readyz(&s.issuer).await != 200 {
            assert!(
                up.elapsed() < Duration::from_secs(20),
                "no recovery after 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        recovered.push(up.elapsed());
    }
    // The load goes on succeeding: new tokens after the restart.
    let after = ok_tokens(&books);
    while ok_tokens(&books) < after + 2 {
        assert!(
            up.elapsed() < Duration::from_secs(20),
            "no token issued after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for load in loads {
        load.await
            .expect("the load ran without a transport failure");
    }

    let mut refused = 0;
    let mut slowest = Duration::ZERO;
    let mut uncertain = 0;
    for book in &books {
        let book = book.lock().expect("book");
        for a in &book.answers {
            assert_ne!(a.status, 500, "a 500 answered {a:?}");
            assert!(a.took < Duration::from_secs(3), "a slow answer: {a:?}");
            // While the database was surely down, every request that needs it was refused
            // clearly: 503 with Retry-After (API or error page), or the client redirect with
            // temporarily_unavailable (RFC 6749 §4.1.2.1); discovery and JWKS kept serving.
            let surely_down = a.at > down && a.at + a.took < starting;
            match a.what {
                "discovery" | "jwks" => assert_eq!(a.status, 200, "{a:?}"),
                _ if surely_down && a.status != 429 => {
                    let clear = (a.status == 503 && a.retry_after)
                        || a.error.as_deref() == Some("temporarily_unavailable");
                    assert!(
                        clear,
                        "an unclear answer {} ms after the stop: {a:?}",
                        (a.at - down).as_millis()
                    );
                    if a.status == 503 {
                        refused += 1;
                    }
                    if a.what == "token" {
                        assert_eq!(a.error.as_deref(), Some("temporarily_unavailable"), "{a:?}");
                    }
                }
                _ => {}
            }
            if a.at > down && a.at < starting {
                slowest = slowest.max(a.took);
            }
        }
        uncertain += book.uncertain.len();
    }

    // Nothing a client was given is lost: every refresh token it holds works, once.
    let issuer = &instances[0].issuer;
    let mut held = 0;
    for book in &books {
        let tokens = book.lock().expect("book").current.clone();
        for rt in tokens {
            refresh_once(issuer, &rt).await;
            let (status, _) = refresh(issuer, &rt).await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            held += 1;
        }
    }
    // A client keeps the token whose refresh was refused, and it works: the rotation spends
    // it and stores its successor in one transaction, so a refresh the outage cut spent
    // nothing (RFC 9700 §4.14.2 rotation, `Store::rotate_refresh_token`).
    let mut lost = 0;
    for book in &books {
        let tokens = book.lock().expect("book").uncertain.clone();
        for rt in tokens {
            let (status, body) = refresh(issuer, &rt).await;
            match status {
                StatusCode::OK => {}
                StatusCode::BAD_REQUEST if body["error"] == "invalid_grant" => lost += 1,
                other => panic!("{other}: {body}"),
            }
        }
    }
    assert_eq!(
        lost, 0,
        "{lost} of {uncertain} refused refreshes had spent their token"
    );
    println!(
        "database restart: ready again {recovered:?} after the start; {refused} requests \
         refused (503 + Retry-After) while down, slowest answer then {slowest:?}; {held} refresh \
         tokens held all work; {uncertain} refreshes refused while down, {lost} of them lost"
    );
    drop(instances);
    schema.drop_schema().await;
}

/// Copies `from` to `to`, holding every chunk for the current `delay_ms`.
async fn pump(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let ms = delay_ms.load(Ordering::Relaxed);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// A TCP proxy to `127.0.0.1:port` that holds every chunk for `delay_ms` in each direction: a
/// slow database, or a slow network to it. Returns its port.
async fn latency_proxy(port: u16, delay_ms: Arc<std::sync::atomic::AtomicU64>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let proxy_port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pump(cr, sw, delay_ms.clone()));
            tokio::spawn(pump(sr, cw, delay_ms.clone()));
        }
    });
    proxy_port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_database_is_answered_within_the_pool_timeout_and_reported() {
    let _turn = HEAVY.lock().await;
    use wecom_oidc::storage::pg_local::LocalPostgres;
    use wecom_oidc::storage::postgres::testing::TestSchema;
    use wecom_oidc::storage::postgres::PoolSettings;

    let test = "a_slow_database_is_answered_within_the_pool_timeout_and_reported";
    let Some(pg) = LocalPostgres::start(test) else {
        return;
    };
    let schema = TestSchema::create(&pg.url()).await;
    let delay = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let proxy = latency_proxy(pg.port(), delay.clone()).await;
    let mut config = wecom_oidc::storage::postgres::parse_url(&format!(
        "postgres://wecom_oidc@127.0.0.1:{proxy}/postgres"
    ))
    .expect("URL");
    config.options(format!("-c search_path={}", schema.name));
    let pool = PoolSettings {
        size: 2,
        timeout: Duration::from_millis(500),
    };
    let s = serve_on_postgres(config, pool).await;
    let q = login(&common::browser(), &s.issuer).await;
    let access = str_of(&redeem(&s.issuer, &q["code"]).await, "access_token");
    let userinfo_burst = |n: usize| {
        let (issuer, access) = (s.issuer.clone(), access.clone());
        async move {
            let tasks: Vec<_> = (0..n)
                .map(|_| {
                    let (issuer, access) = (issuer.clone(), access.clone());
                    tokio::spawn(async move {
                        let at = Instant::now();
                        let resp = common::userinfo(&issuer, &access).await;
                        answer_of("userinfo", at, &resp)
                    })
                })
                .collect();
            let mut answers = Vec::new();
            for t in tasks {
                answers.push(t.await.expect("task"));
            }
            answers
        }
    };

    // Every round trip to the database takes 2 × 250 ms: two requests hold the pool's two
    // connections, the others wait 500 ms for one and are refused.
    delay.store(250, Ordering::Relaxed);
    let slow = userinfo_burst(12).await;
    let served = slow.iter().filter(|a| a.status == 200).count();
    let refused = slow.iter().filter(|a| a.status == 503).count();
    let slowest = slow.iter().map(|a| a.took).max().unwrap_or_default();
    for a in &slow {
        assert!(
            a.status == 200 || (a.status == 503 && a.retry_after),
            "{a:?}"
        );
        // The pool's wait bound, plus the queries of the requests that got a connection.
        assert!(a.took < Duration::from_secs(4), "{a:?}");
    }
    assert!(served >= 1 && refused >= 1, "{slow:?}");
    // Reported: the refusals are counted by route and status for monitoring.
    let metrics = common::get_text(format!("{}/metrics", s.issuer)).await;
    let refusals = ["route=\"/userinfo\"", "status=\"503\""];
    assert!(common::has_metric_line(&metrics, &refusals), "{metrics}");

    // Fast again: the same burst is served in full.
    delay.store(0, Ordering::Relaxed);
    let fast = userinfo_burst(12).await;
    assert!(fast.iter().all(|a| a.status == 200), "{fast:?}");
    println!(
        "slow database (+500 ms a round trip, pool 2, wait 500 ms): {served} served, {refused} \
         refused 503 + Retry-After, slowest answer {slowest:?}"
    );
    drop(s);
    schema.drop_schema().await;
}

// ---------------------------------------------------------------------------------------------
// WeCom slow under a crowd
// ---------------------------------------------------------------------------------------------

/// CPU time (user + system) this process has used so far (Linux `/proc`, 10 ms ticks).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let rest = stat.rsplit_once(')').expect("stat").1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10)
}

/// Resident memory of this process in KiB (Linux `/proc`).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_logins_against_a_wecom_5_s_slow_end_clearly_in_bounded_time_and_memory_and_leave_no_task(
) {
    let _turn = HEAVY.lock().await;
    const CROWD: usize = 1000;
    let timeout = Duration::from_secs(2);
    let latency = Duration::from_secs(5);
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let limits = wecom_oidc::web::rate_limit::RateLimits {
        authorize_burst: 10_000,
        callback_burst: 10_000,
        token_burst: 10_000,
        ..Default::default()
    };
    let (router, d, listener) = wecom_oidc::demo::build_full(
        common::demo_options(
            Some("zhangsan"),
            vec![app_client()],
            None,
            Arc::new(SystemClock),
        )
        .await,
        limits,
        |wecom, _| wecom.timeout = timeout,
    )
    .expect("demo");
    tokio::spawn(wecom_oidc::server::serve(
        listener,
        router,
        std::future::pending(),
    ));
    // One login at full speed: the app's access token is cached, as on a server that runs.
    login(&common::browser(), &d.issuer).await;
    let (tasks_before, rss_before) = (tasks(), rss_kib());

    // WeCom now takes 5 s to answer a login's questions; the connector gives up after 2 s.
    for path in ["/cgi-bin/auth/getuserinfo", "/cgi-bin/user/get"] {
        d.simulator.set_latency(path, latency);
    }
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(rss_before));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    // A browser each (a cookie jar of its own), made before the clock starts: building a
    // client loads the system's roots, the test's cost and not the server's.
    let browsers: Vec<reqwest::Client> = (0..CROWD)
        .map(|_| {
            common::browser_builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client")
        })
        .collect();
    let (started, cpu_before) = (Instant::now(), cpu_time());
    let crowd: Vec<_> = browsers
        .into_iter()
        .map(|b| {
            let issuer = d.issuer.clone();
            tokio::spawn(async move {
                let at = Instant::now();
                // When the browser is sent back to our callback: from there the login waits
                // for WeCom, and its answer (a code or the clear error) ends the walk.
                let mut back_at = None;
                let w = common::try_walk(&b, &authorize_url(&issuer, &[]), APP_CB, |next| {
                    if next.contains("/callback/") {
                        back_at = Some(Instant::now());
                    }
                    None
                })
                .await
                .unwrap_or_else(|e| panic!("a login not answered after {:?}: {e:?}", at.elapsed()));
                let callback = back_at.map(|t| t.elapsed());
                (at.elapsed(), callback, Outcome::from(w))
            })
        })
        .collect();
    let mut took = Vec::new();
    let mut callbacks = Vec::new();
    let (mut completed, mut refused) = (0, 0);
    for login in crowd {
        let (t, callback, outcome) = login.await.expect("login task");
        took.push(t);
        callbacks.push(callback.expect("every login reaches the callback"));
        match outcome {
            Outcome::Redirect(q) if q.contains_key("code") => completed += 1,
            // The client hears "try again later" (RFC 6749 §4.1.2.1) ...
            Outcome::Redirect(q) => {
                assert_eq!(
                    q.get("error").map(String::as_str),
                    Some("temporarily_unavailable"),
                    "{q:?}"
                );
                refused += 1;
            }
            // ... or our page says WeCom did not answer in time (5xx, HTML); never a hang.
            Outcome::Page(status, body) => {
                assert!(status.is_server_error(), "{status}: {body}");
                assert!(
                    body.contains("<html") || body.contains("<!DOCTYPE"),
                    "{body}"
                );
                refused += 1;
            }
        }
    }
    let (wall, cpu) = (started.elapsed(), cpu_time() - cpu_before);
    took.sort();
    callbacks.sort();
    let (p50, p99) = (took[took.len() / 2], took[took.len() * 99 / 100]);
    let (cb50, cb99) = (
        callbacks[callbacks.len() / 2],
        callbacks[callbacks.len() * 99 / 100],
    );
    sampler.abort();
    let peak_growth = peak.load(Ordering::Relaxed).saturating_sub(rss_before);
    assert_eq!(completed + refused, CROWD);
    // Each login waits for WeCom once, for at most the connector's timeout: from the moment
    // the browser is back at our callback, its answer (a code, or the clear error) comes
    // within the timeout plus a margin for its turn on the CPU. All 1 000 logins, the
    // simulator and the server share this process's two workers (debug build, on cores shared
    // with other work), so that turn is measured in the same run rather than guessed: the
    // slowest time any login needed to get to the callback, through pages that wait on
    // nothing but the CPU (our /authorize, the simulator's login page), plus 1 s.
    let cpu_queue = took
        .iter()
        .zip(&callbacks)
        .map(|(t, c)| t.saturating_sub(*c))
        .max()
        .expect("times");
    let bound = timeout + Duration::from_secs(1) + cpu_queue;
    let slowest_callback = *callbacks.last().expect("times");
    assert!(
        slowest_callback <= bound,
        "a login answered {slowest_callback:?} after its callback: more than the connector \
         timeout {timeout:?} + 1 s + the crowd's CPU queue {cpu_queue:?}"
    );
    // Once: no retry stacks a second wait on the first (one getuserinfo per login, counted by
    // the connector, and the warm-up login's).
    let metrics = common::get_text(format!("{}/metrics", d.issuer)).await;
    let calls = |endpoint: &str| -> usize {
        let prefix = format!(
            "wecom_oidc_wecom_api_duration_seconds_count{{endpoint=\"/cgi-bin/{endpoint}\"}} "
        );
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no count for {endpoint}: {metrics}"))
    };
    assert_eq!(
        calls("auth/getuserinfo"),
        CROWD + 1,
        "WeCom calls per login"
    );
    assert_eq!(calls("user/get"), 1, "only the warm-up login got that far");
    // And no request of a login outlives the server's request timeout.
    assert!(
        *took.last().expect("times") < wecom_oidc::app::REQUEST_TIMEOUT,
        "slowest login {:?}",
        took.last()
    );
    assert!(peak_growth < 300 * 1024, "memory grew {peak_growth} KiB");

    // The provider gave up on WeCom's calls; once the simulator has answered them too (5 s),
    // no task of the crowd is left behind: the count is back where it started.
    for path in ["/cgi-bin/auth/getuserinfo", "/cgi-bin/user/get"] {
        d.simulator.set_latency(path, Duration::ZERO);
    }
    let settle = Instant::now();
    while tasks() > tasks_before {
        assert!(
            settle.elapsed() < latency + Duration::from_secs(10),
            "{} tasks alive, {tasks_before} before the crowd",
            tasks()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tasks_after = tasks();
    // And logins work again at once.
    let q = login(&common::browser(), &d.issuer).await;
    assert!(q.contains_key("code"));
    println!(
        "{CROWD} logins against a WeCom 5 s slow (timeout {timeout:?}): {completed} completed, \
         {refused} refused clearly; p50 {p50:?}, p99 {p99:?}, slowest {:?}, all within {wall:?} using {cpu:?} of CPU (server, simulator and \
         the 1000 clients in this one process); from the callback: p50 {cb50:?}, p99 {cb99:?}, slowest {:?} (bound {bound:?}); memory \
         +{} MiB at the peak; tasks {tasks_before} before, {tasks_after} after",
        took.last().expect("times"),
        callbacks.last().expect("times"),
        peak_growth / 1024
    );
}

// ---------------------------------------------------------------------------------------------
// The disk fills
// ---------------------------------------------------------------------------------------------

/// A size-limited tmpfs mounted for the test, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `mib` MiB; `None` after `service_missing` where mounting is not
    /// allowed (not root, or a container without CAP_SYS_ADMIN).
    fn mount(test: &str, mib: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallDisk { dir }),
            Ok(o) => {
                wecom_oidc::ci::service_missing(
                    test,
                    &format!(
                        "cannot mount a small tmpfs (needs root): {}",
                        String::from_utf8_lossy(&o.stderr).trim()
                    ),
                );
                None
            }
            Err(e) => {
                wecom_oidc::ci::service_missing(test, &format!("cannot run mount: {e}"));
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk with one file (`filler`); returns how many bytes went in.
    fn fill(&self) -> u64 {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path().join("filler")).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        let mut written = 0;
        loop {
            match f.write(&chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n as u64,
            }
        }
        // The last partial blocks too.
        for _ in 0..64 {
            if f.write(&chunk[..512]).is_err() {
                break;
            }
        }
        written
    }

    /// Gives the space back.
    fn free(&self) {
        std::fs::remove_file(self.path().join("filler")).expect("remove filler");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_new_tokens_keeps_discovery_and_jwks_and_recovers_when_space_returns() {
    let _turn = HEAVY.lock().await;
    let test = "a_full_disk_refuses_new_tokens_keeps_discovery_and_jwks_and_recovers";
    let Some(disk) = SmallDisk::mount(test, 16) else {
        return;
    };
    let data = disk.path().join("data");
    let d = demo_on(&data, Arc::new(SystemClock)).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(grant(&d.issuer).await);
    }

    let filled = disk.fill();
    let full = Instant::now();
    // While full: every request that would store something is refused clearly, and no
    // credential leaves that could not be stored.
    let mut issued_while_full = Vec::new();
    let mut refused = 0;
    for i in 0..20 {
        let w = common::walk(&common::browser(), &authorize_url(&d.issuer, &[]), APP_CB).await;
        let outcome = Outcome::from(w);
        if let Outcome::Redirect(q) = &outcome {
            if let Some(code) = q.get("code") {
                let (status, body) = token(&d.issuer, &code_form(code)).await;
                if status == StatusCode::OK {
                    issued_while_full.push(str_of(&body, "refresh_token"));
                } else {
                    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
                    assert_eq!(body["error"], "temporarily_unavailable");
                    refused += 1;
                }
                continue;
            }
        }
        refused += 1;
        match outcome {
            Outcome::Redirect(q) => assert_eq!(
                q.get("error").map(String::as_str),
                Some("temporarily_unavailable"),
                "{q:?}"
            ),
            Outcome::Page(status, body) => {
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{i}: {body}")
            }
        }
        for path in ["/.well-known/openid-configuration", "/jwks"] {
            let resp = reqwest::get(format!("{}{path}", d.issuer))
                .await
                .expect("answer");
            assert_eq!(
                resp.status(),
                StatusCode::OK,
                "{path} while the disk is full"
            );
        }
    }
    let rt = held.pop().expect("a token");
    let (status, body) = refresh(&d.issuer, &rt).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    held.push(rt);
    println!(
        "full after {filled} bytes; {refused} refused, {} issued",
        issued_while_full.len()
    );

    // Space returns: the server recovers by itself.
    disk.free();
    let freed = Instant::now();
    let new = loop {
        let w = common::walk(&common::browser(), &authorize_url(&d.issuer, &[]), APP_CB).await;
        if let Outcome::Redirect(q) = Outcome::from(w) {
            if let Some(code) = q.get("code") {
                let (status, body) = token(&d.issuer, &code_form(code)).await;
                if status == StatusCode::OK {
                    break str_of(&body, "refresh_token");
                }
            }
        }
        assert!(freed.elapsed() < Duration::from_secs(15), "no recovery");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let recovery = freed.elapsed();
    // Nothing a client was given is lost: before, during (if anything was issued) and after.
    for rt in held.iter().chain(&issued_while_full).chain([&new]) {
        refresh_once(&d.issuer, rt).await;
    }
    println!(
        "disk full for {:?}: {refused} requests refused clearly, {} tokens issued (all kept); \
         recovered {recovery:?} after space returned",
        freed - full,
        issued_while_full.len()
    );
}
