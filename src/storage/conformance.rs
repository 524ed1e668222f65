//! The behaviour every [`Store`] backend must show, as one shared suite (after Dex's
//! `storage/conformance`): each backend's tests call [`run_all`] on a fresh store.
//!
//! The checks are async and must run on a multi-thread tokio runtime
//! (`#[tokio::test(flavor = "multi_thread")]`): the races start OS threads of their own.
//! They panic on the first violation, as tests do. Each uses its own random keys, and the
//! records a check leaves behind expire long after any `now` another check sweeps with, so the
//! checks neither disturb one another nor rely on the store being empty.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{
    AccessToken, AuthCode, AuthRequest, ClaimsRequest, LoginEvent, RefreshToken, Session,
    SigningKeySet, StorageError, Store, StoredSigningKey, UpstreamToken,
};
use tokio::runtime::Handle;

use crate::connector::Identity;
use crate::random;

/// How many threads race for a single-use record.
const RACERS: usize = 8;
/// How many records each race is run on: one lucky interleaving proves little.
const RACE_KEYS: usize = 256;
/// An expiry no check's `now` reaches (year 2096), for records that must outlive every sweep.
const FAR_FUTURE: i64 = 4_000_000_000;
/// The `now` of the expiry check: far before `FAR_FUTURE`, so it touches no other check's records.
const SWEEP_NOW: i64 = 1_000_000;

/// Runs every check of the suite against `store`.
pub async fn run_all(store: &dyn Store) {
    auth_request_is_single_use(store).await;
    auth_request_cannot_be_created_twice(store).await;
    auth_code_cannot_be_created_twice(store).await;
    racing_creates_succeed_exactly_once(store).await;
    redeem_returns_the_previous_state_and_marks_redeemed(store).await;
    racing_redemptions_see_an_unredeemed_code_exactly_once(store).await;
    racing_takes_of_an_auth_request_succeed_exactly_once(store).await;
    access_token_can_be_created_found_and_deleted(store).await;
    grant_revocation_is_remembered(store).await;
    upstream_token_can_be_saved_replaced_found_and_deleted(store).await;
    user_link_can_be_saved_replaced_and_found_and_survives_expiry_sweeps(store).await;
    delete_expired_removes_exactly_the_expired_records_of_every_kind(store).await;
    absent_keys_are_not_found(store).await;
    session_can_be_created_found_touched_and_taken(store).await;
    racing_touches_of_a_session_keep_every_client(store).await;
    racing_takes_of_a_session_succeed_exactly_once(store).await;
    expired_sessions_are_swept(store).await;
    refresh_token_can_be_created_found_and_spent(store).await;
    racing_refreshes_see_an_unspent_token_exactly_once(store).await;
    used_jti_is_recorded_once_even_under_races(store).await;
    delete_expired_removes_expired_refresh_tokens_and_used_jtis(store).await;
    login_events_are_listed_newest_first_and_expire(store).await;
    racing_login_events_are_all_kept(store).await;
    pending_auth_requests_are_counted_through_creates_takes_races_and_sweeps(store).await;
    flush_keeps_every_record_readable(store).await;
    a_lease_has_one_holder_until_released_or_lapsed(store).await;
    racing_lease_acquisitions_have_exactly_one_winner(store).await;
    the_signing_key_set_is_inserted_once_and_replaced_by_compare_and_swap(store).await;
}

/// A fresh key no other check (or earlier run) uses.
fn key(kind: &str) -> String {
    format!("conformance-{kind}-{}", random::token(12))
}

/// An identity with non-ASCII text and every optional field set, to catch lossy encodings.
fn identity() -> Identity {
    Identity {
        user_id: "ZhangSan".into(),
        username: "zhangsan".into(),
        name: Some("张三".into()),
        email: Some("zhangsan@example.com".into()),
        email_verified: true,
        groups: vec!["研发部".into(), "on-call".into()],
        ..Identity::default()
    }
}

fn auth_request(expires_at: i64) -> AuthRequest {
    AuthRequest {
        client_id: "client-a".into(),
        redirect_uri: "https://rp.example/callback?x=1".into(),
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        state: Some("af0ifjsldkj".into()),
        nonce: Some("n-0S6_WzA2Mj".into()),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        response_mode: "form_post".into(),
        max_age: Some(3600),
        login_hint: Some("zhangsan".into()),
        ui_locales: Some("zh-CN en".into()),
        claims: ClaimsRequest {
            id_token: vec!["email".into()],
            userinfo: vec!["name".into()],
        },
        connector_id: "wecom".into(),
        browser_binding: random::hash_secret("binding"),
        created_at: expires_at - 600,
        expires_at,
    }
}

/// The same request with every optional field absent.
fn minimal_auth_request(expires_at: i64) -> AuthRequest {
    AuthRequest {
        state: None,
        nonce: None,
        code_challenge: None,
        max_age: None,
        login_hint: None,
        ui_locales: None,
        claims: ClaimsRequest::default(),
        response_mode: "query".into(),
        ..auth_request(expires_at)
    }
}

fn auth_code(grant_id: &str, expires_at: i64) -> AuthCode {
    AuthCode {
        client_id: "client-a".into(),
        redirect_uri: "https://rp.example/callback?x=1".into(),
        scopes: vec!["openid".into(), "profile".into()],
        nonce: Some("n-0S6_WzA2Mj".into()),
        code_challenge: None,
        identity: identity(),
        auth_time: expires_at - 60,
        grant_id: grant_id.into(),
        expires_at,
        redeemed: false,
        sid: Some("sid-1".into()),
        claims: ClaimsRequest {
            id_token: vec!["email".into()],
            userinfo: Vec::new(),
        },
    }
}

fn access_token(grant_id: &str, expires_at: i64) -> AccessToken {
    AccessToken {
        client_id: "client-a".into(),
        grant_id: grant_id.into(),
        scopes: vec!["openid".into(), "email".into()],
        identity: identity(),
        auth_time: expires_at - 3600,
        userinfo_claims: vec!["email_verified".into()],
        issued_at: expires_at - 3600,
        expires_at,
    }
}

fn refresh_token(grant_id: &str, expires_at: i64) -> RefreshToken {
    RefreshToken {
        client_id: "client-a".into(),
        grant_id: grant_id.into(),
        scopes: vec!["openid".into(), "offline_access".into()],
        identity: identity(),
        auth_time: expires_at - 7200,
        issued_at: expires_at - 3600,
        expires_at,
        spent: false,
    }
}

fn upstream_token(token: &str, expires_at: i64) -> UpstreamToken {
    UpstreamToken {
        token: token.into(),
        expires_at,
    }
}

fn is_not_found<T>(result: &Result<T, StorageError>) -> bool {
    matches!(result, Err(StorageError::NotFound))
}

fn is_already_exists<T>(result: &Result<T, StorageError>) -> bool {
    matches!(result, Err(StorageError::AlreadyExists))
}

/// A barrier that releases its threads within a few hundred nanoseconds of one another.
///
/// `std::sync::Barrier` parks the waiters and wakes them one after another, tens of microseconds
/// apart: longer than a store operation takes, so the "race" would run the threads one by one and
/// a non-atomic backend would pass. Here the waiters poll instead (yielding, so that on a machine
/// with fewer cores than racers the threads still to arrive get to run).
struct Gate {
    arrived: AtomicUsize,
}

impl Gate {
    /// Waits until all [`RACERS`] threads have called `wait` for the `round`-th time (from 0).
    fn wait(&self, round: usize) {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        let everyone = RACERS * (round + 1);
        let mut spins = 0u32;
        while self.arrived.load(Ordering::SeqCst) < everyone {
            spins += 1;
            if spins % 64 == 0 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// Runs `f` on the calling thread, handing its runtime worker over to tokio meanwhile
/// (`block_in_place`), for checks that start OS threads of their own. Each such thread drives its
/// store futures with the runtime handle's `block_on`, so the threads really run at once, on as
/// many cores as there are, whatever the runtime's size (tasks on a small runtime would take
/// turns). Needs a multi-thread runtime, as every test of the suite uses.
fn with_threads<R>(f: impl FnOnce(&Handle) -> R) -> R {
    let handle = Handle::current();
    tokio::task::block_in_place(|| f(&handle))
}

/// Runs `f` for every key on [`RACERS`] threads that start each key together; returns, per key,
/// what each thread got.
fn race<'a, T: Send, F: Future<Output = T>>(
    keys: &'a [String],
    f: impl Fn(&'a str) -> F + Sync,
) -> Vec<Vec<T>> {
    let gate = Gate {
        arrived: AtomicUsize::new(0),
    };
    let per_thread: Vec<Vec<std::thread::Result<T>>> = with_threads(|rt| {
        std::thread::scope(|s| {
            let racers: Vec<_> = (0..RACERS)
                .map(|_| {
                    s.spawn(|| {
                        keys.iter()
                            .enumerate()
                            .map(|(round, k)| {
                                gate.wait(round);
                                // A panicking backend must fail the check, not leave the other
                                // racers polling the gate for a thread that will never arrive.
                                panic::catch_unwind(AssertUnwindSafe(|| rt.block_on(f(k))))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|racer| racer.join().expect("a racing thread panicked"))
                .collect()
        })
    });
    // Transpose to one row per key, re-raising the first panic of the backend.
    let mut per_key: Vec<Vec<T>> = keys.iter().map(|_| Vec::with_capacity(RACERS)).collect();
    for results in per_thread {
        for (row, result) in per_key.iter_mut().zip(results) {
            match result {
                Ok(value) => row.push(value),
                Err(payload) => panic::resume_unwind(payload),
            }
        }
    }
    per_key
}

/// [`RACE_KEYS`] fresh keys for one race.
fn race_keys(kind: &str) -> Vec<String> {
    (0..RACE_KEYS).map(|_| key(kind)).collect()
}

/// A stored authorization request comes back unchanged once, then is gone.
pub async fn auth_request_is_single_use(store: &dyn Store) {
    for req in [auth_request(FAR_FUTURE), minimal_auth_request(FAR_FUTURE)] {
        let k = key("authreq");
        store
            .create_auth_request(&k, &req)
            .await
            .expect("create auth request");
        assert_eq!(store.take_auth_request(&k).await.expect("first take"), req);
        assert!(
            is_not_found(&store.take_auth_request(&k).await),
            "an auth request was taken twice"
        );
    }
}

/// Creating an authorization request under a taken key fails and keeps the first record.
pub async fn auth_request_cannot_be_created_twice(store: &dyn Store) {
    let k = key("authreq-dup");
    let first = auth_request(FAR_FUTURE);
    let second = minimal_auth_request(FAR_FUTURE);
    store.create_auth_request(&k, &first).await.expect("create");
    assert!(is_already_exists(
        &store.create_auth_request(&k, &second).await
    ));
    assert_eq!(store.take_auth_request(&k).await.expect("take"), first);
}

/// Creating an authorization code under a taken key fails and keeps the first record.
pub async fn auth_code_cannot_be_created_twice(store: &dyn Store) {
    let k = key("code-dup");
    let first = auth_code("grant-first", FAR_FUTURE);
    let second = auth_code("grant-second", FAR_FUTURE);
    store.create_auth_code(&k, &first).await.expect("create");
    assert!(is_already_exists(
        &store.create_auth_code(&k, &second).await
    ));
    assert_eq!(store.redeem_auth_code(&k).await.expect("redeem"), first);
}

/// Of many threads creating the same key at once, exactly one succeeds and the rest see
/// `AlreadyExists`, for every record kind created with `create_`.
pub async fn racing_creates_succeed_exactly_once(store: &dyn Store) {
    let keys = race_keys("race-create");
    let req = auth_request(FAR_FUTURE);
    let code = auth_code("grant-race-create", FAR_FUTURE);
    let token = access_token("grant-race-create", FAR_FUTURE);
    let (req, code, token) = (&req, &code, &token);
    let outcomes = race(&keys, |k| async move {
        (
            store.create_auth_request(k, req).await,
            store.create_auth_code(k, code).await,
            store.create_access_token(k, token).await,
        )
    });
    for per_key in outcomes {
        let mut created = [0; 3];
        for (req, code, token) in &per_key {
            for (i, outcome) in [req, code, token].into_iter().enumerate() {
                match outcome {
                    Ok(()) => created[i] += 1,
                    Err(StorageError::AlreadyExists) => {}
                    Err(other) => panic!("racing create failed: {other}"),
                }
            }
        }
        assert_eq!(
            created,
            [1, 1, 1],
            "racing creates: successes per kind (request, code, token)"
        );
    }
}

/// Redeeming returns the record as it was before the call and marks it redeemed; later
/// redemptions return `redeemed == true` and leave the rest of the record unchanged.
pub async fn redeem_returns_the_previous_state_and_marks_redeemed(store: &dyn Store) {
    let k = key("code");
    let code = auth_code("grant-redeem", FAR_FUTURE);
    store.create_auth_code(&k, &code).await.expect("create");
    assert_eq!(
        store.redeem_auth_code(&k).await.expect("first redeem"),
        code
    );
    let used = AuthCode {
        redeemed: true,
        ..code
    };
    assert_eq!(
        store.redeem_auth_code(&k).await.expect("second redeem"),
        used
    );
    assert_eq!(
        store.redeem_auth_code(&k).await.expect("third redeem"),
        used
    );
}

/// Of many threads redeeming the same code at once, exactly one sees `redeemed == false`
/// (RFC 6749 section 4.1.2: a code is used once); the others see it already redeemed.
pub async fn racing_redemptions_see_an_unredeemed_code_exactly_once(store: &dyn Store) {
    let keys = race_keys("race-code");
    for k in &keys {
        store
            .create_auth_code(k, &auth_code("grant-race", FAR_FUTURE))
            .await
            .expect("create");
    }
    for per_key in race(&keys, |k| store.redeem_auth_code(k)) {
        let mut first_uses = 0;
        for outcome in per_key {
            match outcome {
                Ok(code) if !code.redeemed => first_uses += 1,
                Ok(_) => {}
                Err(err) => panic!("racing redemption failed: {err}"),
            }
        }
        assert_eq!(first_uses, 1, "racing redemptions that saw an unused code");
    }
}

/// Of many threads taking the same authorization request at once, exactly one gets it and the
/// others see `NotFound`.
pub async fn racing_takes_of_an_auth_request_succeed_exactly_once(store: &dyn Store) {
    let keys = race_keys("race-authreq");
    let req = auth_request(FAR_FUTURE);
    for k in &keys {
        store.create_auth_request(k, &req).await.expect("create");
    }
    for per_key in race(&keys, |k| store.take_auth_request(k)) {
        let mut taken = 0;
        for outcome in per_key {
            match outcome {
                Ok(got) => {
                    assert_eq!(got, req);
                    taken += 1;
                }
                Err(StorageError::NotFound) => {}
                Err(err) => panic!("racing take failed: {err}"),
            }
        }
        assert_eq!(taken, 1, "racing takes that got the request");
    }
}

/// An access token can be found until deleted; a second create under the same key fails without
/// overwriting; deleting an absent token is not an error.
pub async fn access_token_can_be_created_found_and_deleted(store: &dyn Store) {
    let k = key("token");
    let token = access_token("grant-token", FAR_FUTURE);
    store.create_access_token(&k, &token).await.expect("create");
    assert_eq!(store.find_access_token(&k).await.expect("find"), token);
    assert_eq!(
        store.find_access_token(&k).await.expect("find again"),
        token
    );
    assert!(is_already_exists(
        &store
            .create_access_token(&k, &access_token("grant-other", FAR_FUTURE))
            .await
    ));
    assert_eq!(
        store.find_access_token(&k).await.expect("find after dup"),
        token
    );
    store.delete_access_token(&k).await.expect("delete");
    assert!(is_not_found(&store.find_access_token(&k).await));
    store.delete_access_token(&k).await.expect("delete absent");
}

/// A revoked grant reads as revoked, repeatedly; another grant does not.
pub async fn grant_revocation_is_remembered(store: &dyn Store) {
    let grant = key("grant");
    let other = key("grant-other");
    assert!(!store.is_grant_revoked(&grant).await.expect("before"));
    store
        .revoke_grant(&grant, FAR_FUTURE)
        .await
        .expect("revoke");
    assert!(store.is_grant_revoked(&grant).await.expect("after"));
    store
        .revoke_grant(&grant, FAR_FUTURE)
        .await
        .expect("revoke again");
    assert!(store
        .is_grant_revoked(&grant)
        .await
        .expect("after second revoke"));
    assert!(!store.is_grant_revoked(&other).await.expect("other grant"));
}

/// A user link returns the latest saved value; links have no expiry, so a sweep keeps them (a
/// renamed member's `sub` must stay stable).
pub async fn user_link_can_be_saved_replaced_and_found_and_survives_expiry_sweeps(
    store: &dyn Store,
) {
    let k = key("user-link");
    assert!(is_not_found(&store.find_user_link(&k).await));
    store.save_user_link(&k, "zhangsan").await.expect("save");
    assert_eq!(store.find_user_link(&k).await.expect("find"), "zhangsan");
    store
        .save_user_link(&k, "张三/ZhangSan")
        .await
        .expect("replace");
    assert_eq!(
        store.find_user_link(&k).await.expect("find"),
        "张三/ZhangSan"
    );
    store.delete_expired(SWEEP_NOW).await.expect("sweep");
    assert_eq!(
        store.find_user_link(&k).await.expect("kept"),
        "张三/ZhangSan"
    );
}

/// The upstream token cache returns the latest saved token until deleted; deleting an absent
/// token is not an error.
pub async fn upstream_token_can_be_saved_replaced_found_and_deleted(store: &dyn Store) {
    let k = key("upstream");
    let first = upstream_token("first-upstream-token", FAR_FUTURE);
    let second = upstream_token("second-upstream-token", FAR_FUTURE + 7200);
    store.save_upstream_token(&k, &first).await.expect("save");
    assert_eq!(store.find_upstream_token(&k).await.expect("find"), first);
    store
        .save_upstream_token(&k, &second)
        .await
        .expect("replace");
    assert_eq!(
        store.find_upstream_token(&k).await.expect("find replaced"),
        second
    );
    store.delete_upstream_token(&k).await.expect("delete");
    assert!(is_not_found(&store.find_upstream_token(&k).await));
    store
        .delete_upstream_token(&k)
        .await
        .expect("delete absent");
}

/// `delete_expired(now)` removes exactly the records of every kind whose expiry is strictly
/// before `now`, counts them, keeps the rest (including one expiring at `now` exactly), and keeps a
/// grant revoked until the later of two `keep_until`s.
pub async fn delete_expired_removes_exactly_the_expired_records_of_every_kind(store: &dyn Store) {
    let now = SWEEP_NOW;
    let (past, at_now, later) = (now - 1, now, now + 3600);
    // Leftovers of an interrupted earlier run would otherwise be counted below.
    store.delete_expired(now).await.expect("initial sweep");

    let dead_req = key("sweep-authreq");
    let live_req = key("sweep-authreq");
    store
        .create_auth_request(&dead_req, &auth_request(past))
        .await
        .expect("create");
    store
        .create_auth_request(&live_req, &auth_request(at_now))
        .await
        .expect("create");

    let dead_code = key("sweep-code");
    let dead_used_code = key("sweep-code");
    let live_used_code = key("sweep-code");
    store
        .create_auth_code(&dead_code, &auth_code("g", past))
        .await
        .expect("create");
    store
        .create_auth_code(&dead_used_code, &auth_code("g", past))
        .await
        .expect("create");
    store
        .redeem_auth_code(&dead_used_code)
        .await
        .expect("redeem");
    store
        .create_auth_code(&live_used_code, &auth_code("g", later))
        .await
        .expect("create");
    store
        .redeem_auth_code(&live_used_code)
        .await
        .expect("redeem");

    let dead_token = key("sweep-token");
    let live_token = key("sweep-token");
    store
        .create_access_token(&dead_token, &access_token("g", past))
        .await
        .expect("create");
    store
        .create_access_token(&live_token, &access_token("g", later))
        .await
        .expect("create");

    let dead_grant = key("sweep-grant");
    let live_grant = key("sweep-grant");
    store.revoke_grant(&dead_grant, past).await.expect("revoke");
    // The second, shorter revocation must not shorten the first.
    store
        .revoke_grant(&live_grant, later)
        .await
        .expect("revoke");
    store
        .revoke_grant(&live_grant, past)
        .await
        .expect("revoke again");

    let dead_upstream = key("sweep-upstream");
    let live_upstream = key("sweep-upstream");
    store
        .save_upstream_token(&dead_upstream, &upstream_token("old", past))
        .await
        .expect("save");
    store
        .save_upstream_token(&live_upstream, &upstream_token("fresh", later))
        .await
        .expect("save");

    assert_eq!(
        store.delete_expired(now).await.expect("sweep"),
        6,
        "expired records removed: 1 request, 2 codes, 1 token, 1 grant, 1 upstream token"
    );

    assert!(is_not_found(&store.take_auth_request(&dead_req).await));
    assert!(is_not_found(&store.redeem_auth_code(&dead_code).await));
    assert!(is_not_found(&store.redeem_auth_code(&dead_used_code).await));
    assert!(is_not_found(&store.find_access_token(&dead_token).await));
    assert!(!store
        .is_grant_revoked(&dead_grant)
        .await
        .expect("dead grant"));
    assert!(is_not_found(
        &store.find_upstream_token(&dead_upstream).await
    ));

    // A redeemed code stays until it expires, so a replay is still recognised as one.
    assert!(
        store
            .redeem_auth_code(&live_used_code)
            .await
            .expect("live")
            .redeemed
    );
    assert_eq!(
        store
            .find_access_token(&live_token)
            .await
            .expect("live token"),
        access_token("g", later)
    );
    assert!(store
        .is_grant_revoked(&live_grant)
        .await
        .expect("live grant"));
    assert_eq!(
        store
            .find_upstream_token(&live_upstream)
            .await
            .expect("live upstream"),
        upstream_token("fresh", later)
    );
    assert_eq!(store.delete_expired(now).await.expect("second sweep"), 0);
    // Taken last: a take would remove it, which is not what is being checked above.
    assert_eq!(
        store
            .take_auth_request(&live_req)
            .await
            .expect("live request"),
        auth_request(at_now)
    );
}

/// Every lookup of an absent key is `NotFound`; deleting one succeeds; an unknown grant is not
/// revoked.
pub async fn absent_keys_are_not_found(store: &dyn Store) {
    let k = key("absent");
    assert!(is_not_found(&store.take_auth_request(&k).await));
    assert!(is_not_found(&store.redeem_auth_code(&k).await));
    assert!(is_not_found(&store.find_access_token(&k).await));
    assert!(is_not_found(&store.find_upstream_token(&k).await));
    assert!(!store.is_grant_revoked(&k).await.expect("unknown grant"));
    store
        .delete_access_token(&k)
        .await
        .expect("delete absent token");
    store
        .delete_upstream_token(&k)
        .await
        .expect("delete absent upstream token");
}

fn session(expires_at: i64) -> Session {
    Session {
        sid: random::token(16),
        identity: identity(),
        connector_id: "wecom".into(),
        auth_time: expires_at - 28_800,
        last_seen: expires_at - 28_800,
        expires_at,
        clients: vec!["client-a".into()],
    }
}

/// A session is created once, found unchanged, touched (client added once, `last_seen` moved
/// forward only) and taken exactly once.
pub async fn session_can_be_created_found_touched_and_taken(store: &dyn Store) {
    let k = key("session");
    let s = session(FAR_FUTURE);
    store.create_session(&k, &s).await.expect("create");
    assert!(is_already_exists(&store.create_session(&k, &s).await));
    assert_eq!(store.find_session(&k).await.expect("find"), s);
    let now = s.last_seen + 10;
    let touched = store
        .touch_session(&k, "client-b", now)
        .await
        .expect("touch");
    assert_eq!(touched.clients, vec!["client-a", "client-b"]);
    assert_eq!(touched.last_seen, now);
    let again = store
        .touch_session(&k, "client-a", now - 5)
        .await
        .expect("touch");
    assert_eq!(again.clients, vec!["client-a", "client-b"]);
    assert_eq!(again.last_seen, now, "last_seen never moves back");
    assert_eq!(store.find_session(&k).await.expect("find"), again);
    assert_eq!(store.take_session(&k).await.expect("take"), again);
    assert!(is_not_found(&store.take_session(&k).await));
    assert!(is_not_found(&store.find_session(&k).await));
    assert!(is_not_found(
        &store.touch_session(&k, "client-a", now).await
    ));
}

/// Clients logging in through one session at the same time are all remembered (the update is
/// atomic), so a logout reaches every one of them.
pub async fn racing_touches_of_a_session_keep_every_client(store: &dyn Store) {
    let keys = race_keys("session-touch");
    for k in &keys {
        store
            .create_session(k, &session(FAR_FUTURE))
            .await
            .expect("create");
    }
    let next = AtomicUsize::new(0);
    let next = &next;
    race(&keys, |k| async move {
        let client = format!("client-{}", next.fetch_add(1, Ordering::SeqCst));
        store.touch_session(k, &client, 1).await.expect("touch");
    });
    for k in &keys {
        let s = store.take_session(k).await.expect("take");
        assert_eq!(
            s.clients.len(),
            1 + RACERS,
            "a racing update of {k} was lost"
        );
    }
}

/// Of racing takes of one session only one succeeds: a logout notifies the clients once.
pub async fn racing_takes_of_a_session_succeed_exactly_once(store: &dyn Store) {
    let keys = race_keys("session-take");
    for k in &keys {
        store
            .create_session(k, &session(FAR_FUTURE))
            .await
            .expect("create");
    }
    for (k, results) in keys.iter().zip(race(&keys, |k| store.take_session(k))) {
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "session {k} taken {won} times");
    }
}

/// `delete_expired` removes sessions past `expires_at` and keeps live ones.
pub async fn expired_sessions_are_swept(store: &dyn Store) {
    let now = SWEEP_NOW;
    store.delete_expired(now).await.expect("initial sweep");
    let dead = key("sweep-session");
    let live = key("sweep-session");
    let live_session = session(now);
    store
        .create_session(&dead, &session(now - 1))
        .await
        .expect("create");
    store
        .create_session(&live, &live_session)
        .await
        .expect("create");
    assert_eq!(store.delete_expired(now).await.expect("sweep"), 1);
    assert!(is_not_found(&store.find_session(&dead).await));
    assert_eq!(store.take_session(&live).await.expect("live"), live_session);
}

/// A refresh token reads back unchanged until spent; spending returns the state before the call,
/// so the first spend sees `spent == false` and every later one `spent == true`; a duplicate
/// create fails without overwriting.
pub async fn refresh_token_can_be_created_found_and_spent(store: &dyn Store) {
    let k = key("refresh");
    let token = refresh_token("grant-refresh", FAR_FUTURE);
    store
        .create_refresh_token(&k, &token)
        .await
        .expect("create");
    assert_eq!(store.find_refresh_token(&k).await.expect("find"), token);
    assert!(is_already_exists(
        &store
            .create_refresh_token(&k, &refresh_token("grant-other", FAR_FUTURE))
            .await
    ));
    assert_eq!(
        store.spend_refresh_token(&k).await.expect("first spend"),
        token
    );
    let spent = RefreshToken {
        spent: true,
        ..token
    };
    assert_eq!(
        store.spend_refresh_token(&k).await.expect("second spend"),
        spent
    );
    assert_eq!(
        store.find_refresh_token(&k).await.expect("find spent"),
        spent
    );
    let absent = key("refresh-absent");
    assert!(is_not_found(&store.find_refresh_token(&absent).await));
    assert!(is_not_found(&store.spend_refresh_token(&absent).await));
}

/// Of many threads spending the same refresh token at once, exactly one sees it unspent
/// (RFC 9700 section 4.14.2: rotation makes every refresh token single use).
pub async fn racing_refreshes_see_an_unspent_token_exactly_once(store: &dyn Store) {
    let keys = race_keys("race-refresh");
    for k in &keys {
        store
            .create_refresh_token(k, &refresh_token("grant-race", FAR_FUTURE))
            .await
            .expect("create");
    }
    for per_key in race(&keys, |k| store.spend_refresh_token(k)) {
        let mut first_uses = 0;
        for outcome in per_key {
            match outcome {
                Ok(token) if !token.spent => first_uses += 1,
                Ok(_) => {}
                Err(err) => panic!("racing spend failed: {err}"),
            }
        }
        assert_eq!(first_uses, 1, "racing spends that saw an unspent token");
    }
}

/// A used `jti` is recorded once: a second record is `AlreadyExists`, and of many threads
/// recording it at once exactly one succeeds (RFC 7523 section 3: single-use assertions).
pub async fn used_jti_is_recorded_once_even_under_races(store: &dyn Store) {
    let k = key("jti");
    store
        .create_used_jti(&k, FAR_FUTURE)
        .await
        .expect("first use");
    assert!(is_already_exists(
        &store.create_used_jti(&k, FAR_FUTURE).await
    ));
    let keys = race_keys("race-jti");
    for per_key in race(&keys, |k| store.create_used_jti(k, FAR_FUTURE)) {
        let mut recorded = 0;
        for outcome in per_key {
            match outcome {
                Ok(()) => recorded += 1,
                Err(StorageError::AlreadyExists) => {}
                Err(err) => panic!("racing jti record failed: {err}"),
            }
        }
        assert_eq!(recorded, 1, "racing jti records that succeeded");
    }
}

/// `delete_expired` also removes refresh tokens (spent or not) and used `jti`s strictly before
/// `now`, and keeps those expiring at `now` or later.
pub async fn delete_expired_removes_expired_refresh_tokens_and_used_jtis(store: &dyn Store) {
    let now = SWEEP_NOW;
    store.delete_expired(now).await.expect("initial sweep");
    let dead = key("sweep-refresh");
    let dead_spent = key("sweep-refresh");
    let live = key("sweep-refresh");
    store
        .create_refresh_token(&dead, &refresh_token("g", now - 1))
        .await
        .expect("create");
    store
        .create_refresh_token(&dead_spent, &refresh_token("g", now - 1))
        .await
        .expect("create");
    store.spend_refresh_token(&dead_spent).await.expect("spend");
    store
        .create_refresh_token(&live, &refresh_token("g", now))
        .await
        .expect("create");
    let dead_jti = key("sweep-jti");
    let live_jti = key("sweep-jti");
    store
        .create_used_jti(&dead_jti, now - 1)
        .await
        .expect("record");
    store
        .create_used_jti(&live_jti, now + 60)
        .await
        .expect("record");
    assert_eq!(
        store.delete_expired(now).await.expect("sweep"),
        3,
        "expired records removed: 2 refresh tokens, 1 jti"
    );
    assert!(is_not_found(&store.find_refresh_token(&dead).await));
    assert!(is_not_found(&store.find_refresh_token(&dead_spent).await));
    assert_eq!(
        store.find_refresh_token(&live).await.expect("live"),
        refresh_token("g", now)
    );
    // A swept jti may be used again: its assertion has expired, so it is refused for that.
    store
        .create_used_jti(&dead_jti, FAR_FUTURE)
        .await
        .expect("reuse");
    assert!(is_already_exists(
        &store.create_used_jti(&live_jti, now).await
    ));
}

fn login_event(at: i64, marker: &str, expires_at: i64) -> LoginEvent {
    LoginEvent {
        at,
        user_id: Some("ZhangSan".into()),
        client_id: Some("client-a".into()),
        address: Some("203.0.113.7".into()),
        outcome: "success".into(),
        reason: Some(marker.to_owned()),
        request_id: Some("rid".into()),
        expires_at,
    }
}

/// Events come back newest first, intact, within `limit`; expired ones are swept.
pub async fn login_events_are_listed_newest_first_and_expire(store: &dyn Store) {
    let marker = key("event");
    for at in [FAR_FUTURE - 30, FAR_FUTURE - 10, FAR_FUTURE - 20] {
        store
            .create_login_event(&login_event(at, &marker, FAR_FUTURE))
            .await
            .expect("create event");
    }
    let expired = login_event(10, &marker, SWEEP_NOW - 1);
    store
        .create_login_event(&expired)
        .await
        .expect("create event");
    let marker = &marker;
    let mine = |limit: usize| async move {
        store
            .list_login_events(limit)
            .await
            .expect("list events")
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(marker.as_str()))
            .collect::<Vec<LoginEvent>>()
    };
    let all = mine(usize::MAX).await;
    let times: Vec<i64> = all.iter().map(|e| e.at).collect();
    assert_eq!(
        times,
        vec![FAR_FUTURE - 10, FAR_FUTURE - 20, FAR_FUTURE - 30, 10]
    );
    assert_eq!(all[0], login_event(FAR_FUTURE - 10, marker, FAR_FUTURE));
    assert!(store.list_login_events(2).await.expect("list").len() <= 2);
    store.delete_expired(SWEEP_NOW).await.expect("sweep");
    let after: Vec<i64> = mine(usize::MAX).await.iter().map(|e| e.at).collect();
    assert_eq!(
        after,
        vec![FAR_FUTURE - 10, FAR_FUTURE - 20, FAR_FUTURE - 30]
    );
}

/// Logins finishing at the same second on many threads each leave their event.
pub async fn racing_login_events_are_all_kept(store: &dyn Store) {
    let marker = key("race-event");
    with_threads(|rt| {
        std::thread::scope(|s| {
            for _ in 0..RACERS {
                s.spawn(|| {
                    rt.block_on(async {
                        for _ in 0..16 {
                            store
                                .create_login_event(&login_event(
                                    FAR_FUTURE - 5,
                                    &marker,
                                    FAR_FUTURE,
                                ))
                                .await
                                .expect("create event");
                        }
                    })
                });
            }
        })
    });
    let count = store
        .list_login_events(usize::MAX)
        .await
        .expect("list")
        .iter()
        .filter(|e| e.reason.as_deref() == Some(marker.as_str()))
        .count();
    assert_eq!(count, RACERS * 16);
}

/// `count_auth_requests` follows creates, refused duplicates, takes, racing creates and expiry
/// sweeps exactly (the flood cap of `/authorize` relies on it).
pub async fn pending_auth_requests_are_counted_through_creates_takes_races_and_sweeps(
    store: &dyn Store,
) {
    let count = || async {
        store
            .count_auth_requests()
            .await
            .expect("count auth requests")
    };
    let start = count().await;
    let keys: Vec<String> = (0..3).map(|_| key("authreq-count")).collect();
    for k in &keys {
        store
            .create_auth_request(k, &auth_request(FAR_FUTURE))
            .await
            .expect("create");
    }
    assert!(is_already_exists(
        &store
            .create_auth_request(&keys[0], &auth_request(FAR_FUTURE))
            .await
    ));
    assert_eq!(
        count().await,
        start + 3,
        "creates (and a refused duplicate)"
    );
    store.take_auth_request(&keys[0]).await.expect("take");
    assert!(is_not_found(&store.take_auth_request(&keys[0]).await));
    assert_eq!(
        count().await,
        start + 2,
        "a take, and a take of an absent key"
    );
    // Racing creates and takes of distinct keys: every one is counted once.
    let raced = race_keys("authreq-count-race");
    with_threads(|rt| {
        std::thread::scope(|scope| {
            for chunk in raced.chunks(RACE_KEYS / RACERS) {
                scope.spawn(move || {
                    rt.block_on(async {
                        for k in chunk {
                            store
                                .create_auth_request(k, &auth_request(FAR_FUTURE))
                                .await
                                .expect("create");
                        }
                    })
                });
            }
        })
    });
    assert_eq!(count().await, start + 2 + RACE_KEYS);
    with_threads(|rt| {
        std::thread::scope(|scope| {
            for chunk in raced.chunks(RACE_KEYS / RACERS) {
                scope.spawn(move || {
                    rt.block_on(async {
                        for k in chunk {
                            store.take_auth_request(k).await.expect("take");
                        }
                    })
                });
            }
        })
    });
    assert_eq!(count().await, start + 2);
    // An expired request leaves the count when it is swept (a `now` no other record reaches).
    let old = key("authreq-count-old");
    store
        .create_auth_request(&old, &auth_request(5))
        .await
        .expect("create");
    assert_eq!(count().await, start + 3);
    assert!(store.delete_expired(6).await.expect("sweep") >= 1);
    assert!(is_not_found(&store.take_auth_request(&old).await));
    assert_eq!(
        count().await,
        start + 2,
        "a swept request is no longer pending"
    );
    for k in &keys[1..] {
        store.take_auth_request(k).await.expect("take");
    }
    assert_eq!(count().await, start);
}

/// `flush` succeeds and leaves every record readable and unchanged (it is what the durability
/// barrier calls before a credential is handed out).
pub async fn flush_keeps_every_record_readable(store: &dyn Store) {
    let (req, sess, refresh) = (key("flush-req"), key("flush-session"), key("flush-rt"));
    store
        .create_auth_request(&req, &auth_request(FAR_FUTURE))
        .await
        .expect("create request");
    let s = session(FAR_FUTURE);
    store
        .create_session(&sess, &s)
        .await
        .expect("create session");
    let rt = refresh_token("flush-grant", FAR_FUTURE);
    store
        .create_refresh_token(&refresh, &rt)
        .await
        .expect("create refresh");
    store.flush().await.expect("flush");
    store
        .flush()
        .await
        .expect("a second flush with nothing new");
    assert_eq!(store.find_session(&sess).await.expect("session"), s);
    assert_eq!(
        store.find_refresh_token(&refresh).await.expect("refresh"),
        rt
    );
    assert_eq!(
        store.take_auth_request(&req).await.expect("request"),
        auth_request(FAR_FUTURE)
    );
}

// ---------------------------------------------------------------------------------------------
// Shared-store records: the signing key set and named leases (`storage::cluster`).

/// A time base for the lease checks far from every other check's sweeps.
const LEASE_NOW: i64 = FAR_FUTURE - 100_000;

/// A lease is held by one owner until it is released by that owner or lapses; its holder may
/// extend it; releasing someone else's lease changes nothing.
pub async fn a_lease_has_one_holder_until_released_or_lapsed(store: &dyn Store) {
    let name = key("lease");
    let t = LEASE_NOW;
    assert!(store
        .acquire_lease(&name, "a", t, t + 10)
        .await
        .expect("acquire"));
    assert!(
        !store
            .acquire_lease(&name, "b", t + 1, t + 11)
            .await
            .expect("acquire"),
        "two holders"
    );
    assert!(
        store
            .acquire_lease(&name, "a", t + 5, t + 20)
            .await
            .expect("extend"),
        "the holder extends"
    );
    store
        .release_lease(&name, "b")
        .await
        .expect("release by another");
    assert!(
        !store
            .acquire_lease(&name, "b", t + 19, t + 30)
            .await
            .expect("acquire"),
        "released by a non-holder"
    );
    // Lapsed at its `until`: someone else may take it, and the old holder's release is a no-op.
    assert!(store
        .acquire_lease(&name, "b", t + 20, t + 40)
        .await
        .expect("take over"));
    store
        .release_lease(&name, "a")
        .await
        .expect("stale release");
    assert!(
        !store
            .acquire_lease(&name, "a", t + 21, t + 50)
            .await
            .expect("acquire"),
        "a stale release freed it"
    );
    store.release_lease(&name, "b").await.expect("release");
    assert!(store
        .acquire_lease(&name, "a", t + 22, t + 50)
        .await
        .expect("acquire after release"));
    // Leases are independent by name.
    assert!(store
        .acquire_lease(&key("lease"), "b", t + 22, t + 50)
        .await
        .expect("other name"));
    // Releasing an absent lease is not an error.
    store
        .release_lease(&key("lease"), "a")
        .await
        .expect("release absent");
}

/// Of many owners racing for one lease, exactly one gets it.
pub async fn racing_lease_acquisitions_have_exactly_one_winner(store: &dyn Store) {
    let keys = race_keys("lease-race");
    for (k, results) in keys.iter().zip(race(&keys, |k| async move {
        let owner = random::token(8);
        store
            .acquire_lease(k, &owner, LEASE_NOW, LEASE_NOW + 60)
            .await
    })) {
        let won = results
            .into_iter()
            .map(|r| r.expect("acquire"))
            .filter(|won| *won)
            .count();
        assert_eq!(won, 1, "lease {k} had {won} holders at once");
    }
}

fn signing_key_set(version: i64, marker: &str) -> SigningKeySet {
    use crate::tokens::{KeyStatus, SigningAlg};
    SigningKeySet {
        version,
        keys: vec![
            StoredSigningKey {
                kid: format!("kid-{marker}-active"),
                alg: SigningAlg::Rs256,
                private_pem: format!("-----BEGIN PRIVATE KEY-----\n{marker}\n-----END PRIVATE KEY-----\n"),
                created_at: 1_700_000_000,
                status: KeyStatus::Active,
                retire_at: None,
            },
            StoredSigningKey {
                kid: format!("kid-{marker}-retiring"),
                alg: SigningAlg::EdDsa,
                private_pem: "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n".into(),
                created_at: 1_600_000_000,
                status: KeyStatus::Retiring,
                retire_at: Some(1_700_086_400),
            },
        ],
    }
}

/// The signing key set is inserted once (a second insert, as from a second instance starting
/// at the same time, fails and changes nothing) and replaced only over the version it was read
/// at; it survives sweeps, and of racing replacements exactly one wins.
pub async fn the_signing_key_set_is_inserted_once_and_replaced_by_compare_and_swap(
    store: &dyn Store,
) {
    let version = match store.find_signing_keys().await {
        Ok(set) => set.version,
        Err(StorageError::NotFound) => {
            let first = signing_key_set(1, "first");
            store.save_signing_keys(None, &first).await.expect("insert");
            assert!(
                is_already_exists(
                    &store
                        .save_signing_keys(None, &signing_key_set(1, "second"))
                        .await
                ),
                "a second insert replaced the key set"
            );
            assert_eq!(store.find_signing_keys().await.expect("find"), first);
            1
        }
        Err(e) => panic!("find_signing_keys: {e}"),
    };
    assert!(
        is_already_exists(
            &store
                .save_signing_keys(Some(version + 7), &signing_key_set(version + 8, "stale"))
                .await
        ),
        "a replacement over another version succeeded"
    );
    let next = signing_key_set(version + 1, "next");
    store
        .save_signing_keys(Some(version), &next)
        .await
        .expect("replace");
    assert_eq!(store.find_signing_keys().await.expect("find"), next);
    assert!(is_already_exists(
        &store
            .save_signing_keys(Some(version), &signing_key_set(version + 1, "late"))
            .await
    ));
    store.delete_expired(SWEEP_NOW).await.expect("sweep");
    assert_eq!(
        store.find_signing_keys().await.expect("kept by sweeps"),
        next
    );
    // Racing replacements from one version: exactly one is kept.
    let base = version + 1;
    let one = vec![key("keyset-race")];
    let results = race(&one, |_| async move {
        let marker = random::alphanumeric(8);
        store
            .save_signing_keys(Some(base), &signing_key_set(base + 1, &marker))
            .await
            .map(|()| marker)
    })
    .remove(0);
    let winners: Vec<String> = results.into_iter().filter_map(|r| r.ok()).collect();
    assert_eq!(
        winners.len(),
        1,
        "{} replacements of one version succeeded",
        winners.len()
    );
    let stored = store.find_signing_keys().await.expect("find");
    assert_eq!(stored, signing_key_set(base + 1, &winners[0]));
}
