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

/// The request body.
#[derive(Debug, Deserialize)]
pub struct RotateRequest {
    /// RS256 (default), ES256 or EdDSA.
    #[serde(default)]
    pub alg: Option<String>,
    /// Seconds the previous key stays published.
    #[serde(default)]
    pub grace: Option<i64>,
    /// Who asks (for the audit log).
    #[serde(default)]
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
