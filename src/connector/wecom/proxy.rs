//! The outbound proxy of the WeCom calls (`[wecom] proxy`): many companies reach WeCom only
//! through one egress proxy with a fixed IP, the one listed under 企业可信IP (wecom-api.md §1).
//!
//! With the key, every call to WeCom goes through that proxy and the environment's proxy
//! variables are ignored for it (`NO_PROXY` included). Without it, reqwest's default applies:
//! `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` and `NO_PROXY` from the environment.

use crate::connector::ConnectorError;

/// Why `value` cannot be a proxy URL, `None` when it can: an `http://` or `https://` URL with a
/// host and nothing after it but an optional `/` (userinfo is allowed: proxy credentials).
pub fn proxy_problem(value: &str) -> Option<&'static str> {
    match url::Url::parse(value) {
        Err(_) => Some("is not a URL"),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            Some("must be an http:// or https:// URL (e.g. \"http://proxy.example.com:3128\")")
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Some("has no host"),
        Ok(u) if u.path() != "/" || u.query().is_some() || u.fragment().is_some() => {
            Some("must be just scheme://host:port, without a path, query or fragment")
        }
        Ok(_) => None,
    }
}

/// `value` with any password replaced, for logs and `Debug`.
pub(crate) fn redacted(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "[invalid proxy URL]".to_owned(),
    }
}

/// `builder` sending everything through `proxy` when one is set. reqwest turns its
/// environment-variable proxies off once a proxy is added, so the key wins over `HTTPS_PROXY`
/// and `NO_PROXY`.
pub fn with_proxy(
    builder: reqwest::ClientBuilder,
    proxy: Option<&str>,
) -> Result<reqwest::ClientBuilder, ConnectorError> {
    let Some(url) = proxy else {
        return Ok(builder);
    };
    let proxy = reqwest::Proxy::all(url).map_err(|e| {
        ConnectorError::Unavailable(format!(
            "the WeCom proxy {} is not usable: {}",
            redacted(url),
            e.without_url()
        ))
    })?;
    Ok(builder.proxy(proxy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_must_be_an_http_or_https_url_with_a_host_and_no_path() {
        assert_eq!(proxy_problem("http://10.0.0.1:3128"), None);
        assert_eq!(proxy_problem("https://proxy.example.com:8443/"), None);
        assert_eq!(
            proxy_problem("http://user:pass@proxy.example.com:3128"),
            None
        );
        assert!(proxy_problem("socks5://proxy.example.com:1080").is_some());
        assert!(proxy_problem("proxy.example.com:3128").is_some());
        assert!(proxy_problem("http://").is_some());
        assert!(proxy_problem("http://proxy.example.com:3128/path").is_some());
        assert!(proxy_problem("http://proxy.example.com:3128/?x=1").is_some());
        assert!(proxy_problem("").is_some());
    }

    #[test]
    fn proxy_password_is_redacted() {
        let r = redacted("http://user:s3cret@proxy.example.com:3128");
        assert!(!r.contains("s3cret"), "{r}");
        assert!(r.contains("proxy.example.com:3128"), "{r}");
    }

    #[test]
    fn a_valid_proxy_builds_a_client() {
        let b = with_proxy(reqwest::Client::builder(), Some("http://127.0.0.1:3128")).unwrap();
        assert!(b.build().is_ok());
    }
}
