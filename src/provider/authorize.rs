//! The authorization endpoint's logic (OIDC Core §3.1.2) and the return from the upstream:
//! validate the request, hand the browser to the connector, and turn the upstream identity into
//! an authorization code for the client.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::claims::{parse_claims_request, ClaimsRequest};
use super::error::{ErrorCode, OAuthError};
use super::handoff::{LoginBrowser, LoginStart};
use super::params::Params;
pub use super::request::ValidAuthorizeRequest;
use super::request::{CodeGrant, Prompt};
pub use super::response::{success_redirect, AuthorizationResponse, ErrorRedirect, ResponseMode};
use super::{pkce, scopes, Client, Provider};
use crate::connector::{ConnectorError, FailureNotice, Identity, LoginRequest};
use crate::random;
use crate::storage::{AuthCode, AuthRequest, StorageError};

/// Longest `state` or `nonce` we keep; values are echoed back, so they are bounded.
const MAX_ECHOED_VALUE: usize = 2048;

pub use super::scopes::SUPPORTED_SCOPES;

/// The end of an upstream login: the response for the client and the new session's cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFinished {
    /// The response for the client (a code).
    pub response: AuthorizationResponse,
    /// The value of the new provider session cookie.
    pub session_cookie: String,
    /// Logout tokens for the clients of another person's session that this login replaced in
    /// the same browser (Back-Channel Logout 1.0: that session has ended).
    pub ended_session_logouts: Vec<super::logout::BackchannelLogout>,
    /// The `ui_locales` of the authorization request, for the language of any page shown
    /// (OIDC Core §3.1.2.1).
    pub ui_locales: Option<String>,
    /// For the sign-in of a device verification page (RFC 8628): the device's client, which
    /// the answer (back to that page) does not name.
    pub device_client: Option<String>,
}

/// Why an authorization request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeRejection {
    /// The client or its redirect URI cannot be trusted: show an error page, never redirect
    /// (RFC 6749 §4.1.2.1).
    Page(OAuthError),
    /// The upstream failed in a way the person should see explained on our page, with the
    /// operator told in the log what to fix ([`crate::connector::Connector::failure_notice`]).
    Upstream {
        /// The OAuth error, for the page's detail line.
        error: OAuthError,
        /// What to show and log (boxed: rejections travel in `Result`s and should stay small).
        notice: Box<FailureNotice>,
        /// The `ui_locales` of the authorization request, for the page's language (OIDC Core
        /// §3.1.2.1).
        ui_locales: Option<String>,
    },
    /// The person may not use the client (the upstream app's access rules leave them out):
    /// show our page saying so and who can change it, with a way back that hands `redirect`
    /// (`access_denied`) to the client.
    Denied {
        /// The error response for the client, delivered when the person goes back.
        redirect: ErrorRedirect,
        /// What to show and log.
        notice: Box<FailureNotice>,
        /// The `ui_locales` of the authorization request.
        ui_locales: Option<String>,
    },
    /// Redirect the error to the client.
    Redirect(ErrorRedirect),
}

impl Provider {
    /// Validates an authorization request (OIDC Core §3.1.2.1–3.1.2.2, RFC 6749 §4.1.1,
    /// RFC 7636 §4.3).
    pub fn validate_authorize(
        &self,
        p: &Params,
    ) -> Result<ValidAuthorizeRequest, AuthorizeRejection> {
        let page = |msg: &str| AuthorizeRejection::Page(OAuthError::invalid_request(msg));
        if p.is_repeated("client_id") {
            return Err(page("client_id is repeated"));
        }
        let client_id = p
            .get("client_id")
            .ok_or_else(|| page("client_id is missing"))?;
        let client = self
            .clients
            .get(client_id)
            .ok_or_else(|| page("client_id is not a registered client"))?;
        let client: &Client = &client;
        if p.is_repeated("redirect_uri") {
            return Err(page("redirect_uri is repeated"));
        }
        let redirect_uri = p
            .get("redirect_uri")
            .ok_or_else(|| page("redirect_uri is missing (OpenID Connect requires it)"))?;
        if !client.has_redirect_uri(redirect_uri) {
            return Err(page(
                "redirect_uri is not registered for this client (exact match required)",
            ));
        }

        // From here on errors go back to the verified redirect URI, in the requested mode.
        let state = p
            .get("state")
            .filter(|s| s.len() <= MAX_ECHOED_VALUE)
            .map(str::to_string);
        let requested_mode = match p.get("response_mode") {
            None => Some(ResponseMode::Query),
            Some(m) => ResponseMode::parse(m),
        };
        let mode = requested_mode.unwrap_or(ResponseMode::Query);
        let redirect = |code: ErrorCode, msg: &str| {
            AuthorizeRejection::Redirect(ErrorRedirect {
                redirect_uri: redirect_uri.to_string(),
                state: state.clone(),
                response_mode: mode,
                error: OAuthError::new(code, msg),
            })
        };
        let invalid = |msg: &str| redirect(ErrorCode::InvalidRequest, msg);

        if let Some(name) = p.first_repeated() {
            return Err(invalid(&format!("parameter {name} is repeated")));
        }
        if p.get("state").is_some_and(|s| s.len() > MAX_ECHOED_VALUE) {
            return Err(invalid("state is too long"));
        }
        if p.has("request") {
            return Err(redirect(
                ErrorCode::RequestNotSupported,
                "request objects are not supported",
            ));
        }
        if p.has("request_uri") {
            return Err(redirect(
                ErrorCode::RequestUriNotSupported,
                "request_uri is not supported",
            ));
        }
        if p.has("registration") {
            return Err(redirect(
                ErrorCode::RegistrationNotSupported,
                "the registration parameter is not supported",
            ));
        }
        match p.get("response_type") {
            None => return Err(invalid("response_type is missing")),
            Some("code") => {}
            Some(_) => {
                return Err(redirect(
                    ErrorCode::UnsupportedResponseType,
                    "only response_type=code is supported",
                ))
            }
        }
        // RFC 6749 §4.1.2.1: a client registered without the code grant (a device, a service).
        if !client.allows_grant(super::GrantType::AuthorizationCode) {
            return Err(redirect(
                ErrorCode::UnauthorizedClient,
                "this client may not use the authorization code grant",
            ));
        }
        let Some(response_mode) = requested_mode else {
            return Err(invalid(
                "unsupported response_mode (supported: query, form_post)",
            ));
        };
        let mut scopes = scopes::supported(p.get("scope").unwrap_or_default());
        if !scopes.iter().any(|s| s == "openid") {
            return Err(redirect(
                ErrorCode::InvalidScope,
                "the openid scope is required",
            ));
        }
        // OIDC Core §11: offline_access needs prompt=consent "unless other conditions for
        // processing the request permitting offline access to the requested resources are
        // known". Our documented choice: every client here is registered by the operator in the
        // configuration, i.e. first party, and `allow_offline_access` is that permission, so
        // the scope is honoured for such clients with or without prompt=consent. For a client
        // without the permission the scope is ignored, as §11 asks (the rest of the request
        // goes on).
        if !client.allows_offline_access() {
            scopes.retain(|s| s != super::token::OFFLINE_ACCESS);
        }
        let nonce = p.get("nonce");
        if nonce.is_some_and(|n| n.len() > MAX_ECHOED_VALUE) {
            return Err(invalid("nonce is too long"));
        }

        let code_challenge = match (p.get("code_challenge"), p.get("code_challenge_method")) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(invalid(
                    "code_challenge_method was sent without code_challenge",
                ))
            }
            (Some(_), None) | (Some(_), Some("plain")) => {
                return Err(invalid("code_challenge_method must be S256"))
            }
            (Some(c), Some("S256")) => {
                if !pkce::is_well_formed(c) {
                    return Err(invalid("code_challenge is malformed (RFC 7636 4.2)"));
                }
                Some(c.to_string())
            }
            (Some(_), Some(_)) => return Err(invalid("code_challenge_method must be S256")),
        };
        if client.is_public() && code_challenge.is_none() {
            return Err(invalid(
                "PKCE (code_challenge with S256) is required for public clients",
            ));
        }

        let max_age = match p.get("max_age") {
            None => None,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= 0 => Some(n),
                _ => return Err(invalid("max_age must be a non-negative integer")),
            },
        };

        let prompt = Prompt::parse(p.get("prompt")).map_err(invalid)?;
        let claims = match p.get("claims") {
            None => ClaimsRequest::default(),
            Some(json) => parse_claims_request(json).map_err(invalid)?,
        };
        // OIDC Core §3.1.2.1: the hint must be an id_token we issued; an expired one is fine.
        let id_token_hint_sub = match p.get("id_token_hint") {
            None => None,
            Some(hint) => match self.verify_own_id_token(hint) {
                Ok(h) => Some(h.sub),
                Err(e) => return Err(invalid(&e.description)),
            },
        };

        Ok(ValidAuthorizeRequest {
            client_id: client.id.clone(),
            redirect_uri: redirect_uri.to_string(),
            scopes,
            state,
            nonce: nonce.map(str::to_string),
            code_challenge,
            response_mode,
            max_age,
            login_hint: p.get("login_hint").map(str::to_string),
            ui_locales: p.get("ui_locales").map(str::to_string),
            prompt,
            id_token_hint_sub,
            claims,
        })
    }

    /// Stores the request and returns the upstream login URL to send the browser to, or the
    /// hand-off page when the connector says this browser cannot log in upstream by itself.
    pub async fn begin_login(
        &self,
        req: &ValidAuthorizeRequest,
        browser: LoginBrowser<'_>,
    ) -> Result<LoginStart, ErrorRedirect> {
        self.begin_login_for(req, browser, None).await
    }

    /// [`Self::begin_login`], for a device verification page when `device_user_code` is set:
    /// the login then ends back on that page ([`Self::finish_login`]).
    pub(crate) async fn begin_login_for(
        &self,
        req: &ValidAuthorizeRequest,
        browser: LoginBrowser<'_>,
        device_user_code: Option<&str>,
    ) -> Result<LoginStart, ErrorRedirect> {
        let fail = |error: OAuthError| req.error_redirect(error);
        // Each client may name the upstream app its logins use (several WeCom apps in one
        // provider); the others use the default one.
        let connector_id = self.connector_id_for_client(&req.client_id);
        let connector = self.connectors.get(&connector_id).ok_or_else(|| {
            tracing::error!(
                connector = connector_id,
                "the client's connector does not exist"
            );
            fail(OAuthError::server_error())
        })?;
        let upstream_state = random::alphanumeric(43);
        let now = self.now();
        let record = AuthRequest {
            client_id: req.client_id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            scopes: req.scopes.clone(),
            state: req.state.clone(),
            nonce: req.nonce.clone(),
            code_challenge: req.code_challenge.clone(),
            response_mode: req.response_mode.as_str().to_string(),
            max_age: req.max_age,
            login_hint: req.login_hint.clone(),
            ui_locales: req.ui_locales.clone(),
            claims: req.claims.clone(),
            connector_id: connector.id().to_string(),
            browser_binding: browser.binding.to_string(),
            device_user_code: device_user_code.map(str::to_string),
            created_at: now,
            expires_at: now + self.lifetimes().auth_request,
        };
        // A flood of /authorize requests must not fill the store: past the cap, say "try again
        // later" (RFC 6749 §4.1.2.1 temporarily_unavailable) instead of storing more.
        let cap = self.max_pending_authorizations.load(Ordering::Relaxed);
        let stored = self
            .store
            .create_auth_request_within(&random::hash_secret(&upstream_state), &record, cap)
            .await
            .map_err(|e| fail(e.into()))?;
        if !stored {
            tracing::warn!(
                cap,
                "too many pending authorization requests; refusing new logins for now"
            );
            return Err(fail(OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "too many logins are in progress; try again in a few minutes",
            )));
        }
        let callback = self.callback_url(connector.id());
        let login = LoginRequest {
            state: &upstream_state,
            callback_url: &callback,
            scopes: &req.scopes,
            user_agent: browser.user_agent,
            login_hint: req.login_hint.as_deref(),
            ui_locales: req.ui_locales.as_deref(),
        };
        let url_failed = |e: ConnectorError| {
            tracing::error!(error = %e, "connector could not build a login URL");
            fail(OAuthError::server_error())
        };
        if let Some(handoff) = connector.handoff(&login).map_err(url_failed)? {
            return Ok(LoginStart::Handoff(Box::new(
                self.handoff_page(req, handoff),
            )));
        }
        connector
            .login_url(&login)
            .map(LoginStart::Redirect)
            .map_err(url_failed)
    }

    /// Handles the browser's return from the upstream. Errors before the original request is
    /// recovered are [`AuthorizeRejection::Page`]: we cannot know where it is safe to redirect.
    /// On success a provider session starts (replacing `previous_session`, the browser's old
    /// session cookie, if any) and the client gets a code.
    pub async fn finish_login(
        &self,
        connector_id: &str,
        params: &HashMap<String, String>,
        browser_binding: Option<&str>,
        previous_session: Option<&str>,
    ) -> Result<LoginFinished, AuthorizeRejection> {
        let page = |msg: &str| AuthorizeRejection::Page(OAuthError::invalid_request(msg));
        let connector = self
            .connectors
            .get(connector_id)
            .ok_or_else(|| page("unknown login callback"))?;
        let state = connector
            .callback_state(params)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| page("the login callback carries no state"))?;
        let req = match self.store.take_auth_request(&random::hash_secret(state)).await {
            Ok(r) => r,
            Err(StorageError::NotFound) => {
                return Err(page(
                    "this login link is unknown, expired or was already used; start the login again from the application",
                ))
            }
            Err(e) => return Err(AuthorizeRejection::Page(e.into())),
        };
        if req.expires_at <= self.now() {
            return Err(page(
                "the login took too long and expired; start the login again from the application",
            ));
        }
        if req.connector_id != connector_id {
            return Err(page(
                "the login callback does not match the login that was started",
            ));
        }
        let bound = browser_binding.is_some_and(|b| {
            random::constant_time_eq(
                random::hash_secret(b).as_bytes(),
                req.browser_binding.as_bytes(),
            )
        });
        if !bound {
            return Err(page(
                "this login was started in another browser (or cookies are blocked); start the login again from the application",
            ));
        }
        let registered = match &req.device_user_code {
            // The device page's own address, not a redirect URI of the client.
            Some(_) => self.clients.get(&req.client_id).is_some(),
            None => self
                .clients
                .get(&req.client_id)
                .is_some_and(|c| c.has_redirect_uri(&req.redirect_uri)),
        };
        if !registered {
            // The client was reconfigured while the person was logging in.
            return Err(page(
                "the application's registration changed; start the login again",
            ));
        }
        let response_mode = ResponseMode::parse(&req.response_mode).unwrap_or(ResponseMode::Query);
        let redirect_with = |error: OAuthError| ErrorRedirect {
            redirect_uri: req.redirect_uri.clone(),
            state: req.state.clone(),
            response_mode,
            error,
        };
        let fail = |error: OAuthError| AuthorizeRejection::Redirect(redirect_with(error));
        let identity = match connector.handle_callback(params, &req.scopes).await {
            // Whatever the connector wrote, this is the connector that vouched for the person.
            Ok(mut identity) => {
                identity.connector_id = connector_id.to_string();
                identity
            }
            Err(e) => {
                let Some(notice) = connector.failure_notice(&e) else {
                    return Err(fail(connector_error_to_oauth(&e)));
                };
                let (notice, ui_locales) = (Box::new(notice), req.ui_locales.clone());
                // Outside the upstream app's access rules: our page says who can change that,
                // and the way back hands `access_denied` to the client.
                if matches!(e, ConnectorError::NotPermitted(_)) {
                    tracing::info!(connector = connector_id, error = %e, fix = %notice.operator, "upstream app's access rules refused the person");
                    let redirect = redirect_with(connector_error_to_oauth(&e));
                    return Err(AuthorizeRejection::Denied {
                        redirect,
                        notice,
                        ui_locales,
                    });
                }
                tracing::error!(connector = connector_id, error = %e, fix = %notice.operator, "upstream login failed: configuration or rate limit");
                let code = if notice.temporary {
                    ErrorCode::TemporarilyUnavailable
                } else {
                    ErrorCode::ServerError
                };
                return Err(AuthorizeRejection::Upstream {
                    error: OAuthError::new(code, &notice.en),
                    notice,
                    ui_locales,
                });
            }
        };
        let grant = CodeGrant {
            client_id: &req.client_id,
            redirect_uri: &req.redirect_uri,
            scopes: &req.scopes,
            nonce: req.nonce.as_deref(),
            code_challenge: req.code_challenge.as_deref(),
            claims: &req.claims,
        };
        // A device verification page's sign-in issues no code: the device's tokens wait for
        // the person's answer on that page.
        let started = self
            .start_login_session(
                &identity,
                connector_id,
                previous_session,
                &req.client_id,
                req.device_user_code.is_none().then_some(&grant),
            )
            .await
            .map_err(fail)?;
        let ended_session_logouts = started
            .replaced
            .map(|old| self.logout_tokens(&old))
            .unwrap_or_default();
        let response = match (&req.device_user_code, &started.code) {
            // RFC 8628 §3.3: signed in, the person goes back to the verification page to see
            // what the device asks and answer it.
            (Some(user_code), _) => self.device_page_return(user_code),
            (None, Some(code)) => {
                self.code_response(&req.redirect_uri, response_mode, code, req.state.as_deref())
            }
            (None, None) => return Err(fail(OAuthError::server_error())),
        };
        Ok(LoginFinished {
            response,
            session_cookie: started.cookie,
            ended_session_logouts,
            ui_locales: req.ui_locales,
            device_client: req.device_user_code.is_some().then_some(req.client_id),
        })
    }

    /// The successful authorization response: `code`, `state` and `iss` (RFC 9207 §2).
    pub(crate) fn code_response(
        &self,
        redirect_uri: &str,
        response_mode: ResponseMode,
        code: &str,
        state: Option<&str>,
    ) -> AuthorizationResponse {
        let mut params = vec![("code".to_string(), code.to_string())];
        if let Some(state) = state {
            params.push(("state".to_string(), state.to_string()));
        }
        params.push(("iss".to_string(), self.issuer().to_string()));
        AuthorizationResponse {
            redirect_uri: redirect_uri.to_string(),
            response_mode,
            params,
        }
    }

    /// Issues an authorization code for `identity` and stores it hashed.
    pub(crate) async fn issue_code_for(
        &self,
        grant: &CodeGrant<'_>,
        identity: Identity,
        auth_time: i64,
        sid: Option<String>,
    ) -> Result<String, OAuthError> {
        let (code, record) = self.new_code(grant, identity, auth_time, sid)?;
        self.store
            .create_auth_code(&random::hash_secret(&code), &record)
            .await?;
        Ok(code)
    }

    /// A fresh code for `grant` and its record, not stored yet.
    pub(crate) fn new_code(
        &self,
        grant: &CodeGrant<'_>,
        identity: Identity,
        auth_time: i64,
        sid: Option<String>,
    ) -> Result<(String, AuthCode), OAuthError> {
        let identity = self.subject_for_client(grant.client_id, identity)?;
        let expires_at = self.now() + self.lifetimes().code;
        let record = grant.record(identity, auth_time, sid, expires_at);
        Ok((random::token(32), record))
    }
}

impl Provider {
    /// The id of the connector (upstream app) `client_id`'s logins go through.
    pub(crate) fn connector_id_for_client(&self, client_id: &str) -> String {
        self.clients
            .get(client_id)
            .and_then(|c| c.settings.connector.clone())
            .unwrap_or_else(|| self.default_connector.clone())
    }

    /// The identity as `client_id` sees it: with a pairwise connector, `sub` is the client's
    /// sector hash (OIDC Core §8.1). Sessions keep the upstream identity, so each client of a
    /// session gets its own pairwise `sub`.
    pub(crate) fn subject_for_client(
        &self,
        client_id: &str,
        mut identity: Identity,
    ) -> Result<Identity, OAuthError> {
        let Some(connector) = self
            .connectors
            .get(&self.connector_id_for_client(client_id))
        else {
            return Err(OAuthError::server_error());
        };
        if !connector.is_pairwise() {
            return Ok(identity);
        }
        let sector = self
            .clients
            .get(client_id)
            .map(|c| c.sector_identifier())
            .unwrap_or_else(|| client_id.to_string());
        let Some(sub) = connector.pairwise_subject(&identity, &sector) else {
            tracing::error!("the connector is pairwise but produced no pairwise subject");
            return Err(OAuthError::server_error());
        };
        // The upstream's own id stays available to the connector for refresh.
        if identity.upstream_id.is_none() {
            identity.upstream_id = Some(identity.user_id.clone());
        }
        identity.user_id = sub;
        Ok(identity)
    }
}

/// Maps a connector failure to the error the client sees; details stay in our log.
fn connector_error_to_oauth(e: &ConnectorError) -> OAuthError {
    use ErrorCode::{AccessDenied, ServerError, TemporarilyUnavailable};
    // A refusal is the person's own business, a rejected code may be a replay, the rest are
    // faults of the upstream or of our configuration.
    match e {
        ConnectorError::Cancelled => {}
        ConnectorError::AccessDenied(_) | ConnectorError::NotPermitted(_) => {
            tracing::info!(error = %e, "upstream login refused")
        }
        ConnectorError::InvalidCode(_) => {
            tracing::warn!(error = %e, "upstream login code rejected")
        }
        ConnectorError::Upstream { .. } | ConnectorError::Unavailable(_) => {
            tracing::error!(error = %e, "upstream failure during login")
        }
    }
    let (code, description) = match e {
        ConnectorError::Cancelled => (AccessDenied, "the user cancelled the WeCom login"),
        ConnectorError::AccessDenied(_) => (
            AccessDenied,
            "the account may not log in here (not an active member of the organisation)",
        ),
        ConnectorError::NotPermitted(_) => (
            AccessDenied,
            "the account may not use this application (outside the upstream app's visible range)",
        ),
        ConnectorError::InvalidCode(_) => (
            AccessDenied,
            "the upstream login code was invalid, expired or already used",
        ),
        ConnectorError::Upstream { .. } => (
            ServerError,
            "the upstream identity provider returned an error",
        ),
        ConnectorError::Unavailable(_) => (
            TemporarilyUnavailable,
            "the upstream identity provider is unavailable; try again later",
        ),
    };
    OAuthError::new(code, description)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A browser without a `User-Agent`.
    const BROWSER: LoginBrowser<'static> = LoginBrowser {
        binding: "binding",
        user_agent: None,
    };

    #[tokio::test]
    async fn pending_authorizations_are_capped_with_temporarily_unavailable_rfc6749_4_1_2_1() {
        let h = crate::provider::testing::harness(
            vec![crate::provider::testing::app_client(Default::default())],
            crate::provider::Lifetimes::default(),
        );
        let provider = h.provider.with_max_pending_authorizations(3);
        let params = Params::parse(
            "response_type=code&client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb\
             &scope=openid&state=s1",
        );
        let req = provider.validate_authorize(&params).expect("valid request");
        for _ in 0..3 {
            provider
                .begin_login(&req, BROWSER)
                .await
                .expect("under the cap");
        }
        let refused = provider
            .begin_login(&req, BROWSER)
            .await
            .expect_err("over the cap");
        assert_eq!(refused.error.code, ErrorCode::TemporarilyUnavailable);
        assert_eq!(refused.state.as_deref(), Some("s1"));
        assert_eq!(
            provider.store().count_auth_requests().await.expect("count"),
            3
        );
        // Once the pending requests expire and are swept, logins start again.
        let later = provider.now() + provider.lifetimes().auth_request + 1;
        provider.store().delete_expired(later).await.expect("sweep");
        provider
            .begin_login(&req, BROWSER)
            .await
            .expect("after the sweep");
    }

    #[test]
    fn a_client_without_the_code_grant_is_unauthorized_at_authorize_rfc6749_4_1_2_1() {
        let mut client = crate::provider::testing::app_client(Default::default());
        client.settings.grant_types = Some(vec![crate::provider::GrantType::DeviceCode]);
        let h = crate::provider::testing::harness(vec![client], Default::default());
        let params = Params::parse(
            "response_type=code&client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb\
             &scope=openid&state=s1",
        );
        match h.provider.validate_authorize(&params) {
            Err(AuthorizeRejection::Redirect(r)) => {
                assert_eq!(r.error.code, ErrorCode::UnauthorizedClient)
            }
            other => panic!("{other:?}"),
        }
    }
}
