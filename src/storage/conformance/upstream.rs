//! Conformance checks for what a connector keeps: upstream tokens, user links and leases.

use super::{
    is_not_found, key, no_error, race, race_keys, upstream_token, winners, FAR_FUTURE, SWEEP_NOW,
};
use crate::random;
use crate::storage::Store;

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

/// A time base for the lease checks far from every other check's sweeps.
const LEASE_NOW: i64 = FAR_FUTURE - 100_000;

/// A lease is held by one owner until it is released by that owner or lapses; its holder may
/// extend it; releasing someone else's lease changes nothing.
pub async fn a_lease_has_one_holder_until_released_or_lapsed(store: &dyn Store) {
    let name = key("lease");
    // Whether `owner` holds the lease after asking at `LEASE_NOW + at` to hold it until
    // `LEASE_NOW + until`.
    let acquire = |owner: &'static str, at: i64, until: i64| {
        let name = &name;
        async move {
            let (now, until) = (LEASE_NOW + at, LEASE_NOW + until);
            store
                .acquire_lease(name, owner, now, until)
                .await
                .expect("acquire")
        }
    };
    let release = |owner: &'static str| {
        let name = &name;
        async move { store.release_lease(name, owner).await.expect("release") }
    };
    assert!(acquire("a", 0, 10).await);
    assert!(!acquire("b", 1, 11).await, "two holders");
    assert!(acquire("a", 5, 20).await, "the holder extends");
    release("b").await;
    assert!(!acquire("b", 19, 30).await, "released by a non-holder");
    // Lapsed at its `until`: someone else may take it, and the old holder's release is a no-op.
    assert!(acquire("b", 20, 40).await, "taken over");
    release("a").await;
    assert!(!acquire("a", 21, 50).await, "a stale release freed it");
    release("b").await;
    assert!(acquire("a", 22, 50).await, "acquired after release");
    // Leases are independent by name.
    let t = LEASE_NOW;
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
        let won = winners(&results, no_error, "racing lease acquisition", |won| *won);
        assert_eq!(won, 1, "lease {k} had {won} holders at once");
    }
}
