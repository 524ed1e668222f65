//! Conformance checks for authorization requests and codes: single use, created once, races, the
//! pending-request counter.

use super::{
    access_token, already_exists, auth_code, auth_request, create, is_already_exists, is_not_found,
    key, minimal_auth_request, no_error, not_found, put, race, race_keys, spread, winners,
    FAR_FUTURE, RACE_KEYS,
};
use crate::storage::{AuthCode, Store};

/// A stored authorization request comes back unchanged once, then is gone.
pub async fn auth_request_is_single_use(store: &dyn Store) {
    for req in [auth_request(FAR_FUTURE), minimal_auth_request(FAR_FUTURE)] {
        let k = key("authreq");
        put(store, &k, req.clone()).await;
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
    put(store, &k, first.clone()).await;
    assert!(is_already_exists(&create(store, &k, second).await));
    assert_eq!(store.take_auth_request(&k).await.expect("take"), first);
}

/// Creating an authorization code under a taken key fails and keeps the first record.
pub async fn auth_code_cannot_be_created_twice(store: &dyn Store) {
    let k = key("code-dup");
    let first = auth_code("grant-first", FAR_FUTURE);
    let second = auth_code("grant-second", FAR_FUTURE);
    put(store, &k, first.clone()).await;
    assert!(is_already_exists(&create(store, &k, second).await));
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
        [
            store.create_auth_request(k, req).await,
            store.create_auth_code(k, code).await,
            store.create_access_token(k, token).await,
        ]
    });
    for per_key in outcomes {
        let created = [0, 1, 2].map(|kind| {
            let outcomes = per_key.iter().map(|o| &o[kind]);
            winners(outcomes, already_exists, "racing create", |_| true)
        });
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
    put(store, &k, code.clone()).await;
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
        put(store, k, auth_code("grant-race", FAR_FUTURE)).await;
    }
    for per_key in race(&keys, |k| store.redeem_auth_code(k)) {
        let first_uses = winners(&per_key, no_error, "racing redemption", |c| !c.redeemed);
        assert_eq!(first_uses, 1, "racing redemptions that saw an unused code");
    }
}

/// Of many threads taking the same authorization request at once, exactly one gets it and the
/// others see `NotFound`.
pub async fn racing_takes_of_an_auth_request_succeed_exactly_once(store: &dyn Store) {
    let keys = race_keys("race-authreq");
    let req = auth_request(FAR_FUTURE);
    for k in &keys {
        put(store, k, req.clone()).await;
    }
    for per_key in race(&keys, |k| store.take_auth_request(k)) {
        let taken = winners(&per_key, not_found, "racing take", |got| {
            assert_eq!(got, &req);
            true
        });
        assert_eq!(taken, 1, "racing takes that got the request");
    }
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
        put(store, k, auth_request(FAR_FUTURE)).await;
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
    spread(&raced, |k| put(store, k, auth_request(FAR_FUTURE)));
    assert_eq!(count().await, start + 2 + RACE_KEYS);
    spread(&raced, |k| async move {
        store.take_auth_request(k).await.expect("take");
    });
    assert_eq!(count().await, start + 2);
    // An expired request leaves the count when it is swept (a `now` no other record reaches).
    let old = key("authreq-count-old");
    put(store, &old, auth_request(5)).await;
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

/// `create_auth_request_within` stores a request below the cap and counts it; at the cap it
/// stores nothing; a taken key is `AlreadyExists` (the flood cap of `/authorize`).
pub async fn auth_requests_are_created_within_the_cap_only(store: &dyn Store) {
    let start = store.count_auth_requests().await.expect("count");
    let (below, above) = (key("authreq-cap"), key("authreq-cap"));
    assert!(store
        .create_auth_request_within(&below, &auth_request(FAR_FUTURE), start + 1)
        .await
        .expect("below the cap"));
    assert_eq!(store.count_auth_requests().await.expect("count"), start + 1);
    assert!(!store
        .create_auth_request_within(&above, &auth_request(FAR_FUTURE), start + 1)
        .await
        .expect("at the cap"));
    assert!(is_not_found(&store.take_auth_request(&above).await));
    assert!(is_already_exists(
        &store
            .create_auth_request_within(&below, &auth_request(FAR_FUTURE), start + 10)
            .await
    ));
    assert_eq!(
        store.take_auth_request(&below).await.expect("take"),
        auth_request(FAR_FUTURE)
    );
    assert_eq!(store.count_auth_requests().await.expect("count"), start);
}

/// At the cap, under a flood, a fresh key is either stored or told "at the cap" — never "taken"
/// (which the provider would answer as `server_error`) — while other requests are taken in the
/// meantime (RFC 6749 §4.1.2.1: the flood is answered `temporarily_unavailable`).
pub async fn a_fresh_key_at_the_cap_is_stored_or_refused_never_reported_taken(store: &dyn Store) {
    use futures_util::future::{join_all, BoxFuture, FutureExt};

    const HELD: usize = 16;
    let start = store.count_auth_requests().await.expect("count");
    let cap = start + HELD;
    let held: Vec<String> = (0..HELD).map(|_| key("authreq-flood")).collect();
    for k in &held {
        put(store, k, auth_request(FAR_FUTURE)).await;
    }
    let fresh: Vec<String> = (0..4 * HELD).map(|_| key("authreq-flood")).collect();
    let request = auth_request(FAR_FUTURE);
    // Takes interleaved with the creates, so that some are taken between a create's look at the
    // cap and its answer.
    // A create's key and answer; a take answers `None`.
    type Answer<'k> = Option<(&'k str, crate::storage::Result<bool>)>;
    let mut calls: Vec<BoxFuture<'_, Answer<'_>>> = Vec::new();
    for (i, k) in fresh.iter().enumerate() {
        calls.push(
            store
                .create_auth_request_within(k, &request, cap)
                .map(move |answer| Some((k.as_str(), answer)))
                .boxed(),
        );
        if i % 4 == 3 {
            let taken = &held[i / 4];
            calls.push(
                store
                    .take_auth_request(taken)
                    .map(|t| {
                        t.expect("take");
                        None
                    })
                    .boxed(),
            );
        }
    }
    for (k, answer) in join_all(calls).await.into_iter().flatten() {
        match answer {
            Ok(true) => {
                store.take_auth_request(k).await.expect("stored");
            }
            Ok(false) => assert!(is_not_found(&store.take_auth_request(k).await)),
            Err(e) => panic!("a fresh key at the cap was answered {e:?}"),
        }
    }
    assert_eq!(store.count_auth_requests().await.expect("count"), start);
}
