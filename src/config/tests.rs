//! Tests of the configuration file.

use std::time::Duration;

use super::*;
use crate::connector::wecom::{
    ClaimSource, EmailPolicy, GroupOptions, PrivateInfo, ProfileMapping, SubjectMode, WeComSettings,
};
use crate::provider::client::{AccessTokenFormat, AuthMethod};
use crate::tokens::SigningAlg;

/// The settings of the `i`-th connector, a WeCom app.
fn wecom(c: &Config, i: usize) -> &WeComSettings {
    c.connectors[i]
        .as_any()
        .downcast_ref::<WeComSettings>()
        .expect("a WeCom connector")
}

fn env(name: &str) -> Option<String> {
    match name {
        "WECOM_SECRET" => Some("wecom-app-secret".into()),
        "GRAFANA_SECRET" => Some("grafana-client-secret".into()),
        _ => None,
    }
}

/// The problems `text` is refused with (read with [`env`]), one a line.
fn problems(text: &str) -> String {
    parse(text, "t.toml", &env)
        .expect_err("the file must be refused")
        .problems
        .join("\n")
}

/// Asserts that the problems `all` mention each of `keys`.
#[track_caller]
fn assert_mentions_each(all: &str, keys: &[&str]) {
    for key in keys {
        assert!(all.contains(key), "missing problem for {key} in:\n{all}");
    }
}

/// Asserts that `text` is refused with a problem naming `key` first (`"clients[0].connector:"`).
#[track_caller]
fn assert_refused_at(text: &str, key: &str) {
    let all = problems(text);
    assert!(
        all.lines().any(|p| p.starts_with(key)),
        "no problem at {key} in:\n{all}"
    );
}

/// The keys of the home corp's WeCom app, shared by the fixtures (a string literal for `concat!`).
macro_rules! hq_app_keys {
    () => {
        r#"corp_id = "ww7f3c2a1b9d8e6f50"
agent_id = 1000002
secret_env = "WECOM_SECRET"
"#
    };
}

/// The confidential Grafana client of the fixtures (a string literal for `concat!`).
macro_rules! grafana_client {
    () => {
        r#"[[clients]]
id = "grafana"
secret_env = "GRAFANA_SECRET"
redirect_uris = ["https://grafana.example.com/login/generic_oauth"]
"#
    };
}

const GOOD: &str = concat!(
    r#"
issuer = "https://sso.example.com/"
listen = "127.0.0.1:9000"
[wecom]
"#,
    hq_app_keys!(),
    grafana_client!(),
    r#"[[clients]]
id = "cli"
public = true
redirect_uris = ["http://127.0.0.1:8400/callback"]
"#
);

#[test]
fn valid_file_parses_with_defaults_and_env_secrets() {
    let c = parse(GOOD, "t.toml", &env).unwrap();
    assert_eq!(c.issuer, "https://sso.example.com");
    assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
    assert_eq!(wecom(&c, 0).secret, "wecom-app-secret");
    assert_eq!(wecom(&c, 0).api_base, WeComSettings::DEFAULT_API_BASE);
    assert_eq!(c.clients.len(), 2);
    assert!(c.clients[1].is_public());
    assert_eq!(
        c.clients[0].secret.as_ref().unwrap().expose(),
        "grafana-client-secret"
    );
    assert_eq!(c.lifetimes, Lifetimes::default());
    assert_eq!(c.login_event_retention, 30 * 86_400);
    assert_eq!(c.session, SessionSettings::default());
}

#[test]
fn store_is_sled_unless_a_postgres_url_is_given_with_the_password_from_the_environment() {
    assert_eq!(
        parse(GOOD, "t.toml", &env).unwrap().store,
        StoreLocation::Sled
    );
    let env_pw = |name: &str| match name {
        "DB_PASSWORD" => Some("db-secret-pw".to_owned()),
        "PGPASSWORD" => Some("pg-fallback-pw".to_owned()),
        other => env(other),
    };
    let url = "postgres://wecom@db.internal:5432/wecom_oidc";
    let text = format!("store = \"{url}\"\nstore_password_env = \"DB_PASSWORD\"\n{GOOD}");
    let StoreLocation::Postgres(pg) = parse(&text, "t.toml", &env_pw).unwrap().store else {
        panic!("not postgres");
    };
    assert_eq!(pg.url, url);
    assert_eq!(
        pg.password.as_ref().map(Secret::expose),
        Some("db-secret-pw")
    );
    assert!(!format!("{pg:?}").contains("db-secret-pw"));
    assert!(pg.connect_config().is_ok());
    // Without store_password_env, PGPASSWORD (as libpq reads it).
    let text = format!("store = \"{url}\"\n{GOOD}");
    let StoreLocation::Postgres(pg) = parse(&text, "t.toml", &env_pw).unwrap().store else {
        panic!("not postgres");
    };
    assert_eq!(
        pg.password.as_ref().map(Secret::expose),
        Some("pg-fallback-pw")
    );
}

#[test]
fn bad_store_settings_are_reported_naming_the_key_without_the_password() {
    for (line, key) in [
        ("store = \"mysql://wecom@db/x\"", "store:"),
        ("store = \"postgres://wecom:hunter2@db/x\"", "store:"),
        ("store = \"postgres://db/x\"", "store:"),
        ("store = 5", "store:"),
        (
            "store = \"postgres://wecom@db/x\"\nstore_password_env = \"UNSET_VAR\"",
            "store_password_env:",
        ),
        (
            "store_password_env = \"DB_PASSWORD\"",
            "store_password_env:",
        ),
    ] {
        let text = format!("{line}\n{GOOD}");
        let all = problems(&text);
        assert!(all.starts_with(key), "{line}: {all}");
        assert!(!all.contains("hunter2"), "{all}");
    }
}

#[test]
fn session_table_and_logout_client_settings_are_parsed() {
    let text = format!("{GOOD}\n[session]\nttl = 3600\nidle_timeout = 600\n").replace(
        "redirect_uris = [\"https://grafana.example.com/login/generic_oauth\"]",
        "redirect_uris = [\"https://grafana.example.com/login/generic_oauth\"]\n\
         id_token_signed_response_alg = \"ES256\"\n\
         post_logout_redirect_uris = [\"https://grafana.example.com/\"]\n\
         backchannel_logout_uri = \"https://grafana.example.com/bcl\"\n\
         backchannel_logout_session_required = true",
    );
    let c = parse(&text, "t.toml", &env).unwrap();
    assert_eq!(c.session.ttl, 3600);
    assert_eq!(c.session.idle_timeout, Some(600));
    let s = &c.clients[0].settings;
    assert_eq!(s.id_token_signed_response_alg, Some(SigningAlg::Es256));
    assert_eq!(
        s.post_logout_redirect_uris,
        ["https://grafana.example.com/"]
    );
    assert_eq!(
        s.backchannel_logout_uri.as_deref(),
        Some("https://grafana.example.com/bcl")
    );
    assert!(s.backchannel_logout_session_required);
}

#[test]
fn sled_cache_defaults_to_a_few_mib_and_is_bounded() {
    assert_eq!(
        parse(GOOD, "t.toml", &env).unwrap().sled_cache_mb,
        DEFAULT_SLED_CACHE_MB
    );
    let set = format!("sled_cache_mb = 64\n{GOOD}");
    assert_eq!(parse(&set, "t.toml", &env).unwrap().sled_cache_mb, 64);
    let zero = format!("sled_cache_mb = 0\n{GOOD}");
    assert!(parse(&zero, "t.toml", &env).is_err());
}

#[test]
fn keys_reload_interval_defaults_to_30_s_and_is_bounded() {
    assert_eq!(
        parse(GOOD, "t.toml", &env).unwrap().keys_reload_interval,
        30
    );
    let set = format!("keys_reload_interval = 2\n{GOOD}");
    assert_eq!(parse(&set, "t.toml", &env).unwrap().keys_reload_interval, 2);
    for bad in ["0", "3601", "\"30s\""] {
        let text = format!("keys_reload_interval = {bad}\n{GOOD}");
        let all = problems(&text);
        assert!(all.contains("keys_reload_interval:"), "{bad}: {all}");
    }
}

#[test]
fn alg_none_and_bad_session_values_are_reported() {
    let text = format!("{GOOD}\n[session]\nttl = 5\ncolour = 1\n").replace(
        "public = true",
        "public = true\nid_token_signed_response_alg = \"none\"\nbackchannel_logout_uri = \"ftp://x\"",
    );
    let all = problems(&text);
    assert_mentions_each(
        &all,
        &[
            "clients[1].id_token_signed_response_alg:",
            "clients[1].backchannel_logout_uri:",
            "session.ttl:",
            "session.colour:",
        ],
    );
}

#[test]
fn event_retention_is_read_in_days_and_bounded() {
    let t = format!("{GOOD}\n[events]\nretention_days = 7\n");
    assert_eq!(
        parse(&t, "t", &env).unwrap().login_event_retention,
        7 * 86_400
    );
    let t = format!("{GOOD}\n[events]\nretention_days = 0\n");
    assert_refused_at(&t, "events.retention_days:");
}

#[test]
fn every_problem_is_reported_at_once_naming_its_key() {
    let text = r#"
issuer = "http://sso.example.com?x=1"
listen = "nowhere"
colour = "blue"
[wecom]
agent_id = "x"
secret_env = "MISSING_VAR"
[[clients]]
id = "a"
redirect_uris = ["https://a.example/cb#frag"]
[[clients]]
id = "a"
public = true
secret = "s"
redirect_uris = []
[tokens]
code_ttl = 100000
"#;
    let err = parse(text, "bad.toml", &env).unwrap_err();
    let all = err.problems.join("\n");
    assert_mentions_each(
        &all,
        &[
            "issuer:",
            "listen:",
            "colour:",
            "wecom.corp_id:",
            "wecom.agent_id:",
            "wecom.secret_env:",
            "clients[0].secret_env:",
            "clients[0].redirect_uris[0]:",
            "clients[1].secret:",
            "clients[1].redirect_uris:",
            "tokens.code_ttl:",
        ],
    );
    assert!(err.to_string().starts_with("bad.toml has "));
}

#[test]
fn secrets_never_appear_in_errors_or_debug() {
    let c = parse(GOOD, "t.toml", &env).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("grafana-client-secret"));
    assert!(!dbg.contains("wecom-app-secret"));
}

#[test]
fn plain_http_issuer_is_allowed_only_on_loopback() {
    let t = GOOD.replace("https://sso.example.com/", "http://127.0.0.1:8080");
    assert_eq!(
        parse(&t, "t", &env).unwrap().issuer,
        "http://127.0.0.1:8080"
    );
    let t = GOOD.replace("https://sso.example.com/", "http://sso.example.com");
    assert!(parse(&t, "t", &env).is_err());
}

#[test]
fn grant_and_client_auth_keys_are_parsed() {
    use sha2::{Digest, Sha256};
    let hash = hex::encode(Sha256::digest(b"a-high-entropy-secret"));
    let jwk = josekit::jwk::Jwk::generate_ec_key(josekit::jwk::alg::ec::EcCurve::P256)
        .expect("key")
        .to_public_key()
        .expect("public");
    let jwks = serde_json::json!({ "keys": [serde_json::Value::Object(jwk.as_ref().clone())] })
        .to_string()
        .replace('"', "\\\"");
    let text = format!(
        r#"{GOOD}
[[clients]]
id = "hashed"
secret_sha256 = "{hash}"
token_endpoint_auth_method = "client_secret_post"
access_token_format = "jwt"
access_token_audience = "https://api.example.com"
allow_offline_access = false
redirect_uris = ["https://h.example/cb"]
[[clients]]
id = "pkj"
jwks = "{jwks}"
redirect_uris = ["https://p.example/cb"]
[tokens]
refresh_token_ttl = 86400
grant_max_lifetime = 604800
[limits]
token_burst = 10
callback_per_minute = 30
authorize_burst = 40
"#
    );
    let c = parse(&text, "t.toml", &env).expect("valid");
    let hashed = &c.clients[2];
    assert!(!hashed.is_public());
    assert!(hashed.secret_matches("a-high-entropy-secret"));
    assert_eq!(
        hashed.settings.token_endpoint_auth_method,
        Some(AuthMethod::ClientSecretPost)
    );
    assert_eq!(hashed.settings.access_token_format, AccessTokenFormat::Jwt);
    assert!(!hashed.allows_offline_access());
    let pkj = &c.clients[3];
    assert!(!pkj.is_public());
    assert!(pkj.accepts_auth_method(AuthMethod::PrivateKeyJwt));
    assert!(!pkj.accepts_auth_method(AuthMethod::ClientSecretBasic));
    assert_eq!(c.lifetimes.refresh_token, 86400);
    assert_eq!(c.lifetimes.grant, Some(604800));
    assert_eq!(c.limits.token_burst, 10);
    assert_eq!(c.limits.callback_per_minute, 30);
    assert_eq!(c.limits.authorize_burst, 40);
    assert_eq!(
        c.limits.authorize_per_minute,
        RateLimits::default().authorize_per_minute
    );
    assert_eq!(
        c.limits.token_per_minute,
        RateLimits::default().token_per_minute
    );
    // The defaults: 30-day refresh tokens, no absolute grant limit.
    let d = parse(GOOD, "t.toml", &env).expect("valid");
    assert_eq!(d.lifetimes.refresh_token, 30 * 24 * 3600);
    assert_eq!(d.lifetimes.grant, None);
    assert!(d.clients[0].allows_offline_access());
    assert!(!d.clients[1].allows_offline_access());
}

#[test]
fn inconsistent_client_auth_settings_are_reported_naming_their_keys() {
    let text = format!(
        r#"{GOOD}
[[clients]]
id = "a"
secret = "s"
secret_sha256 = "not-a-hash"
token_endpoint_auth_method = "private_key_jwt"
access_token_format = "paseto"
redirect_uris = ["https://a.example/cb"]
[[clients]]
id = "b"
public = true
token_endpoint_auth_method = "client_secret_basic"
jwks = "{{not json"
redirect_uris = ["https://b.example/cb"]
[[clients]]
id = "c"
secret = "s"
token_endpoint_auth_method = "none"
redirect_uris = ["https://c.example/cb"]
[limits]
token_burst = 0
"#
    );
    let err = parse(&text, "bad.toml", &env).expect_err("invalid");
    let all = err.problems.join("\n");
    assert_mentions_each(
        &all,
        &[
            "clients[2].secret_sha256:",
            "clients[2].token_endpoint_auth_method:",
            "clients[2].access_token_format:",
            "clients[3].jwks:",
            "clients[3].token_endpoint_auth_method:",
            "clients[4].token_endpoint_auth_method:",
            "limits.token_burst:",
        ],
    );
}

#[test]
fn max_pending_authorizations_is_read_bounded_and_defaults_to_100k() {
    let d = parse(GOOD, "t.toml", &env).expect("valid");
    assert_eq!(d.limits.max_pending_authorizations, 100_000);
    let text = format!("{GOOD}\n[limits]\nmax_pending_authorizations = 5000\n");
    let c = parse(&text, "t.toml", &env).expect("valid");
    assert_eq!(c.limits.max_pending_authorizations, 5000);
    for bad in ["0", "99", "1000000000", "\"many\""] {
        let text = format!("{GOOD}\n[limits]\nmax_pending_authorizations = {bad}\n");
        let err = parse(&text, "t.toml", &env).expect_err(bad);
        assert!(
            err.problems
                .iter()
                .any(|p| p.starts_with("limits.max_pending_authorizations:")),
            "{bad}: {:?}",
            err.problems
        );
    }
}

#[test]
fn invalid_toml_is_reported_not_panicked() {
    let err = parse("issuer = ", "t", &env).unwrap_err();
    assert!(err.problems[0].starts_with("not valid TOML"));
}

#[test]
fn wecom_profile_groups_sub_callback_and_verify_keys_parse() {
    let t = GOOD.replace(
        "secret_env = \"WECOM_SECRET\"\n",
        r#"secret_env = "WECOM_SECRET"
privateinfo = "when_requested"
email = "template"
email_template = "{userid_lower}@corp.example.com"
email_verified = true
name_claim = "alias"
username_claim = "userid_lower"
sub = "lowercase"
groups = ["paths", "tags"]
groups_cache_secs = 120
callback_token = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
callback_aes_key = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
verify_files = ["/srv/WW_verify_Ab12.txt"]
"#,
    );
    let c = parse(&t, "t.toml", &env).unwrap();
    let w = wecom(&c, 0);
    assert_eq!(w.privateinfo, PrivateInfo::WhenRequested);
    assert_eq!(
        w.profile.email,
        EmailPolicy::Template("{userid_lower}@corp.example.com".into())
    );
    assert!(w.profile.email_verified);
    assert_eq!(w.profile.name, ClaimSource::Alias);
    assert_eq!(w.profile.preferred_username, ClaimSource::UseridLower);
    assert_eq!(w.subject, SubjectMode::Lowercase);
    assert!(w.groups.paths && w.groups.tags && !w.groups.names && !w.groups.ids);
    assert_eq!(w.groups.cache_ttl, Duration::from_secs(120));
    assert!(w.callback.is_some());
    assert_eq!(
        w.verify_files,
        vec![PathBuf::from("/srv/WW_verify_Ab12.txt")]
    );
    // The callback keys never reach Debug output.
    assert!(!format!("{c:?}").contains("hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"));
}

#[test]
fn bad_wecom_option_values_are_each_reported_naming_the_key() {
    let t = GOOD.replace(
        "secret_env = \"WECOM_SECRET\"\n",
        r#"secret_env = "WECOM_SECRET"
privateinfo = "sometimes"
email = "template"
name_claim = "nickname"
sub = "pairwise-ish"
groups = ["roles"]
callback_token = "t"
verify_files = ["/srv/config.toml"]
"#,
    );
    let all = problems(&t);
    assert_mentions_each(
        &all,
        &[
            "wecom.privateinfo:",
            "wecom.email_template:",
            "wecom.name_claim:",
            "wecom.sub:",
            "wecom.groups:",
            "wecom.callback_aes_key_env:",
            "wecom.verify_files[0]:",
        ],
    );
}

#[test]
fn wecom_defaults_are_silent_login_upstream_email_and_userid_sub() {
    let c = parse(GOOD, "t.toml", &env).unwrap();
    let w = wecom(&c, 0).clone();
    assert_eq!(w.privateinfo, PrivateInfo::Never);
    assert_eq!(w.profile, ProfileMapping::default());
    assert_eq!(w.subject, SubjectMode::Userid);
    assert_eq!(w.groups, GroupOptions::default());
    assert!(w.callback.is_none() && w.verify_files.is_empty());
}

#[test]
fn several_wecom_apps_parse_and_clients_must_name_an_existing_one() {
    let t = concat!(
        r#"
issuer = "https://sso.example.com"
[[wecom]]
name = "hq"
"#,
        hq_app_keys!(),
        r#"[[wecom]]
name = "branch"
corp_id = "ww0000000000000001"
agent_id = 1000005
secret = "branch-secret"
"#,
        grafana_client!(),
        "wecom_app = \"branch\"\n"
    );
    let c = parse(t, "t.toml", &env).unwrap();
    assert_eq!(wecom(&c, 0).id, "hq");
    assert_eq!(c.connectors.len(), 2);
    assert_eq!(wecom(&c, 1).id, "branch");
    assert_eq!(c.clients[0].settings.connector.as_deref(), Some("branch"));

    let bad = t
        .replace("wecom_app = \"branch\"", "wecom_app = \"nowhere\"")
        .replace("secret = \"branch-secret\"", "");
    let all = problems(&bad);
    assert!(all.contains("wecom[1].secret_env:"), "{all}");
    let dup = t.replace("name = \"branch\"", "name = \"hq\"");
    let all = problems(&dup);
    assert!(all.contains("wecom[1].name:"), "{all}");
    // The first app's corp is the home corp: the branch corp's members are namespaced.
    assert_eq!(
        wecom(&c, 0).home_corp_id.as_deref(),
        Some("ww7f3c2a1b9d8e6f50")
    );
    assert_eq!(
        wecom(&c, 1).home_corp_id.as_deref(),
        Some("ww7f3c2a1b9d8e6f50")
    );
    // Two apps of one corp that would give one person two subjects are refused.
    let same_corp = t
        .replace(
            "corp_id = \"ww0000000000000001\"",
            "corp_id = \"ww7f3c2a1b9d8e6f50\"",
        )
        .replace(
            "secret = \"branch-secret\"",
            "secret = \"branch-secret\"\nsub = \"lowercase\"",
        );
    let all = problems(&same_corp);
    assert!(all.contains("same subject form"), "{all}");
    let same_app = t.replace(
        "corp_id = \"ww0000000000000001\"\nagent_id = 1000005",
        "corp_id = \"ww7f3c2a1b9d8e6f50\"\nagent_id = 1000002",
    );
    let all = problems(&same_app);
    assert!(all.contains("the same WeCom app"), "{all}");
    let unknown = t.replace("wecom_app = \"branch\"", "wecom_app = \"nowhere\"");
    let all = problems(&unknown);
    assert!(all.contains("clients[0].connector:"), "{all}");
}

#[test]
fn connectors_tables_name_their_type_and_id_and_the_wecom_table_still_works() {
    let t = concat!(
        r#"
issuer = "https://sso.example.com"
[[connectors]]
type = "wecom"
id = "hq"
"#,
        hq_app_keys!(),
        grafana_client!(),
        "connector = \"hq\"\n"
    );
    let c = parse(t, "t.toml", &env).unwrap();
    assert_eq!(c.connectors.len(), 1);
    assert_eq!(c.connectors[0].id(), "hq");
    assert_eq!(c.connectors[0].type_name(), "wecom");
    assert_eq!(wecom(&c, 0).secret, "wecom-app-secret");
    assert!(c.deprecations.is_empty());
    assert_eq!(c.clients[0].settings.connector.as_deref(), Some("hq"));

    // The older [wecom] form is read into the same shape, with a deprecation line.
    let old = parse(GOOD, "t.toml", &env).unwrap();
    assert_eq!(old.connectors[0].id(), "wecom");
    assert_eq!(old.deprecations.len(), 1, "{:?}", old.deprecations);
    assert!(old.deprecations[0].contains("[[connectors]]"));

    // Problems of a [[connectors]] table are named where the operator wrote them.
    let bad = t.replace("secret_env = \"WECOM_SECRET\"\n[[clients]]", "[[clients]]");
    assert_refused_at(&bad, "connectors[0].secret_env:");
    let unknown = t.replace("type = \"wecom\"", "type = \"feishu\"");
    let all = problems(&unknown);
    assert!(
        all.lines()
            .any(|p| p.starts_with("connectors[0].type:") && p.contains("wecom")),
        "{all}"
    );
    let no_id = t.replace("id = \"hq\"\ncorp_id", "corp_id");
    assert_refused_at(&no_id, "connectors[0].id:");
    let nowhere = t.replace("connector = \"hq\"", "connector = \"nowhere\"");
    assert_refused_at(&nowhere, "clients[0].connector:");
    let none = r#"
issuer = "https://sso.example.com"
[[clients]]
id = "cli"
public = true
redirect_uris = ["http://127.0.0.1:8400/callback"]
"#;
    assert_refused_at(none, "connectors:");
}

#[test]
fn grant_types_and_service_scopes_are_parsed_and_checked_rfc8628_rfc6749_4_4() {
    use crate::provider::GrantType;
    let good = format!(
        "{GOOD}{}",
        r#"
[tokens]
device_poll_interval = 2
device_code_ttl = 120
[[clients]]
id = "kubectl"
public = true
grant_types = ["urn:ietf:params:oauth:grant-type:device_code"]
[[clients]]
id = "deployer"
secret_env = "GRAFANA_SECRET"
grant_types = ["client_credentials"]
client_credentials_scopes = ["deploy", "metrics:read"]
"#
    );
    let c = parse(&good, "t.toml", &env).unwrap();
    assert_eq!(
        (c.lifetimes.device_poll_interval, c.lifetimes.device_code),
        (2, 120)
    );
    let kubectl = c.clients.iter().find(|c| c.id == "kubectl").unwrap();
    assert!(
        kubectl.redirect_uris.is_empty(),
        "a device redirects nowhere"
    );
    assert!(kubectl.allows_grant(GrantType::DeviceCode));
    assert!(!kubectl.allows_grant(GrantType::AuthorizationCode));
    let deployer = c.clients.iter().find(|c| c.id == "deployer").unwrap();
    assert!(deployer.allows_grant(GrantType::ClientCredentials));
    assert_eq!(
        deployer.settings.client_credentials_scopes,
        vec!["deploy", "metrics:read"]
    );
    // The default client keeps the code and refresh grants only.
    assert!(c.clients[0].allows_grant(GrantType::RefreshToken));
    assert!(!c.clients[0].allows_grant(GrantType::DeviceCode));

    let bad = format!(
        "{GOOD}{}",
        r#"
[[clients]]
id = "public-service"
public = true
grant_types = ["client_credentials", "password"]
[[clients]]
id = "person-scopes"
secret_env = "GRAFANA_SECRET"
grant_types = ["client_credentials"]
client_credentials_scopes = ["openid"]
[[clients]]
id = "scopes-without-grant"
secret_env = "GRAFANA_SECRET"
redirect_uris = ["https://x.example/cb"]
client_credentials_scopes = ["deploy"]
[[clients]]
id = "code-without-redirect"
secret_env = "GRAFANA_SECRET"
grant_types = ["authorization_code"]
"#
    );
    let text = parse(&bad, "t.toml", &env).unwrap_err().to_string();
    for expected in [
        "clients[2].grant_types[0]",
        "clients[2].grant_types[1]",
        "clients[3].client_credentials_scopes[0]",
        "clients[4].client_credentials_scopes",
        "clients[5].redirect_uris",
    ] {
        assert!(text.contains(expected), "{expected} missing in {text}");
    }
}

#[test]
fn an_issuer_path_is_kept_unless_it_starts_with_one_of_the_servers_routes() {
    let with_path = GOOD.replace("https://sso.example.com/", "https://corp.example.com/sso/");
    let c = parse(&with_path, "t.toml", &env).unwrap();
    assert_eq!(c.issuer, "https://corp.example.com/sso");
    let clash = GOOD.replace("https://sso.example.com/", "https://corp.example.com/start");
    assert_eq!(
        problems(&clash),
        "issuer: its path must not start with /start: the server has a route there (e.g. use /sso)"
    );
}

#[test]
fn session_recheck_after_defaults_to_15_minutes_and_is_bounded_by_the_session_ttl() {
    let c = parse(GOOD, "t.toml", &env).unwrap();
    assert_eq!(c.session.recheck_after, 900);
    let t = format!("{GOOD}\n[session]\nttl = 3600\nrecheck_after = 300\n");
    assert_eq!(
        parse(&t, "t.toml", &env).unwrap().session.recheck_after,
        300
    );
    for bad in ["30", "7200", "\"15m\""] {
        let t = format!("{GOOD}\n[session]\nttl = 3600\nrecheck_after = {bad}\n");
        let problems = parse(&t, "t.toml", &env).unwrap_err().problems;
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("session.recheck_after")),
            "{bad}: {problems:?}"
        );
    }
}
