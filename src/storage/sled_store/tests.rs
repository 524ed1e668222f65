//! The sled store against the shared conformance suite, and what is sled's own.

use super::*;
use crate::identity::Identity;
use crate::storage::conformance;

fn token(expires_at: i64) -> AccessToken {
    AccessToken {
        client_only: false,
        client_id: "client".into(),
        grant_id: "grant".into(),
        scopes: vec!["openid".into(), "profile".into()],
        identity: Identity {
            user_id: "zhangsan".into(),
            username: "zhangsan".into(),
            name: Some("张三".into()),
            ..Identity::default()
        },
        auth_time: 100,
        userinfo_claims: Vec::new(),
        issued_at: 100,
        expires_at,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_store_passes_the_conformance_suite() {
    let store = SledStore::temporary().expect("temporary store");
    conformance::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_flushes_on_the_flusher_thread_all_return() {
    // That a flush covers the writes before it is the kill -9 tests' business
    // (tests/reliability.rs); here: many waiters at once are all answered, and dropping the
    // store ends the flusher thread (its `Drop` joins it).
    let store = Arc::new(SledStore::temporary().expect("temporary store"));
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_access_token(&format!("at-{i}"), &token(500))
                .await
                .expect("create");
            store.flush().await.expect("flush");
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    for i in 0..32 {
        store
            .find_access_token(&format!("at-{i}"))
            .await
            .expect("written");
    }
}

/// A store on a fresh directory that `write` fills and then drops, opened again: the
/// directory (which must outlive it) and the reopened store.
async fn reopened<F: std::future::Future<Output = ()>>(
    write: impl FnOnce(SledStore) -> F,
) -> (tempfile::TempDir, SledStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    write(SledStore::open(dir.path()).expect("open")).await;
    // sled 0.34 may finish a segment write on its own I/O threads just after the last
    // handle is dropped, holding the directory's lock for a moment longer: wait for it
    // (bounded), as a restarted process would find it released.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match SledStore::open(dir.path()) {
            Ok(store) => return (dir, store),
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(e) => panic!("reopen: {e:?}"),
        }
    }
}

/// Writes the access token the reopen checks look for under `at`.
async fn create_token_at(store: &SledStore) {
    store
        .create_access_token("at", &token(500))
        .await
        .expect("create");
}

#[tokio::test]
async fn flushed_data_survives_reopen() {
    let (_dir, store) = reopened(|store| async move {
        create_token_at(&store).await;
        store.revoke_grant("revoked", 900).await.expect("revoke");
        let upstream = UpstreamToken {
            token: "upstream".into(),
            expires_at: 700,
        };
        store
            .save_upstream_token("wecom", &upstream)
            .await
            .expect("save");
        store.flush().await.expect("flush");
    })
    .await;
    assert_eq!(
        store.find_access_token("at").await.expect("find"),
        token(500)
    );
    assert!(store.is_grant_revoked("revoked").await.expect("revoked"));
    let upstream = store.find_upstream_token("wecom").await.expect("find");
    assert_eq!(upstream.token, "upstream");
}

#[tokio::test]
async fn unflushed_write_survives_reopen_because_drop_flushes() {
    let (_dir, store) = reopened(|store| async move { create_token_at(&store).await }).await;
    let found = store.find_access_token("at").await.expect("find");
    assert_eq!(found, token(500));
}

#[tokio::test]
async fn redeemed_mark_survives_reopen() {
    let t = token(500);
    let code = AuthCode {
        client_id: t.client_id,
        redirect_uri: "https://rp.example/cb".into(),
        scopes: t.scopes,
        nonce: None,
        code_challenge: None,
        identity: t.identity,
        auth_time: 100,
        grant_id: "grant".into(),
        expires_at: 500,
        redeemed: false,
        sid: None,
        claims: Default::default(),
    };
    let (_dir, store) = reopened(|store| async move {
        store.create_auth_code("code", &code).await.expect("create");
        let first = store.redeem_auth_code("code").await.expect("redeem");
        assert!(!first.redeemed);
    })
    .await;
    let again = store.redeem_auth_code("code").await.expect("redeem");
    assert!(again.redeemed);
}

#[test]
fn second_open_of_a_locked_database_is_a_backend_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = SledStore::open(dir.path()).expect("open");
    assert!(matches!(
        SledStore::open(dir.path()),
        Err(StorageError::Backend(_))
    ));
}

/// Writes `bytes` as the access token record under `key`, behind the store's encoding.
fn put_raw_access_token(store: &SledStore, key: &str, bytes: &[u8]) {
    let trees = store.trees().expect("open");
    trees.access_tokens.tree.insert(key, bytes).expect("insert");
}

#[tokio::test]
async fn corrupt_record_errors_do_not_quote_record_contents() {
    let store = SledStore::temporary().expect("temporary store");
    // A record whose JSON has the wrong shape, with a value that must not leak.
    put_raw_access_token(
        &store,
        "at",
        br#"{"client_id": 4242424, "secret": "alice-private"}"#,
    );
    let err = store
        .find_access_token("at")
        .await
        .expect_err("must not decode");
    let message = err.to_string();
    assert!(matches!(err, StorageError::Backend(_)));
    assert!(!message.contains("alice"), "{message}");
    assert!(!message.contains("4242424"), "{message}");
}

#[tokio::test]
async fn expiry_sweep_skips_corrupt_records_and_still_removes_expired_ones() {
    let store = SledStore::temporary().expect("temporary store");
    put_raw_access_token(&store, "bad", b"not json");
    // Indexed as due, so the sweep reads it and must get past it.
    let trees = store.trees().expect("open");
    trees.access_tokens.index(Some(5), b"bad").expect("index");
    store
        .create_access_token("old", &token(10))
        .await
        .expect("create");
    assert_eq!(store.delete_expired(20).await.expect("sweep"), 1);
    assert!(matches!(
        store.find_access_token("old").await,
        Err(StorageError::NotFound)
    ));
    // The unreadable record is left as it is, never removed unread.
    assert!(trees.access_tokens.tree.get("bad").expect("get").is_some());
}

#[test]
fn foreign_directory_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), b"not a database").expect("write");
    let err = SledStore::open(dir.path()).expect_err("foreign directory");
    assert!(err.to_string().contains("data_dir"), "{err}");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("notes.txt")]);
}

#[test]
fn corrupt_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (conf, db) = (dir.path().join("conf"), dir.path().join("db"));
    std::fs::write(&conf, [0xffu8; 300]).expect("write");
    std::fs::write(&db, [0x5au8; 5000]).expect("write");
    assert!(matches!(
        SledStore::open(dir.path()),
        Err(StorageError::Backend(_))
    ));
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["conf", "db"]);
    assert_eq!(std::fs::read(&conf).expect("conf"), vec![0xffu8; 300]);
    assert_eq!(std::fs::read(&db).expect("db"), vec![0x5au8; 5000]);
}

#[test]
fn debug_output_shows_no_records() {
    let store = SledStore::temporary().expect("temporary store");
    assert_eq!(format!("{store:?}"), "SledStore { .. }");
}
