//! `[[clients]]`: the registered relying parties, each validated on its own (redirect URIs,
//! authentication, logout and token settings) with every problem named by its key.

use toml::{Table, Value};

use crate::provider::client::{AccessTokenFormat, AuthMethod, ClientSettings, GrantType};
use crate::provider::Client;
use crate::tokens::SigningAlg;
use crate::validate::Validator;

const CLIENT_KEYS: &[&str] = &[
    "connector",
    "wecom_app",
    "app",
    "app_config",
    "id",
    "name",
    "secret",
    "secret_env",
    "redirect_uris",
    "public",
    "id_token_signed_response_alg",
    "post_logout_redirect_uris",
    "backchannel_logout_uri",
    "backchannel_logout_session_required",
    "allow_offline_access",
    "token_endpoint_auth_method",
    "secret_sha256",
    "jwks",
    "jwks_file",
    "access_token_format",
    "access_token_audience",
    "grant_types",
    "client_credentials_scopes",
];

impl Validator<'_> {
    pub(super) fn clients(&mut self, t: &Table) -> Vec<Client> {
        let Some(list) = self.array(t, "clients", "clients", "an array of tables ([[clients]])")
        else {
            return Vec::new();
        };
        let mut out: Vec<Client> = Vec::new();
        for (key, item) in list {
            let Value::Table(c) = item else {
                self.problem(&key, "must be a table");
                continue;
            };
            if let Some(client) = self.client(c, &key) {
                if out.iter().any(|o| o.id == client.id) {
                    self.problem(
                        &format!("{key}.id"),
                        format!("duplicate client id {:?}", client.id),
                    );
                } else {
                    out.push(client);
                }
            }
        }
        out
    }

    fn client(&mut self, c: &Table, key: &str) -> Option<Client> {
        self.unknown_keys(c, key, CLIENT_KEYS);
        let id = self.required_string(c, &format!("{key}.id"), "id");
        if let Some(id) = &id {
            if id.len() > 255
                || id
                    .chars()
                    .any(|ch| ch.is_control() || ch == ' ' || ch == ':')
            {
                self.problem(
                    &format!("{key}.id"),
                    "must be at most 255 characters, without spaces, colons or control characters",
                );
            }
        }
        let public = match c.get("public") {
            None => false,
            Some(Value::Boolean(b)) => *b,
            Some(_) => {
                self.problem(&format!("{key}.public"), "must be true or false");
                false
            }
        };
        let secret = self.secret(c, key);
        let extra = self.client_settings(c, key, public, secret.is_some());
        let has_other_credential = c.contains_key("secret_sha256")
            || c.contains_key("jwks")
            || c.contains_key("jwks_file");
        if public && secret.is_some() {
            self.problem(
                &format!("{key}.secret"),
                "a public client has no secret (remove secret/secret_env or public = true)",
            );
        }
        if !public
            && secret.is_none()
            && !c.contains_key("secret")
            && !c.contains_key("secret_env")
            && !has_other_credential
        {
            self.problem(
                &format!("{key}.secret_env"),
                "a confidential client needs secret, secret_env, secret_sha256 or jwks (or set public = true and use PKCE)",
            );
        }
        let grant_types = self.grant_types(c, key, public);
        // A client without the code grant (a device or a service) redirects nowhere.
        let redirects = grant_types
            .as_ref()
            .is_none_or(|g| g.contains(&GrantType::AuthorizationCode));
        let uris = match c.get("redirect_uris") {
            None if !redirects => Vec::new(),
            Some(Value::Array(a)) if !a.is_empty() => {
                let mut uris = Vec::new();
                for (j, u) in a.iter().enumerate() {
                    let ukey = format!("{key}.redirect_uris[{j}]");
                    match u {
                        Value::String(s) => {
                            if let Some(s) = self.redirect_uri(s, &ukey) {
                                uris.push(s);
                            }
                        }
                        _ => self.problem(&ukey, "must be a string"),
                    }
                }
                uris
            }
            _ => {
                self.problem(
                    &format!("{key}.redirect_uris"),
                    "is required: a non-empty list of exact redirect URIs",
                );
                Vec::new()
            }
        };
        let name = self.string(c, &format!("{key}.name"), "name");
        let app = self.client_app(c, key);
        // `wecom_app` is the older name of `connector`.
        let connector = match (
            self.string(c, &format!("{key}.connector"), "connector"),
            self.string(c, &format!("{key}.wecom_app"), "wecom_app"),
        ) {
            (Some(_), Some(_)) => {
                self.problem(
                    &format!("{key}.wecom_app"),
                    "set connector (wecom_app is its older name), not both",
                );
                None
            }
            (a, b) => a.or(b),
        };
        // Checked even when other settings failed, so every problem is reported at once.
        let mut logout = ClientSettings::default();
        self.logout_and_alg_settings(c, key, &mut logout);
        let mut extra = extra;
        if let Some(settings) = extra.as_mut() {
            settings.id_token_signed_response_alg = logout.id_token_signed_response_alg;
            settings.post_logout_redirect_uris = logout.post_logout_redirect_uris;
            settings.backchannel_logout_uri = logout.backchannel_logout_uri;
            settings.backchannel_logout_session_required =
                logout.backchannel_logout_session_required;
        }
        let id = id?;
        let mut settings = extra?;
        settings.grant_types = grant_types;
        settings.client_credentials_scopes = self.client_credentials_scopes(c, key, &settings);
        if !public
            && secret.is_none()
            && settings.secret_sha256.is_none()
            && settings.jwks.is_none()
        {
            return None;
        }
        Some(Client {
            name: name.unwrap_or_else(|| id.clone()),
            id,
            secret: if public { None } else { secret },
            redirect_uris: uris,
            settings: ClientSettings {
                connector,
                app,
                ..settings
            },
        })
    }

    /// `grant_types`: which grants the client may use (RFC 7591 §2 names); `None` when absent.
    fn grant_types(&mut self, c: &Table, key: &str, public: bool) -> Option<Vec<GrantType>> {
        let gkey = format!("{key}.grant_types");
        let list = match c.get("grant_types") {
            None => return None,
            Some(Value::Array(a)) if !a.is_empty() => a,
            Some(_) => {
                self.problem(&gkey, "must be a non-empty list of grant types");
                return None;
            }
        };
        let mut out = Vec::new();
        for (j, g) in list.iter().enumerate() {
            match g.as_str().and_then(GrantType::parse) {
                Some(GrantType::ClientCredentials) if public => self.problem(
                    &format!("{gkey}[{j}]"),
                    "client_credentials needs a confidential client (RFC 6749 §4.4): a public client has no credentials",
                ),
                Some(grant) if !out.contains(&grant) => out.push(grant),
                Some(_) => {}
                None => self.problem(
                    &format!("{gkey}[{j}]"),
                    format!(
                        "must be one of {}",
                        GrantType::ALL.map(GrantType::as_str).join(", ")
                    ),
                ),
            }
        }
        Some(out)
    }

    /// `client_credentials_scopes`: the scopes a service token may carry (RFC 6749 §3.3
    /// scope tokens). No person stands behind such a token, so the OpenID scopes are refused.
    fn client_credentials_scopes(
        &mut self,
        c: &Table,
        key: &str,
        settings: &ClientSettings,
    ) -> Vec<String> {
        let skey = format!("{key}.client_credentials_scopes");
        let Some(value) = c.get("client_credentials_scopes") else {
            return Vec::new();
        };
        let Value::Array(list) = value else {
            self.problem(&skey, "must be a list of scope names");
            return Vec::new();
        };
        let enabled = settings
            .grant_types
            .as_ref()
            .is_some_and(|g| g.contains(&GrantType::ClientCredentials));
        if !enabled {
            self.problem(
                &skey,
                "applies only to a client with \"client_credentials\" in grant_types",
            );
        }
        let mut out = Vec::new();
        for (j, v) in list.iter().enumerate() {
            let scope_ok = |s: &str| {
                !s.is_empty()
                    && s.bytes().all(|b| {
                        b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)
                    })
            };
            match v.as_str() {
                Some(s) if crate::provider::authorize::SUPPORTED_SCOPES.contains(&s) => self
                    .problem(
                        &format!("{skey}[{j}]"),
                        format!("{s:?} speaks for a person; a service token has none"),
                    ),
                Some(s) if scope_ok(s) => out.push(s.to_string()),
                _ => self.problem(
                    &format!("{skey}[{j}]"),
                    "must be a scope name (printable ASCII without spaces, quotes or backslashes)",
                ),
            }
        }
        out
    }

    /// `app` (which relying party the client is: a `wecom-oidc snippet` name) and `app_config`
    /// (that application's own configuration file), read only by `check`, which also says
    /// when `app` names no application it knows.
    fn client_app(&mut self, c: &Table, key: &str) -> Option<crate::provider::client::ClientApp> {
        let name = self.string(c, &format!("{key}.app"), "app");
        let config = self.string(c, &format!("{key}.app_config"), "app_config");
        // The name is checked by `check`, which knows the applications (the server never reads it).
        (name.is_some() || config.is_some()).then(|| crate::provider::client::ClientApp {
            name,
            config: config.map(std::path::PathBuf::from),
        })
    }

    /// The logout and id_token algorithm options of a client (added to `settings`).
    fn logout_and_alg_settings(&mut self, c: &Table, key: &str, settings: &mut ClientSettings) {
        let alg_key = format!("{key}.id_token_signed_response_alg");
        if let Some(alg) = self.string(c, &alg_key, "id_token_signed_response_alg") {
            // OIDC Core §16.14 / RFC 8725 §3.1: `none` is never accepted.
            match alg.parse::<SigningAlg>() {
                Ok(a) => settings.id_token_signed_response_alg = Some(a),
                Err(_) => self.problem(
                    &alg_key,
                    format!("{alg:?} is not one of RS256, ES256, EdDSA"),
                ),
            }
        }
        let plr_key = format!("{key}.post_logout_redirect_uris");
        let uris = self.array(
            c,
            &plr_key,
            "post_logout_redirect_uris",
            "a list of exact URIs",
        );
        for (ukey, u) in uris.unwrap_or_default() {
            match u {
                Value::String(s) => {
                    if let Some(s) = self.redirect_uri(s, &ukey) {
                        settings.post_logout_redirect_uris.push(s);
                    }
                }
                _ => self.problem(&ukey, "must be a string"),
            }
        }
        let bcl_key = format!("{key}.backchannel_logout_uri");
        if let Some(u) = self.string(c, &bcl_key, "backchannel_logout_uri") {
            // Back-Channel Logout 1.0 §2.2: an absolute http(s) URI without a fragment.
            match url::Url::parse(&u) {
                Ok(parsed)
                    if matches!(parsed.scheme(), "https" | "http")
                        && parsed.fragment().is_none() =>
                {
                    settings.backchannel_logout_uri = Some(u)
                }
                _ => self.problem(
                    &bcl_key,
                    format!("{u:?} is not an absolute http(s) URI without a fragment"),
                ),
            }
        }
        match c.get("backchannel_logout_session_required") {
            None => {}
            Some(Value::Boolean(b)) => settings.backchannel_logout_session_required = *b,
            Some(_) => self.problem(
                &format!("{key}.backchannel_logout_session_required"),
                "must be true or false",
            ),
        }
    }

    /// The per-client options beyond id, secret and redirect URIs; `None` if any is invalid.
    fn client_settings(
        &mut self,
        c: &Table,
        key: &str,
        public: bool,
        has_secret: bool,
    ) -> Option<ClientSettings> {
        let before = self.problems.len();
        let mut settings = ClientSettings {
            allow_offline_access: self.boolean(
                c,
                &format!("{key}.allow_offline_access"),
                "allow_offline_access",
            ),
            ..ClientSettings::default()
        };
        let hash_key = format!("{key}.secret_sha256");
        if let Some(h) = self.string(c, &hash_key, "secret_sha256") {
            match decode_sha256(&h) {
                Some(bytes) => settings.secret_sha256 = Some(bytes),
                None => self.problem(
                    &hash_key,
                    "must be the SHA-256 of the secret as 64 hex digits or 43 base64url characters",
                ),
            }
            if has_secret || c.contains_key("secret") || c.contains_key("secret_env") {
                self.problem(
                    &hash_key,
                    "set either secret/secret_env or secret_sha256, not both",
                );
            }
        }
        let jwks_key = format!("{key}.jwks");
        let inline = self.string(c, &jwks_key, "jwks");
        let file = self.string(c, &format!("{key}.jwks_file"), "jwks_file");
        let jwks_text = match (inline, file) {
            (Some(_), Some(_)) => {
                self.problem(&jwks_key, "set either jwks or jwks_file, not both");
                None
            }
            (Some(text), None) => Some((jwks_key.clone(), text)),
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(text) => Some((format!("{key}.jwks_file"), text)),
                Err(e) => {
                    self.problem(
                        &format!("{key}.jwks_file"),
                        format!("cannot read {path}: {e}"),
                    );
                    None
                }
            },
            (None, None) => None,
        };
        if let Some((k, text)) = jwks_text {
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(set) => match crate::tokens::JwksVerifier::from_jwks(&set) {
                    Ok(_) => settings.jwks = Some(set),
                    Err(e) => self.problem(&k, e),
                },
                Err(_) => self.problem(&k, "is not valid JSON (expected {\"keys\":[...]})"),
            }
        }
        if public && (settings.secret_sha256.is_some() || settings.jwks.is_some()) {
            self.problem(
                &format!("{key}.public"),
                "a public client has no credentials (remove secret_sha256/jwks or public = true)",
            );
        }
        let method_key = format!("{key}.token_endpoint_auth_method");
        if let Some(m) = self.string(c, &method_key, "token_endpoint_auth_method") {
            let has_secret = has_secret || settings.secret_sha256.is_some();
            match AuthMethod::parse(&m) {
                None => self.problem(
                    &method_key,
                    "must be client_secret_basic, client_secret_post, private_key_jwt or none",
                ),
                Some(AuthMethod::None) if !public => self.problem(
                    &method_key,
                    "none is only for public clients (public = true)",
                ),
                Some(AuthMethod::PrivateKeyJwt) if settings.jwks.is_none() => self.problem(
                    &method_key,
                    "private_key_jwt needs the client's jwks or jwks_file",
                ),
                Some(AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost)
                    if !has_secret =>
                {
                    self.problem(
                        &method_key,
                        format!("{m} needs secret, secret_env or secret_sha256"),
                    )
                }
                Some(method) => settings.token_endpoint_auth_method = Some(method),
            }
        }
        let format_key = format!("{key}.access_token_format");
        match self
            .string(c, &format_key, "access_token_format")
            .as_deref()
        {
            None | Some("opaque") => {}
            Some("jwt") => settings.access_token_format = AccessTokenFormat::Jwt,
            Some(_) => self.problem(&format_key, "must be \"opaque\" or \"jwt\""),
        }
        settings.access_token_audience = self.string(
            c,
            &format!("{key}.access_token_audience"),
            "access_token_audience",
        );
        (self.problems.len() == before).then_some(settings)
    }

    fn redirect_uri(&mut self, s: &str, key: &str) -> Option<String> {
        match url::Url::parse(s) {
            Ok(u) => {
                if !s.is_ascii() || s.chars().any(|c| c.is_ascii_control() || c == ' ') {
                    self.problem(
                        key,
                        "must be a URI of printable ASCII (percent-encode other characters)",
                    );
                    return None;
                }
                // RFC 6749 §3.1.2: absolute, no fragment.
                if u.fragment().is_some() || s.contains('#') {
                    self.problem(key, "must not contain a fragment (#)");
                    return None;
                }
                if matches!(u.scheme(), "javascript" | "data" | "file" | "vbscript") {
                    self.problem(key, format!("the {} scheme is not allowed", u.scheme()));
                    return None;
                }
                if u.scheme() == "http"
                    && !matches!(
                        u.host_str(),
                        Some("localhost") | Some("127.0.0.1") | Some("[::1]")
                    )
                {
                    tracing::warn!(
                        key,
                        "redirect URI uses plain http on a non-loopback host (RFC 9700 §4.1 advises https)"
                    );
                }
                Some(s.to_string())
            }
            Err(e) => {
                self.problem(key, format!("{s:?} is not an absolute URI ({e})"));
                None
            }
        }
    }
}

/// A SHA-256 given as 64 hex digits or as 43 base64url characters (no padding).
fn decode_sha256(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let s = s.trim();
    let bytes = if s.len() == 64 {
        hex::decode(s).ok()?
    } else {
        URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()?
    };
    (bytes.len() == 32).then_some(bytes)
}
