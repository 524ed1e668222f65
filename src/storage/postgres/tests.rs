//! The PostgreSQL store's own tests: the conformance suite, races between two instances,
//! migrations.

use futures_util::future::join_all;

use super::testing::TestSchema;
use super::*;
use crate::identity::Identity;
use crate::storage::conformance;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_conformance_suite() {
    let schema = schema_or_skip!("postgres_store_passes_the_conformance_suite");
    conformance::run_all(&schema.store().await).await;
    schema.drop_schema().await;
}

pub(super) fn code(expires_at: i64) -> AuthCode {
    AuthCode {
        client_id: "client".into(),
        redirect_uri: "https://rp.example/cb".into(),
        scopes: vec!["openid".into()],
        nonce: None,
        code_challenge: None,
        identity: Identity {
            user_id: "zhangsan".into(),
            username: "zhangsan".into(),
            ..Identity::default()
        },
        auth_time: 100,
        grant_id: "grant".into(),
        expires_at,
        redeemed: false,
        sid: None,
        claims: Default::default(),
    }
}

/// The test's own fresh schema, or a return from the test (after saying why) when no PostgreSQL
/// server is configured: the opening every PostgreSQL test shares.
macro_rules! schema_or_skip {
    ($test:literal) => {
        match $crate::storage::postgres::testing::TestSchema::for_test($test).await {
            Some(schema) => schema,
            None => return,
        }
    };
}
pub(super) use schema_or_skip;

/// A store whose pool has one connection: a call that left its connection inside a
/// transaction, or with a setting of its own, would spoil the next one.
pub(super) async fn one_connection(schema: &TestSchema) -> PostgresStore {
    let settings = PoolSettings {
        size: 1,
        ..PoolSettings::default()
    };
    PostgresStore::connect_with(schema.config(), settings)
        .await
        .expect("connect")
}

pub(super) fn refresh(expires_at: i64) -> RefreshToken {
    RefreshToken {
        client_id: "client".into(),
        grant_id: "grant".into(),
        scopes: vec!["openid".into(), "offline_access".into()],
        identity: code(expires_at).identity,
        auth_time: 100,
        issued_at: 100,
        expires_at,
        spent: false,
    }
}

pub(super) fn access(expires_at: i64) -> AccessToken {
    AccessToken {
        client_id: "client".into(),
        grant_id: "grant".into(),
        scopes: vec!["openid".into()],
        identity: code(expires_at).identity,
        auth_time: 100,
        userinfo_claims: Vec::new(),
        client_only: false,
        issued_at: 100,
        expires_at,
    }
}

/// Two stores (one pool each: two "instances") on a fresh schema, or `None` when no test
/// server is set.
async fn two_instances(test: &str) -> Option<(TestSchema, PostgresStore, PostgresStore)> {
    let schema = TestSchema::for_test(test).await?;
    let (a, b) = (schema.store().await, schema.store().await);
    Some((schema, a, b))
}

/// Races eight calls of `f` per key, alternating between the two stores, and asserts that
/// exactly one call per key won.
async fn assert_one_winner_per_key<'a, F, Fut>(
    a: &'a PostgresStore,
    b: &'a PostgresStore,
    keys: &[String],
    f: F,
) where
    F: Fn(&'a PostgresStore, String) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut wins = Vec::new();
    for k in keys {
        let calls = (0..8).map(|i| f(if i % 2 == 0 { a } else { b }, k.clone()));
        let results = join_all(calls).await;
        wins.push(results.into_iter().filter(|won| *won).count());
    }
    assert!(wins.iter().all(|w| *w == 1), "winners per key: {wins:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_redeemed_at_two_instances_at_once_is_redeemed_exactly_once() {
    let Some((schema, a, b)) =
        two_instances("a_code_redeemed_at_two_instances_at_once_is_redeemed_exactly_once").await
    else {
        return;
    };
    let keys: Vec<String> = (0..64).map(|i| format!("code-{i}")).collect();
    for k in &keys {
        a.create_auth_code(k, &code(4_000_000_000))
            .await
            .expect("create");
    }
    assert_one_winner_per_key(&a, &b, &keys, |s, k| async move {
        !s.redeem_auth_code(&k).await.expect("redeem").redeemed
    })
    .await;
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_rotated_at_two_instances_at_once_is_spent_exactly_once() {
    let Some((schema, a, b)) =
        two_instances("a_refresh_token_rotated_at_two_instances_at_once_is_spent_exactly_once")
            .await
    else {
        return;
    };
    let keys: Vec<String> = (0..64).map(|i| format!("rt-{i}")).collect();
    for k in &keys {
        b.create_refresh_token(k, &refresh(4_000_000_000))
            .await
            .expect("create");
    }
    let (successor, access) = (refresh(4_000_000_000), access(4_000_000_000));
    assert_one_winner_per_key(&a, &b, &keys, |s, k| {
        let (successor, access) = (&successor, &access);
        async move {
            let (new_key, access_key) = (crate::random::token(16), crate::random::token(16));
            let rotation = crate::storage::Rotation {
                refresh_key: &new_key,
                refresh: successor,
                access_key: &access_key,
                access,
            };
            !s.rotate_refresh_token(&k, &rotation)
                .await
                .expect("rotate")
                .spent
        }
    })
    .await;
    // And the other instance sees the token spent (reuse detection works cluster-wide).
    assert!(a.find_refresh_token(&keys[0]).await.expect("find").spent);
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relaxed_commit_never_relaxes_the_connections_next_transaction() {
    let schema = schema_or_skip!("a_relaxed_commit_never_relaxes_the_connections_next_transaction");
    // Every call below runs on the connection the relaxed ones used.
    let store = one_connection(&schema).await;
    let request = pending_request();
    store
        .create_auth_request("r", &request)
        .await
        .expect("create");
    store.take_auth_request("r").await.expect("take");
    // What `/authorize` runs: the cap and the insert in one relaxed statement.
    assert!(store
        .create_auth_request_within("w", &request, 10)
        .await
        .expect("create within"));
    store.take_auth_request("w").await.expect("take");
    store
        .create_auth_code("c", &code(4_000_000_000))
        .await
        .expect("code");
    assert!(!store.redeem_auth_code("c").await.expect("redeem").redeemed);
    let client = store.client().await.expect("client");
    let row = client
        .query_one("SHOW synchronous_commit", &[])
        .await
        .expect("show");
    assert_eq!(row.get::<_, &str>(0), "on");
    drop(client);
    schema.drop_schema().await;
}

pub(super) fn pending_request() -> AuthRequest {
    AuthRequest {
        client_id: "client".into(),
        redirect_uri: "https://rp.example/cb".into(),
        scopes: vec!["openid".into()],
        state: None,
        nonce: None,
        code_challenge: None,
        response_mode: "query".into(),
        max_age: None,
        login_hint: None,
        ui_locales: None,
        claims: Default::default(),
        connector_id: "wecom".into(),
        browser_binding: "binding".into(),
        device_user_code: None,
        created_at: 100,
        expires_at: 4_000_000_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_at_once_migrate_the_schema_once() {
    let schema = schema_or_skip!("instances_starting_at_once_migrate_the_schema_once");
    let starts = join_all((0..4).map(|_| PostgresStore::connect(schema.config()))).await;
    for s in &starts {
        assert!(
            s.is_ok(),
            "a concurrent start failed: {:?}",
            s.as_ref().err()
        );
    }
    let store = starts.into_iter().next().expect("one").expect("store");
    let client = store.client().await.expect("client");
    let rows = client
        .query("SELECT version FROM schema_version ORDER BY version", &[])
        .await
        .expect("versions");
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    let expected: Vec<i32> = (1..=MIGRATIONS.len() as i32).collect();
    assert_eq!(versions, expected);
    drop(client);
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_pending_before_the_count_got_more_slots_are_still_counted() {
    let schema =
        schema_or_skip!("requests_pending_before_the_count_got_more_slots_are_still_counted");
    // The schema as the release before the 256 slots left it, with two pending requests
    // counted in its 16 slots.
    let before = 5;
    let mut sql = String::from(
        "CREATE TABLE schema_version (version INT PRIMARY KEY, \
         applied_at TIMESTAMPTZ NOT NULL DEFAULT now());",
    );
    for (i, migration) in MIGRATIONS[..before].iter().enumerate() {
        sql.push_str(migration);
        sql.push_str(&format!(
            "INSERT INTO schema_version (version) VALUES ({});",
            i + 1
        ));
    }
    sql.push_str(
        "INSERT INTO auth_requests (key, record, expires_at) \
         VALUES ('a', '{}', 1), ('b', '{}', 1);",
    );
    schema.execute(&sql).await.expect("the older schema");
    let store = schema.store().await;
    assert_eq!(store.count_auth_requests().await.expect("count"), 2);
    store.delete_expired(2).await.expect("sweep");
    assert_eq!(store.count_auth_requests().await.expect("count"), 0);
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_with_a_newer_schema_is_refused_and_left_unchanged() {
    let schema = schema_or_skip!("a_database_with_a_newer_schema_is_refused_and_left_unchanged");
    drop(schema.store().await);
    let newer = MIGRATIONS.len() + 1;
    schema
        .execute(&format!(
            "INSERT INTO schema_version (version) VALUES ({newer})"
        ))
        .await
        .expect("pretend a newer release migrated");
    let err = PostgresStore::connect(schema.config())
        .await
        .expect_err("a newer schema must be refused");
    let message = err.to_string();
    assert!(message.contains(&format!("version {newer}")), "{message}");
    assert!(
        message.contains("newer than this wecom-oidc knows"),
        "{message}"
    );
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_written_by_one_instance_survive_a_new_pool() {
    let schema = schema_or_skip!("records_written_by_one_instance_survive_a_new_pool");
    {
        let a = schema.store().await;
        a.create_auth_code("c", &code(500)).await.expect("create");
        assert!(!a.redeem_auth_code("c").await.expect("redeem").redeemed);
        a.revoke_grant("g", 900).await.expect("revoke");
    }
    let b = schema.store().await;
    assert!(b.redeem_auth_code("c").await.expect("redeem").redeemed);
    assert!(b.is_grant_revoked("g").await.expect("revoked"));
    schema.drop_schema().await;
}

#[test]
fn store_urls_are_checked() {
    assert!(parse_url("postgres://wecom@db.internal:5432/wecom_oidc").is_ok());
    assert!(parse_url("postgresql://wecom@127.0.0.1/wecom_oidc?sslmode=require").is_ok());
    let password = parse_url("postgres://wecom:hunter2@db/wecom_oidc").expect_err("password");
    assert!(password.contains("store_password_env"), "{password}");
    assert!(!password.contains("hunter2"), "{password}");
    assert!(parse_url("mysql://wecom@db/wecom_oidc")
        .expect_err("scheme")
        .contains("postgres://"));
    assert!(parse_url("postgres://db/wecom_oidc")
        .expect_err("no user")
        .contains("user"));
    assert!(parse_url("not a url").is_err());
    assert!(parse_url("postgres://wecom@db/x?bogus_option=1").is_err());
}
