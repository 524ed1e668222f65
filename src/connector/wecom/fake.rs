//! A small fake of WeCom's server API for the connector's tests, written from wecom-api.md and
//! deliberately independent of `src/simulator/`: it counts calls, scripts errors, and echoes
//! tokens and codes in its error messages so the tests can prove they never leak.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::storage::{Result as StoreResult, StorageError, UpstreamStore, UpstreamToken};

/// The fake's CorpID.
pub(crate) const CORP_ID: &str = "wwfakecorp0001";
/// The fake app's AgentId.
pub(crate) const AGENT_ID: i64 = 1000002;
/// The fake app's secret.
pub(crate) const SECRET: &str = "fake-app-secret-0123456789";
/// The path prefix the fake is mounted under, to prove base URLs with a path work.
const PREFIX: &str = "/wecom-fake";

/// Login codes the fake understands. Any code starting with [`codes::ALICE_PREFIX`] is Alice's.
pub(crate) mod codes {
    /// Alice: active, no `email`, a `biz_mail`.
    pub(crate) const ALICE: &str = "code-alice";
    /// Prefix of more codes for Alice (concurrent logins use distinct codes).
    pub(crate) const ALICE_PREFIX: &str = "code-alice";
    /// Bob: disabled (`status` 2).
    pub(crate) const BOB: &str = "code-bob";
    /// Carol: active, empty `name`, an `email`.
    pub(crate) const CAROL: &str = "code-carol";
    /// A userid that `user/get` does not know (60111).
    pub(crate) const GHOST: &str = "code-ghost";
    /// Not a corp member: `openid` only.
    pub(crate) const GUEST: &str = "code-guest";
    /// The fake never answers this one.
    pub(crate) const SLOW: &str = "code-slow";
}

/// Shared state of the fake: counters, issued tokens, scripted errors.
#[derive(Default)]
pub(crate) struct FakeState {
    /// `gettoken` calls so far.
    pub(crate) gettoken_calls: AtomicUsize,
    /// `auth/getuserinfo` calls so far.
    pub(crate) getuserinfo_calls: AtomicUsize,
    /// `user/get` calls so far.
    pub(crate) user_get_calls: AtomicUsize,
    valid_tokens: Mutex<HashSet<String>>,
    expired_tokens: Mutex<HashSet<String>>,
    last_token: Mutex<Option<String>>,
    /// errcodes answered by the next `getuserinfo` calls, before any other check.
    getuserinfo_script: Mutex<VecDeque<i64>>,
    /// errcodes answered by the next `user/get` calls, before any other check.
    user_get_script: Mutex<VecDeque<i64>>,
    /// When set, every token-bearing call is answered with this errcode.
    reject_every_token_with: Mutex<Option<i64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FakeState {
    /// The last token `gettoken` handed out.
    pub(crate) fn last_token(&self) -> Option<String> {
        lock(&self.last_token).clone()
    }

    /// From now on, `token` is answered with 42001 (expired), as when WeCom revokes it early.
    pub(crate) fn expire_token(&self, token: &str) {
        lock(&self.valid_tokens).remove(token);
        lock(&self.expired_tokens).insert(token.to_owned());
    }

    /// From now on, `token` is answered with 40014 (invalid).
    pub(crate) fn invalidate_token(&self, token: &str) {
        lock(&self.valid_tokens).remove(token);
    }

    /// The next `getuserinfo` calls answer these errcodes, in order.
    pub(crate) fn script_getuserinfo(&self, errcodes: &[i64]) {
        lock(&self.getuserinfo_script).extend(errcodes.iter().copied());
    }

    /// The next `user/get` calls answer these errcodes, in order.
    pub(crate) fn script_user_get(&self, errcodes: &[i64]) {
        lock(&self.user_get_script).extend(errcodes.iter().copied());
    }

    /// The user/get call count.
    pub(crate) fn user_get(&self) -> usize {
        self.user_get_calls.load(Ordering::SeqCst)
    }

    /// Every call with a token gets `errcode`, whatever the token.
    pub(crate) fn reject_every_token_with(&self, errcode: i64) {
        *lock(&self.reject_every_token_with) = Some(errcode);
    }

    /// The gettoken call count.
    pub(crate) fn gettoken(&self) -> usize {
        self.gettoken_calls.load(Ordering::SeqCst)
    }

    /// The getuserinfo call count.
    pub(crate) fn getuserinfo(&self) -> usize {
        self.getuserinfo_calls.load(Ordering::SeqCst)
    }

    /// Counts a call in `calls`, then answers it with the next scripted errcode of `script`, if
    /// any, or else checks its token.
    fn admit(
        &self,
        calls: &AtomicUsize,
        script: &Mutex<VecDeque<i64>>,
        q: &HashMap<String, String>,
    ) -> Result<(), Json<Value>> {
        calls.fetch_add(1, Ordering::SeqCst);
        let scripted = lock(script).pop_front();
        if let Some(errcode) = scripted {
            return Err(error(errcode, format!("scripted error {errcode}")));
        }
        self.check_token(q)
    }

    /// Checks the `access_token` of a call the way WeCom does (wecom-api.md §1, §10). The
    /// messages echo the token, which the connector must scrub.
    fn check_token(&self, q: &HashMap<String, String>) -> Result<(), Json<Value>> {
        let Some(token) = q.get("access_token").filter(|t| !t.is_empty()) else {
            return Err(error(41001, "access_token missing".to_owned()));
        };
        if let Some(code) = *lock(&self.reject_every_token_with) {
            return Err(error(code, format!("rejected access_token {token}")));
        }
        if lock(&self.expired_tokens).contains(token) {
            return Err(error(42001, format!("access_token expired: {token}")));
        }
        if !lock(&self.valid_tokens).contains(token) {
            return Err(error(40014, format!("invalid access_token {token}")));
        }
        Ok(())
    }
}

/// A handler's answer: WeCom answers errors with HTTP 200 too, so both sides are the JSON body.
type Answer = Result<Json<Value>, Json<Value>>;

fn error(errcode: i64, errmsg: String) -> Json<Value> {
    Json(json!({ "errcode": errcode, "errmsg": errmsg }))
}

/// A running fake WeCom.
pub(crate) struct FakeWeCom {
    /// The API base URL to configure (`http://127.0.0.1:PORT/wecom-fake`).
    pub(crate) base: String,
    /// The fake's state, shared with its handlers.
    pub(crate) state: Arc<FakeState>,
}

impl FakeWeCom {
    /// Starts the fake on an ephemeral port.
    pub(crate) async fn start() -> Self {
        let state = Arc::new(FakeState::default());
        let api = Router::new()
            .route("/cgi-bin/gettoken", get(gettoken))
            .route("/cgi-bin/auth/getuserinfo", get(getuserinfo))
            .route("/cgi-bin/user/get", get(user_get))
            .with_state(state.clone());
        let app = Router::new().nest(PREFIX, api);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            // The server lives as long as the test's runtime.
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base: format!("http://{addr}{PREFIX}"),
            state,
        }
    }
}

/// `GET /cgi-bin/gettoken` (wecom-api.md §1).
async fn gettoken(
    State(state): State<Arc<FakeState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    state.gettoken_calls.fetch_add(1, Ordering::SeqCst);
    let secret = q.get("corpsecret").map(String::as_str).unwrap_or_default();
    if secret.is_empty() {
        return error(41004, "corpsecret missing".to_owned());
    }
    if q.get("corpid").map(String::as_str) != Some(CORP_ID) {
        return error(40013, "invalid corpid".to_owned());
    }
    if secret != SECRET {
        // Echo the secret: the connector must not pass it on.
        return error(
            40001,
            format!(
                "invalid credential, secret {secret}, hint: [1700000000_1_abc], from ip: 127.0.0.1"
            ),
        );
    }
    let token = format!("TOKEN{}", crate::random::alphanumeric(40));
    lock(&state.valid_tokens).insert(token.clone());
    *lock(&state.last_token) = Some(token.clone());
    Json(json!({ "errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200 }))
}

/// `GET /cgi-bin/auth/getuserinfo` (wecom-api.md §4).
async fn getuserinfo(
    State(state): State<Arc<FakeState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    state.admit(&state.getuserinfo_calls, &state.getuserinfo_script, &q)?;
    let code = q.get("code").map(String::as_str).unwrap_or_default();
    let userid = match code {
        codes::SLOW => {
            // Never answer: the connector's timeout must end the call.
            std::future::pending::<()>().await;
            return Err(error(-1, "unreachable".to_owned()));
        }
        codes::GUEST => {
            return Ok(Json(
                json!({ "errcode": 0, "errmsg": "ok", "openid": "oGUEST0001" }),
            ));
        }
        codes::BOB => "bob",
        codes::CAROL => "carol",
        codes::GHOST => "ghost",
        c if c.starts_with(codes::ALICE_PREFIX) => "alice",
        // Echo the code, as a careless upstream might: the connector must scrub it.
        other => {
            return Err(error(
                40029,
                format!("invalid code {other}, more info at https://open.work.weixin.qq.com/devtool/query?e=40029"),
            ))
        }
    };
    Ok(Json(
        json!({ "errcode": 0, "errmsg": "ok", "userid": userid }),
    ))
}

/// `GET /cgi-bin/user/get` (wecom-api.md §6).
async fn user_get(
    State(state): State<Arc<FakeState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    state.admit(&state.user_get_calls, &state.user_get_script, &q)?;
    let body = match q.get("userid").map(String::as_str).unwrap_or_default() {
        "alice" => json!({
            "errcode": 0, "errmsg": "ok", "userid": "alice", "name": "张三 Alice",
            "email": "", "biz_mail": "alice@corp.example", "status": 1, "department": [1, 2],
        }),
        "bob" => json!({
            "errcode": 0, "errmsg": "ok", "userid": "bob", "name": "Bob", "status": 2,
        }),
        "carol" => json!({
            "errcode": 0, "errmsg": "ok", "userid": "carol", "name": "",
            "email": "carol@example.com", "biz_mail": "carol@corp.example", "status": 1,
        }),
        // Error bodies still carry the endpoint's default fields (wecom-api.md "Conventions").
        _ => json!({ "errcode": 60111, "errmsg": "userid not found", "department": [] }),
    };
    Ok(Json(body))
}

/// A store for the connector tests: keeps upstream tokens in memory and can be told to fail.
/// Only the upstream-token methods are used by the connector; the others work on nothing and
/// say so, so a test that strays into them fails loudly.
#[derive(Default)]
pub(crate) struct TokenStore {
    tokens: Mutex<HashMap<String, UpstreamToken>>,
    links: Mutex<HashMap<String, String>>,
    /// Leases by name (the `gettoken` lease of several instances on one store).
    leases: Mutex<HashMap<String, crate::storage::cluster::LeaseRecord>>,
    failing: std::sync::atomic::AtomicBool,
}

impl TokenStore {
    /// Every call fails from now on, as a broken disk would.
    pub(crate) fn fail(&self) {
        self.failing.store(true, Ordering::SeqCst);
    }

    /// The token saved under `key`, if any.
    pub(crate) fn saved(&self, key: &str) -> Option<UpstreamToken> {
        lock(&self.tokens).get(key).cloned()
    }

    /// Stores `token` under `key`, as another instance on the same store would.
    pub(crate) fn put(&self, key: &str, token: UpstreamToken) {
        lock(&self.tokens).insert(key.to_owned(), token);
    }

    /// Records that `owner` holds the lease `name` until `until`, as another instance would.
    pub(crate) fn hold_lease(&self, name: &str, owner: &str, until: i64) {
        lock(&self.leases).insert(
            name.to_owned(),
            crate::storage::cluster::LeaseRecord {
                owner: owner.to_owned(),
                until,
            },
        );
    }

    /// A read of `map` as the store answers it: failing when told to, `NotFound` when absent.
    fn find<V: Clone>(&self, map: &Mutex<HashMap<String, V>>, key: &str) -> StoreResult<V> {
        self.check()?;
        lock(map).get(key).cloned().ok_or(StorageError::NotFound)
    }

    /// A write of `value` under `key` in `map`, failing when told to.
    fn save<V>(&self, map: &Mutex<HashMap<String, V>>, key: &str, value: V) -> StoreResult<()> {
        self.check()?;
        lock(map).insert(key.to_owned(), value);
        Ok(())
    }

    fn check(&self) -> StoreResult<()> {
        if self.failing.load(Ordering::SeqCst) {
            Err(StorageError::Backend("disk on fire".to_owned()))
        } else {
            Ok(())
        }
    }
}

// The connector keeps only upstream tokens, user links and leases: its store role is all a
// test store needs.
#[async_trait::async_trait]
impl UpstreamStore for TokenStore {
    async fn find_upstream_token(&self, key: &str) -> StoreResult<UpstreamToken> {
        self.find(&self.tokens, key)
    }
    async fn save_upstream_token(&self, key: &str, token: &UpstreamToken) -> StoreResult<()> {
        self.save(&self.tokens, key, token.clone())
    }
    async fn delete_upstream_token(&self, key: &str) -> StoreResult<()> {
        self.check()?;
        lock(&self.tokens).remove(key);
        Ok(())
    }
    async fn find_user_link(&self, key: &str) -> StoreResult<String> {
        self.find(&self.links, key)
    }
    async fn save_user_link(&self, key: &str, value: &str) -> StoreResult<()> {
        self.save(&self.links, key, value.to_owned())
    }
    async fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<bool> {
        self.check()?;
        let mut leases = lock(&self.leases);
        let claimed =
            crate::storage::cluster::LeaseRecord::claim(leases.get(name), owner, now, until);
        let taken = claimed.is_some();
        if let Some(ours) = claimed {
            leases.insert(name.to_owned(), ours);
        }
        Ok(taken)
    }
    async fn release_lease(&self, name: &str, owner: &str) -> StoreResult<()> {
        self.check()?;
        let mut leases = lock(&self.leases);
        if leases.get(name).is_some_and(|l| l.owner == owner) {
            leases.remove(name);
        }
        Ok(())
    }
}
