//! Conformance checks for the shared signing key set: inserted once, replaced by compare-and-swap.

use std::panic;

use super::{is_already_exists, key, race, SWEEP_NOW};
use crate::random;
use crate::storage::{SigningKeySet, StorageError, Store, StoredSigningKey};

fn signing_key_set(version: i64, marker: &str) -> SigningKeySet {
    use crate::tokens::{KeyStatus, SigningAlg};
    SigningKeySet {
        version,
        keys: vec![
            StoredSigningKey {
                kid: format!("kid-{marker}-active"),
                alg: SigningAlg::Rs256,
                private_pem: format!("-----BEGIN PRIVATE KEY-----\n{marker}\n-----END PRIVATE KEY-----\n"),
                created_at: 1_700_000_000,
                status: KeyStatus::Active,
                retire_at: None,
            },
            StoredSigningKey {
                kid: format!("kid-{marker}-retiring"),
                alg: SigningAlg::EdDsa,
                private_pem: "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n".into(),
                created_at: 1_600_000_000,
                status: KeyStatus::Retiring,
                retire_at: Some(1_700_086_400),
            },
        ],
    }
}

/// The signing key set is inserted once (a second insert, as from a second instance starting
/// at the same time, fails and changes nothing) and replaced only over the version it was read
/// at; it survives sweeps, and of racing replacements exactly one wins.
pub async fn the_signing_key_set_is_inserted_once_and_replaced_by_compare_and_swap(
    store: &dyn Store,
) {
    let version = match store.find_signing_keys().await {
        Ok(set) => set.version,
        Err(StorageError::NotFound) => {
            let first = signing_key_set(1, "first");
            store.save_signing_keys(None, &first).await.expect("insert");
            assert!(
                is_already_exists(
                    &store
                        .save_signing_keys(None, &signing_key_set(1, "second"))
                        .await
                ),
                "a second insert replaced the key set"
            );
            assert_eq!(store.find_signing_keys().await.expect("find"), first);
            1
        }
        Err(e) => panic!("find_signing_keys: {e}"),
    };
    assert!(
        is_already_exists(
            &store
                .save_signing_keys(Some(version + 7), &signing_key_set(version + 8, "stale"))
                .await
        ),
        "a replacement over another version succeeded"
    );
    let next = signing_key_set(version + 1, "next");
    store
        .save_signing_keys(Some(version), &next)
        .await
        .expect("replace");
    assert_eq!(store.find_signing_keys().await.expect("find"), next);
    assert!(is_already_exists(
        &store
            .save_signing_keys(Some(version), &signing_key_set(version + 1, "late"))
            .await
    ));
    store.delete_expired(SWEEP_NOW).await.expect("sweep");
    assert_eq!(
        store.find_signing_keys().await.expect("kept by sweeps"),
        next
    );
    // Racing replacements from one version: exactly one is kept.
    let base = version + 1;
    let one = vec![key("keyset-race")];
    let results = race(&one, |_| async move {
        let marker = random::alphanumeric(8);
        store
            .save_signing_keys(Some(base), &signing_key_set(base + 1, &marker))
            .await
            .map(|()| marker)
    })
    .remove(0);
    let winners: Vec<String> = results.into_iter().filter_map(|r| r.ok()).collect();
    assert_eq!(
        winners.len(),
        1,
        "{} replacements of one version succeeded",
        winners.len()
    );
    let stored = store.find_signing_keys().await.expect("find");
    assert_eq!(stored, signing_key_set(base + 1, &winners[0]));
}
