//! WeCom's wire conventions for the simulator: the `errcode`/`errmsg` envelope with its
//! `hint … from ip … more info at` suffix, HTTP 200 for every JSON answer, query parameters, and
//! the caller's IP (wecom-api.md "Conventions").

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::random;

/// WeCom's `errmsg` for an error code, without the suffix. Codes the reference names carry its
/// wording; codes outside the reference (41008, 41009, 40068, 47001) are WeCom's global error
/// codes for the same situations; §5 gives the ticket errors 84014/84015 only in Chinese, so
/// their English here is a gloss (a client decides by `errcode` alone).
pub(super) fn errmsg(code: i64) -> &'static str {
    match code {
        0 => "ok",
        -1 => "system busy",
        40001 => "invalid credential",
        40013 => "invalid corpid",
        40014 => "invalid access_token",
        40029 => "invalid code",
        40056 => "invalid agentid",
        40068 => "invalid tagid",
        40091 => "secret is invalid",
        41001 => "access_token missing",
        41002 => "corpid missing",
        41004 => "corpsecret missing",
        41008 => "missing code",
        41009 => "missing userid",
        42001 => "access_token expired",
        45009 => "api freq out of limit",
        45033 => "api concurrent out of limit",
        47001 => "data format error",
        48002 => "api forbidden",
        50001 => "redirect_uri unauthorized",
        50002 => "req not allow by agent visible range",
        50003 => "application is disabled",
        60011 => "no privilege to access/modify contact/party/agent",
        60020 => "not allow to access from your ip",
        60021 => "userid not in the app's visible range",
        60111 => "userid not found",
        60123 => "invalid department id",
        // §5: 票据过期 / 票据无效.
        84014 => "user_ticket expired",
        84015 => "invalid user_ticket",
        301002 => "access_token has no privilege to access the agentid",
        _ => "system error",
    }
}

/// The full `errmsg` as WeCom writes it for errors:
/// `"<msg>, hint: [<id>], from ip: <ip>, more info at https://open.work.weixin.qq.com/devtool/query?e=<code>"`.
pub(super) fn decorated_errmsg(code: i64, ip: &str, now: i64) -> String {
    // The hint is a per-request trace id in WeCom; its shape here (time, random) is close enough
    // for anyone reading logs and carries nothing secret.
    format!(
        "{}, hint: [{}_{}], from ip: {}, more info at https://open.work.weixin.qq.com/devtool/query?e={}",
        errmsg(code),
        now,
        random::alphanumeric(24).to_ascii_lowercase(),
        ip,
        code
    )
}

/// A successful answer: HTTP 200, `errcode` 0, `errmsg` "ok", plus `fields`.
pub(super) fn success(fields: Map<String, Value>) -> Response {
    let mut body = Map::new();
    body.insert("errcode".into(), json!(0));
    body.insert("errmsg".into(), json!("ok"));
    body.extend(fields);
    Json(Value::Object(body)).into_response()
}

/// An error answer: still HTTP 200 (WeCom never uses the HTTP status for API errors), with the
/// endpoint's default empty fields (`defaults`, e.g. `"department":[]` for `user/get`).
pub(super) fn failure(code: i64, defaults: Map<String, Value>, ip: &str, now: i64) -> Response {
    let mut body = Map::new();
    body.insert("errcode".into(), json!(code));
    body.insert("errmsg".into(), json!(decorated_errmsg(code, ip, now)));
    body.extend(defaults);
    Json(Value::Object(body)).into_response()
}

/// Decoded `application/x-www-form-urlencoded` parameters (a query string or a form body).
#[derive(Clone, Default)]
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    /// Parses a raw query string or form body; malformed escapes decode leniently, as browsers
    /// and WeCom do, instead of failing the request.
    pub fn parse(raw: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(raw).into_owned().collect())
    }

    /// The first value of `key`, treating an empty value as absent (WeCom reports an empty
    /// `corpid=` exactly like a missing one).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

// Parameters carry codes, tokens and secrets: never print them.
impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| (k.as_str(), "<redacted>")))
            .finish()
    }
}

/// The caller's IP as it appears in `errmsg` ("from ip: …"). Known only when the server was
/// started with `into_make_service_with_connect_info`; otherwise "unknown".
#[derive(Debug, Clone)]
pub(super) struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip().to_string())
                .unwrap_or_else(|| "unknown".to_string()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errmsg_carries_wecom_suffix_with_code_and_ip() {
        let m = decorated_errmsg(40029, "10.0.0.7", 1_700_000_000);
        assert!(m.starts_with("invalid code, hint: [1700000000_"), "{m}");
        assert!(m.contains("], from ip: 10.0.0.7, more info at "), "{m}");
        assert!(
            m.ends_with("https://open.work.weixin.qq.com/devtool/query?e=40029"),
            "{m}"
        );
    }

    #[test]
    fn empty_parameter_counts_as_missing() {
        let p = Params::parse(b"corpid=&corpsecret=s%20x&corpsecret=second");
        assert_eq!(p.get("corpid"), None);
        assert_eq!(p.get("corpsecret"), Some("s x"));
        assert_eq!(p.get("absent"), None);
    }

    #[test]
    fn params_debug_hides_values() {
        let p = Params::parse(b"code=SECRETCODE");
        let shown = format!("{p:?}");
        assert!(!shown.contains("SECRETCODE"));
        assert!(shown.contains("code"));
    }
}
