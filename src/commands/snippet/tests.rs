//! Tests of the snippets.

use super::*;
use crate::secret::Secret;
use std::fmt::Write as _;

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

/// Each application's own form of redirect URI (Vault and Argo CD have a second, for their
/// command-line logins).
const OWN_URIS: [(SnippetApp, &str); 16] = [
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

#[test]
fn every_app_is_recognised_from_its_own_redirect_uri_and_only_from_it() {
    for (app, uri) in OWN_URIS {
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

#[test]
fn kubernetes_uses_the_device_code_grant_when_the_client_has_it_rfc8628() {
    use crate::provider::GrantType;
    let mut c = client(&["http://localhost:8000"]);
    c.secret = None;
    c.settings.allow_offline_access = Some(true);
    let authcode = render(SnippetApp::Kubernetes, "https://sso.example.com", &c);
    assert!(
        authcode.text.contains("--grant-type=authcode"),
        "{}",
        authcode.text
    );
    assert!(!authcode.text.contains("device-code"), "{}", authcode.text);
    c.settings.grant_types = Some(vec![GrantType::AuthorizationCode, GrantType::DeviceCode]);
    let both = render(SnippetApp::Kubernetes, "https://sso.example.com", &c);
    assert!(both.text.contains("--grant-type=authcode"), "{}", both.text);
    assert!(
        both.text.contains("--exec-arg=--grant-type=device-code"),
        "{}",
        both.text
    );
    c.settings.grant_types = Some(vec![GrantType::DeviceCode, GrantType::RefreshToken]);
    c.redirect_uris.clear();
    let device = render(SnippetApp::Kubernetes, "https://sso.example.com", &c);
    assert!(
        device
            .text
            .contains("--exec-arg=--grant-type=device-code \\"),
        "{}",
        device.text
    );
    assert!(device.warnings.is_empty(), "{:?}", device.warnings);
}

/// Every snippet, for every form of redirect URI and e-mail setting it adapts to, as
/// `golden.txt` pins it: a change to a block's text shows here as a diff to review.
fn every_snippet() -> String {
    use crate::provider::GrantType;
    let facts = [
        ProviderFacts::default(),
        ProviderFacts {
            email: EmailPolicy::Template("{userid_lower}@corp.example.com".into()),
            email_verified: false,
        },
        ProviderFacts {
            email: EmailPolicy::Template("{userid}@corp.example.com".into()),
            email_verified: true,
        },
    ];
    let mut out = String::new();
    let mut show = |app: SnippetApp, c: &Client, facts: &ProviderFacts| {
        let s = render_for(app, "https://corp.example/sso", c, facts);
        let _ = write!(
            out,
            "===== {} {:?} {:?} {:?} verified={}\n{}----- warnings\n",
            app.name(),
            c.redirect_uris,
            c.settings.grant_types,
            facts.email_domain(),
            facts.email_verified,
            s.text
        );
        for w in s.warnings {
            out.push_str(&w);
            out.push('\n');
        }
    };
    for app in SnippetApp::ALL {
        let mut uris: Vec<&str> = OWN_URIS
            .iter()
            .filter(|(a, _)| *a == app)
            .map(|(_, u)| *u)
            .collect();
        if app == SnippetApp::ModAuthOpenidc {
            uris.push("https://a.example/protected/redirect_uri");
        }
        uris.push("https://x.example/sub/cb");
        for uri in uris {
            for f in &facts {
                show(app, &client(&[uri]), f);
            }
        }
    }
    let mut public = client(&["http://localhost:8000"]);
    public.secret = None;
    public.settings.allow_offline_access = Some(true);
    for grants in [
        vec![GrantType::AuthorizationCode, GrantType::DeviceCode],
        vec![GrantType::DeviceCode, GrantType::RefreshToken],
    ] {
        public.settings.grant_types = Some(grants);
        show(SnippetApp::Kubernetes, &public, &facts[0]);
    }
    out
}

#[test]
fn every_snippet_stays_as_golden_txt_pins_it() {
    let got = every_snippet();
    let want = include_str!("golden.txt");
    if got != want {
        let at = std::env::temp_dir().join("wecom-oidc-snippets-golden.txt");
        let _ = std::fs::write(&at, &got);
        let line = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .map_or(got.lines().count().min(want.lines().count()), |i| i);
        panic!(
            "snippets differ from golden.txt from line {} on; they are in {} (copy them over \
             golden.txt if the change is meant)",
            line + 1,
            at.display()
        );
    }
}
