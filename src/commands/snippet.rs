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

use std::fmt::Write as _;

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
    let mut warnings: Vec<String> = warning.into_iter().collect();
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
    let (text, more) = match app {
        SnippetApp::Grafana => grafana(issuer, id, &redirect, scopes, facts),
        SnippetApp::Gitlab => gitlab(issuer, id, &redirect, scopes, facts),
        SnippetApp::Oauth2Proxy => oauth2_proxy(issuer, id, &redirect, scopes, facts),
        SnippetApp::ModAuthOpenidc => mod_auth_openidc(issuer, id, &redirect, scopes),
        SnippetApp::Jupyterhub => jupyterhub(issuer, id, &redirect, scopes),
        SnippetApp::Synapse => synapse(issuer, id, &redirect, scopes),
        SnippetApp::Jenkins => jenkins(issuer, id, &redirect, scopes),
        SnippetApp::Harbor => harbor(issuer, id, &redirect, scopes),
        SnippetApp::Kubernetes => kubernetes(issuer, id, scopes),
        SnippetApp::Argocd => argocd(issuer, id, &redirect, scopes),
        SnippetApp::Gitea => gitea(issuer, id, &redirect, scopes, facts),
        SnippetApp::Jumpserver => jumpserver(issuer, id, &redirect, scopes, facts),
        SnippetApp::Nextcloud => nextcloud(issuer, id, &redirect, scopes),
        SnippetApp::Minio => minio(issuer, id, &redirect, scopes),
        SnippetApp::Vault => vault(issuer, id, &redirect, scopes),
    };
    warnings.extend(more);
    Snippet { text, warnings }
}

type Rendered = (String, Vec<String>);

fn grafana(
    issuer: &str,
    id: &str,
    redirect: &str,
    scopes: &[&str],
    facts: &ProviderFacts,
) -> Rendered {
    let mut warnings = Vec::new();
    // Grafana stops a login without an address (it then asks `api_url + "/emails"`, which is
    // GitHub's API, not OIDC): a JMESPath fallback gives every member one.
    let email_path = if facts.email_domain().is_some() {
        "email".to_string()
    } else {
        warnings.push(
            "no e-mail source in [wecom]: the snippet gives members without a WeCom address \
             USERID@wecom.invalid in Grafana; set [wecom] email = \"template\" for real ones"
                .into(),
        );
        "email || join('', [preferred_username, '@wecom.invalid'])".to_string()
    };
    let login = redirect
        .trim_end_matches("/login/generic_oauth")
        .to_string()
        + "/login";
    let mut t = String::new();
    let _ = write!(
        t,
        r#"# grafana.ini — generated by `wecom-oidc snippet grafana --client {id}`
# Grafana sends the redirect URI {redirect},
# built from [server] root_url: keep root_url (sub-path included) as it is.
# The secret: a file readable by the grafana user (chmod 640 root:grafana).
# Register post_logout_redirect_uris = ["{login}"] for the client.
[auth.generic_oauth]
enabled = true
name = WeCom 企业微信
allow_sign_up = true
client_id = {id}
client_secret = $__file{{/etc/grafana/wecom-oidc-client-secret}}
scopes = {scopes}
auth_url = {issuer}/authorize
token_url = {issuer}/token
api_url = {issuer}/userinfo
use_pkce = true
login_attribute_path = preferred_username
name_attribute_path = name
email_attribute_path = {email_path}
groups_attribute_path = groups
# Sign-out ends the WeCom session too; Grafana adds id_token_hint.
signout_redirect_url = {issuer}/logout?client_id={id}&post_logout_redirect_uri={login_enc}
# Roles from WeCom departments (full paths) or tags; everyone else is a Viewer:
# role_attribute_path = contains(groups[*], '/研发/平台') && 'Admin' || 'Viewer'
"#,
        scopes = scopes.join(" "),
        login_enc = enc(&login),
    );
    (t, warnings)
}

fn gitlab(
    issuer: &str,
    id: &str,
    redirect: &str,
    scopes: &[&str],
    facts: &ProviderFacts,
) -> Rendered {
    let mut warnings = Vec::new();
    if facts.email_domain().is_none() {
        warnings.push(
            "no e-mail source in [wecom]: GitLab gives members without a WeCom address a \
             temporary one and asks them for a real one; set [wecom] email = \"template\" to \
             spare them"
                .into(),
        );
    }
    let scope_list = scopes
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let t = format!(
        r#"# /etc/gitlab/gitlab.rb — generated by `wecom-oidc snippet gitlab --client {id}`
# The secret: a root-only file (gitlab-ctl reconfigure runs this file as root; an environment
# variable would not survive sudo).
gitlab_rails['omniauth_allow_single_sign_on'] = ['openid_connect']
gitlab_rails['omniauth_block_auto_created_users'] = false
gitlab_rails['omniauth_providers'] = [
  {{
    name: "openid_connect",
    label: "WeCom 企业微信",
    args: {{
      name: "openid_connect",
      scope: [{scope_list}],
      response_type: "code",
      issuer: "{issuer}",
      discovery: true,
      client_auth_method: "basic",
      uid_field: "sub",
      pkce: true,
      client_options: {{
        identifier: "{id}",
        secret: File.read("/etc/gitlab/wecom-oidc-client-secret").strip,
        redirect_uri: "{redirect}"
      }}
    }}
  }}
]
"#
    );
    (t, warnings)
}

fn oauth2_proxy(
    issuer: &str,
    id: &str,
    redirect: &str,
    scopes: &[&str],
    facts: &ProviderFacts,
) -> Rendered {
    let host = url::Url::parse(issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let home = origin(redirect);
    let mut t = format!(
        r#"# oauth2-proxy.cfg — generated by `wecom-oidc snippet oauth2-proxy --client {id}`
# Secrets are files made once (see the guide), never a new cookie secret per start.
provider = "oidc"
provider_display_name = "WeCom 企业微信"
oidc_issuer_url = "{issuer}"
client_id = "{id}"
client_secret_file = "/etc/oauth2-proxy/client-secret"
cookie_secret_file = "/etc/oauth2-proxy/cookie-secret"
cookie_secure = true
redirect_url = "{redirect}"
scope = "{scopes}"
code_challenge_method = "S256"
skip_provider_button = true
email_domains = ["*"]
oidc_groups_claim = "groups"
# /oauth2/sign_out?rd=... may send the browser on to the provider's /logout:
whitelist_domains = ["{host}"]
# Register post_logout_redirect_uris = ["{home}/"] for the client; sign out with
# {home}/oauth2/sign_out?rd={rd}
"#,
        scopes = scopes.join(" "),
        rd = enc(&format!(
            "{issuer}/logout?client_id={id}&post_logout_redirect_uri={}",
            enc(&format!("{home}/"))
        )),
    );
    if facts.email_domain().is_some() {
        t.push_str("oidc_email_claim = \"email\"\n");
        if !facts.email_verified {
            t.push_str(
                "# Addresses WeCom holds are sent with email_verified: false ([wecom]\n\
                 # email_verified = false); oauth2-proxy refuses those unless told:\n\
                 insecure_oidc_allow_unverified_email = true\n",
            );
        }
    } else {
        t.push_str(
            "# No e-mail source in [wecom]: the session is keyed on the WeCom userid, so every\n\
             # member can log in (X-Forwarded-Email then carries the userid).\n\
             oidc_email_claim = \"preferred_username\"\n",
        );
    }
    (t, Vec::new())
}

fn mod_auth_openidc(issuer: &str, id: &str, redirect: &str, scopes: &[&str]) -> Rendered {
    let path = url::Url::parse(redirect)
        .ok()
        .and_then(|u| {
            let p = u.path();
            p.rfind('/').map(|i| p[..i.max(1)].to_string())
        })
        .unwrap_or_else(|| "/".into());
    let home = origin(redirect);
    let t = format!(
        r#"# Apache httpd — generated by `wecom-oidc snippet mod_auth_openidc --client {id}`
# ${{...}} are read from the environment at start: on Debian, export them in /etc/apache2/envvars.
# OIDCRedirectURI must be a path inside the protected location that serves no content.
# Logout: link to {redirect}?logout={logout}
# (register post_logout_redirect_uris = ["{home}/"]); back-channel logout: register
# backchannel_logout_uri = "{redirect}?logout=backchannel".
OIDCProviderMetadataURL {issuer}/.well-known/openid-configuration
OIDCClientID {id}
OIDCClientSecret ${{{SECRET_ENV}}}
OIDCRedirectURI {redirect}
OIDCCryptoPassphrase ${{OIDC_CRYPTO_PASSPHRASE}}
OIDCScope "{scopes}"
OIDCPKCEMethod S256
OIDCRemoteUserClaim preferred_username
<Location "{path}">
  AuthType openid-connect
  Require valid-user
</Location>
"#,
        scopes = scopes.join(" "),
        logout = enc(&format!("{home}/")),
    );
    (t, Vec::new())
}

fn py_list(scopes: &[&str]) -> String {
    format!(
        "[{}]",
        scopes
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn jupyterhub(issuer: &str, id: &str, redirect: &str, scopes: &[&str]) -> Rendered {
    let home = origin(redirect);
    let t = format!(
        r#"# jupyterhub_config.py — generated by `wecom-oidc snippet jupyterhub --client {id}`
# Needs oauthenticator >= 17.1. The secret: a file readable only by the hub's user.
c.JupyterHub.authenticator_class = "generic-oauth"
c.GenericOAuthenticator.login_service = "WeCom 企业微信"
c.GenericOAuthenticator.client_id = "{id}"
c.GenericOAuthenticator.client_secret = open("/etc/jupyterhub/wecom-oidc-client-secret").read().strip()
c.GenericOAuthenticator.oauth_callback_url = "{redirect}"
c.GenericOAuthenticator.authorize_url = "{issuer}/authorize"
c.GenericOAuthenticator.token_url = "{issuer}/token"
c.GenericOAuthenticator.userdata_url = "{issuer}/userinfo"
c.GenericOAuthenticator.scope = {scopes}
c.GenericOAuthenticator.basic_auth = True
c.GenericOAuthenticator.username_claim = "preferred_username"
# Register post_logout_redirect_uris = ["{home}/hub/login"] for the client.
c.GenericOAuthenticator.logout_redirect_url = "{issuer}/logout?client_id={id}&post_logout_redirect_uri={back}"
# Every member who passes WeCom may log in; narrow with allowed_groups (see the guide).
c.GenericOAuthenticator.allow_all = True
"#,
        scopes = py_list(scopes),
        back = enc(&format!("{home}/hub/login")),
    );
    (t, Vec::new())
}

fn synapse(issuer: &str, id: &str, redirect: &str, scopes: &[&str]) -> Rendered {
    let base = redirect
        .trim_end_matches("_synapse/client/oidc/callback")
        .to_string();
    let t = format!(
        r#"# homeserver.yaml — generated by `wecom-oidc snippet synapse --client {id}`
# Register backchannel_logout_uri = "{base}_synapse/client/oidc/backchannel_logout".
oidc_providers:
  - idp_id: wecom
    idp_name: "WeCom 企业微信"
    issuer: "{issuer}"
    client_id: "{id}"
    client_secret_path: "/etc/matrix-synapse/wecom-oidc-client-secret"
    client_auth_method: client_secret_basic
    pkce_method: always
    scopes: {scopes}
    backchannel_logout_enabled: true
    user_mapping_provider:
      config:
        subject_claim: "sub"
        localpart_template: "{{{{ user.preferred_username }}}}"
        display_name_template: "{{{{ user.name }}}}"
        email_template: "{{{{ user.email }}}}"
"#,
        scopes = py_list(scopes),
    );
    (t, Vec::new())
}

fn jenkins(issuer: &str, id: &str, redirect: &str, scopes: &[&str]) -> Rendered {
    let home = redirect
        .trim_end_matches("securityRealm/finishLogin")
        .to_string();
    let t = format!(
        r#"# jenkins.yaml (Configuration as Code) — generated by `wecom-oidc snippet jenkins --client {id}`
# ${{{SECRET_ENV}}}: set in the Jenkins service's environment (systemctl edit jenkins).
# Register post_logout_redirect_uris = ["{home}"] for the client.
jenkins:
  securityRealm:
    oic:
      clientId: "{id}"
      clientSecret: "${{{SECRET_ENV}}}"
      serverConfiguration:
        wellKnown:
          wellKnownOpenIDConfigurationUrl: "{issuer}/.well-known/openid-configuration"
          # Without this the plugin asks for every scope discovery lists.
          scopesOverride: "{scopes}"
      userNameField: "preferred_username"
      fullNameFieldName: "name"
      emailFieldName: "email"
      groupsFieldName: "groups"
      logoutFromOpenidProvider: true
      postLogoutRedirectUrl: "{home}"
      properties:
        - "pkce"
"#,
        scopes = scopes.join(" "),
    );
    (t, Vec::new())
}

fn harbor(issuer: &str, id: &str, redirect: &str, scopes: &[&str]) -> Rendered {
    let home = redirect.trim_end_matches("/c/oidc/callback").to_string();
    let t = format!(
        r#"# Harbor — generated by `wecom-oidc snippet harbor --client {id}`
# Apply as a Harbor admin (the secret is read from a file, never typed on the command line):
#   jq --rawfile s /etc/harbor/wecom-oidc-client-secret '.oidc_client_secret = ($s | rtrimstr("\n"))' \
#     harbor-oidc.json | curl -u admin -X PUT -H 'Content-Type: application/json' \
#     --data @- {home}/api/v2.0/configurations
# Register post_logout_redirect_uris = ["{home}/account/sign-in"] for the client.
{{
  "auth_mode": "oidc_auth",
  "oidc_name": "WeCom 企业微信",
  "oidc_endpoint": "{issuer}",
  "oidc_client_id": "{id}",
  "oidc_scope": "{scopes}",
  "oidc_verify_cert": true,
  "oidc_auto_onboard": true,
  "oidc_user_claim": "preferred_username",
  "oidc_groups_claim": "groups",
  "oidc_logout": true
}}
"#,
        scopes = scopes.join(","),
    );
    (t, Vec::new())
}

fn kubernetes(issuer: &str, id: &str, scopes: &[&str]) -> Rendered {
    let extra: Vec<String> = scopes
        .iter()
        .filter(|s| **s != "openid")
        .map(|s| format!("  --exec-arg=--oidc-extra-scope={s} \\"))
        .collect();
    let t = format!(
        r#"# Kubernetes — generated by `wecom-oidc snippet kubernetes --client {id}`
# 1. kube-apiserver flags. The username is the WeCom userid with a prefix: the apiserver
#    refuses email as username while email_verified is false.
--oidc-issuer-url={issuer}
--oidc-client-id={id}
--oidc-username-claim=preferred_username
--oidc-username-prefix=wecom:
--oidc-groups-claim=groups
--oidc-groups-prefix=wecom:
# 2. Each user's kubeconfig (kubelogin; public client, PKCE, no secret):
kubectl config set-credentials wecom \
  --exec-api-version=client.authentication.k8s.io/v1 \
  --exec-interactive-mode=IfAvailable \
  --exec-command=kubectl \
  --exec-arg=oidc-login \
  --exec-arg=get-token \
  --exec-arg=--oidc-issuer-url={issuer} \
  --exec-arg=--oidc-client-id={id} \
  --exec-arg=--grant-type=authcode \
{extra}
  --exec-arg=--token-cache-storage=keyring
"#,
        extra = extra.join("\n"),
    );
    (t, Vec::new())
}

fn argocd(issuer: &str, id: &str, redirect: &str, scopes: &[&str]) -> Rendered {
    let home = redirect.trim_end_matches("/auth/callback").to_string();
    let t = format!(
        r#"# argocd-cm — generated by `wecom-oidc snippet argocd --client {id}`
# The secret lives in argocd-secret under the key oidc.wecom.clientSecret.
# Register post_logout_redirect_uris = ["{home}"] for the client.
data:
  url: {home}
  oidc.config: |
    name: WeCom 企业微信
    issuer: {issuer}
    clientID: {id}
    clientSecret: $oidc.wecom.clientSecret
    requestedScopes: {scopes}
    enablePKCEAuthentication: true
    logoutURL: {issuer}/logout?id_token_hint={{{{token}}}}&post_logout_redirect_uri={{{{logoutRedirectURL}}}}
"#,
        scopes = py_list(scopes),
    );
    (t, Vec::new())
}

fn gitea(
    issuer: &str,
    id: &str,
    redirect: &str,
    scopes: &[&str],
    facts: &ProviderFacts,
) -> Rendered {
    let name = url::Url::parse(redirect)
        .ok()
        .and_then(|u| {
            u.path()
                .strip_prefix("/user/oauth2/")
                .and_then(|p| p.strip_suffix("/callback"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "wecom".into());
    let mut warnings = Vec::new();
    if facts.email_domain().is_none() {
        warnings.push(
            "no e-mail source in [wecom]: Gitea/Forgejo shows members without a WeCom address \
             a form asking for one at first login"
                .into(),
        );
    }
    let scope_flags = scopes
        .iter()
        .filter(|s| **s != "openid")
        .map(|s| format!("  --scopes {s} \\"))
        .collect::<Vec<_>>()
        .join("\n");
    let t = format!(
        r#"# Gitea / Forgejo — generated by `wecom-oidc snippet gitea --client {id}`
# Run as the service user (e.g. sudo -u git gitea --config /etc/gitea/app.ini admin auth ...).
# The source name "{name}" is part of the redirect URI {redirect}.
gitea admin auth add-oauth \
  --name {name} \
  --provider openidConnect \
  --key {id} \
  --secret "$(cat /etc/gitea/wecom-oidc-client-secret)" \
  --auto-discover-url {issuer}/.well-known/openid-configuration \
{scope_flags}
  --group-claim-name groups
# app.ini, [oauth2_client]: ENABLE_AUTO_REGISTRATION = true, USERNAME = preferred_username
"#
    );
    (t, warnings)
}

fn jumpserver(
    issuer: &str,
    id: &str,
    redirect: &str,
    scopes: &[&str],
    facts: &ProviderFacts,
) -> Rendered {
    let home = redirect
        .trim_end_matches("/core/auth/openid/callback/")
        .to_string();
    let suffix = match facts.email_domain() {
        Some(d) => format!("EMAIL_SUFFIX={d}\n"),
        None => "# Members without an address become USERID@EMAIL_SUFFIX (JumpServer's default suffix is\n\
                 # example.com); set it to your mail domain:\n# EMAIL_SUFFIX=corp.example.com\n"
            .to_string(),
    };
    let t = format!(
        r#"# /opt/jumpserver/config/config.txt — generated by `wecom-oidc snippet jumpserver --client {id}`
# (root-only file: it holds the client secret). Register post_logout_redirect_uris = ["{home}/"].
# Add the secret line from the file you keep it in:
#   echo "AUTH_OPENID_CLIENT_SECRET=$(cat /etc/wecom-oidc/{id}.secret)" >> /opt/jumpserver/config/config.txt
BASE_SITE_URL={home}
AUTH_OPENID=True
AUTH_OPENID_KEYCLOAK=False
AUTH_OPENID_CLIENT_ID={id}
AUTH_OPENID_CLIENT_AUTH_METHOD=client_secret_basic
AUTH_OPENID_PKCE=True
AUTH_OPENID_CODE_CHALLENGE_METHOD=S256
AUTH_OPENID_PROVIDER_ENDPOINT={issuer}
AUTH_OPENID_PROVIDER_AUTHORIZATION_ENDPOINT={issuer}/authorize
AUTH_OPENID_PROVIDER_TOKEN_ENDPOINT={issuer}/token
AUTH_OPENID_PROVIDER_JWKS_ENDPOINT={issuer}/jwks
AUTH_OPENID_PROVIDER_USERINFO_ENDPOINT={issuer}/userinfo
AUTH_OPENID_PROVIDER_END_SESSION_ENDPOINT={issuer}/logout
AUTH_OPENID_PROVIDER_SIGNATURE_ALG=RS256
AUTH_OPENID_SCOPES={scopes}
AUTH_OPENID_IGNORE_SSL_VERIFICATION=False
{suffix}"#,
        scopes = scopes.join(" "),
    );
    (t, Vec::new())
}

fn nextcloud(issuer: &str, id: &str, redirect: &str, scopes: &[&str]) -> Rendered {
    let home = redirect
        .trim_end_matches("/apps/user_oidc/code")
        .trim_end_matches("/index.php")
        .to_string();
    let t = format!(
        r#"# Nextcloud user_oidc — generated by `wecom-oidc snippet nextcloud --client {id}`
# Run as the web server user. Register backchannel_logout_uri =
# "{home}/index.php/apps/user_oidc/backchannel-logout/wecom" and
# post_logout_redirect_uris = ["{home}/"] for the client.
sudo -u www-data php occ user_oidc:provider wecom \
  --clientid={id} \
  --clientsecret-file=/etc/nextcloud/wecom-oidc-client-secret \
  --discoveryuri={issuer}/.well-known/openid-configuration \
  --postlogouturi={home}/ \
  --scope="{scopes}" \
  --unique-uid=0 \
  --mapping-uid=preferred_username \
  --mapping-display-name=name \
  --mapping-email=email \
  --mapping-groups=groups \
  --group-provisioning=0
"#,
        scopes = scopes.join(" "),
    );
    (t, Vec::new())
}

fn minio(issuer: &str, id: &str, redirect: &str, scopes: &[&str]) -> Rendered {
    let t = format!(
        r#"# /etc/default/minio (root-only; minio.service reads it) — generated by
# `wecom-oidc snippet minio --client {id}`. Add the secret line from the file you keep it in:
#   echo "MINIO_IDENTITY_OPENID_CLIENT_SECRET=$(cat /etc/wecom-oidc/{id}.secret)" >> /etc/default/minio
MINIO_IDENTITY_OPENID_CONFIG_URL="{issuer}/.well-known/openid-configuration"
MINIO_IDENTITY_OPENID_CLIENT_ID="{id}"
MINIO_IDENTITY_OPENID_DISPLAY_NAME="WeCom 企业微信"
MINIO_IDENTITY_OPENID_SCOPES="{scopes}"
MINIO_IDENTITY_OPENID_REDIRECT_URI="{redirect}"
# Each entry of `groups` that names a MinIO policy grants it (e.g. a WeCom tag minio-readwrite
# and `mc admin policy create ALIAS minio-readwrite policy.json`).
MINIO_IDENTITY_OPENID_CLAIM_NAME="groups"
"#,
        scopes = scopes.join(","),
    );
    (t, Vec::new())
}

fn vault(issuer: &str, id: &str, redirect: &str, scopes: &[&str]) -> Rendered {
    let extra: Vec<&str> = scopes.iter().copied().filter(|s| *s != "openid").collect();
    let t = format!(
        r#"# HashiCorp Vault — generated by `wecom-oidc snippet vault --client {id}`
# Register redirect_uris = ["{redirect}", "http://localhost:8250/oidc/callback"].
vault auth enable oidc
vault write auth/oidc/config \
  oidc_discovery_url="{issuer}" \
  oidc_client_id="{id}" \
  oidc_client_secret=@/etc/vault.d/wecom-oidc-client-secret \
  default_role="wecom"
vault write auth/oidc/role/wecom \
  user_claim="sub" \
  groups_claim="groups" \
  oidc_scopes="{extra}" \
  allowed_redirect_uris="{redirect}" \
  allowed_redirect_uris="http://localhost:8250/oidc/callback" \
  token_policies="default"
"#,
        extra = extra.join(","),
    );
    (t, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn client(uris: &[&str]) -> Client {
        Client {
            id: "app1".into(),
            name: "App".into(),
            secret: Some(Secret::new("super-secret-value")),
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            settings: Default::default(),
        }
    }

    #[test]
    fn the_redirect_uri_of_the_apps_form_is_chosen() {
        let c = client(&[
            "https://x.example/other",
            "https://grafana.example/login/generic_oauth",
        ]);
        let (uri, warn) = pick_redirect(SnippetApp::Grafana, &c);
        assert_eq!(uri, "https://grafana.example/login/generic_oauth");
        assert!(warn.is_none());
        let (uri, warn) = pick_redirect(SnippetApp::Gitlab, &c);
        assert_eq!(uri, "https://x.example/other");
        assert!(warn
            .unwrap()
            .contains("/users/auth/openid_connect/callback"));
    }

    #[test]
    fn snippets_never_contain_the_client_secret_nor_ask_for_phone_or_address() {
        let c = client(&["https://a.example/cb"]);
        for app in SnippetApp::ALL {
            for facts in [
                ProviderFacts::default(),
                ProviderFacts {
                    email: EmailPolicy::Template("{userid_lower}@corp.example.com".into()),
                    email_verified: false,
                },
            ] {
                let s = render_for(app, "https://sso.example.com", &c, &facts);
                assert!(!s.text.contains("super-secret-value"), "{app:?}");
                assert!(s.text.contains("app1"), "{app:?}");
                for scope in app.scopes(&facts) {
                    assert!(!["phone", "address"].contains(scope), "{app:?}");
                }
                assert!(!s.text.contains("phone"), "{app:?}");
            }
        }
    }

    #[test]
    fn offline_access_is_asked_only_by_apps_that_refresh() {
        let facts = ProviderFacts::default();
        for app in SnippetApp::ALL {
            assert_eq!(
                app.scopes(&facts).contains(&"offline_access"),
                app.refreshes(),
                "{app:?}"
            );
        }
    }

    #[test]
    fn every_app_is_recognised_from_its_own_redirect_uri_and_only_from_it() {
        let uris = [
            (
                SnippetApp::Grafana,
                "https://g.example/grafana/login/generic_oauth",
            ),
            (
                SnippetApp::Gitlab,
                "https://gl.example/users/auth/openid_connect/callback",
            ),
            (SnippetApp::Oauth2Proxy, "https://a.example/oauth2/callback"),
            (
                SnippetApp::Jupyterhub,
                "https://h.example/hub/oauth_callback",
            ),
            (
                SnippetApp::Synapse,
                "https://m.example/_synapse/client/oidc/callback",
            ),
            (
                SnippetApp::Jenkins,
                "https://j.example/securityRealm/finishLogin",
            ),
            (SnippetApp::Harbor, "https://hb.example/c/oidc/callback"),
            (SnippetApp::Kubernetes, "http://localhost:8000"),
            (SnippetApp::Argocd, "https://cd.example/auth/callback"),
            (
                SnippetApp::Gitea,
                "https://git.example/user/oauth2/wecom/callback",
            ),
            (
                SnippetApp::Jumpserver,
                "https://js.example/core/auth/openid/callback/",
            ),
            (
                SnippetApp::Nextcloud,
                "https://nc.example/index.php/apps/user_oidc/code",
            ),
            (SnippetApp::Minio, "https://minio.example/oauth_callback"),
            (
                SnippetApp::Vault,
                "https://v.example:8200/ui/vault/auth/oidc/oidc/callback",
            ),
            (SnippetApp::Vault, "http://localhost:8250/oidc/callback"),
            (SnippetApp::Argocd, "http://localhost:8085/auth/callback"),
        ];
        for (app, uri) in uris {
            assert_eq!(SnippetApp::infer(&client(&[uri])), Some(app), "{uri}");
        }
        assert_eq!(SnippetApp::infer(&client(&["https://x.example/cb"])), None);
        assert_eq!(SnippetApp::parse("kubelogin"), Some(SnippetApp::Kubernetes));
        assert_eq!(SnippetApp::parse("forgejo"), Some(SnippetApp::Gitea));
        for app in SnippetApp::ALL {
            assert_eq!(SnippetApp::parse(app.name()), Some(app));
        }
    }

    #[test]
    fn oauth2_proxy_without_an_email_source_keys_on_the_userid() {
        let c = client(&["https://a.example/oauth2/callback"]);
        let s = render(SnippetApp::Oauth2Proxy, "https://sso.example.com", &c);
        let t: toml::Table = toml::from_str(&s.text).expect("TOML");
        assert_eq!(t["oidc_email_claim"].as_str(), Some("preferred_username"));
        assert!(!t.contains_key("insecure_oidc_allow_unverified_email"));
        let facts = ProviderFacts {
            email: EmailPolicy::Template("{userid}@corp.example.com".into()),
            email_verified: false,
        };
        let s = render_for(
            SnippetApp::Oauth2Proxy,
            "https://sso.example.com",
            &c,
            &facts,
        );
        let t: toml::Table = toml::from_str(&s.text).expect("TOML");
        assert_eq!(t["oidc_email_claim"].as_str(), Some("email"));
        assert_eq!(
            t["insecure_oidc_allow_unverified_email"].as_bool(),
            Some(true)
        );
    }

    #[test]
    fn a_public_kubernetes_client_gets_no_warning_but_a_public_grafana_does() {
        let mut c = client(&["http://localhost:8000", "http://localhost:18000"]);
        c.secret = None;
        c.settings.allow_offline_access = Some(true);
        let s = render(SnippetApp::Kubernetes, "https://sso.example.com", &c);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        let g = render(SnippetApp::Grafana, "https://sso.example.com", &c);
        assert!(g.warnings.iter().any(|w| w.contains("confidential")));
    }
}
