//! Conformance checks for provider sessions: create, find, touch, take, sweep, races.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{
    auth_code, create, identity, is_already_exists, is_not_found, key, not_found, put, race,
    race_keys, sweep_leftovers, winners, FAR_FUTURE, RACERS,
};
use crate::random;
use crate::storage::{NewLogin, Session, Store};

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

/// Logs in through the browser's session under `previous`, issuing no code: the new session's
/// key and the previous session as `start_login` took it.
async fn login_after(
    store: &dyn Store,
    previous: &str,
    session: &Session,
) -> (String, Option<Session>) {
    let k = key("login-session");
    let login = NewLogin {
        previous: Some(previous),
        session_key: &k,
        session,
        code: None,
    };
    let taken = store.start_login(&login).await.expect("login");
    (k, taken)
}

/// A session is created once, found unchanged, touched (client added once, `last_seen` moved
/// forward only) and taken exactly once.
pub async fn session_can_be_created_found_touched_and_taken(store: &dyn Store) {
    let k = key("session");
    let s = session(FAR_FUTURE);
    put(store, &k, s.clone()).await;
    assert!(is_already_exists(&create(store, &k, s.clone()).await));
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
        put(store, k, session(FAR_FUTURE)).await;
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
        put(store, k, session(FAR_FUTURE)).await;
    }
    for (k, results) in keys.iter().zip(race(&keys, |k| store.take_session(k))) {
        let won = winners(&results, not_found, "racing session take", |_| true);
        assert_eq!(won, 1, "session {k} taken {won} times");
    }
}

/// `delete_expired` removes sessions past `expires_at` and keeps live ones.
pub async fn expired_sessions_are_swept(store: &dyn Store) {
    let now = sweep_leftovers(store).await;
    let (dead, live) = (key("sweep-session"), key("sweep-session"));
    let live_session = session(now);
    put(store, &dead, session(now - 1)).await;
    put(store, &live, live_session.clone()).await;
    assert_eq!(store.delete_expired(now).await.expect("sweep"), 1);
    assert!(is_not_found(&store.find_session(&dead).await));
    assert_eq!(store.take_session(&live).await.expect("live"), live_session);
}

/// A finished login's writes (`start_login`): the previous session is taken and returned, the
/// new one stored with the clients of the same person's previous session carried over (another
/// person's are not), and the code stored unredeemed; a taken session or code key is
/// `AlreadyExists`.
pub async fn a_login_replaces_the_previous_session_and_stores_its_code(store: &dyn Store) {
    // No previous session: the session and the code.
    let (first, code_key) = (key("login-session"), key("login-code"));
    let mut s = session(FAR_FUTURE);
    s.clients = vec!["client-b".into()];
    let code = auth_code("grant-login", FAR_FUTURE);
    let login = NewLogin {
        previous: None,
        session_key: &first,
        session: &s,
        code: Some((&code_key, &code)),
    };
    assert_eq!(store.start_login(&login).await.expect("login"), None);
    assert_eq!(store.find_session(&first).await.expect("session"), s);
    assert_eq!(store.redeem_auth_code(&code_key).await.expect("code"), code);
    assert!(is_already_exists(&store.start_login(&login).await));
    let other_code = NewLogin {
        session_key: &key("login-session"),
        ..login
    };
    assert!(
        is_already_exists(&store.start_login(&other_code).await),
        "the code's key is taken"
    );

    // The same person's previous session: taken, its clients first in the new one.
    let mut previous = session(FAR_FUTURE);
    previous.clients = vec!["client-a".into(), "client-b".into(), "client-c".into()];
    let previous_key = key("login-previous");
    put(store, &previous_key, previous.clone()).await;
    let mut new = session(FAR_FUTURE);
    new.clients = vec!["client-d".into(), "client-b".into(), "client-d".into()];
    let (second, taken) = login_after(store, &previous_key, &new).await;
    assert_eq!(taken, Some(previous));
    assert!(is_not_found(&store.find_session(&previous_key).await));
    assert_eq!(
        store.find_session(&second).await.expect("session").clients,
        vec!["client-a", "client-b", "client-c", "client-d"]
    );

    // Another person's previous session: taken, nothing carried over. An absent one: nothing.
    let mut lisi = session(FAR_FUTURE);
    lisi.identity.user_id = "LiSi".into();
    put(store, &previous_key, lisi.clone()).await;
    let (third, taken) = login_after(store, &previous_key, &s).await;
    assert_eq!(taken, Some(lisi));
    assert_eq!(store.find_session(&third).await.expect("session"), s);
    let (fourth, taken) = login_after(store, &previous_key, &s).await;
    assert_eq!(taken, None);
    assert_eq!(store.find_session(&fourth).await.expect("session"), s);
}

/// Of logins racing from one browser, exactly one takes its previous session (so another
/// person's old session is ended, and its clients told, once).
pub async fn racing_logins_take_the_previous_session_exactly_once(store: &dyn Store) {
    let keys = race_keys("login-race");
    for k in &keys {
        put(store, k, session(FAR_FUTURE)).await;
    }
    let new = session(FAR_FUTURE);
    let new = &new;
    let results = race(&keys, |k| async move { login_after(store, k, new).await.1 });
    for (k, results) in keys.iter().zip(results) {
        let took = results.iter().filter(|r| r.is_some()).count();
        assert_eq!(took, 1, "previous session {k} taken {took} times");
    }
}
