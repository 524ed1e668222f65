//! Rate limits on `POST /token` (per client and IP address; `/revoke` and `/introspect`, which
//! authenticate clients the same way, share that budget), on the upstream login callback (per
//! IP address) and on `/authorize` requests that start an upstream login (per IP address): an
//! in-memory token bucket per key (governor's keyed GCRA limiter, which is a token bucket
//! computed from one timestamp per key).
//!
//! The defaults let a legitimate burst through — a whole office behind one NAT address logging
//! in at the start of the day (50 logins at once is far below `*_burst`) — while capping
//! credential guessing at `*_per_minute` per key. Limits are configured in `[limits]`.
//!
//! Over the limit the answer is `429 Too Many Requests` with `Retry-After` (RFC 6585 §4). On
//! `/token` the body is OAuth error JSON (RFC 6749 §5.2) with `temporarily_unavailable`: §5.2
//! defines no code for rate limiting, `slow_down` belongs to the device flow (RFC 8628 §3.5),
//! and `temporarily_unavailable` (registered in RFC 6749 §11.4) is the one registered code that
//! says "try again later", so a client library that only looks at `error` still does the right
//! thing. The callback answers with our HTML error page.
//!
//! `/authorize` is charged only when a request would store a pending authorization (a valid
//! request that starts an upstream login): that is what the global
//! `max_pending_authorizations` cap protects, and the per-address budget keeps one address
//! from taking all of it (pending requests live 10 minutes, so one address holds at most
//! `authorize_burst + 10 × authorize_per_minute` of them). At that point the client and its
//! redirect URI are known to be valid, so the answer is the OAuth one — a redirect with
//! `error=temporarily_unavailable` and the client's `state` (RFC 6749 §4.1.2.1: "unable to
//! handle the request due to a temporary overloading"), so the client can tell its user to
//! try again — with `Retry-After` on it for clients that look. Invalid requests never reach the
//! budget: they get our error page and write nothing.
//!
//! Buckets run on monotonic time (`tokio::time::Instant`), not the injected wall clock: they
//! measure request spacing, not credential validity, and must not jump when the clock is set.
//!
//! The key uses the TCP peer address. Behind a reverse proxy every request shares the proxy's
//! address: the `/token` key still separates clients, and the burst sizes should be raised.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::ops::Add;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::state::{InMemoryState, NotKeyed, StateStore};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

use crate::provider::params::Params;
use crate::provider::{ErrorCode, OAuthError};

/// Configured limits (`[limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests to `/token` one client may make from one address at once.
    pub token_burst: u32,
    /// Sustained `/token` requests per minute per client and address.
    pub token_per_minute: u32,
    /// Login callbacks one address may make at once.
    pub callback_burst: u32,
    /// Sustained login callbacks per minute per address.
    pub callback_per_minute: u32,
    /// `/authorize` requests starting an upstream login one address may make at once.
    pub authorize_burst: u32,
    /// Sustained `/authorize` requests starting an upstream login per minute per address.
    pub authorize_per_minute: u32,
    /// Requests to the device verification page one address may make at once.
    pub device_burst: u32,
    /// Sustained requests to the device verification page per minute per address: the bound
    /// on user-code guesses (RFC 8628 §5.1).
    pub device_per_minute: u32,
    /// The most authorization requests waiting for an upstream login at once (a flood of
    /// `/authorize` cannot fill the disk); see `Provider::with_max_pending_authorizations`.
    pub max_pending_authorizations: u32,
}

impl RateLimits {
    /// The demo's defaults: every browser and test client of a demo shares 127.0.0.1, so the
    /// production per-address budgets would throttle ordinary test suites. Still bounded, so the
    /// limiter stays on the path; `[limits]` in the demo's `--config` overrides them.
    pub fn demo() -> Self {
        Self {
            token_burst: 20_000,
            token_per_minute: 600_000,
            callback_burst: 20_000,
            callback_per_minute: 600_000,
            authorize_burst: 20_000,
            authorize_per_minute: 600_000,
            device_burst: 20_000,
            device_per_minute: 600_000,
            ..Self::default()
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            token_burst: 200,
            token_per_minute: 600,
            callback_burst: 200,
            callback_per_minute: 600,
            // A whole office behind one NAT address starting the day (a few logins per
            // person) fits the burst; one address can hold at most 300 + 10 × 600 = 6 300
            // pending authorizations, 6 % of the default global cap.
            authorize_burst: 300,
            authorize_per_minute: 600,
            // A person needs about five requests (code, sign-in, return, answer); a guesser
            // gets 30 user codes a minute per address, against 20^8 codes (RFC 8628 §5.1).
            device_burst: 60,
            device_per_minute: 30,
            max_pending_authorizations: crate::provider::DEFAULT_MAX_PENDING_AUTHORIZATIONS as u32,
        }
    }
}

/// The most keys one limiter tracks (each about 130 bytes with its key and the map's overhead:
/// at most about 1.3 MB per limiter, four limiters). Every [`SWEEP_EVERY`] checks a limiter near
/// the cap first drops the keys whose bucket is full again (governor's `retain_recent`: that
/// changes no answer); if that leaves more than half the cap, the keys owing the least (those
/// nearest a full bucket) go too, down to half, so a throttled key keeps its state. Under a flood
/// of more distinct busy keys than this (many addresses), the evicted keys may so get back up to
/// a burst: the price of a bounded map, and why the cap is far above the number of clients and
/// offices a deployment serves.
pub const MAX_KEYS: usize = 10_000;

/// How many checks pass between two looks at a limiter's size: between two looks at most this
/// many keys are added, so a look prunes once the map is within this of [`MAX_KEYS`].
const SWEEP_EVERY: u64 = 64;

/// The limiter's time: tokio's monotonic clock, which tests pause and advance.
#[derive(Debug, Clone, Copy, Default)]
struct TokioClock;

/// A reading of [`TokioClock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Tick(Instant);

impl Add<Nanos> for Tick {
    type Output = Self;

    fn add(self, d: Nanos) -> Self {
        Tick(self.0 + Duration::from(d))
    }
}

impl Reference for Tick {
    fn duration_since(&self, earlier: Self) -> Nanos {
        self.0.saturating_duration_since(earlier.0).into()
    }

    fn saturating_sub(&self, d: Nanos) -> Self {
        Tick(self.0.checked_sub(Duration::from(d)).unwrap_or(self.0))
    }
}

impl Clock for TokioClock {
    type Instant = Tick;

    fn now(&self) -> Tick {
        Tick(Instant::now())
    }
}

/// governor's concurrent keyed store, shared so that [`Limiter::sweep`] can evict by debt
/// when dropping the idle keys is not enough.
#[derive(Debug, Clone, Default)]
struct Keys(Arc<DashMapStateStore<String>>);

impl StateStore for Keys {
    type Key = String;

    fn measure_and_replace<T, F, E>(&self, key: &String, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        self.0.measure_and_replace(key, f)
    }
}

impl ShrinkableKeyedStateStore<String> for Keys {
    fn retain_recent(&self, drop_below: Nanos) {
        ShrinkableKeyedStateStore::retain_recent(&*self.0, drop_below);
    }

    fn shrink_to_fit(&self) {
        self.0.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A key's theoretical arrival time (GCRA): how far its bucket is in debt. Read through the
/// state's own measure, with a closure that declines to change it.
fn debt(state: &InMemoryState) -> u64 {
    state
        .measure_and_replace(&NotKeyed::NonKey, |tat| {
            Err::<((), Nanos), u64>(tat.map_or(0, Nanos::as_u64))
        })
        .err()
        .unwrap_or_default()
}

/// A set of token buckets with one capacity and refill rate: governor's keyed GCRA limiter,
/// bounded to [`MAX_KEYS`] keys.
#[derive(Debug)]
pub struct Limiter {
    limiter: RateLimiter<String, Keys, TokioClock, NoOpMiddleware<Tick>>,
    keys: Keys,
    checks: AtomicU64,
}

impl Limiter {
    /// Buckets holding `burst` requests, refilled at `per_minute` per minute.
    pub fn new(burst: u32, per_minute: u32) -> Self {
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let keys = Keys::default();
        Self {
            limiter: RateLimiter::new(
                Quota::per_minute(per_minute).allow_burst(burst),
                keys.clone(),
                TokioClock,
            ),
            keys,
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one request from `key`'s bucket; over the limit, how long until one is available.
    // `&String`: governor's keyed store looks keys up by `&K`, and a `&str` would cost an
    // allocation per request to make one.
    #[allow(clippy::ptr_arg)]
    pub fn check(&self, key: &String) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == 0 {
            self.sweep();
        }
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(TokioClock.now()))
    }

    /// Keeps the map under [`MAX_KEYS`] (see there): nothing to do until it is within
    /// [`SWEEP_EVERY`] of the cap; each prune leaves at most half the cap, so its linear cost is
    /// paid at most once per `MAX_KEYS / 2 - SWEEP_EVERY` new keys.
    fn sweep(&self) {
        let margin = SWEEP_EVERY as usize;
        if self.limiter.len() + margin < MAX_KEYS {
            return;
        }
        self.limiter.retain_recent();
        let keep = MAX_KEYS / 2;
        if self.limiter.len() > keep {
            let mut debts: Vec<u64> = self.keys.0.iter().map(|e| debt(e.value())).collect();
            if debts.len() > keep {
                // The smallest debt kept; of the keys owing exactly that, only as many as fit.
                let first_kept = debts.len() - keep;
                let (_, least_kept, larger) = debts.select_nth_unstable(first_kept);
                let least_kept = *least_kept;
                let mut ties = keep - larger.iter().filter(|d| **d > least_kept).count();
                self.keys.0.retain(|_, state| {
                    let d = debt(state);
                    if d == least_kept && ties > 0 {
                        ties -= 1;
                        return true;
                    }
                    d > least_kept
                });
            }
        }
        self.limiter.shrink_to_fit();
    }

    /// How many keys are tracked (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.limiter.len()
    }
}

/// The limiters of one server. A handle: clones share one set, which a configuration reload
/// replaces with [`RateLimiters::reconfigure`].
#[derive(Debug, Clone)]
pub struct RateLimiters {
    set: Arc<ArcSwap<LimiterSet>>,
}

#[derive(Debug)]
struct LimiterSet {
    limits: RateLimits,
    token: Arc<Limiter>,
    callback: Arc<Limiter>,
    authorize: Arc<Limiter>,
    device: Arc<Limiter>,
}

impl RateLimiters {
    /// Limiters for `limits`.
    pub fn new(limits: &RateLimits) -> Self {
        Self {
            set: Arc::new(ArcSwap::from_pointee(LimiterSet::build(limits, None))),
        }
    }

    /// Applies new limits. A limiter whose numbers did not change keeps its buckets, so a
    /// reload is no way to hand a client that is being throttled a fresh burst; a changed one
    /// starts with full buckets at its new size.
    pub fn reconfigure(&self, limits: &RateLimits) {
        let set = LimiterSet::build(limits, Some(&self.set.load()));
        self.set.store(Arc::new(set));
    }
}

impl LimiterSet {
    /// Limiters for `limits`, each keeping `old`'s limiter (and its buckets) where its numbers
    /// are unchanged.
    fn build(limits: &RateLimits, old: Option<&LimiterSet>) -> Self {
        let limiter = |pick: fn(&LimiterSet) -> &Arc<Limiter>,
                       numbers: fn(&RateLimits) -> (u32, u32)| match old {
            Some(old) if numbers(&old.limits) == numbers(limits) => pick(old).clone(),
            _ => {
                let (burst, per_minute) = numbers(limits);
                Arc::new(Limiter::new(burst, per_minute))
            }
        };
        Self {
            limits: *limits,
            token: limiter(|s| &s.token, |l| (l.token_burst, l.token_per_minute)),
            callback: limiter(
                |s| &s.callback,
                |l| (l.callback_burst, l.callback_per_minute),
            ),
            authorize: limiter(
                |s| &s.authorize,
                |l| (l.authorize_burst, l.authorize_per_minute),
            ),
            device: limiter(|s| &s.device, |l| (l.device_burst, l.device_per_minute)),
        }
    }
}

fn peer(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Whole seconds to wait, at least 1 (RFC 9110 §10.2.3: `Retry-After` is delay-seconds).
fn retry_after(wait: Duration) -> HeaderValue {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    HeaderValue::from(secs.max(1))
}

/// The client id a token request names: from `Authorization: Basic`, else from the body's
/// `client_id` or client assertion's `iss`-bearing `client_id`. Unparseable → empty.
fn token_client_id(req_headers: &axum::http::HeaderMap, body: &[u8]) -> String {
    if let Some(id) = req_headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, rest)| STANDARD.decode(rest.trim()).ok())
        .and_then(|d| String::from_utf8(d).ok())
        .and_then(|d| d.split_once(':').map(|(id, _)| id.to_string()))
    {
        return id;
    }
    let params = Params::parse(&String::from_utf8_lossy(body));
    params.get("client_id").unwrap_or_default().to_string()
}

/// Middleware for `POST /token`, `/revoke` and `/introspect`: one bucket per (client id,
/// address).
pub async fn limit_token(
    State(limiters): State<RateLimiters>,
    req: Request,
    next: Next,
) -> Response {
    let ip = peer(&req);
    let (parts, body) = req.into_parts();
    // The body limit layer bounds this read; a body that fails to arrive is the handler's
    // problem, so it gets an empty body and answers invalid_request.
    let bytes = axum::body::to_bytes(body, super::MAX_FORM_BODY)
        .await
        .unwrap_or_default();
    let client = token_client_id(&parts.headers, &bytes);
    // Long ids cannot grow the key without bound: hash them.
    let key = format!("{ip} {}", crate::random::hash_secret(&client));
    match limiters.set.load().token.check(&key) {
        Ok(()) => next.run(Request::from_parts(parts, bytes.into())).await,
        Err(wait) => {
            tracing::warn!(client_id = %client.chars().take(64).collect::<String>(), peer = %ip, "token endpoint rate limit hit");
            let mut resp = super::token::oauth_error_response(
                &OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "too many token requests; retry later",
                ),
                false,
            );
            *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            resp.headers_mut()
                .insert(header::RETRY_AFTER, retry_after(wait));
            resp
        }
    }
}

/// The `/authorize` budget of the request's address, handed to the handler (as a request
/// extension) by [`authorize_budget`]: the handler takes from it only when it is about to store
/// a pending authorization.
#[derive(Debug, Clone)]
pub struct AuthorizeBudget {
    limiter: Arc<Limiter>,
    peer: String,
}

impl AuthorizeBudget {
    /// Takes one request from the address's bucket; over the limit, the `Retry-After` value.
    pub fn take(&self) -> Result<(), HeaderValue> {
        self.limiter.check(&self.peer).map_err(|wait| {
            tracing::warn!(peer = %self.peer, "authorize rate limit hit");
            retry_after(wait)
        })
    }
}

/// Middleware for `/authorize`: attaches the address's [`AuthorizeBudget`].
pub async fn authorize_budget(
    State(limiters): State<RateLimiters>,
    mut req: Request,
    next: Next,
) -> Response {
    let budget = AuthorizeBudget {
        limiter: limiters.set.load().authorize.clone(),
        peer: peer(&req),
    };
    req.extensions_mut().insert(budget);
    next.run(req).await
}

/// Middleware for the login callback: one bucket per address.
pub async fn limit_callback(
    State(limiters): State<RateLimiters>,
    req: Request,
    next: Next,
) -> Response {
    limit_page(&limiters.set.load().callback, "login callback", req, next).await
}

/// Middleware for the device verification page: one bucket per address, which bounds the
/// user codes one address can try (RFC 8628 §5.1).
pub async fn limit_device(
    State(limiters): State<RateLimiters>,
    req: Request,
    next: Next,
) -> Response {
    limit_page(
        &limiters.set.load().device,
        "device verification",
        req,
        next,
    )
    .await
}

/// One bucket per address for a page a person sees: over it, our error page with 429.
async fn limit_page(limiter: &Limiter, what: &str, req: Request, next: Next) -> Response {
    let ip = peer(&req);
    match limiter.check(&ip) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            tracing::warn!(peer = %ip, what, "page rate limit hit");
            let mut resp = super::error_page::render(
                StatusCode::TOO_MANY_REQUESTS,
                &OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "too many sign-in attempts from this network; wait a moment and try again",
                ),
                req.headers(),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, retry_after(wait));
            resp.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> String {
        k.to_owned()
    }

    #[tokio::test(start_paused = true)]
    async fn burst_passes_then_the_limit_holds_until_refilled_rfc6585_4() {
        let l = Limiter::new(50, 60);
        for _ in 0..50 {
            assert!(l.check(&key("ip")).is_ok());
        }
        let wait = l
            .check(&key("ip"))
            .expect_err("51st request in the same instant");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        // Another key has its own bucket.
        assert!(l.check(&key("other")).is_ok());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(l.check(&key("ip")).is_ok());
        assert!(l.check(&key("ip")).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_distinct_keys_stays_under_the_cap_and_a_throttled_key_stays_throttled() {
        let l = Limiter::new(2, 1);
        // A busy key with an empty bucket: it owes the most, so it is never the one to go.
        assert!(l.check(&key("busy")).is_ok());
        assert!(l.check(&key("busy")).is_ok());
        let mut largest = 0;
        for i in 0..3 * MAX_KEYS {
            tokio::time::advance(Duration::from_micros(1)).await;
            let _ = l.check(&format!("flood-{i}"));
            if i % 1000 == 0 {
                assert!(l.check(&key("busy")).is_err(), "after {i} keys");
            }
            largest = largest.max(l.len());
        }
        assert!(largest <= MAX_KEYS, "{largest} keys");
        assert!(largest > MAX_KEYS / 2, "the cap was reached: {largest}");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_keys_are_dropped_first_and_change_no_answer() {
        // One request a second: a key used once has a full bucket again a second later.
        let l = Limiter::new(1, 60);
        let below_the_sweep = MAX_KEYS - 2 * SWEEP_EVERY as usize;
        for i in 0..below_the_sweep {
            let _ = l.check(&format!("idle-{i}"));
        }
        assert_eq!(l.len(), below_the_sweep);
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(l.check(&key("busy")).is_ok());
        // Near the cap, the next sweep drops every idle key and nothing else.
        for i in 0..2 * SWEEP_EVERY {
            let _ = l.check(&format!("new-{i}"));
        }
        assert!(l.len() <= 1 + 2 * SWEEP_EVERY as usize, "{} keys", l.len());
        assert!(l.check(&key("busy")).is_err(), "a spent key stays spent");
        // A dropped key starts again with a full bucket, as it would have had anyway.
        assert!(l.check(&key("idle-7")).is_ok());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after(Duration::from_millis(10)), "1");
        assert_eq!(retry_after(Duration::from_millis(1500)), "2");
    }

    #[test]
    fn token_client_id_comes_from_basic_or_body() {
        let mut h = axum::http::HeaderMap::new();
        assert_eq!(token_client_id(&h, b"client_id=app&x=1"), "app");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {}", STANDARD.encode("basic-app:pw")))
                .expect("header"),
        );
        assert_eq!(token_client_id(&h, b"client_id=app"), "basic-app");
    }

    #[tokio::test]
    async fn a_reload_keeps_the_buckets_of_unchanged_limits_and_resizes_changed_ones() {
        let limits = RateLimits {
            token_burst: 1,
            token_per_minute: 1,
            callback_burst: 1,
            callback_per_minute: 1,
            ..RateLimits::default()
        };
        let limiters = RateLimiters::new(&limits);
        let in_a_layer = limiters.clone();
        assert!(in_a_layer.set.load().token.check(&key("k")).is_ok());
        assert!(in_a_layer.set.load().callback.check(&key("k")).is_ok());
        limiters.reconfigure(&RateLimits {
            callback_burst: 3,
            ..limits
        });
        // The token limit did not change: the spent bucket stays spent, no fresh burst.
        assert!(in_a_layer.set.load().token.check(&key("k")).is_err());
        // The callback limit grew: three at once now.
        for _ in 0..3 {
            assert!(in_a_layer.set.load().callback.check(&key("k")).is_ok());
        }
        assert!(in_a_layer.set.load().callback.check(&key("k")).is_err());
    }
}
