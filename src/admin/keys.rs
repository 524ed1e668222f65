//! `POST /v1/keys/rotate`: a new signing key becomes active in the running server, the previous
//! one of that algorithm stays published for the grace period. Against the key directory for a
//! server that owns its store (then the running key set is re-read from it), against the store's
//! shared key set in a cluster (every other instance picks it up at its next reload).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{AdminContext, AdminError};
use crate::tokens::{shared, KeyStore, SigningAlg};

/// How long the previous key stays published when the request names no grace period: as
/// `keys rotate`'s default, longer than any id_token or access token lives.
pub const DEFAULT_GRACE_SECS: i64 = 86_400;

/// The request body; serde reads a missing member as `None`.
#[derive(Debug, Deserialize)]
pub struct RotateRequest {
    /// RS256 (default), ES256 or EdDSA.
    pub alg: Option<String>,
    /// Seconds the previous key stays published.
    pub grace: Option<i64>,
    /// Who asks (for the audit log).
    pub actor: Option<String>,
}

/// The answer: the new key.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rotated {
    /// The new active key's `kid`.
    pub kid: String,
    /// Its algorithm.
    pub alg: String,
    /// The previous active key of that algorithm, now retiring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<String>,
}

/// `POST /v1/keys/rotate`.
pub async fn rotate(
    State(ctx): State<AdminContext>,
    body: axum::body::Bytes,
) -> Result<Json<Rotated>, AdminError> {
    let req: RotateRequest = AdminError::parse_body(&body)?;
    let alg: SigningAlg = match req.alg.as_deref() {
        None => SigningAlg::Rs256,
        Some(a) => a
            .parse()
            .map_err(|e| AdminError::invalid_request(format!("alg: {e}")))?,
    };
    let grace = req.grace.unwrap_or(DEFAULT_GRACE_SECS);
    if grace < 0 {
        return Err(AdminError::invalid_request("grace must not be negative"));
    }
    let ring = ctx.provider.key_ring();
    let clock = ctx.clock.as_ref();
    let rotation = if ctx.store.is_shared() {
        let r = shared::rotate_in_store(ctx.store.as_ref(), alg, grace, clock)
            .await
            .map_err(AdminError::server)?;
        // This instance signs with it at once; the others at their next reload.
        ring.reload(ctx.store.as_ref(), clock.now())
            .await
            .map_err(AdminError::server)?;
        r
    } else {
        let dir = &ctx.config.keys_dir;
        let r = KeyStore::rotate(dir, alg, grace, clock).map_err(AdminError::server)?;
        let keys = KeyStore::load_or_generate_with(dir, SigningAlg::Rs256, clock)
            .map_err(AdminError::server)?;
        ring.replace(keys);
        r
    };
    tracing::info!(alg = %alg, kid = %rotation.new_key.kid, "signing key rotated");
    Ok(Json(Rotated {
        kid: rotation.new_key.kid,
        alg: alg.as_str().to_owned(),
        retired: rotation.retired,
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::http::StatusCode;

    use crate::admin::{router, AdminContext};
    use crate::clock::{ManualClock, SharedClock};
    use crate::provider::testing::StubConnector;
    use crate::provider::{ClientRegistry, Provider, ProviderParts};
    use crate::storage::{MemoryStore, Store};
    use crate::tokens::{KeyRing, KeyStore, SigningAlg};

    /// The admin router over `store` with `keys`, its config's keys_dir `dir`.
    fn admin(
        store: Arc<dyn Store>,
        keys: Arc<KeyRing>,
        dir: &std::path::Path,
        clock: ManualClock,
    ) -> (axum::Router, Arc<Provider>) {
        let clock: SharedClock = Arc::new(clock);
        let provider = Arc::new(Provider::new(ProviderParts {
            issuer: "https://sso.example.com".into(),
            clients: ClientRegistry::new(Vec::new()),
            store: store.clone(),
            keys,
            clock: clock.clone(),
            lifetimes: Default::default(),
            connector: Arc::new(StubConnector::named("stub", "stub")),
            session: Default::default(),
        }));
        let config = crate::testkit::config(
            "https://sso.example.com",
            "127.0.0.1:0".parse().unwrap(),
            dir,
            Vec::new(),
            Vec::new(),
        );
        let r = router(AdminContext {
            config: Arc::new(config),
            provider: provider.clone(),
            store,
            clock,
            reloader: Default::default(),
        });
        (r, provider)
    }

    /// The admin router on a memory store, with an RS256 key generated in `dir/keys`.
    fn with_key_folder(dir: &std::path::Path) -> (axum::Router, Arc<Provider>, Arc<dyn Store>) {
        let clock = ManualClock::new(1_700_000_000);
        let keys =
            KeyStore::load_or_generate_with(&dir.join("keys"), SigningAlg::Rs256, &clock).unwrap();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (r, provider) = admin(store.clone(), Arc::new(KeyRing::fixed(keys)), dir, clock);
        (r, provider, store)
    }

    async fn post(r: &axum::Router, body: &str) -> (StatusCode, serde_json::Value) {
        crate::admin::post_in_process(r.clone(), "/v1/keys/rotate", body.to_owned()).await
    }

    #[tokio::test]
    async fn rotation_in_the_key_folder_signs_with_the_new_key_at_once_and_is_audited() {
        let dir = tempfile::tempdir().unwrap();
        let (r, provider, store) = with_key_folder(dir.path());
        let keys_dir = dir.path().join("keys");
        let old = provider.keys().active_kid().to_owned();
        let (status, answer) =
            post(&r, r#"{"alg": "RS256", "actor": "console:wecom/zhangsan"}"#).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let new = answer["kid"].as_str().unwrap();
        assert_ne!(new, old);
        assert_eq!(answer["retired"], serde_json::json!(old));
        assert_eq!(
            provider.keys().active_kid(),
            new,
            "signs with the new key now"
        );
        let published: Vec<String> = provider
            .keys()
            .keys()
            .iter()
            .map(|k| k.kid.clone())
            .collect();
        assert!(published.contains(&old), "the old key stays published");
        let listed = KeyStore::list(&keys_dir).unwrap();
        assert_eq!(
            listed.len(),
            2,
            "and the folder holds both for the next start"
        );
        let audit = store.list_audit_events(10).await.unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].action, "keys.rotate");
        assert_eq!(audit[0].actor, "console:wecom/zhangsan");
        assert_eq!(audit[0].target.as_deref(), Some("RS256"));
        assert_eq!(audit[0].outcome, "ok");
        assert!(audit[0].detail.as_deref().unwrap().contains(new));
    }

    #[tokio::test]
    async fn a_bad_request_is_refused_as_json_and_audited_too() {
        let dir = tempfile::tempdir().unwrap();
        let (r, _, store) = with_key_folder(dir.path());
        let (status, answer) = post(&r, r#"{"alg": "HS256"}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(answer["error"], "invalid_request");
        let (status, answer) = post(&r, "not json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        let audit = store.list_audit_events(10).await.unwrap();
        assert_eq!(audit.len(), 2);
        assert!(audit.iter().all(
            |e| e.outcome == "invalid_request" && e.actor == crate::admin::audit::SOCKET_ACTOR
        ));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn rotation_in_a_shared_store_reaches_this_instance_at_once() {
        use crate::storage::postgres::testing::{test_url, TestSchema};
        let Some(url) = test_url("rotation_in_a_shared_store_reaches_this_instance_at_once") else {
            return;
        };
        let schema = TestSchema::create(&url).await;
        let store: Arc<dyn Store> = Arc::new(schema.store().await);
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_700_000_000);
        let ring = Arc::new(
            KeyRing::load_shared(store.as_ref(), SigningAlg::Rs256, &clock)
                .await
                .unwrap(),
        );
        let old = ring.current().active_kid().to_owned();
        let (r, provider) = admin(store.clone(), ring, dir.path(), clock);
        let (status, answer) = post(&r, r#"{"actor": "cli"}"#).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let new = answer["kid"].as_str().unwrap();
        assert_eq!(provider.keys().active_kid(), new);
        let set = store.find_signing_keys().await.unwrap();
        let kids: Vec<&str> = set.keys.iter().map(|k| k.kid.as_str()).collect();
        assert!(
            kids.contains(&new) && kids.contains(&old.as_str()),
            "{kids:?}"
        );
        assert!(
            !dir.path().join("keys").exists(),
            "the key folder is not used"
        );
    }
}
