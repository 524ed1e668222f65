//! Conformance checks for a credential read with what voids it: the sign-out marks of its person
//! under the key [`subject_mark_key`] forms, and an access token's grant revocation.

use super::{access_token, auth_code, identity, is_not_found, key, put, FAR_FUTURE};
use crate::identity::Identity;
use crate::storage::{subject_mark_key, Store, SubjectMarks};

/// A person of a fresh id under `connector`, with an upstream id of their own.
fn person(connector: &str) -> Identity {
    Identity {
        user_id: key("user"),
        upstream_id: Some(key("own")),
        connector_id: connector.into(),
        ..identity()
    }
}

/// Saves the marks `of_user` and `of_upstream` for `who` under `connector`.
async fn mark(store: &dyn Store, connector: &str, who: &Identity, marks: SubjectMarks) {
    let own = who.upstream_id.as_deref().expect("an upstream id");
    for (user_id, not_before) in [(&*who.user_id, marks.of_user), (own, marks.of_upstream)] {
        if let Some(not_before) = not_before {
            store
                .save_subject_mark(
                    &subject_mark_key(connector, user_id),
                    not_before,
                    FAR_FUTURE,
                )
                .await
                .expect("save mark");
        }
    }
}

/// A code redeemed comes with the marks of its person's user id and upstream id under its own
/// connector, and none of another connector's, another person's, or (for a record that names no
/// connector) of an empty connector id; redeemed again, it is still reported redeemed.
pub async fn a_redeemed_code_comes_with_its_persons_sign_out_marks(store: &dyn Store) {
    let marked = |of_user: Option<i64>, of_upstream: Option<i64>| SubjectMarks {
        of_user,
        of_upstream,
    };
    let none = SubjectMarks::default();
    // (case, the record's connector, the marks saved under it, the marks expected)
    let cases = [
        (
            "both marked",
            "wecom",
            marked(Some(1_700_000_100), Some(1_700_000_200)),
            None,
        ),
        (
            "user only",
            "wecom",
            marked(Some(1_700_000_300), None),
            None,
        ),
        (
            "upstream only",
            "wecom",
            marked(None, Some(1_700_000_400)),
            None,
        ),
        ("none", "wecom", none, None),
        (
            "no connector named",
            "",
            marked(Some(1), Some(1)),
            Some(none),
        ),
    ];
    for (case, connector, saved, expected) in cases {
        let who = person(connector);
        mark(store, connector, &who, saved).await;
        // Another connector's marks of the same ids are another person's.
        mark(store, "branch", &who, marked(Some(1), Some(1))).await;
        let k = key("code");
        let mut code = auth_code(&key("grant"), FAR_FUTURE);
        code.identity = who;
        put(store, &k, code.clone()).await;
        let (before, read) = store.redeem_auth_code_marked(&k).await.expect("redeem");
        assert_eq!(before, code, "{case}: the record as it was");
        assert_eq!(read, expected.unwrap_or(saved), "{case}");
        let (again, _) = store.redeem_auth_code_marked(&k).await.expect("again");
        assert!(
            again.redeemed,
            "{case}: a second redemption sees it redeemed"
        );
    }
    assert!(is_not_found(
        &store.redeem_auth_code_marked(&key("absent")).await
    ));
}

/// An access token comes with whether its grant is revoked and its person's marks, as the single
/// reads answer them.
pub async fn an_access_token_comes_with_its_grants_revocation_and_its_persons_marks(
    store: &dyn Store,
) {
    let who = person("wecom");
    let marks = SubjectMarks {
        of_user: Some(1_700_000_500),
        of_upstream: Some(1_700_000_600),
    };
    mark(store, "wecom", &who, marks).await;
    let (live, revoked) = (key("grant"), key("grant"));
    store
        .revoke_grant(&revoked, FAR_FUTURE)
        .await
        .expect("revoke");
    for (grant, is_revoked) in [(&live, false), (&revoked, true)] {
        let k = key("at");
        let mut token = access_token(grant, FAR_FUTURE);
        token.identity = who.clone();
        put(store, &k, token.clone()).await;
        let checked = store.find_access_token_checked(&k).await.expect("find");
        assert_eq!(*checked.token, token);
        assert_eq!(checked.grant_revoked, is_revoked);
        assert_eq!(checked.marks, marks);
        assert_eq!(
            *checked.token,
            store.find_access_token(&k).await.expect("find")
        );
    }

    // Without an upstream id, only the user's mark; without any mark, none.
    let mut plain = person("wecom");
    plain.upstream_id = None;
    let k = key("at");
    let mut token = access_token(&live, FAR_FUTURE);
    token.identity = plain.clone();
    put(store, &k, token).await;
    let marks_now = || async {
        let checked = store.find_access_token_checked(&k).await.expect("find");
        checked.marks
    };
    assert_eq!(marks_now().await, SubjectMarks::default());
    let own_mark = subject_mark_key("wecom", &plain.user_id);
    store
        .save_subject_mark(&own_mark, 1_700_000_700, FAR_FUTURE)
        .await
        .expect("save mark");
    let expected = SubjectMarks {
        of_user: Some(1_700_000_700),
        of_upstream: None,
    };
    assert_eq!(marks_now().await, expected);

    assert!(is_not_found(
        &store.find_access_token_checked(&key("absent")).await
    ));
}

/// What voids an access token (its grant's revocation, its person's sign-out, its deletion by
/// RFC 7009 revocation) is in the very next read, also when the same token was read just
/// before: a backend may reuse what it decoded, never what it answered.
pub async fn what_voids_an_access_token_is_read_at_once_after_a_read_of_it(store: &dyn Store) {
    let who = person("wecom");
    let grant = key("grant");
    let k = key("at");
    let mut token = access_token(&grant, FAR_FUTURE);
    token.identity = who.clone();
    put(store, &k, token.clone()).await;
    let read = || async { store.find_access_token_checked(&k).await };
    for _ in 0..2 {
        let checked = read().await.expect("find");
        assert_eq!(*checked.token, token);
        assert!(!checked.grant_revoked);
        assert_eq!(checked.marks, SubjectMarks::default());
    }
    store
        .revoke_grant(&grant, FAR_FUTURE)
        .await
        .expect("revoke");
    assert!(read().await.expect("find").grant_revoked);
    let signed_out = SubjectMarks {
        of_user: Some(1_700_000_900),
        of_upstream: None,
    };
    mark(store, "wecom", &who, signed_out).await;
    assert_eq!(read().await.expect("find").marks, signed_out);
    store.delete_access_token(&k).await.expect("delete");
    assert!(is_not_found(&read().await));
    assert!(is_not_found(&store.find_access_token(&k).await));
}
