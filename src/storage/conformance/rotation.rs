//! Conformance checks for refresh-token rotation (RFC 9700 §4.14.2): the old token spent and its
//! successor and access token stored as one step, all or nothing, once.

use super::{access_token, is_already_exists, is_not_found, key, race, race_keys, refresh_token};
use super::{with_threads, FAR_FUTURE, RACERS};
use crate::storage::{AccessToken, RefreshToken, Rotation, StorageError, Store};

/// A rotation's new records under fresh keys.
struct Successor {
    refresh_key: String,
    refresh: RefreshToken,
    access_key: String,
    access: AccessToken,
}

impl Successor {
    fn new(grant_id: &str) -> Successor {
        let mut refresh = refresh_token(grant_id, FAR_FUTURE);
        // Not the old token's record, so a check can tell which one it reads.
        refresh.issued_at += 1;
        Successor {
            refresh_key: key("rotation-refresh"),
            refresh,
            access_key: key("rotation-access"),
            access: access_token(grant_id, FAR_FUTURE),
        }
    }

    fn rotation(&self) -> Rotation<'_> {
        Rotation {
            refresh_key: &self.refresh_key,
            refresh: &self.refresh,
            access_key: &self.access_key,
            access: &self.access,
        }
    }

    /// Whether both new records are stored (`true`) or neither (`false`); a half-stored
    /// rotation fails the check.
    async fn stored(&self, store: &dyn Store) -> bool {
        let refresh = store.find_refresh_token(&self.refresh_key).await;
        let access = store.find_access_token(&self.access_key).await;
        match (refresh, access) {
            (Ok(r), Ok(a)) => {
                assert_eq!((r, a), (self.refresh.clone(), self.access.clone()));
                true
            }
            (Err(StorageError::NotFound), Err(StorageError::NotFound)) => false,
            (r, a) => panic!("a rotation half stored: successor {r:?}, access token {a:?}"),
        }
    }
}

/// A rotation returns the old record as it was, leaves it spent, and stores the successor and
/// the access token; rotating it again answers `spent == true` and stores nothing; an unknown
/// token is `NotFound` and stores nothing.
pub async fn a_rotation_spends_the_token_and_stores_its_successor_and_access_token(
    store: &dyn Store,
) {
    let old = key("rotation-old");
    let token = refresh_token("grant-rotation", FAR_FUTURE);
    store
        .create_refresh_token(&old, &token)
        .await
        .expect("create");
    let first = Successor::new("grant-rotation");
    let before = store
        .rotate_refresh_token(&old, &first.rotation())
        .await
        .expect("rotate");
    assert_eq!(before, token, "the record as it was before");
    let spent = RefreshToken {
        spent: true,
        ..token
    };
    assert_eq!(store.find_refresh_token(&old).await.expect("old"), spent);
    assert!(
        first.stored(store).await,
        "the first rotation stored nothing"
    );

    let replay = Successor::new("grant-rotation");
    let again = store
        .rotate_refresh_token(&old, &replay.rotation())
        .await
        .expect("rotate again");
    assert_eq!(again, spent, "a second rotation sees the token spent");
    assert!(!replay.stored(store).await, "a replay stored tokens");

    let absent = Successor::new("grant-rotation");
    assert!(is_not_found(
        &store
            .rotate_refresh_token(&key("rotation-absent"), &absent.rotation())
            .await
    ));
    assert!(
        !absent.stored(store).await,
        "an unknown token stored tokens"
    );
}

/// A rotation that fails writes nothing: the old token stays unspent and usable, and neither
/// new record is stored (a taken key is the failure every backend can be made to meet; a lost
/// database or a full disk must behave the same, which the backends' own tests show).
pub async fn a_failed_rotation_leaves_the_old_token_unspent_and_writes_nothing(store: &dyn Store) {
    let old = key("rotation-old");
    let token = refresh_token("grant-rotation-fails", FAR_FUTURE);
    store
        .create_refresh_token(&old, &token)
        .await
        .expect("create");

    // The successor's key is taken.
    let taken = Successor::new("grant-rotation-fails");
    let other_refresh = refresh_token("grant-other", FAR_FUTURE);
    store
        .create_refresh_token(&taken.refresh_key, &other_refresh)
        .await
        .expect("create the taken key");
    assert!(is_already_exists(
        &store.rotate_refresh_token(&old, &taken.rotation()).await
    ));
    assert_eq!(store.find_refresh_token(&old).await.expect("old"), token);
    assert_eq!(
        store
            .find_refresh_token(&taken.refresh_key)
            .await
            .expect("taken"),
        other_refresh
    );
    assert!(is_not_found(
        &store.find_access_token(&taken.access_key).await
    ));

    // The access token's key is taken.
    let taken = Successor::new("grant-rotation-fails");
    let other_access = access_token("grant-other", FAR_FUTURE);
    store
        .create_access_token(&taken.access_key, &other_access)
        .await
        .expect("create the taken key");
    assert!(is_already_exists(
        &store.rotate_refresh_token(&old, &taken.rotation()).await
    ));
    assert_eq!(store.find_refresh_token(&old).await.expect("old"), token);
    assert!(is_not_found(
        &store.find_refresh_token(&taken.refresh_key).await
    ));
    assert_eq!(
        store
            .find_access_token(&taken.access_key)
            .await
            .expect("taken"),
        other_access
    );

    // The old token still rotates, once.
    let next = Successor::new("grant-rotation-fails");
    let before = store
        .rotate_refresh_token(&old, &next.rotation())
        .await
        .expect("rotate after the failures");
    assert!(!before.spent, "the failed rotations spent the token");
    assert!(next.stored(store).await);
}

/// Of many threads rotating the same refresh token at once, each with successors of its own,
/// exactly one sees it unspent and only that one's tokens are stored (RFC 9700 §4.14.2: a
/// refresh token is single use, and a loser must not leave a live successor behind).
pub async fn racing_rotations_of_one_token_have_exactly_one_winner(store: &dyn Store) {
    let keys = race_keys("race-rotation");
    for k in &keys {
        store
            .create_refresh_token(k, &refresh_token("grant-race", FAR_FUTURE))
            .await
            .expect("create");
    }
    let per_key = race(&keys, |k| async move {
        let successor = Successor::new("grant-race");
        let result = store.rotate_refresh_token(k, &successor.rotation()).await;
        (result, successor)
    });
    let mut calls = Vec::new();
    for outcomes in per_key {
        assert_eq!(outcomes.len(), RACERS);
        let mut winners = 0;
        for (result, successor) in outcomes {
            let won = match result {
                Ok(before) => !before.spent,
                Err(err) => panic!("racing rotation failed: {err}"),
            };
            winners += usize::from(won);
            calls.push((won, successor));
        }
        assert_eq!(winners, 1, "racing rotations that saw an unspent token");
    }
    // On as many threads as raced: a networked store answers thousands of reads in parallel
    // rather than in turn.
    with_threads(|rt| {
        std::thread::scope(|s| {
            for chunk in calls.chunks(calls.len().div_ceil(RACERS)) {
                s.spawn(move || {
                    for (won, successor) in chunk {
                        assert_eq!(
                            rt.block_on(successor.stored(store)),
                            *won,
                            "a rotation's tokens are stored exactly when it won"
                        );
                    }
                });
            }
        });
    });
}
