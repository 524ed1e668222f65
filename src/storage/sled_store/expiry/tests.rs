use super::*;
use crate::storage::sled_format::{self, Opened, VERSION_KEY};
use crate::storage::sled_store::SledStore;
use crate::storage::Store;

/// The index entries of `store`, taken apart: (end, tag, record key).
fn entries(store: &SledStore) -> Vec<(i64, u8, String)> {
    let trees = store.trees().expect("open");
    trees
        .expiry
        .iter()
        .map(|e| {
            let (k, _) = e.expect("read");
            let (end, tag, key) = split_entry(&k).expect("an index key");
            (end, tag, String::from_utf8(key.to_vec()).expect("utf-8"))
        })
        .collect()
}

fn tag(name: &str) -> u8 {
    KINDS.iter().find(|(n, ..)| *n == name).expect("kind").1
}

fn upstream(expires_at: i64) -> UpstreamToken {
    UpstreamToken {
        token: "t".into(),
        expires_at,
    }
}

async fn save_upstream(store: &SledStore, key: &str, expires_at: i64) {
    store
        .save_upstream_token(key, &upstream(expires_at))
        .await
        .expect("save");
}

#[test]
fn index_keys_sort_by_end_including_negative_ends() {
    let ends = [i64::MIN, -3_600, -1, 0, 1, 59, 1_700_000_000, i64::MAX];
    let keys: Vec<_> = ends.iter().map(|&e| entry_key(e, 1, b"k")).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    for (&end, key) in ends.iter().zip(&keys) {
        assert_eq!(split_entry(key), Some((end, 1, &b"k"[..])));
    }
}

#[test]
fn every_kind_has_its_own_tag_in_tree_order() {
    // The sweep finds a kind's table at position tag - 1.
    for (i, (_, tag, _)) in KINDS.iter().enumerate() {
        assert_eq!(usize::from(*tag), i + 1);
    }
    assert_eq!(tag("auth_requests"), AUTH_REQUESTS);
    assert_eq!(tag("device_user_codes"), DEVICE_USER_CODES);
}

#[tokio::test]
async fn creates_and_saves_write_an_index_entry_and_never_expiring_kinds_none() {
    let store = SledStore::temporary().expect("store");
    store.create_used_jti("jti", 50).await.expect("jti");
    save_upstream(&store, "wecom", 70).await;
    store.revoke_grant("grant", 90).await.expect("revoke");
    store.save_user_link("link", "value").await.expect("link");
    assert_eq!(
        entries(&store),
        [
            (50, tag("used_jtis"), "jti".into()),
            (70, tag("upstream_tokens"), "wecom".into()),
            (90, tag("revoked_grants"), "grant".into()),
        ]
    );
}

#[tokio::test]
async fn stale_entries_are_dropped_without_counting_or_touching_records() {
    let store = SledStore::temporary().expect("store");
    save_upstream(&store, "gone", 10).await;
    store.delete_upstream_token("gone").await.expect("delete");
    // A create that loses leaves its entry behind; the winner's record has a later end.
    store.create_used_jti("jti", 1000).await.expect("jti");
    assert!(store.create_used_jti("jti", 5).await.is_err());
    assert_eq!(entries(&store).len(), 3);

    // The entry naming a record that now ends later goes at once; the one of the deleted
    // record waits out the grace (its record might still be on its way), then goes too.
    assert_eq!(store.delete_expired(20).await.expect("sweep"), 0);
    assert_eq!(entries(&store).len(), 2);
    assert_eq!(
        store
            .delete_expired(11 + ABSENT_GRACE_SECS)
            .await
            .expect("sweep"),
        0
    );
    assert_eq!(entries(&store), [(1000, tag("used_jtis"), "jti".into())]);
    assert!(store.create_used_jti("jti", 1000).await.is_err(), "kept");
}

#[tokio::test]
async fn a_record_whose_end_moved_later_survives_the_sweep_of_its_old_end() {
    let store = SledStore::temporary().expect("store");
    save_upstream(&store, "wecom", 10).await;
    save_upstream(&store, "wecom", 100).await;
    assert!(store
        .acquire_lease("lease", "a", 0, 10)
        .await
        .expect("take"));
    assert!(store
        .acquire_lease("lease", "a", 5, 100)
        .await
        .expect("extend"));

    assert_eq!(store.delete_expired(50).await.expect("sweep"), 0);
    assert_eq!(
        store.find_upstream_token("wecom").await.expect("kept"),
        upstream(100)
    );
    assert!(
        !store
            .acquire_lease("lease", "b", 60, 200)
            .await
            .expect("held"),
        "the extended lease is still a's"
    );
    assert_eq!(
        entries(&store),
        [
            (100, tag("upstream_tokens"), "wecom".into()),
            (100, tag("leases"), "lease".into()),
        ]
    );
    // And at its new end it goes, with its entry.
    assert_eq!(store.delete_expired(101).await.expect("sweep"), 2);
    assert!(entries(&store).is_empty());
}

#[tokio::test]
async fn an_update_that_keeps_the_end_writes_no_entry() {
    let store = SledStore::temporary().expect("store");
    assert!(store
        .acquire_lease("lease", "a", 0, 10)
        .await
        .expect("take"));
    assert!(store
        .acquire_lease("lease", "a", 1, 10)
        .await
        .expect("again"));
    store.revoke_grant("g", 30).await.expect("revoke");
    // A shorter revocation changes nothing, so it indexes nothing either.
    store.revoke_grant("g", 20).await.expect("shorter");
    assert_eq!(entries(&store).len(), 2);
}

#[tokio::test]
async fn a_record_without_an_index_entry_is_not_read_by_the_sweep() {
    // What shows that the sweep no longer scans the record trees: an expired record written
    // behind the index's back stays (a migrated store gets entries, see below).
    let store = SledStore::temporary().expect("store");
    let trees = store.trees().expect("open");
    let bytes = serde_json::to_vec(&upstream(10)).expect("json");
    trees
        .upstream_tokens
        .tree
        .insert("raw", bytes)
        .expect("insert");
    assert_eq!(store.delete_expired(20).await.expect("sweep"), 0);
    assert_eq!(
        store.find_upstream_token("raw").await.expect("kept"),
        upstream(10)
    );
}

/// Opens the sled database in `dir` as a store, waiting (bounded) for sled's I/O threads of a
/// store just dropped to release the directory's lock.
async fn open_store(dir: &std::path::Path) -> SledStore {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match SledStore::open(dir) {
            Ok(store) => return store,
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(e) => panic!("open: {e:?}"),
        }
    }
}

/// The same, for a bare sled database.
async fn open_db(dir: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::Config::new().path(dir).open() {
            Ok(db) => return db,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(e) => panic!("open: {e:?}"),
        }
    }
}

#[tokio::test]
async fn a_version_1_store_gets_its_index_and_its_expired_records_are_swept() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open_store(dir.path()).await;
        save_upstream(&store, "old", 10).await;
        save_upstream(&store, "live", 1_000).await;
        store.create_used_jti("old-jti", 10).await.expect("jti");
        store
            .acquire_lease("old-lease", "a", 0, 10)
            .await
            .expect("lease");
        store.save_user_link("link", "value").await.expect("link");
    }
    {
        // What a release of format version 1 leaves: the same records, no index.
        let db = open_db(dir.path()).await;
        db.drop_tree(TREE).expect("drop the index");
        db.insert(VERSION_KEY, "1").expect("version 1");
        // A record the old release could not have indexed either: undecodable.
        db.open_tree("used_jtis")
            .expect("tree")
            .insert("bad", "not json")
            .expect("insert");
        db.flush().expect("flush");
    }
    {
        let db = open_db(dir.path()).await;
        assert_eq!(
            sled_format::check_and_stamp(&db, "x", build_index).expect("migrate"),
            Opened::Migrated { from: 1 }
        );
    }
    let store = open_store(dir.path()).await;
    assert_eq!(
        entries(&store).len(),
        4,
        "one per decodable expiring record"
    );
    assert_eq!(store.delete_expired(20).await.expect("sweep"), 3);
    assert!(store.find_upstream_token("old").await.is_err());
    assert_eq!(
        store.find_upstream_token("live").await.expect("live"),
        upstream(1_000)
    );
    assert_eq!(store.find_user_link("link").await.expect("link"), "value");
    assert_eq!(
        entries(&store),
        [(1_000, tag("upstream_tokens"), "live".into())]
    );
}

#[test]
fn building_the_index_twice_writes_the_same_entries() {
    let db = sled::Config::new().temporary(true).open().expect("db");
    let tree = db.open_tree("used_jtis").expect("tree");
    tree.insert(
        "a",
        serde_json::to_vec(&UsedJti { expires_at: 5 }).expect("json"),
    )
    .expect("insert");
    assert_eq!(build_index(&db).expect("build"), 1);
    assert_eq!(build_index(&db).expect("again"), 1);
    assert_eq!(db.open_tree(TREE).expect("index").len(), 1);
}

#[tokio::test]
async fn the_release_0_1_0_store_is_indexed_on_open_and_swept_to_its_lasting_records() {
    // The real store of the first release (format version 1), copied so the fixture stays
    // as committed.
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v0.1.0");
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("store");
    // File by file: opening the fixture itself, even to copy it, would let sled write into it.
    std::fs::create_dir(&copy).expect("mkdir");
    for file in std::fs::read_dir(fixture.join("store")).expect("fixture") {
        let file = file.expect("entry");
        if file.path().is_file() {
            std::fs::copy(file.path(), copy.join(file.file_name())).expect("copy");
        }
    }
    let store = open_store(&copy).await;
    // access token, code, login event, refresh token, session, upstream token
    assert_eq!(entries(&store).len(), 6);
    assert_eq!(store.delete_expired(i64::MAX).await.expect("sweep"), 6);
    assert!(entries(&store).is_empty());
    let trees = store.trees().expect("open");
    for table in [
        &trees.access_tokens,
        &trees.auth_codes,
        &trees.login_events,
        &trees.refresh_tokens,
        &trees.sessions,
        &trees.upstream_tokens,
    ] {
        assert!(table.tree.is_empty(), "{} swept", table.name);
    }
}

#[test]
fn no_reader_ever_sees_a_record_before_its_index_entry() {
    // The crash-safety argument in one observable: sled recovers a prefix of its operations, so
    // a record must never exist without its entry, at any instant. A reader polls each next
    // record and, the moment it appears, looks for its entry; with the writes the other way
    // round it finds the record alone in the microseconds between them.
    let store = SledStore::temporary().expect("store");
    let trees = store.trees().expect("open");
    const N: usize = 3_000;
    let keys: Vec<String> = (0..N).map(|i| format!("jti-{i:05}")).collect();
    let reader = {
        let (trees, keys) = (trees.clone(), keys.clone());
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            let mut seen_alone = 0;
            for (i, key) in keys.iter().enumerate() {
                while !trees.used_jtis.tree.contains_key(key).expect("read") {
                    // Bounded: a writer that failed must not leave the test spinning.
                    assert!(std::time::Instant::now() < deadline, "{key} never written");
                    std::hint::spin_loop();
                }
                let entry = entry_key(i as i64, tag("used_jtis"), key.as_bytes());
                if !trees.expiry.contains_key(entry).expect("read") {
                    seen_alone += 1;
                }
            }
            seen_alone
        })
    };
    for (i, key) in keys.iter().enumerate() {
        trees.create_used_jti(key, i as i64).expect("create");
    }
    assert_eq!(reader.join().expect("reader"), 0);
}

#[tokio::test]
async fn a_device_authorization_counts_once_though_two_keys_go() {
    let store = SledStore::temporary().expect("store");
    let record = DeviceAuthorization {
        client_id: "tv".into(),
        scopes: vec!["openid".into()],
        user_key: "user".into(),
        interval: 5,
        last_polled_at: None,
        expires_at: 5,
        keep_until: 10,
        status: crate::storage::DeviceStatus::Pending,
    };
    store
        .create_device_authorization("device", "user", &record)
        .await
        .expect("create");
    assert_eq!(entries(&store).len(), 2);
    assert_eq!(store.delete_expired(20).await.expect("sweep"), 1);
    assert!(entries(&store).is_empty());
    assert!(store.find_device_authorization("user").await.is_err());
}

#[tokio::test]
async fn an_entry_whose_record_is_not_written_yet_is_kept_until_well_overdue() {
    // A writer puts the entry first; a sweep that runs before the record lands must not drop
    // the entry, or a record created with an end already passed would never be swept.
    let store = SledStore::temporary().expect("store");
    let trees = store.trees().expect("open");
    trees.used_jtis.index(Some(10), b"late").expect("index");
    assert_eq!(store.delete_expired(11).await.expect("sweep"), 0);
    assert_eq!(entries(&store), [(10, tag("used_jtis"), "late".into())]);
    store.create_used_jti("late", 10).await.expect("record");
    assert_eq!(store.delete_expired(12).await.expect("sweep"), 1);
    assert!(entries(&store).is_empty());
    // An entry whose record never comes goes once it is past the grace period.
    trees.used_jtis.index(Some(20), b"never").expect("index");
    assert_eq!(
        store
            .delete_expired(20 + ABSENT_GRACE_SECS)
            .await
            .expect("sweep"),
        0
    );
    assert_eq!(entries(&store).len(), 1);
    assert_eq!(
        store
            .delete_expired(21 + ABSENT_GRACE_SECS)
            .await
            .expect("sweep"),
        0
    );
    assert!(entries(&store).is_empty());
}

#[tokio::test]
async fn a_record_whose_end_moved_earlier_is_swept_at_its_new_end() {
    let store = SledStore::temporary().expect("store");
    save_upstream(&store, "wecom", 100).await;
    save_upstream(&store, "wecom", 10).await;
    assert_eq!(store.delete_expired(50).await.expect("sweep"), 1);
    assert!(matches!(
        store.find_upstream_token("wecom").await,
        Err(StorageError::NotFound)
    ));
    // The entry of the old end stays until it comes due, then goes as stale.
    assert_eq!(
        entries(&store),
        [(100, tag("upstream_tokens"), "wecom".into())]
    );
    assert_eq!(store.delete_expired(101).await.expect("sweep"), 0);
    assert_eq!(
        entries(&store).len(),
        1,
        "absent record: kept within the grace"
    );
    assert_eq!(
        store
            .delete_expired(101 + ABSENT_GRACE_SECS)
            .await
            .expect("sweep"),
        0
    );
    assert!(entries(&store).is_empty());
}

#[test]
fn a_backup_copy_indexes_every_expiring_record_it_holds() {
    let src = sled::Config::new().temporary(true).open().expect("open");
    sled_format::check_and_stamp(&src, "src", build_index).expect("stamp");
    // A record whose entry the source lacks, as a sweep racing the copy can leave it.
    src.open_tree("used_jtis")
        .expect("tree")
        .insert("jti", &br#"{"expires_at":5}"#[..])
        .expect("insert");
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("copy");
    let summary =
        crate::storage::sled_copy::copy_db(&src, &copy, &super::super::REINDEX).expect("copy");
    assert_eq!(summary.trees["used_jtis"], 1);
    assert_eq!(summary.trees[TREE], 1);
    let db = sled::open(copy).expect("open");
    assert_eq!(db.open_tree(TREE).expect("index").len(), 1);
}
