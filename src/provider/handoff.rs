//! How a login starts: a redirect to the upstream, or a hand-off page when the connector says
//! this browser cannot complete the upstream login itself ([`Connector::handoff`]).
//!
//! The link the page offers to copy is the application's own address (the origin of the
//! client's registered redirect URI), not the upstream link of this login: the login is bound
//! to the browser that started it (RFC 9700 §4.7), and so is the client's own state, so a login
//! finished in another app's browser would be refused by us and by the client alike. Opened
//! inside the upstream's app, the application's address starts a new login there, which the
//! connector then sends to the in-app link.
//!
//! [`Connector::handoff`]: crate::connector::Connector::handoff

use super::request::ValidAuthorizeRequest;
use super::Provider;
use crate::connector::Handoff;

/// The browser a login starts in.
#[derive(Debug, Clone, Copy)]
pub struct LoginBrowser<'a> {
    /// The hash of the cookie that ties the flow to this browser (RFC 9700 §4.7).
    pub binding: &'a str,
    /// Its `User-Agent`: the connector decides from it whether this browser can log in
    /// upstream by itself.
    pub user_agent: Option<&'a str>,
}

/// Where the browser goes after `/authorize` when it needs an upstream login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginStart {
    /// Redirect to the upstream's login URL.
    Redirect(String),
    /// Show the hand-off page (boxed: it is the rare case).
    Handoff(Box<HandoffPage>),
}

impl LoginStart {
    /// The redirect URL, `None` for a hand-off.
    pub fn redirect_url(&self) -> Option<&str> {
        match self {
            Self::Redirect(url) => Some(url),
            Self::Handoff(_) => None,
        }
    }
}

/// Everything the hand-off page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffPage {
    /// What the connector says, and its fallback link for this login in this browser.
    pub handoff: Handoff,
    /// The client's display name.
    pub client_name: String,
    /// The application's address to open in the other app: the origin of the client's
    /// redirect URI, `None` when that is not a web address (a native app's private-use scheme).
    pub app_address: Option<String>,
    /// The authorization request's `ui_locales`, for the page's language.
    pub ui_locales: Option<String>,
}

impl Provider {
    /// The hand-off page for `req`, with the connector's `handoff`.
    pub(crate) fn handoff_page(
        &self,
        req: &ValidAuthorizeRequest,
        handoff: Handoff,
    ) -> HandoffPage {
        let client_name = self
            .clients
            .get(&req.client_id)
            .map(|c| c.name.clone())
            .unwrap_or_else(|| req.client_id.clone());
        HandoffPage {
            handoff,
            client_name,
            app_address: app_address(&req.redirect_uri),
            ui_locales: req.ui_locales.clone(),
        }
    }
}

/// `scheme://host[:port]/` of an http(s) redirect URI; `None` for other schemes.
pub(crate) fn app_address(redirect_uri: &str) -> Option<String> {
    let url = url::Url::parse(redirect_uri).ok()?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return None;
    }
    match url.origin() {
        origin @ url::Origin::Tuple(..) => Some(format!("{}/", origin.ascii_serialization())),
        url::Origin::Opaque(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_address_is_the_origin_of_a_web_redirect_uri() {
        assert_eq!(
            app_address("https://grafana.example.com/login/generic_oauth?x=1").as_deref(),
            Some("https://grafana.example.com/")
        );
        assert_eq!(
            app_address("http://127.0.0.1:9000/cb").as_deref(),
            Some("http://127.0.0.1:9000/")
        );
        assert_eq!(app_address("com.example.app:/cb"), None);
        assert_eq!(app_address("not a uri"), None);
    }
}
