//! An issuer with a path (`issuer = "https://corp.example.com/sso"`).
//!
//! Discovery §4 puts the configuration at the issuer + `/.well-known/openid-configuration`, and
//! every endpoint we advertise is the issuer + its path, so a server reached directly must
//! answer under the issuer's path — as Dex does, registering each handler at
//! `path.Join(issuerURL.Path, p)`. Unlike Dex we also keep answering without the prefix, so a
//! reverse proxy that strips it (`location /sso/ { proxy_pass http://backend/; }`) works too:
//! the prefix is taken off before routing when present, and requests without it are routed as
//! they are. The configuration refuses an issuer path that starts with one of our routes
//! ([`collision`]), so the two cannot be confused.
//!
//! What the browser sees is always the issuer's URL, so links, redirects and cookie paths we
//! write use the prefix whichever way the request arrived.

use axum::http::{Request, Uri};

/// The first path segments of the server's own routes. An issuer path starting with one of
/// them would make a stripped request (`/start`) and a prefixed one (`/start/…`) ambiguous, so
/// the configuration refuses it ([`collision`]).
pub const ROUTE_SEGMENTS: &[&str] = &[
    ".well-known",
    "authorize",
    "callback",
    "token",
    "userinfo",
    "jwks",
    "logout",
    "revoke",
    "introspect",
    "healthz",
    "readyz",
    "metrics",
    "start",
    "playground",
    "admin",
    "demo",
    "wecom-sim",
];

/// The route segment `issuer`'s path starts with, if it starts with one (or with a WeCom
/// verification file name, served at the root).
pub fn collision(issuer: &str) -> Option<String> {
    let path = of(issuer);
    let first = path.trim_start_matches('/').split('/').next()?;
    (ROUTE_SEGMENTS.contains(&first) || first.starts_with("WW_verify_")).then(|| first.to_owned())
}

/// The path of `issuer` without a trailing slash: `"/sso"` for `https://corp.example.com/sso`,
/// `""` for an issuer without one.
pub fn of(issuer: &str) -> String {
    url::Url::parse(issuer)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// Takes `prefix` off the front of the request's path when it is there (`/sso` → `/`,
/// `/sso/authorize` → `/authorize`); leaves any other path (`/authorize`, `/ssox`) alone.
pub fn strip<B>(prefix: &str, mut req: Request<B>) -> Request<B> {
    if prefix.is_empty() {
        return req;
    }
    let Some(rest) = req.uri().path().strip_prefix(prefix) else {
        return req;
    };
    let path = match rest {
        "" => "/",
        r if r.starts_with('/') => r,
        _ => return req,
    };
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let mut parts = req.uri().clone().into_parts();
    match path_and_query.parse() {
        Ok(pq) => parts.path_and_query = Some(pq),
        Err(_) => return req,
    }
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_after(prefix: &str, uri: &str) -> String {
        let req = Request::builder().uri(uri).body(()).unwrap();
        strip(prefix, req).uri().to_string()
    }

    #[test]
    fn the_issuer_path_has_no_trailing_slash_and_a_root_issuer_has_none() {
        assert_eq!(of("https://corp.example.com/sso"), "/sso");
        assert_eq!(of("https://corp.example.com/a/sso/"), "/a/sso");
        assert_eq!(of("https://corp.example.com"), "");
        assert_eq!(of("http://127.0.0.1:8080/"), "");
    }

    #[test]
    fn an_issuer_path_may_not_start_with_one_of_our_routes() {
        assert_eq!(
            collision("https://corp.example.com/start"),
            Some("start".into())
        );
        assert_eq!(
            collision("https://corp.example.com/callback/sso"),
            Some("callback".into())
        );
        assert_eq!(collision("https://corp.example.com/sso/start"), None);
        assert_eq!(collision("https://corp.example.com/sso"), None);
        assert_eq!(collision("https://corp.example.com"), None);
    }

    #[test]
    fn the_prefix_is_taken_off_only_as_a_whole_path_segment() {
        assert_eq!(
            path_after("/sso", "/sso/.well-known/openid-configuration"),
            "/.well-known/openid-configuration"
        );
        assert_eq!(
            path_after("/sso", "/sso/authorize?client_id=a&state=b"),
            "/authorize?client_id=a&state=b"
        );
        assert_eq!(path_after("/sso", "/sso"), "/");
        assert_eq!(path_after("/sso", "/sso?x=1"), "/?x=1");
        // Behind a proxy that strips the prefix: routed as it arrives.
        assert_eq!(path_after("/sso", "/authorize?x=1"), "/authorize?x=1");
        assert_eq!(path_after("/sso", "/ssox/authorize"), "/ssox/authorize");
        assert_eq!(path_after("", "/sso/authorize"), "/sso/authorize");
    }
}
