//! Conformance checks for the login event log: newest first, expiry, concurrent writers.

use super::sessions::session;
use super::{auth_code, is_already_exists, key, with_threads, FAR_FUTURE, RACERS, SWEEP_NOW};
use crate::storage::{LoginEvent, NewLogin, Store};

fn login_event(at: i64, marker: &str, expires_at: i64) -> LoginEvent {
    LoginEvent {
        at,
        user_id: Some("ZhangSan".into()),
        client_id: Some("client-a".into()),
        address: Some("203.0.113.7".into()),
        outcome: "success".into(),
        grant: Some("device_code".into()),
        reason: Some(marker.to_owned()),
        request_id: Some("rid".into()),
        expires_at,
    }
}

/// Every event whose reason is `marker`, newest first.
async fn marked(store: &dyn Store, marker: &str) -> Vec<LoginEvent> {
    store
        .list_login_events(usize::MAX)
        .await
        .expect("list events")
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(marker))
        .collect()
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
    assert_eq!(marked(store, &marker).await.len(), RACERS * 16);
}

/// A login stored with its event (`start_login_recorded`) leaves the session, the code and the
/// event; a login refused (its session key taken) leaves no event either.
pub async fn a_recorded_login_stores_its_event_with_its_session_and_code(store: &dyn Store) {
    let marker = key("login-event");
    let (session_key, code_key) = (key("recorded-session"), key("recorded-code"));
    let new = session(FAR_FUTURE);
    let code = auth_code("grant-recorded", FAR_FUTURE);
    let event = login_event(FAR_FUTURE - 40, &marker, FAR_FUTURE);
    let login = NewLogin {
        previous: None,
        session_key: &session_key,
        session: &new,
        code: Some((&code_key, &code)),
    };
    let previous = store
        .start_login_recorded(&login, &event)
        .await
        .expect("login");
    assert_eq!(previous, None);
    assert_eq!(
        store.find_session(&session_key).await.expect("session"),
        new
    );
    assert_eq!(store.redeem_auth_code(&code_key).await.expect("code"), code);
    let refused = NewLogin {
        code: None,
        ..login
    };
    assert!(is_already_exists(
        &store.start_login_recorded(&refused, &event).await
    ));
    assert_eq!(
        marked(store, &marker).await,
        vec![event],
        "one event, of the login that was stored"
    );
}
