//! Conformance checks for the operator's reads and the audit log: live sessions most recently
//! used first, audit events newest first and swept at expiry.

use super::sessions::session;
use super::{key, FAR_FUTURE, SWEEP_NOW};
use crate::storage::{AuditEvent, Store};

/// Only live sessions are listed, most recently used first, within `limit`.
pub async fn live_sessions_are_listed_most_recently_used_first(store: &dyn Store) {
    let marker = key("operator-session");
    let now = FAR_FUTURE - 100_000;
    for (n, last_seen) in [(0, now - 30), (1, now - 10), (2, now - 20)] {
        let mut s = session(FAR_FUTURE);
        s.identity.user_id = format!("{marker}-{n}");
        s.last_seen = last_seen;
        store
            .create_session(&format!("{marker}-{n}"), &s)
            .await
            .expect("create");
    }
    let mut dead = session(now - 1);
    dead.identity.user_id = format!("{marker}-dead");
    store
        .create_session(&format!("{marker}-dead"), &dead)
        .await
        .expect("create");
    let mine: Vec<String> = store
        .list_sessions(now, usize::MAX)
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.identity.user_id)
        .filter(|u| u.starts_with(&marker))
        .collect();
    assert_eq!(
        mine,
        vec![
            format!("{marker}-1"),
            format!("{marker}-2"),
            format!("{marker}-0")
        ],
        "live ones only, most recently used first"
    );
    assert!(store.list_sessions(now, 2).await.expect("list").len() <= 2);
}

fn audit_event(at: i64, marker: &str, expires_at: i64) -> AuditEvent {
    AuditEvent {
        at,
        actor: "console:wecom/ZhangSan".into(),
        action: "keys.rotate".into(),
        target: Some(marker.to_owned()),
        outcome: "ok".into(),
        detail: Some("kid k1".into()),
        expires_at,
    }
}

/// Audit events come back newest first, intact, within `limit`; expired ones are swept.
pub async fn audit_events_are_listed_newest_first_and_expire(store: &dyn Store) {
    let marker = key("audit");
    for at in [FAR_FUTURE - 30, FAR_FUTURE - 10, FAR_FUTURE - 30, 10] {
        let expires = if at == 10 { SWEEP_NOW - 1 } else { FAR_FUTURE };
        store
            .create_audit_event(&audit_event(at, &marker, expires))
            .await
            .expect("create");
    }
    let mine = || async {
        store
            .list_audit_events(usize::MAX)
            .await
            .expect("list")
            .into_iter()
            .filter(|e| e.target.as_deref() == Some(marker.as_str()))
            .map(|e| e.at)
            .collect::<Vec<i64>>()
    };
    assert_eq!(
        mine().await,
        vec![FAR_FUTURE - 10, FAR_FUTURE - 30, FAR_FUTURE - 30, 10],
        "newest first; two of the same second both kept"
    );
    let newest = store.list_audit_events(1).await.expect("list");
    assert_eq!(newest.len(), 1);
    store.delete_expired(SWEEP_NOW).await.expect("sweep");
    assert_eq!(
        mine().await,
        vec![FAR_FUTURE - 10, FAR_FUTURE - 30, FAR_FUTURE - 30]
    );
    let kept = store.list_audit_events(usize::MAX).await.expect("list");
    let one = kept
        .iter()
        .find(|e| e.target.as_deref() == Some(marker.as_str()))
        .expect("kept");
    assert_eq!(*one, audit_event(FAR_FUTURE - 10, &marker, FAR_FUTURE));
}
