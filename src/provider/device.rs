//! The device authorization grant (RFC 8628): a device without a browser (a CLI, a shared
//! screen) gets a device code to poll with and a short user code; the person enters or
//! confirms the user code on the verification page, signs in upstream as for any login, and
//! approves or denies. The device's polls are answered by §3.5.

use std::sync::Arc;

use serde::Serialize;

use super::authorize::{AuthorizationResponse, ResponseMode};
use super::error::{ErrorCode, OAuthError};
use super::handoff::{LoginBrowser, LoginStart};
use super::params::Params;
use super::request::{Prompt, ValidAuthorizeRequest};
use super::token::{Issue, TokenError, TokenResponse, OFFLINE_ACCESS};
use super::{scopes, Client, ClientCredentials, GrantType, Provider};
use crate::random;
use crate::storage::{ClaimsRequest, DeviceAuthorization, DeviceStatus, StorageError};

/// RFC 8628 §6.1: consonants only — no vowels (no words), none of 0/O, 1/I/L, 5/S … that
/// people confuse; upper case, so entry is case-insensitive.
pub const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Characters of a user code: 20^8 ≈ 2^34.6 codes (§5.1: with the per-address limit on
/// guesses at the verification page and a few hundred live codes, a guess succeeds about once
/// in 10^7 tries).
const USER_CODE_LEN: usize = 8;

/// The verification page (RFC 8628 §3.2 `verification_uri`).
pub const VERIFICATION_PATH: &str = "/device";

/// How long a device authorization is kept after it expires, so that a late poll still hears
/// `expired_token` (§3.5) rather than `invalid_grant`.
const KEEP_AFTER_EXPIRY: i64 = 600;

/// `slow_down` adds this to the interval (RFC 8628 §3.5).
const SLOW_DOWN_SECONDS: i64 = 5;

/// The device authorization response (RFC 8628 §3.2).
#[derive(Debug, Clone, Serialize)]
pub struct DeviceAuthorizationResponse {
    /// What the device polls with.
    pub device_code: String,
    /// What the person enters, `XXXX-XXXX`.
    pub user_code: String,
    /// The verification page.
    pub verification_uri: String,
    /// The verification page with the user code in it (for a QR code or a link).
    pub verification_uri_complete: String,
    /// Seconds until both codes expire.
    pub expires_in: i64,
    /// Seconds the device waits between polls.
    pub interval: i64,
}

/// What the verification page shows about a live device authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRequest {
    /// The user code, `XXXX-XXXX`.
    pub user_code: String,
    /// The client's id.
    pub client_id: String,
    /// The client's name.
    pub client_name: String,
    /// The scopes it asks for.
    pub scopes: Vec<String>,
    /// [`DeviceAuthorizationResponse::verification_uri_complete`].
    pub verification_uri_complete: String,
}

/// Why the verification page cannot go on with a user code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePageError {
    /// Unknown, expired or already answered (single use), or not a user code at all. One
    /// answer for all, so a guess learns nothing.
    Invalid,
    /// The person must sign in first (no session, or one of another upstream).
    LoginRequired,
    /// The store failed.
    Server(OAuthError),
}

impl From<StorageError> for DevicePageError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => Self::Invalid,
            other => Self::Server(other.into()),
        }
    }
}

/// A user code as people type it (any case, with or without the dash or spaces), in its
/// canonical `XXXX-XXXX` form; `None` if it cannot be one of ours.
pub fn normalize_user_code(input: &str) -> Option<String> {
    let chars: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let ours =
        chars.len() == USER_CODE_LEN && chars.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    ours.then(|| format!("{}-{}", &chars[..4], &chars[4..]))
}

/// The store key of a canonical user code.
fn user_key(user_code: &str) -> String {
    random::hash_secret(&format!("user_code:{user_code}"))
}

/// What a poll finds (RFC 8628 §3.5), and the record it leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Poll {
    /// `authorization_pending`.
    Pending,
    /// `slow_down`.
    SlowDown,
    /// `access_denied`.
    Denied,
    /// `expired_token`.
    Expired,
    /// `invalid_grant`, with why.
    Invalid(&'static str),
    /// Approved: issue the tokens now (the record becomes `Redeemed`).
    Issue,
}

/// The answer to a poll by `client_id` at `now`, and the record to store (`None`: unchanged).
/// Pure, so a store may apply it again on a concurrent change.
fn poll(
    record: &DeviceAuthorization,
    client_id: &str,
    now: i64,
) -> (Poll, Option<DeviceAuthorization>) {
    if record.client_id != client_id {
        return (
            Poll::Invalid("the device code was issued to another client"),
            None,
        );
    }
    if record.expires_at <= now {
        return (Poll::Expired, None);
    }
    let mut next = record.clone();
    match record.status {
        DeviceStatus::Pending => {
            next.last_polled_at = Some(now);
            let too_soon = record
                .last_polled_at
                .is_some_and(|last| now - last < record.interval);
            if too_soon {
                next.interval += SLOW_DOWN_SECONDS;
                (Poll::SlowDown, Some(next))
            } else {
                (Poll::Pending, Some(next))
            }
        }
        DeviceStatus::Approved { .. } => {
            next.status = DeviceStatus::Redeemed;
            (Poll::Issue, Some(next))
        }
        DeviceStatus::Denied => (Poll::Denied, None),
        DeviceStatus::Redeemed => (Poll::Invalid("the device code was already used"), None),
    }
}

impl Provider {
    /// The device authorization endpoint (RFC 8628 §3.1–3.2): authenticates the client as the
    /// token endpoint does, and issues a device code and a user code.
    pub async fn device_authorization(
        &self,
        p: &Params,
        creds: &ClientCredentials,
    ) -> Result<DeviceAuthorizationResponse, TokenError> {
        self.for_client(p, creds, |client| {
            self.new_device_codes(client, p.get("scope"))
        })
        .await
    }

    /// A device code and a user code for `client`, asking for `scope`.
    async fn new_device_codes(
        &self,
        client: Arc<Client>,
        scope: Option<&str>,
    ) -> Result<DeviceAuthorizationResponse, OAuthError> {
        if !client.allows_grant(GrantType::DeviceCode) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "this client may not use the device authorization grant",
            ));
        }
        let scopes = device_scopes(&client, scope);
        let now = self.now();
        let device_code = random::token(32);
        let expires_at = now + self.lifetimes().device_code;
        // A user code may collide with a live one (§5.1: the space is small on purpose);
        // draw again. Eight collisions in a row would take billions of live codes.
        for _ in 0..8 {
            let user_code =
                normalize_user_code(&random::from_alphabet(USER_CODE_ALPHABET, USER_CODE_LEN))
                    .ok_or_else(OAuthError::server_error)?;
            let record = DeviceAuthorization {
                client_id: client.id.clone(),
                scopes: scopes.clone(),
                user_key: user_key(&user_code),
                interval: self.lifetimes().device_poll_interval,
                last_polled_at: None,
                expires_at,
                keep_until: expires_at + KEEP_AFTER_EXPIRY,
                status: DeviceStatus::Pending,
            };
            match self
                .store
                .create_device_authorization(
                    &random::hash_secret(&device_code),
                    &record.user_key,
                    &record,
                )
                .await
            {
                Ok(()) => {
                    return Ok(DeviceAuthorizationResponse {
                        device_code,
                        verification_uri_complete: self.verification_uri_complete(&user_code),
                        user_code,
                        verification_uri: self.url(VERIFICATION_PATH),
                        expires_in: self.lifetimes().device_code,
                        interval: self.lifetimes().device_poll_interval,
                    })
                }
                Err(StorageError::AlreadyExists) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        tracing::error!("no free user code after eight draws");
        Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "too many device logins are in progress; try again later",
        ))
    }

    /// `verification_uri_complete` for a canonical user code.
    fn verification_uri_complete(&self, user_code: &str) -> String {
        format!("{}?user_code={user_code}", self.url(VERIFICATION_PATH))
    }

    /// Where the login of a verification page ends: the page again, with its user code.
    pub(crate) fn device_page_return(&self, user_code: &str) -> AuthorizationResponse {
        AuthorizationResponse {
            redirect_uri: self.url(VERIFICATION_PATH),
            response_mode: ResponseMode::Query,
            params: vec![("user_code".into(), user_code.into())],
        }
    }

    /// The token request of a polling device (RFC 8628 §3.4–3.5), from a client that may use
    /// the grant ([`Self::token`] checked).
    pub(super) async fn device_token(
        &self,
        client: &Client,
        device_code: &str,
    ) -> Result<TokenResponse, OAuthError> {
        let now = self.now();
        let change = |r: &mut DeviceAuthorization| {
            if let (_, Some(next)) = poll(r, &client.id, now) {
                *r = next;
            }
        };
        let before = match self
            .store
            .update_device_authorization(&random::hash_secret(device_code), &change)
            .await
        {
            Ok(r) => r,
            Err(StorageError::NotFound) => {
                return Err(OAuthError::invalid_grant("the device code is invalid"))
            }
            Err(e) => return Err(e.into()),
        };
        let refuse = |code, description| Err(OAuthError::new(code, description));
        match poll(&before, &client.id, now).0 {
            Poll::Pending => refuse(
                ErrorCode::AuthorizationPending,
                "the person has not answered yet",
            ),
            Poll::SlowDown => refuse(
                ErrorCode::SlowDown,
                "polling too fast: wait 5 seconds longer between requests",
            ),
            Poll::Denied => refuse(ErrorCode::AccessDenied, "the person denied the request"),
            Poll::Expired => refuse(
                ErrorCode::ExpiredToken,
                "the device code has expired; start again",
            ),
            Poll::Invalid(why) => refuse(ErrorCode::InvalidGrant, why),
            Poll::Issue => {
                let DeviceStatus::Approved {
                    identity,
                    auth_time,
                    sid,
                } = &before.status
                else {
                    return Err(OAuthError::server_error());
                };
                let refresh_scopes = (before.scopes.iter().any(|s| s == OFFLINE_ACCESS)
                    && client.allows_offline_access()
                    && client.allows_grant(GrantType::RefreshToken))
                .then_some(before.scopes.as_slice());
                self.issue_tokens(
                    client,
                    &Issue {
                        grant_id: &random::token(16),
                        scopes: &before.scopes,
                        identity,
                        auth_time: *auth_time,
                        nonce: None,
                        refresh_scopes,
                        sid: sid.as_deref(),
                        claims: &ClaimsRequest::default(),
                        client_only: false,
                    },
                    now,
                )
                .await
            }
        }
    }

    /// The live, unanswered device authorization of `user_code` (as typed), for the
    /// verification page.
    pub async fn device_request(&self, user_code: &str) -> Result<DeviceRequest, DevicePageError> {
        let (_, record, user_code) = self.pending_device(user_code).await?;
        let client = self
            .clients
            .get(&record.client_id)
            .ok_or(DevicePageError::Invalid)?;
        Ok(DeviceRequest {
            verification_uri_complete: self.verification_uri_complete(&user_code),
            user_code,
            client_id: client.id.clone(),
            client_name: client.name.clone(),
            scopes: record.scopes,
        })
    }

    /// Finds a live, unanswered device authorization by a user code as typed; with its
    /// device key and the canonical code.
    async fn pending_device(
        &self,
        user_code: &str,
    ) -> Result<(String, DeviceAuthorization, String), DevicePageError> {
        let user_code = normalize_user_code(user_code).ok_or(DevicePageError::Invalid)?;
        let (device_key, record) = self
            .store
            .find_device_authorization(&user_key(&user_code))
            .await?;
        if !record.is_pending() || record.expires_at <= self.now() {
            return Err(DevicePageError::Invalid);
        }
        Ok((device_key, record, user_code))
    }

    /// Starts the upstream login of the verification page for `user_code`, through the
    /// connector of the device's client (as its browser logins go): in the upstream's app it
    /// signs the person in silently, elsewhere by the upstream's own login page.
    pub async fn device_login(
        &self,
        user_code: &str,
        browser: LoginBrowser<'_>,
    ) -> Result<LoginStart, DevicePageError> {
        let request = self.device_request(user_code).await?;
        let req = ValidAuthorizeRequest {
            client_id: request.client_id,
            redirect_uri: self.url(VERIFICATION_PATH),
            scopes: request.scopes,
            // A failed login comes back to the page with the user code, to try again.
            state: Some(request.user_code.clone()),
            nonce: None,
            code_challenge: None,
            response_mode: ResponseMode::Query,
            max_age: None,
            login_hint: None,
            ui_locales: None,
            prompt: Prompt::default(),
            id_token_hint_sub: None,
            claims: ClaimsRequest::default(),
        };
        self.begin_login_for(&req, browser, Some(&request.user_code))
            .await
            .map_err(|redirect| DevicePageError::Server(redirect.error))
    }

    /// The signed-in person's answer for `user_code` (RFC 8628 §3.3): the session of
    /// `session_cookie` must be of the client's upstream. Single use: the first answer wins,
    /// any later one is [`DevicePageError::Invalid`].
    pub async fn device_answer(
        &self,
        user_code: &str,
        session_cookie: Option<&str>,
        approve: bool,
    ) -> Result<DeviceRequest, DevicePageError> {
        let (device_key, record, canonical) = self.pending_device(user_code).await?;
        let session = self
            .device_session(&record.client_id, session_cookie)
            .await?;
        let now = self.now();
        let status = if approve {
            DeviceStatus::Approved {
                identity: Box::new(
                    self.subject_for_client(&record.client_id, session.identity.clone())
                        .map_err(DevicePageError::Server)?,
                ),
                auth_time: session.auth_time,
                sid: Some(session.sid.clone()),
            }
        } else {
            DeviceStatus::Denied
        };
        let answer = |r: &mut DeviceAuthorization| {
            if r.is_pending() && r.expires_at > now {
                r.status = status.clone();
            }
        };
        let before = self
            .store
            .update_device_authorization(&device_key, &answer)
            .await?;
        if !before.is_pending() || before.expires_at <= now {
            return Err(DevicePageError::Invalid);
        }
        if approve {
            if let Some(cookie) = session_cookie {
                // The client joins the session, so a logout reaches it (Back-Channel Logout).
                let key = random::hash_secret(cookie);
                if let Err(e) = self.store.touch_session(&key, &record.client_id, now).await {
                    tracing::warn!(error = %e, "could not record the device's client in the session");
                }
            }
        }
        let client_name = self
            .clients
            .get(&record.client_id)
            .map_or_else(|| record.client_id.clone(), |c| c.name.clone());
        Ok(DeviceRequest {
            verification_uri_complete: self.verification_uri_complete(&canonical),
            user_code: canonical,
            client_id: record.client_id,
            client_name,
            scopes: record.scopes,
        })
    }

    /// Whether the browser of `user_agent` signs in at the upstream of `client_id` without a
    /// page ([`crate::connector::Connector::signs_in_silently`]).
    pub fn device_signs_in_silently(&self, client_id: &str, user_agent: Option<&str>) -> bool {
        self.connectors
            .get(&self.connector_id_for_client(client_id))
            .is_some_and(|c| c.signs_in_silently(user_agent))
    }

    /// The live session of `cookie` if it was made by the connector of `client_id`.
    pub async fn device_session(
        &self,
        client_id: &str,
        cookie: Option<&str>,
    ) -> Result<crate::storage::Session, DevicePageError> {
        let (_, session) = match cookie {
            Some(c) => self.live_session(c).await,
            None => None,
        }
        .ok_or(DevicePageError::LoginRequired)?;
        // An upstream id names a person only within its upstream: a session of another
        // connector does not speak for this client's people.
        if session.connector_id != self.connector_id_for_client(client_id) {
            return Err(DevicePageError::LoginRequired);
        }
        Ok(session)
    }
}

/// The scopes of a device authorization: the supported ones asked for (RFC 6749 §3.3 lets the
/// server narrow), without `offline_access` for a client that may not have it (OIDC Core §11).
fn device_scopes(client: &Client, asked: Option<&str>) -> Vec<String> {
    let mut scopes = scopes::supported(asked.unwrap_or("openid"));
    if !client.allows_offline_access() || !client.allows_grant(GrantType::RefreshToken) {
        scopes.retain(|s| s != OFFLINE_ACCESS);
    }
    scopes
}

#[cfg(test)]
mod tests;
