//! Conformance checks for signing one person out everywhere: their sessions taken at once, their
//! grants found, and the subject marks that void what they held before.

use super::sessions::session;
use super::{access_token, auth_code, identity, is_not_found, key, put, refresh_token, FAR_FUTURE};
use crate::random;
use crate::storage::{Store, Subject};

/// Only the subject's own sessions are taken — through any of the named connectors, not through
/// another one, not another person's — each exactly once; their unexpired codes, access tokens
/// and refresh tokens name their grants, and live refresh tokens are counted.
pub async fn a_subjects_sessions_are_taken_and_grants_found_but_nobody_elses(store: &dyn Store) {
    let user = key("person");
    let subject = Subject {
        user_id: user.clone(),
        connectors: vec!["wecom".into(), "branch".into()],
    };
    let mine = |connector: &str| {
        let mut s = session(FAR_FUTURE);
        s.identity.user_id.clone_from(&user);
        s.identity.connector_id = connector.into();
        s.connector_id = connector.into();
        s
    };
    let (a, b, elsewhere, other) = (key("s"), key("s"), key("s"), key("s"));
    let (session_a, session_b) = (mine("wecom"), mine("branch"));
    put(store, &a, session_a.clone()).await;
    put(store, &b, session_b.clone()).await;
    put(store, &elsewhere, mine("other-corp")).await;
    put(store, &other, session(FAR_FUTURE)).await;
    let mut taken = store.take_sessions_of(&subject).await.expect("take");
    taken.sort_by(|x, y| x.connector_id.cmp(&y.connector_id));
    assert_eq!(taken, vec![session_b, session_a]);
    assert!(is_not_found(&store.find_session(&a).await));
    assert!(is_not_found(&store.find_session(&b).await));
    assert!(
        store.find_session(&elsewhere).await.is_ok(),
        "another corp's person stays"
    );
    assert!(
        store.find_session(&other).await.is_ok(),
        "another person stays"
    );
    assert!(store
        .take_sessions_of(&subject)
        .await
        .expect("again")
        .is_empty());

    let now = FAR_FUTURE - 100_000;
    let with_user = |mut id: crate::identity::Identity, connector: &str| {
        id.user_id.clone_from(&user);
        id.connector_id = connector.into();
        id
    };
    let (g_code, g_access, g_refresh, g_spent, g_old, g_legacy) =
        (key("g"), key("g"), key("g"), key("g"), key("g"), key("g"));
    let mut code = auth_code(&g_code, FAR_FUTURE);
    code.identity = with_user(identity(), "wecom");
    put(store, &random::token(16), code.clone()).await;
    let mut at = access_token(&g_access, FAR_FUTURE);
    at.identity = with_user(identity(), "branch");
    put(store, &random::token(16), at.clone()).await;
    let mut rt = refresh_token(&g_refresh, FAR_FUTURE);
    rt.identity = with_user(identity(), "wecom");
    put(store, &random::token(16), rt.clone()).await;
    let mut spent = refresh_token(&g_spent, FAR_FUTURE);
    spent.identity = with_user(identity(), "wecom");
    spent.spent = true;
    put(store, &random::token(16), spent.clone()).await;
    let mut expired = refresh_token(&g_old, now - 1);
    expired.identity = with_user(identity(), "wecom");
    put(store, &random::token(16), expired.clone()).await;
    let mut legacy = refresh_token(&g_legacy, FAR_FUTURE);
    legacy.identity = with_user(identity(), "");
    put(store, &random::token(16), legacy.clone()).await;
    // A pairwise client's record: its `sub` as user_id, the person's own id as upstream_id.
    let g_pairwise = key("g");
    let mut pairwise = access_token(&g_pairwise, FAR_FUTURE);
    pairwise.identity = with_user(identity(), "wecom");
    pairwise.identity.upstream_id = Some(user.clone());
    pairwise.identity.user_id = "pairwise-sub".into();
    put(store, &random::token(16), pairwise.clone()).await;
    let mut foreign = refresh_token(&key("g"), FAR_FUTURE);
    foreign.identity = with_user(identity(), "other-corp");
    put(store, &random::token(16), foreign.clone()).await;
    store
        .create_refresh_token(&random::token(16), &refresh_token(&key("g"), FAR_FUTURE))
        .await
        .expect("someone else's");

    let found = store.find_grants_of(&subject, now).await.expect("grants");
    let mut expected: Vec<String> =
        vec![g_code, g_access, g_refresh, g_spent, g_legacy, g_pairwise];
    expected.sort();
    assert_eq!(found.grant_ids.into_iter().collect::<Vec<_>>(), expected);
    assert_eq!(found.live_refresh_tokens, 2, "the live and the legacy one");
}

/// A subject mark reads back; a later `not_before` replaces an earlier one and an earlier one
/// never replaces a later one; marks are swept after `keep_until`, not before.
pub async fn subject_marks_keep_the_latest_time_and_are_swept_after_keep_until(store: &dyn Store) {
    let k = key("mark");
    assert!(is_not_found(&store.find_subject_mark(&k).await));
    let keep = super::SWEEP_NOW - 10;
    store.save_subject_mark(&k, 100, keep).await.expect("save");
    assert_eq!(store.find_subject_mark(&k).await.expect("find"), 100);
    store.save_subject_mark(&k, 200, keep).await.expect("later");
    assert_eq!(store.find_subject_mark(&k).await.expect("find"), 200);
    store.save_subject_mark(&k, 150, 1).await.expect("earlier");
    assert_eq!(store.find_subject_mark(&k).await.expect("find"), 200);
    store
        .delete_expired(keep)
        .await
        .expect("sweep at keep_until");
    assert_eq!(store.find_subject_mark(&k).await.expect("kept"), 200);
    store
        .delete_expired(super::SWEEP_NOW)
        .await
        .expect("sweep after");
    assert!(is_not_found(&store.find_subject_mark(&k).await));
}
