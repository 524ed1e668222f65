//! Conformance checks for provider sessions: create, find, touch, take, sweep, races.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{
    identity, is_already_exists, is_not_found, key, race, race_keys, FAR_FUTURE, RACERS, SWEEP_NOW,
};
use crate::random;
use crate::storage::{Session, Store};

pub(super) fn session(expires_at: i64) -> Session {
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
