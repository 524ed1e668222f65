//! Conformance checks for access tokens, refresh tokens, grant revocation and used `jti`s.

use super::{
    access_token, already_exists, create, is_already_exists, is_not_found, key, put, race,
    race_keys, refresh_token, sweep_leftovers, winners, Record, FAR_FUTURE,
};
use crate::storage::{RefreshToken, Store};

/// An access token can be found until deleted; a second create under the same key fails without
/// overwriting; deleting an absent token is not an error.
pub async fn access_token_can_be_created_found_and_deleted(store: &dyn Store) {
    let k = key("token");
    let token = access_token("grant-token", FAR_FUTURE);
    put(store, &k, token.clone()).await;
    assert_eq!(store.find_access_token(&k).await.expect("find"), token);
    assert_eq!(
        store.find_access_token(&k).await.expect("find again"),
        token
    );
    assert!(is_already_exists(
        &create(store, &k, access_token("grant-other", FAR_FUTURE)).await
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

/// A refresh token reads back unchanged; a duplicate create fails without overwriting
/// (spending it is rotation's: `conformance::rotation`).
pub async fn refresh_token_can_be_created_and_found(store: &dyn Store) {
    let k = key("refresh");
    let token = refresh_token("grant-refresh", FAR_FUTURE);
    put(store, &k, token.clone()).await;
    assert_eq!(store.find_refresh_token(&k).await.expect("find"), token);
    assert!(is_already_exists(
        &create(store, &k, refresh_token("grant-other", FAR_FUTURE)).await
    ));
    assert_eq!(
        store.find_refresh_token(&k).await.expect("find after dup"),
        token
    );
    let absent = key("refresh-absent");
    assert!(is_not_found(&store.find_refresh_token(&absent).await));
}

/// A used `jti` is recorded once: a second record is `AlreadyExists`, and of many threads
/// recording it at once exactly one succeeds (RFC 7523 section 3: single-use assertions).
pub async fn used_jti_is_recorded_once_even_under_races(store: &dyn Store) {
    let k = key("jti");
    put(store, &k, Record::Jti(FAR_FUTURE)).await;
    assert!(is_already_exists(
        &create(store, &k, Record::Jti(FAR_FUTURE)).await
    ));
    let keys = race_keys("race-jti");
    for per_key in race(&keys, |k| store.create_used_jti(k, FAR_FUTURE)) {
        let recorded = winners(&per_key, already_exists, "racing jti record", |_| true);
        assert_eq!(recorded, 1, "racing jti records that succeeded");
    }
}

/// `delete_expired` also removes refresh tokens (spent or not) and used `jti`s strictly before
/// `now`, and keeps those expiring at `now` or later.
pub async fn delete_expired_removes_expired_refresh_tokens_and_used_jtis(store: &dyn Store) {
    let now = sweep_leftovers(store).await;
    let (dead, dead_spent, live) = (
        key("sweep-refresh"),
        key("sweep-refresh"),
        key("sweep-refresh"),
    );
    put(store, &dead, refresh_token("g", now - 1)).await;
    let spent = RefreshToken {
        spent: true,
        ..refresh_token("g", now - 1)
    };
    put(store, &dead_spent, spent.clone()).await;
    put(store, &live, refresh_token("g", now)).await;
    let (dead_jti, live_jti) = (key("sweep-jti"), key("sweep-jti"));
    put(store, &dead_jti, Record::Jti(now - 1)).await;
    put(store, &live_jti, Record::Jti(now + 60)).await;
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
    put(store, &dead_jti, Record::Jti(FAR_FUTURE)).await;
    assert!(is_already_exists(
        &create(store, &live_jti, Record::Jti(now)).await
    ));
}
