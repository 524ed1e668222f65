//! Test support: a fresh schema per store on the server named by [`TEST_URL_ENV`].

use super::*;

/// The environment variable naming the PostgreSQL server the tests use.
pub const TEST_URL_ENV: &str = "WECOM_OIDC_TEST_PG";

/// The test server's URL, or `None` after printing why the test is skipped.
pub fn test_url(test: &str) -> Option<String> {
    match std::env::var(TEST_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            crate::ci::service_missing(
                test,
                &format!(
                    "set {TEST_URL_ENV} to run the PostgreSQL tests \
                     (e.g. postgres://user@127.0.0.1:5432/db; .ci/pg starts a server and sets it)"
                ),
            );
            None
        }
    }
}

/// A schema of its own on the test server, so that concurrent runs never meet; dropped by
/// [`TestSchema::drop_schema`].
pub struct TestSchema {
    base: tokio_postgres::Config,
    /// The schema's name.
    pub name: String,
}

impl TestSchema {
    /// Creates a fresh schema on the server at `url`.
    pub async fn create(url: &str) -> TestSchema {
        let mut base = parse_url(url).expect("test URL");
        if let Ok(pw) = std::env::var("PGPASSWORD") {
            base.password(pw);
        }
        let name = format!(
            "wecom_oidc_test_{}",
            crate::random::token(12)
                .to_ascii_lowercase()
                .replace('-', "_")
        );
        let (client, conn) = base
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect to the test server");
        let task = tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE SCHEMA \"{name}\""))
            .await
            .expect("create schema");
        drop(client);
        let _ = task.await;
        TestSchema { base, name }
    }

    /// A fresh schema on the test server for `test`, or `None` when no server is set (after
    /// saying so, as [`test_url`] does).
    pub async fn for_test(test: &str) -> Option<TestSchema> {
        Some(TestSchema::create(&test_url(test)?).await)
    }

    /// The connection config whose `search_path` is this schema.
    pub fn config(&self) -> tokio_postgres::Config {
        let mut c = self.base.clone();
        c.options(format!("-c search_path={}", self.name));
        c
    }

    /// A store (one pool: one "instance") on this schema.
    pub async fn store(&self) -> PostgresStore {
        PostgresStore::connect(self.config())
            .await
            .expect("connect the store")
    }

    /// Runs `sql` on this schema outside any store.
    pub async fn execute(&self, sql: &str) -> std::result::Result<(), tokio_postgres::Error> {
        let (client, conn) = self.config().connect(tokio_postgres::NoTls).await?;
        let task = tokio::spawn(conn);
        let result = client.batch_execute(sql).await;
        drop(client);
        let _ = task.await;
        result
    }

    /// Drops the schema and everything in it.
    pub async fn drop_schema(self) {
        self.execute(&format!("DROP SCHEMA \"{}\" CASCADE", self.name))
            .await
            .expect("drop schema");
    }
}
