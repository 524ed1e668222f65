//! Conformance checks for refresh-token rotation (RFC 9700 §4.14.2): the old token spent and its
//! successor and access token stored as one step, all or nothing, once.

use super::{
    access_token, found, is_already_exists, is_not_found, key, no_error, put, race, race_keys,
    refresh_token, spread, winners, FAR_FUTURE, RACERS,
};
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

    /// Rotates the token under `old` into these records.
    async fn rotate(&self, store: &dyn Store, old: &str) -> Result<RefreshToken, StorageError> {
        store.rotate_refresh_token(old, &self.rotation()).await
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
    put(store, &old, token.clone()).await;
    let first = Successor::new("grant-rotation");
    let before = first.rotate(store, &old).await.expect("rotate");
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
    let again = replay.rotate(store, &old).await.expect("rotate again");
    assert_eq!(again, spent, "a second rotation sees the token spent");
    assert!(!replay.stored(store).await, "a replay stored tokens");

    let absent = Successor::new("grant-rotation");
    assert!(is_not_found(
        &absent.rotate(store, &key("rotation-absent")).await
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
    put(store, &old, token.clone()).await;

    // Either of the new keys taken: the rotation fails, and only the taken key holds a record.
    for refresh_key_taken in [true, false] {
        let taken = Successor::new("grant-rotation-fails");
        let other_refresh = refresh_token("grant-other", FAR_FUTURE);
        let other_access = access_token("grant-other", FAR_FUTURE);
        if refresh_key_taken {
            put(store, &taken.refresh_key, other_refresh.clone()).await;
        } else {
            put(store, &taken.access_key, other_access.clone()).await;
        }
        assert!(is_already_exists(&taken.rotate(store, &old).await));
        assert_eq!(store.find_refresh_token(&old).await.expect("old"), token);
        assert_eq!(
            found(store.find_refresh_token(&taken.refresh_key).await),
            refresh_key_taken.then_some(other_refresh)
        );
        assert_eq!(
            found(store.find_access_token(&taken.access_key).await),
            (!refresh_key_taken).then_some(other_access)
        );
    }

    // The old token still rotates, once.
    let next = Successor::new("grant-rotation-fails");
    let before = next
        .rotate(store, &old)
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
        put(store, k, refresh_token("grant-race", FAR_FUTURE)).await;
    }
    let per_key = race(&keys, |k| async move {
        let successor = Successor::new("grant-race");
        let result = successor.rotate(store, k).await;
        (result, successor)
    });
    let mut calls = Vec::new();
    for outcomes in per_key {
        assert_eq!(outcomes.len(), RACERS);
        let results = outcomes.iter().map(|(result, _)| result);
        let won = winners(results, no_error, "racing rotation", |b| !b.spent);
        assert_eq!(won, 1, "racing rotations that saw an unspent token");
        for (result, successor) in outcomes {
            calls.push((result.is_ok_and(|before| !before.spent), successor));
        }
    }
    // On as many threads as raced: a networked store answers thousands of reads in parallel
    // rather than in turn.
    spread(&calls, |(won, successor)| async move {
        assert_eq!(
            successor.stored(store).await,
            *won,
            "a rotation's tokens are stored exactly when it won"
        );
    });
}
