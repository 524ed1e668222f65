//! `wecom-oidc clients list`: the registered clients as the provider sees them — id, name,
//! type and exact redirect URIs — never their secrets.

use std::fmt::Write as _;

use crate::config::Config;

/// The client listing for `config`, one block per client.
pub fn list(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} client(s) registered with issuer {}",
        config.clients.len(),
        config.issuer
    );
    for c in &config.clients {
        let kind = if c.is_public() {
            "public (PKCE, no secret)"
        } else {
            "confidential (client_secret_basic / client_secret_post)"
        };
        let _ = writeln!(out, "\n{}", c.id);
        if c.name != c.id {
            let _ = writeln!(out, "  name:          {}", c.name);
        }
        let _ = writeln!(out, "  type:          {kind}");
        for (i, uri) in c.redirect_uris.iter().enumerate() {
            let label = if i == 0 { "redirect URIs:" } else { "" };
            let _ = writeln!(out, "  {label:<14} {uri}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_shows_ids_types_and_redirect_uris_but_never_secrets() {
        let text = r#"
issuer = "https://sso.example.com"
[wecom]
corp_id = "ww1"
agent_id = 1000002
secret = "wecom-secret-value"
[[clients]]
id = "grafana"
name = "Grafana"
secret = "grafana-secret-value"
redirect_uris = ["https://g.example/login/generic_oauth", "https://g2.example/login/generic_oauth"]
[[clients]]
id = "cli"
public = true
redirect_uris = ["http://127.0.0.1:8400/callback"]
"#;
        let cfg = crate::config::parse(text, "t.toml", &|_| None).expect("valid");
        let out = list(&cfg);
        assert!(out.starts_with("2 client(s) registered with issuer https://sso.example.com"));
        assert!(out.contains("\ngrafana\n  name:          Grafana\n  type:          confidential"));
        assert!(out.contains("https://g2.example/login/generic_oauth"));
        assert!(out.contains("\ncli\n  type:          public"));
        assert!(!out.contains("secret-value"), "{out}");
    }
}
