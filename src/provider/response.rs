//! The authorization response (RFC 6749 §4.1.2, OIDC Core §3.1.2.5–3.1.2.6, RFC 9207) as a
//! value: where it goes, how it travels (query or form_post) and its parameters, plus the helper
//! that puts parameters on a redirect URI. The web layer renders it.

use url::form_urlencoded;

use super::error::OAuthError;

/// How the authorization response reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// Parameters in the redirect URI's query (RFC 6749 §4.1.2).
    Query,
    /// Parameters POSTed by an auto-submitting HTML form (OAuth 2.0 Form Post Response Mode §2).
    FormPost,
}

impl ResponseMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::FormPost => "form_post",
        }
    }

    /// The mode named `s`, if we support it.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "query" => Some(Self::Query),
            "form_post" => Some(Self::FormPost),
            _ => None,
        }
    }
}

/// An authorization response (success or error) for the client, in the mode it asked for; the
/// web layer renders it as a redirect or as a form_post page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationResponse {
    /// The verified, registered redirect URI.
    pub redirect_uri: String,
    /// How the parameters travel.
    pub response_mode: ResponseMode,
    /// The response parameters, in order.
    pub params: Vec<(String, String)>,
}

impl AuthorizationResponse {
    /// The redirect URI with the parameters in its query (response_mode=query).
    pub fn to_url(&self) -> String {
        let params: Vec<(&str, Option<&str>)> = self
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), Some(v.as_str())))
            .collect();
        success_redirect(&self.redirect_uri, &params)
    }
}

/// Where an error goes back to the client (OIDC Core §3.1.2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRedirect {
    /// The verified, registered redirect URI.
    pub redirect_uri: String,
    /// The client's state.
    pub state: Option<String>,
    /// How the error travels (the mode the request asked for, OAuth 2.0 Form Post §2).
    pub response_mode: ResponseMode,
    /// The error.
    pub error: OAuthError,
}

/// The redirect URI with `params` added to its query (RFC 6749 §4.1.2: keep the existing query).
pub fn success_redirect(redirect_uri: &str, params: &[(&str, Option<&str>)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        if let Some(v) = v {
            ser.append_pair(k, v);
        }
    }
    let query = ser.finish();
    let sep = if redirect_uri.contains('?') {
        if redirect_uri.ends_with('?') || redirect_uri.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    format!("{redirect_uri}{sep}{query}")
}

impl ErrorRedirect {
    /// The client's redirect URI carrying `error`, `error_description`, `state` and `iss`.
    pub fn to_url(&self, issuer: &str) -> String {
        self.to_response(issuer).to_url()
    }

    /// The error response (OIDC Core §3.1.2.6, RFC 9207 §2) in the request's response mode.
    pub fn to_response(&self, issuer: &str) -> AuthorizationResponse {
        let mut params = vec![
            ("error".to_string(), self.error.code.as_str().to_string()),
            (
                "error_description".to_string(),
                self.error.description.clone(),
            ),
        ];
        if let Some(state) = &self.state {
            params.push(("state".to_string(), state.clone()));
        }
        params.push(("iss".to_string(), issuer.to_string()));
        AuthorizationResponse {
            redirect_uri: self.redirect_uri.clone(),
            response_mode: self.response_mode,
            params,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_keeps_existing_query_rfc6749_4_1_2() {
        assert_eq!(
            success_redirect("https://a.example/cb?x=1", &[("code", Some("c d"))]),
            "https://a.example/cb?x=1&code=c+d"
        );
        assert_eq!(
            success_redirect(
                "https://a.example/cb",
                &[("code", Some("c")), ("state", None)]
            ),
            "https://a.example/cb?code=c"
        );
    }
}
