//! `wecom-oidc snippet <app> --client ID`: a ready configuration block for a common relying
//! party, filled in with this provider's issuer and endpoints and the client's id and redirect
//! URI. Option names follow each application's own source or documentation; the guides in
//! `docs/integrations/` name the version each block was checked against.
//!
//! Every snippet asks for the fewest scopes the application needs (`openid profile email
//! groups`, `offline_access` only where the application refreshes, never `phone` or `address`:
//! staff phone numbers and home addresses have no business in a dashboard), and works unedited:
//! where the provider has no e-mail for a member, the snippet uses the application's own
//! fallback or an e-mail-free mode.
//!
//! The client secret itself is never printed: each snippet reads it from a file or an
//! environment variable, the way that application reads it when started as a service, so the
//! output can be pasted into a ticket or a repository without leaking it.

use crate::connector::wecom::{EmailPolicy, WeComSettings};
use crate::provider::Client;

/// The environment variable snippets read the client secret from, where the application reads
/// secrets from its environment.
pub const SECRET_ENV: &str = "WECOM_OIDC_CLIENT_SECRET";

/// The applications we write snippets for; also the values of a client's `app` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SnippetApp {
    /// Grafana `grafana.ini` (`[auth.generic_oauth]`).
    Grafana,
    /// GitLab Linux package `/etc/gitlab/gitlab.rb` (OmniAuth `openid_connect`).
    Gitlab,
    /// oauth2-proxy `oauth2-proxy.cfg` (TOML), also in front of apps without OIDC (Nacos).
    #[value(name = "oauth2-proxy")]
    Oauth2Proxy,
    /// Apache mod_auth_openidc directives.
    #[value(name = "mod_auth_openidc")]
    ModAuthOpenidc,
    /// JupyterHub `jupyterhub_config.py` (OAuthenticator `GenericOAuthenticator`).
    Jupyterhub,
    /// Synapse `homeserver.yaml` (`oidc_providers`).
    Synapse,
    /// Jenkins oic-auth plugin, as Configuration as Code (JCasC) YAML.
    Jenkins,
    /// Harbor's OIDC settings, as the body of `PUT /api/v2.0/configurations`.
    Harbor,
    /// Kubernetes: kube-apiserver flags and a kubelogin kubeconfig user (a public client).
    #[value(name = "kubernetes", alias = "kubelogin")]
    Kubernetes,
    /// Argo CD `argocd-cm` `oidc.config`.
    Argocd,
    /// Gitea or Forgejo `admin auth add-oauth` command.
    #[value(name = "gitea", alias = "forgejo")]
    Gitea,
    /// JumpServer `config.txt` OpenID settings.
    Jumpserver,
    /// Nextcloud `user_oidc` app, `occ user_oidc:provider` command.
    Nextcloud,
    /// MinIO `MINIO_IDENTITY_OPENID_*` environment.
    Minio,
    /// HashiCorp Vault OIDC auth method, `vault write` commands.
    Vault,
}

/// What an application needs of the member's e-mail address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailNeed {
    /// Not used, or used only when present.
    Optional,
    /// Required; the snippet fills the gap with the application's own fallback.
    HasFallback,
    /// Required, and a member without one cannot log in unless the snippet avoids the claim.
    Required,
}

impl SnippetApp {
    /// Every application, in the order the guides list them.
    pub const ALL: [SnippetApp; 15] = [
        Self::Grafana,
        Self::Gitlab,
        Self::Oauth2Proxy,
        Self::ModAuthOpenidc,
        Self::Jupyterhub,
        Self::Synapse,
        Self::Jenkins,
        Self::Harbor,
        Self::Kubernetes,
        Self::Argocd,
        Self::Gitea,
        Self::Jumpserver,
        Self::Nextcloud,
        Self::Minio,
        Self::Vault,
    ];

    /// The name on the command line and in a client's `app` key.
    pub fn name(self) -> &'static str {
        match self {
            Self::Grafana => "grafana",
            Self::Gitlab => "gitlab",
            Self::Oauth2Proxy => "oauth2-proxy",
            Self::ModAuthOpenidc => "mod_auth_openidc",
            Self::Jupyterhub => "jupyterhub",
            Self::Synapse => "synapse",
            Self::Jenkins => "jenkins",
            Self::Harbor => "harbor",
            Self::Kubernetes => "kubernetes",
            Self::Argocd => "argocd",
            Self::Gitea => "gitea",
            Self::Jumpserver => "jumpserver",
            Self::Nextcloud => "nextcloud",
            Self::Minio => "minio",
            Self::Vault => "vault",
        }
    }

    /// Parses a name or alias (`kubelogin`, `forgejo`).
    pub fn parse(name: &str) -> Option<Self> {
        <Self as clap::ValueEnum>::from_str(name, true).ok()
    }

    /// A human description of the redirect URI the application sends.
    pub fn callback_hint(self) -> &'static str {
        match self {
            Self::Grafana => "https://GRAFANA/login/generic_oauth (from [server] root_url)",
            Self::Gitlab => "https://GITLAB/users/auth/openid_connect/callback",
            Self::Oauth2Proxy => "https://APP/oauth2/callback",
            Self::ModAuthOpenidc => "any path inside the protected location (OIDCRedirectURI)",
            Self::Jupyterhub => "https://HUB/hub/oauth_callback",
            Self::Synapse => "https://MATRIX/_synapse/client/oidc/callback",
            Self::Jenkins => "https://JENKINS/securityRealm/finishLogin",
            Self::Harbor => "https://HARBOR/c/oidc/callback",
            Self::Kubernetes => "http://localhost:8000 and http://localhost:18000 (kubelogin)",
            Self::Argocd => "https://ARGOCD/auth/callback (and http://localhost:8085/auth/callback for the CLI)",
            Self::Gitea => "https://GITEA/user/oauth2/wecom/callback",
            Self::Jumpserver => "https://JUMPSERVER/core/auth/openid/callback/",
            Self::Nextcloud => "https://CLOUD/index.php/apps/user_oidc/code",
            Self::Minio => "https://MINIO-CONSOLE/oauth_callback",
            Self::Vault => "https://VAULT:8200/ui/vault/auth/oidc/oidc/callback (and http://localhost:8250/oidc/callback for the CLI)",
        }
    }

    /// Whether `uri` is a redirect URI this application sends.
    pub fn is_callback(self, uri: &str) -> bool {
        let Ok(u) = url::Url::parse(uri) else {
            return false;
        };
        let path = u.path();
        let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        match self {
            Self::Grafana => path.ends_with("/login/generic_oauth"),
            Self::Gitlab => path.ends_with("/users/auth/openid_connect/callback"),
            Self::Oauth2Proxy => path.ends_with("/oauth2/callback"),
            Self::ModAuthOpenidc => false,
            Self::Jupyterhub => path.ends_with("/hub/oauth_callback"),
            Self::Synapse => path.ends_with("/_synapse/client/oidc/callback"),
            Self::Jenkins => path.ends_with("/securityRealm/finishLogin"),
            Self::Harbor => path.ends_with("/c/oidc/callback"),
            Self::Kubernetes => {
                loopback && matches!(u.port(), Some(8000 | 18000)) && matches!(path, "" | "/")
            }
            Self::Argocd => path.ends_with("/auth/callback"),
            Self::Gitea => path.starts_with("/user/oauth2/") && path.ends_with("/callback"),
            Self::Jumpserver => path.ends_with("/core/auth/openid/callback/"),
            Self::Nextcloud => path.ends_with("/apps/user_oidc/code"),
            Self::Minio => {
                path.ends_with("/oauth_callback") && !path.ends_with("/hub/oauth_callback")
            }
            Self::Vault => {
                path.ends_with("/ui/vault/auth/oidc/oidc/callback")
                    || (loopback && u.port() == Some(8250) && path == "/oidc/callback")
            }
        }
    }

    /// The application a client serves, judged from its redirect URIs (the first that names
    /// exactly one application).
    pub fn infer(client: &Client) -> Option<Self> {
        client.redirect_uris.iter().find_map(|u| {
            let mut hits = Self::ALL.iter().filter(|a| a.is_callback(u));
            match (hits.next(), hits.next()) {
                (Some(a), None) => Some(*a),
                _ => None,
            }
        })
    }

    /// The scopes the snippet asks for (`email` only where the application uses it).
    pub fn scopes(self, facts: &ProviderFacts) -> &'static [&'static str] {
        match self {
            Self::Oauth2Proxy if facts.email_domain().is_none() => &["openid", "profile", "groups"],
            Self::ModAuthOpenidc | Self::Jupyterhub | Self::Minio | Self::Vault => {
                &["openid", "profile", "groups"]
            }
            Self::Harbor => &["openid", "profile", "email", "groups", "offline_access"],
            Self::Kubernetes => &["openid", "profile", "groups", "offline_access"],
            _ => &["openid", "profile", "email", "groups"],
        }
    }

    /// Whether the application's snippet asks for refresh tokens (`offline_access`).
    pub fn refreshes(self) -> bool {
        matches!(self, Self::Harbor | Self::Kubernetes)
    }

    /// What the application needs of an e-mail address.
    pub fn email_need(self) -> EmailNeed {
        match self {
            Self::Grafana | Self::Gitlab | Self::Jumpserver | Self::Gitea => EmailNeed::HasFallback,
            Self::Oauth2Proxy => EmailNeed::Required,
            _ => EmailNeed::Optional,
        }
    }

    /// The guide in `docs/integrations/`.
    pub fn guide(self) -> &'static str {
        match self {
            Self::ModAuthOpenidc => "docs/integrations/apache.md",
            Self::Oauth2Proxy => "docs/integrations/oauth2-proxy.md",
            Self::Grafana => "docs/integrations/grafana.md",
            Self::Gitlab => "docs/integrations/gitlab.md",
            Self::Jupyterhub => "docs/integrations/jupyterhub.md",
            Self::Synapse => "docs/integrations/synapse.md",
            Self::Jenkins => "docs/integrations/jenkins.md",
            Self::Harbor => "docs/integrations/harbor.md",
            Self::Kubernetes => "docs/integrations/kubernetes.md",
            Self::Argocd => "docs/integrations/argocd.md",
            Self::Gitea => "docs/integrations/gitea.md",
            Self::Jumpserver => "docs/integrations/jumpserver.md",
            Self::Nextcloud => "docs/integrations/nextcloud.md",
            Self::Minio => "docs/integrations/minio.md",
            Self::Vault => "docs/integrations/vault.md",
        }
    }
}

/// What a snippet needs to know of the provider's `[wecom]` settings.
#[derive(Debug, Clone, Default)]
pub struct ProviderFacts {
    /// The e-mail policy (`[wecom] email`).
    pub email: EmailPolicy,
    /// `[wecom] email_verified`: the value sent with addresses WeCom gave.
    pub email_verified: bool,
}

impl ProviderFacts {
    /// The facts of a WeCom app's settings.
    pub fn of(w: &WeComSettings) -> Self {
        Self {
            email: w.profile.email.clone(),
            email_verified: w.profile.email_verified,
        }
    }

    /// The mail domain of `email = "template"`, when every member has an address.
    pub fn email_domain(&self) -> Option<&str> {
        match &self.email {
            EmailPolicy::Template(t) => t.rsplit_once('@').map(|(_, d)| d),
            EmailPolicy::Upstream => None,
        }
    }
}

/// A rendered snippet and what the operator should know about it.
#[derive(Debug, Clone)]
pub struct Snippet {
    /// The configuration block.
    pub text: String,
    /// Remarks for the terminal (stderr), e.g. a redirect URI the application will not use.
    pub warnings: Vec<String>,
}

/// The client's redirect URI the application will use: the first one of the application's
/// form, else the first. Returns a warning when none matches.
fn pick_redirect(app: SnippetApp, client: &Client) -> (String, Option<String>) {
    let first = client.redirect_uris.first().cloned().unwrap_or_default();
    if app == SnippetApp::ModAuthOpenidc {
        return (first, None);
    }
    match client.redirect_uris.iter().find(|u| app.is_callback(u)) {
        Some(u) => (u.clone(), None),
        None => (
            first,
            Some(format!(
                "client {:?} has no redirect URI of the form {}, which {} sends; add it to \
                 clients.redirect_uris (RFC 6749 §3.1.2.3: redirect URIs are compared exactly)",
                client.id,
                app.callback_hint(),
                app.name()
            )),
        ),
    }
}

/// The origin (`scheme://host[:port]`) of `uri`, for settings that take a base URL.
fn origin(uri: &str) -> String {
    url::Url::parse(uri)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

/// `application/x-www-form-urlencoded` value (for URLs built into a setting).
fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Renders the snippet for `app` against `issuer` (no trailing slash) and `client`, for a
/// provider with default `[wecom]` settings (no e-mail source).
pub fn render(app: SnippetApp, issuer: &str, client: &Client) -> Snippet {
    render_for(app, issuer, client, &ProviderFacts::default())
}

/// Renders the snippet for `app`, adapted to the provider's e-mail settings.
pub fn render_for(
    app: SnippetApp,
    issuer: &str,
    client: &Client,
    facts: &ProviderFacts,
) -> Snippet {
    let (redirect, warning) = pick_redirect(app, client);
    // kubelogin's device-code grant (RFC 8628) redirects nowhere.
    let redirects = !(app == SnippetApp::Kubernetes
        && kubelogin_grant(client) == apps::KubeloginGrant::DeviceCode);
    let mut warnings: Vec<String> = warning.filter(|_| redirects).into_iter().collect();
    let scopes = app.scopes(facts);
    let id = &client.id;
    let public = client.is_public();
    if public && !matches!(app, SnippetApp::Kubernetes) {
        warnings.push(format!(
            "client {id:?} is public (no secret), but {} authenticates with a client secret: \
             register it as a confidential client",
            app.name()
        ));
    }
    if !public && app == SnippetApp::Kubernetes {
        warnings.push(format!(
            "client {id:?} has a secret, but kubelogin runs on every user's machine where no \
             secret stays secret: register it with public = true"
        ));
    }
    if app.refreshes() && !client.allows_offline_access() {
        warnings.push(format!(
            "{} asks for offline_access, which client {id:?} may not have (the scope is then \
             dropped and no refresh token is issued): set allow_offline_access = true",
            app.name()
        ));
    }
    let target = Target {
        issuer,
        id,
        redirect: &redirect,
        scopes,
        facts,
    };
    let text = match app {
        SnippetApp::Grafana => grafana(&target, &mut warnings),
        SnippetApp::Gitlab => gitlab(&target, &mut warnings),
        SnippetApp::Oauth2Proxy => oauth2_proxy(&target),
        SnippetApp::ModAuthOpenidc => mod_auth_openidc(&target),
        SnippetApp::Jupyterhub => jupyterhub(&target),
        SnippetApp::Synapse => synapse(&target),
        SnippetApp::Jenkins => jenkins(&target),
        SnippetApp::Harbor => harbor(&target),
        SnippetApp::Kubernetes => kubernetes(&target, kubelogin_grant(client)),
        SnippetApp::Argocd => argocd(&target),
        SnippetApp::Gitea => gitea(&target, &mut warnings),
        SnippetApp::Jumpserver => jumpserver(&target),
        SnippetApp::Nextcloud => nextcloud(&target),
        SnippetApp::Minio => minio(&target),
        SnippetApp::Vault => vault(&target),
    };
    Snippet { text, warnings }
}

/// Which kubelogin grant `client` is registered for.
fn kubelogin_grant(client: &Client) -> apps::KubeloginGrant {
    use crate::provider::GrantType;
    match (
        client.allows_grant(GrantType::AuthorizationCode),
        client.allows_grant(GrantType::DeviceCode),
    ) {
        (true, true) => apps::KubeloginGrant::Both,
        (false, true) => apps::KubeloginGrant::DeviceCode,
        _ => apps::KubeloginGrant::AuthCode,
    }
}

/// What every snippet is written from.
#[derive(Clone, Copy)]
struct Target<'a> {
    /// The issuer, without a trailing slash.
    issuer: &'a str,
    /// The client id.
    id: &'a str,
    /// The redirect URI the application sends.
    redirect: &'a str,
    /// The scopes the application asks for.
    scopes: &'a [&'a str],
    /// The provider's e-mail settings.
    facts: &'a ProviderFacts,
}

impl Target<'_> {
    /// The issuer, the client id, the redirect URI and the scopes: what every snippet names.
    fn parts(&self) -> (&str, &str, &str, &[&str]) {
        (self.issuer, self.id, self.redirect, self.scopes)
    }

    /// Where the application lives: the redirect URI without the application's own
    /// `callback_path` (a sub-path before it is kept).
    fn home(&self, callback_path: &str) -> String {
        self.redirect.trim_end_matches(callback_path).to_string()
    }
}

mod apps;
#[cfg(test)]
mod tests;

use apps::{
    argocd, gitea, gitlab, grafana, harbor, jenkins, jumpserver, jupyterhub, kubernetes, minio,
    mod_auth_openidc, nextcloud, oauth2_proxy, synapse, vault,
};
