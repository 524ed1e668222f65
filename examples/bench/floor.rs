//! The floor of a durable, signed code exchange: the least a `/token` must do, written with the
//! crates the server is built on (axum on hyper and tokio, sled, OpenSSL) and nothing else.
//!
//! Per request: the client's Basic credentials (constant-time), the form, the code's SHA-256,
//! the code record taken from sled and decoded, `redirect_uri` and PKCE S256 checked, an access
//! and a refresh token drawn from the CSPRNG and stored under their SHA-256, one group-commit
//! flush of sled that every request waiting at that moment shares (a dedicated thread, as the
//! server does; sled's cache large enough to hold every seeded code), the id_token with `at_hash` signed, and the JSON answer with `no-store`. No
//! access line, request id, metrics, rate limit, deadline, body limit or security header; no
//! grant record, no second instance's view, no audit event. What the server spends above this
//! floor is its own choices; what the floor spends is the bound of the design.
//!
//! The same server, seeded with as many codes as a server under test stored (one per complete
//! login and every prepared code) and given the server's own sled cache and flush interval, is
//! the floor of memory ([`Seeding::Memory`]): after it has exchanged as many codes as that
//! server did, its peak RSS is what sled, axum and OpenSSL hold at that write volume with the
//! smallest records a code exchange can keep.

use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::browser::{BenchClient, PreparedCode};

/// Codes seeded per client at start, more than a `/token` phase can redeem.
pub const FLOOR_CODES: usize = 30_000;
/// The floor's clients: one whose id_tokens are ES256, one RS256, and one ES256 whose tokens
/// are answered without waiting for the flush (not durable: it only shows what the flush costs).
pub const FLOOR_ES256: &str = "floor-es256";
pub const FLOOR_RS256: &str = "floor-rs256";
pub const FLOOR_ES256_VOLATILE: &str = "floor-es256-volatile";
/// sled's page cache of the `/token` floor (the server's default is 8 MiB).
const FLOOR_CACHE: u64 = 512 << 20;
/// sled's flush interval of the `/token` floor.
const FLOOR_FLUSH_EVERY_MS: u64 = 500;

/// What a floor server seeds, and with which sled settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeding {
    /// The `/token` floor: this many codes for each client, in a cache that holds them all.
    Cpu(usize),
    /// The memory floor: these many codes for the RS256 and the ES256 client (none for the
    /// volatile one), with the server's own cache and flush interval.
    Memory { rs256: usize, es256: usize },
}

impl Seeding {
    /// Codes seeded for `client_id`.
    fn codes_for(self, client_id: &str) -> usize {
        match self {
            Seeding::Cpu(n) => n,
            Seeding::Memory { rs256, .. } if client_id == FLOOR_RS256 => rs256,
            Seeding::Memory { es256, .. } if client_id == FLOOR_ES256 => es256,
            Seeding::Memory { .. } => 0,
        }
    }

    /// sled's cache and flush interval.
    fn sled(self) -> (u64, u64) {
        match self {
            Seeding::Cpu(_) => (FLOOR_CACHE, FLOOR_FLUSH_EVERY_MS),
            Seeding::Memory { .. } => (
                wecom_oidc::storage::sled_store::DEFAULT_CACHE_BYTES,
                wecom_oidc::storage::sled_store::FLUSH_EVERY_MS,
            ),
        }
    }

    /// The command-line value of `--floor-memory` (`RS256,ES256`).
    pub fn memory_arg(rs256: usize, es256: usize) -> String {
        format!("{rs256},{es256}")
    }

    /// Parses `--floor-memory`'s value.
    pub fn parse_memory(s: &str) -> Result<Seeding, String> {
        let (rs, es) = s
            .split_once(',')
            .ok_or_else(|| format!("{s:?}: expected RS256,ES256 code counts"))?;
        let count = |v: &str| v.trim().parse::<usize>().map_err(|e| format!("{v:?}: {e}"));
        Ok(Seeding::Memory {
            rs256: count(rs)?,
            es256: count(es)?,
        })
    }
}
/// The PKCE verifier of every seeded code (RFC 7636 §4.1: 43 characters).
const VERIFIER: &str = "floor-verifier-floor-verifier-floor-verifie";

/// What the floor keeps of a code: what `/token` must check and put in the id_token.
#[derive(Serialize, Deserialize)]
struct CodeRecord {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    sub: String,
    nonce: String,
    scope: String,
    auth_time: u64,
}

/// What it keeps of an access or refresh token.
#[derive(Serialize)]
struct TokenRecord<'a> {
    client_id: &'a str,
    sub: &'a str,
    scope: &'a str,
    expires_at: u64,
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    code: String,
    redirect_uri: String,
    code_verifier: String,
}

#[derive(Serialize)]
struct IdClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    auth_time: u64,
    nonce: &'a str,
    at_hash: &'a str,
}

#[derive(Serialize)]
struct TokenAnswer<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: &'a str,
    id_token: &'a str,
    scope: &'a str,
}

enum Signer {
    Es256(EcKey<Private>),
    Rs256(PKey<Private>),
}

impl Signer {
    fn alg(&self) -> &'static str {
        match self {
            Signer::Es256(_) => "ES256",
            Signer::Rs256(_) => "RS256",
        }
    }

    /// RFC 7515 §5.1 over `header.claims`; ES256 as R‖S (RFC 7518 §3.4).
    fn sign(&self, input: &[u8]) -> Option<Vec<u8>> {
        match self {
            Signer::Es256(key) => {
                let sig = EcdsaSig::sign(&openssl::sha::sha256(input), key).ok()?;
                let mut out = sig.r().to_vec_padded(32).ok()?;
                out.extend_from_slice(&sig.s().to_vec_padded(32).ok()?);
                Some(out)
            }
            Signer::Rs256(key) => {
                let mut s = openssl::sign::Signer::new(MessageDigest::sha256(), key).ok()?;
                s.update(input).ok()?;
                s.sign_to_vec().ok()
            }
        }
    }
}

/// Callers waiting for the next flush; one thread flushes once for all of them.
#[derive(Default)]
struct GroupCommit {
    waiting: Mutex<Vec<tokio::sync::oneshot::Sender<bool>>>,
    wake: Condvar,
}

impl GroupCommit {
    fn start(db: sled::Db) -> Arc<GroupCommit> {
        let commit = Arc::new(GroupCommit::default());
        let queue = commit.clone();
        std::thread::spawn(move || loop {
            let batch = {
                let mut waiting = queue.waiting.lock().unwrap_or_else(PoisonError::into_inner);
                while waiting.is_empty() {
                    waiting = queue
                        .wake
                        .wait(waiting)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                std::mem::take(&mut *waiting)
            };
            let flushed = db.flush().is_ok();
            for waiter in batch {
                let _ = waiter.send(flushed);
            }
        });
        commit
    }

    /// Resolves once a flush that started after this call is on disk.
    async fn durable(&self) -> bool {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let first = {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            waiting.push(tx);
            waiting.len() == 1
        };
        // The thread sleeps only with an empty queue: later callers need not wake it.
        if first {
            self.wake.notify_one();
        }
        rx.await.unwrap_or(false)
    }
}

struct Floor {
    issuer: String,
    codes: sled::Tree,
    tokens: sled::Tree,
    commit: Arc<GroupCommit>,
    /// Each client, its signer, and whether its tokens wait for the flush.
    clients: Vec<(BenchClient, Signer, bool)>,
}

/// `--floor-server PORT`: the floor's `/token` (and `/ready`), its sled in a temporary folder,
/// `seeds` codes per client in it.
pub fn floor_server(port: u16, seeds: Seeding) -> ExitCode {
    crate::servers::serve_helper(port, |listener| async move {
        let dir = tempfile::tempdir()?;
        let floor = Arc::new(open(dir.path(), port, seeds).map_err(std::io::Error::other)?);
        let app = axum::Router::new()
            .route("/token", axum::routing::post(token))
            .route("/ready", axum::routing::get(|| async { "ready" }))
            .with_state(floor);
        axum::serve(listener, app).await
    })
}

fn open(dir: &std::path::Path, port: u16, seeds: Seeding) -> crate::Result<Floor> {
    // The `/token` floor's cache holds the whole seeded tree, so that it never reads a page
    // back: the most favourable case, for a floor that bounds time from below. The memory
    // floor has the server's cache, the setting the server's memory is measured with.
    let (cache, flush_every_ms) = seeds.sled();
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(cache)
        .flush_every_ms(Some(flush_every_ms))
        .open()?;
    let codes = db.open_tree("codes")?;
    let tokens = db.open_tree("tokens")?;
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let ec = EcKey::generate(&group)?;
    let rsa = PKey::from_rsa(Rsa::generate(2048)?)?;
    let clients = vec![
        (floor_client(FLOOR_ES256), Signer::Es256(ec.clone()), true),
        (floor_client(FLOOR_RS256), Signer::Rs256(rsa), true),
        (floor_client(FLOOR_ES256_VOLATILE), Signer::Es256(ec), false),
    ];
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER));
    for (client, _, _) in &clients {
        for i in 0..seeds.codes_for(&client.id) {
            let record = CodeRecord {
                client_id: client.id.clone(),
                redirect_uri: client.redirect_uri.clone(),
                challenge: challenge.clone(),
                sub: format!("wecom|floor|{i}"),
                nonce: format!("nonce-{i}"),
                scope: "openid profile email".into(),
                auth_time: now(),
            };
            let code = code_name(&client.id, i);
            codes.insert(
                Sha256::digest(&code).as_slice(),
                serde_json::to_vec(&record)?,
            )?;
        }
    }
    db.flush()?;
    Ok(Floor {
        issuer: format!("http://127.0.0.1:{port}"),
        codes,
        tokens,
        commit: GroupCommit::start(db),
        clients,
    })
}

/// A floor client as both processes know it (the floor is a throwaway local server, so its
/// secret is fixed).
pub fn floor_client(id: &str) -> BenchClient {
    BenchClient {
        id: id.to_string(),
        secret: format!("{id}-secret"),
        redirect_uri: "http://127.0.0.1/bench/callback".to_string(),
    }
}

/// The first `count` codes the floor seeded for `client_id`, for the generator.
pub fn seeded_codes(client_id: &str, count: usize) -> Vec<PreparedCode> {
    (0..count)
        .map(|i| PreparedCode {
            code: code_name(client_id, i),
            verifier: VERIFIER.to_string(),
        })
        .collect()
}

fn code_name(client_id: &str, i: usize) -> String {
    format!("{client_id}-code-{i:08}")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn refuse(status: StatusCode, error: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{{\"error\":\"{error}\"}}"),
    )
        .into_response()
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn token(State(floor): State<Arc<Floor>>, headers: HeaderMap, body: Bytes) -> Response {
    // RFC 6749 §2.3.1: the client authenticates with HTTP Basic.
    let Some((client, signer, durable)) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|creds| {
            let text = String::from_utf8(creds).ok()?;
            let (id, secret) = text.split_once(':')?;
            floor.clients.iter().find(|(c, _, _)| {
                c.id == id && bool::from(c.secret.as_bytes().ct_eq(secret.as_bytes()))
            })
        })
    else {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_client");
    };
    let Ok(form) = serde_urlencoded::from_bytes::<TokenForm>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "invalid_request");
    };
    if form.grant_type != "authorization_code" {
        return refuse(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    // RFC 6749 §4.1.2: a code is used once, so it is taken, not read.
    let taken = floor.codes.remove(Sha256::digest(&form.code).as_slice());
    let Some(record) = taken
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice::<CodeRecord>(&bytes).ok())
    else {
        return refuse(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(&form.code_verifier));
    if record.client_id != client.id
        || record.redirect_uri != form.redirect_uri
        || !bool::from(challenge.as_bytes().ct_eq(record.challenge.as_bytes()))
    {
        return refuse(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let issued = now();
    let access = random_token();
    let refresh = random_token();
    for (token, lifetime) in [(&access, 3_600), (&refresh, 30 * 86_400)] {
        let stored = serde_json::to_vec(&TokenRecord {
            client_id: &record.client_id,
            sub: &record.sub,
            scope: &record.scope,
            expires_at: issued + lifetime,
        });
        let inserted = stored.map(|bytes| {
            floor
                .tokens
                .insert(Sha256::digest(token.as_bytes()).as_slice(), bytes)
        });
        if !matches!(inserted, Ok(Ok(_))) {
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
        }
    }
    // Answered only once the tokens are on disk.
    if *durable && !floor.commit.durable().await {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    }
    // OIDC Core §3.1.3.6: at_hash is the left half of the access token's SHA-256.
    let at_hash = URL_SAFE_NO_PAD.encode(&Sha256::digest(access.as_bytes())[..16]);
    let claims = IdClaims {
        iss: &floor.issuer,
        sub: &record.sub,
        aud: &record.client_id,
        iat: issued,
        exp: issued + 3_600,
        auth_time: record.auth_time,
        nonce: &record.nonce,
        at_hash: &at_hash,
    };
    let Ok(claims) = serde_json::to_vec(&claims) else {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    };
    let header = format!(
        "{{\"alg\":\"{}\",\"typ\":\"JWT\",\"kid\":\"floor\"}}",
        signer.alg()
    );
    let mut id_token = URL_SAFE_NO_PAD.encode(header);
    id_token.push('.');
    URL_SAFE_NO_PAD.encode_string(claims, &mut id_token);
    let Some(signature) = signer.sign(id_token.as_bytes()) else {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    };
    id_token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut id_token);
    let answer = serde_json::to_vec(&TokenAnswer {
        access_token: &access,
        token_type: "Bearer",
        expires_in: 3_600,
        refresh_token: &refresh,
        id_token: &id_token,
        scope: &record.scope,
    });
    match answer {
        // RFC 6749 §5.1: no-store.
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(_) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_floor_seeds_the_demos_counts_with_the_servers_sled_settings() {
        let memory = Seeding::parse_memory(&Seeding::memory_arg(14_310, 30_015)).unwrap();
        assert_eq!(
            memory,
            Seeding::Memory {
                rs256: 14_310,
                es256: 30_015
            }
        );
        assert_eq!(memory.codes_for(FLOOR_RS256), 14_310);
        assert_eq!(memory.codes_for(FLOOR_ES256), 30_015);
        assert_eq!(memory.codes_for(FLOOR_ES256_VOLATILE), 0);
        assert_eq!(
            memory.sled(),
            (
                wecom_oidc::storage::sled_store::DEFAULT_CACHE_BYTES,
                wecom_oidc::storage::sled_store::FLUSH_EVERY_MS
            )
        );
        // The `/token` floor keeps every seeded code in its cache.
        let cpu = Seeding::Cpu(FLOOR_CODES);
        assert_eq!(cpu.codes_for(FLOOR_ES256_VOLATILE), FLOOR_CODES);
        assert_eq!(cpu.sled(), (FLOOR_CACHE, FLOOR_FLUSH_EVERY_MS));
    }

    #[test]
    fn a_malformed_memory_seeding_is_refused() {
        for bad in ["", "12", "12;3", "a,1", "1,-2", "1,2,3"] {
            assert!(Seeding::parse_memory(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_generator_gets_the_first_codes_the_floor_seeded() {
        let codes = seeded_codes(FLOOR_RS256, 3);
        let names: Vec<_> = codes.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(
            names,
            [0, 1, 2].map(|i| code_name(FLOOR_RS256, i)).as_slice()
        );
    }
}
