//! The behaviour every [`Store`] backend must show, as one shared suite (after Dex's
//! `storage/conformance`): each backend's tests call [`run_all`] on a fresh store.
//!
//! The checks are async and must run on a multi-thread tokio runtime
//! (`#[tokio::test(flavor = "multi_thread")]`): the races start OS threads of their own.
//! They panic on the first violation, as tests do. Each uses its own random keys, and the
//! records a check leaves behind expire long after any `now` another check sweeps with, so the
//! checks neither disturb one another nor rely on the store being empty.

mod auth_codes;
mod devices;
mod grants;
mod login_events;
mod marks;
mod operator;
mod rotation;
mod sessions;
mod signing_keys;
mod subjects;
mod sweeps;
mod upstream;

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;

use super::{
    AccessToken, AuthCode, AuthRequest, ClaimsRequest, RefreshToken, Session, StorageError, Store,
    UpstreamToken,
};
use crate::identity::Identity;
use crate::random;

pub use auth_codes::{
    a_fresh_key_at_the_cap_is_stored_or_refused_never_reported_taken,
    auth_code_cannot_be_created_twice, auth_request_cannot_be_created_twice,
    auth_request_is_single_use, auth_requests_are_created_within_the_cap_only,
    pending_auth_requests_are_counted_through_creates_takes_races_and_sweeps,
    racing_creates_succeed_exactly_once, racing_redemptions_see_an_unredeemed_code_exactly_once,
    racing_takes_of_an_auth_request_succeed_exactly_once,
    redeem_returns_the_previous_state_and_marks_redeemed,
};
pub use devices::{
    device_authorization_is_found_by_user_code_and_updated,
    expired_device_authorizations_are_swept, racing_device_updates_are_atomic,
};
pub use grants::{
    access_token_can_be_created_found_and_deleted,
    delete_expired_removes_expired_refresh_tokens_and_used_jtis, grant_revocation_is_remembered,
    refresh_token_can_be_created_and_found, used_jti_is_recorded_once_even_under_races,
};
pub use login_events::{
    a_recorded_login_stores_its_event_with_its_session_and_code,
    login_events_are_listed_newest_first_and_expire, racing_login_events_are_all_kept,
};
pub use marks::{
    a_redeemed_code_comes_with_its_persons_sign_out_marks,
    an_access_token_comes_with_its_grants_revocation_and_its_persons_marks,
    what_voids_an_access_token_is_read_at_once_after_a_read_of_it,
};
pub use operator::{
    audit_events_are_listed_newest_first_and_expire,
    live_sessions_are_listed_most_recently_used_first,
};
pub use rotation::{
    a_failed_rotation_leaves_the_old_token_unspent_and_writes_nothing,
    a_rotation_spends_the_token_and_stores_its_successor_and_access_token,
    racing_rotations_of_one_token_have_exactly_one_winner,
};
pub use sessions::{
    a_login_replaces_the_previous_session_and_stores_its_code, expired_sessions_are_swept,
    racing_logins_take_the_previous_session_exactly_once,
    racing_takes_of_a_session_succeed_exactly_once, racing_touches_of_a_session_keep_every_client,
    session_can_be_created_found_touched_and_taken,
};
pub use signing_keys::the_signing_key_set_is_inserted_once_and_replaced_by_compare_and_swap;
pub use subjects::{
    a_subjects_sessions_are_taken_and_grants_found_but_nobody_elses,
    subject_marks_keep_the_latest_time_and_are_swept_after_keep_until,
};
pub use sweeps::{
    absent_keys_are_not_found, delete_expired_removes_exactly_the_expired_records_of_every_kind,
    flush_keeps_every_record_readable,
};
pub use upstream::{
    a_lease_has_one_holder_until_released_or_lapsed,
    racing_lease_acquisitions_have_exactly_one_winner,
    upstream_token_can_be_saved_replaced_found_and_deleted,
    user_link_can_be_saved_replaced_and_found_and_survives_expiry_sweeps,
};

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
    a_login_replaces_the_previous_session_and_stores_its_code(store).await;
    racing_logins_take_the_previous_session_exactly_once(store).await;
    refresh_token_can_be_created_and_found(store).await;
    a_rotation_spends_the_token_and_stores_its_successor_and_access_token(store).await;
    a_failed_rotation_leaves_the_old_token_unspent_and_writes_nothing(store).await;
    racing_rotations_of_one_token_have_exactly_one_winner(store).await;
    used_jti_is_recorded_once_even_under_races(store).await;
    delete_expired_removes_expired_refresh_tokens_and_used_jtis(store).await;
    login_events_are_listed_newest_first_and_expire(store).await;
    racing_login_events_are_all_kept(store).await;
    a_recorded_login_stores_its_event_with_its_session_and_code(store).await;
    live_sessions_are_listed_most_recently_used_first(store).await;
    audit_events_are_listed_newest_first_and_expire(store).await;
    pending_auth_requests_are_counted_through_creates_takes_races_and_sweeps(store).await;
    auth_requests_are_created_within_the_cap_only(store).await;
    a_fresh_key_at_the_cap_is_stored_or_refused_never_reported_taken(store).await;
    flush_keeps_every_record_readable(store).await;
    a_lease_has_one_holder_until_released_or_lapsed(store).await;
    racing_lease_acquisitions_have_exactly_one_winner(store).await;
    the_signing_key_set_is_inserted_once_and_replaced_by_compare_and_swap(store).await;
    device_authorization_is_found_by_user_code_and_updated(store).await;
    racing_device_updates_are_atomic(store).await;
    expired_device_authorizations_are_swept(store).await;
    a_subjects_sessions_are_taken_and_grants_found_but_nobody_elses(store).await;
    subject_marks_keep_the_latest_time_and_are_swept_after_keep_until(store).await;
    a_redeemed_code_comes_with_its_persons_sign_out_marks(store).await;
    an_access_token_comes_with_its_grants_revocation_and_its_persons_marks(store).await;
    what_voids_an_access_token_is_read_at_once_after_a_read_of_it(store).await;
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
        device_user_code: Some("BCDF-GHJK".into()),
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
        device_user_code: None,
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
        client_only: false,
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

/// A record of any kind the checks store through [`put`].
enum Record {
    Request(AuthRequest),
    Code(AuthCode),
    Access(AccessToken),
    Refresh(RefreshToken),
    Session(Session),
    Upstream(UpstreamToken),
    /// A used `jti`, kept until the given expiry.
    Jti(i64),
}

macro_rules! record_from {
    ($($kind:ident($ty:ty)),*) => {
        $(impl From<$ty> for Record {
            fn from(record: $ty) -> Record {
                Record::$kind(record)
            }
        })*
    };
}

record_from!(
    Request(AuthRequest),
    Code(AuthCode),
    Access(AccessToken),
    Refresh(RefreshToken),
    Session(Session),
    Upstream(UpstreamToken)
);

/// Stores `record` under `k` with its kind's `create_` (`save_` for an upstream token); the
/// store's answer.
async fn create(store: &dyn Store, k: &str, record: impl Into<Record>) -> Result<(), StorageError> {
    match record.into() {
        Record::Request(r) => store.create_auth_request(k, &r).await,
        Record::Code(r) => store.create_auth_code(k, &r).await,
        Record::Access(r) => store.create_access_token(k, &r).await,
        Record::Refresh(r) => store.create_refresh_token(k, &r).await,
        Record::Session(r) => store.create_session(k, &r).await,
        Record::Upstream(r) => store.save_upstream_token(k, &r).await,
        Record::Jti(expires_at) => store.create_used_jti(k, expires_at).await,
    }
}

/// [`create`], for a record the check needs stored: a store that refuses it fails the check.
async fn put(store: &dyn Store, k: &str, record: impl Into<Record>) {
    if let Err(err) = create(store, k, record).await {
        panic!("storing a record under {k} failed: {err}");
    }
}

/// The record a lookup found, or `None` for `NotFound`; any other error fails the check.
fn found<T>(result: Result<T, StorageError>) -> Option<T> {
    match result {
        Ok(record) => Some(record),
        Err(StorageError::NotFound) => None,
        Err(err) => panic!("a lookup failed: {err}"),
    }
}

/// Sweeps what earlier runs (or an interrupted one) left expired before [`SWEEP_NOW`], so that a
/// check's own sweep counts only its records; returns that `now`.
async fn sweep_leftovers(store: &dyn Store) -> i64 {
    store
        .delete_expired(SWEEP_NOW)
        .await
        .expect("initial sweep");
    SWEEP_NOW
}

fn is_not_found<T>(result: &Result<T, StorageError>) -> bool {
    matches!(result, Err(StorageError::NotFound))
}

fn is_already_exists<T>(result: &Result<T, StorageError>) -> bool {
    matches!(result, Err(StorageError::AlreadyExists))
}

/// The error a loser of a create race sees.
fn already_exists(err: &StorageError) -> bool {
    matches!(err, StorageError::AlreadyExists)
}

/// The error a loser of a take race sees.
fn not_found(err: &StorageError) -> bool {
    matches!(err, StorageError::NotFound)
}

/// For races whose losers see no error at all (they get the record as it is now).
fn no_error(_: &StorageError) -> bool {
    false
}

/// How many of one key's racing `outcomes` won, as `won` judges them. An error is a lost race
/// when `lost` accepts it (the error the operation gives a loser); any other fails the check.
fn winners<'a, T: 'a>(
    outcomes: impl IntoIterator<Item = &'a Result<T, StorageError>>,
    lost: fn(&StorageError) -> bool,
    what: &str,
    won: impl Fn(&T) -> bool,
) -> usize {
    let mut winners = 0;
    for outcome in outcomes {
        match outcome {
            Ok(value) => winners += usize::from(won(value)),
            Err(err) if lost(err) => {}
            Err(err) => panic!("{what} failed: {err}"),
        }
    }
    winners
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

/// Runs `f` on every item, the items shared out among [`RACERS`] threads running at once (each
/// thread takes its share in turn): a networked store serves them in parallel, not one by one.
fn spread<'a, T: Sync, F: Future<Output = ()>>(items: &'a [T], f: impl Fn(&'a T) -> F + Sync) {
    with_threads(|rt| {
        std::thread::scope(|scope| {
            for chunk in items.chunks(items.len().div_ceil(RACERS)) {
                let f = &f;
                scope.spawn(move || {
                    for item in chunk {
                        rt.block_on(f(item));
                    }
                });
            }
        })
    });
}

/// [`RACE_KEYS`] fresh keys for one race.
fn race_keys(kind: &str) -> Vec<String> {
    (0..RACE_KEYS).map(|_| key(kind)).collect()
}
