//! Conformance checks for what holds across record kinds: expiry sweeps, absent keys, flush.

use super::sessions::session;
use super::{
    access_token, auth_code, auth_request, is_not_found, key, put, refresh_token, sweep_leftovers,
    upstream_token, FAR_FUTURE,
};
use crate::storage::Store;

/// `delete_expired(now)` removes exactly the records of every kind whose expiry is strictly
/// before `now`, counts them, keeps the rest (including one expiring at `now` exactly), and keeps a
/// grant revoked until the later of two `keep_until`s.
pub async fn delete_expired_removes_exactly_the_expired_records_of_every_kind(store: &dyn Store) {
    let now = sweep_leftovers(store).await;
    let (past, at_now, later) = (now - 1, now, now + 3600);

    let dead_req = key("sweep-authreq");
    let live_req = key("sweep-authreq");
    put(store, &dead_req, auth_request(past)).await;
    put(store, &live_req, auth_request(at_now)).await;

    let dead_code = key("sweep-code");
    let dead_used_code = key("sweep-code");
    let live_used_code = key("sweep-code");
    put(store, &dead_code, auth_code("g", past)).await;
    put(store, &dead_used_code, auth_code("g", past)).await;
    put(store, &live_used_code, auth_code("g", later)).await;
    for used in [&dead_used_code, &live_used_code] {
        store.redeem_auth_code(used).await.expect("redeem");
    }

    let dead_token = key("sweep-token");
    let live_token = key("sweep-token");
    put(store, &dead_token, access_token("g", past)).await;
    put(store, &live_token, access_token("g", later)).await;

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
    put(store, &dead_upstream, upstream_token("old", past)).await;
    put(store, &live_upstream, upstream_token("fresh", later)).await;

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

/// `flush` succeeds and leaves every record readable and unchanged (it is what the durability
/// barrier calls before a credential is handed out).
pub async fn flush_keeps_every_record_readable(store: &dyn Store) {
    let (req, sess, refresh) = (key("flush-req"), key("flush-session"), key("flush-rt"));
    put(store, &req, auth_request(FAR_FUTURE)).await;
    let s = session(FAR_FUTURE);
    put(store, &sess, s.clone()).await;
    let rt = refresh_token("flush-grant", FAR_FUTURE);
    put(store, &refresh, rt.clone()).await;
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
