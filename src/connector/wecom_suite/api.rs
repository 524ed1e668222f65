//! Typed HTTP client for the service-provider APIs of a WeCom suite (wecom-api.md §8) and the
//! one data API a login needs (`user/get`, §6): success decided by `errcode` alone, tokens in
//! the query string, errors that never carry a token, a code or a secret.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::connector::ConnectorError;
use crate::metrics::Metrics;

/// `get_suite_token`: the `suite_ticket` is invalid or too old (not in wecom-api.md; WeCom's
/// service-provider error list).
pub(super) const STALE_TICKET: i64 = 40085;

/// The largest body read from WeCom.
const MAX_BODY_BYTES: usize = 1 << 20;
/// `errmsg` is cut to this many characters before it reaches an error value or a log.
const MAX_ERRMSG_CHARS: usize = 200;

/// The envelope every answer shares (`errcode` absent on success for some endpoints, §8).
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

/// `service/get_suite_token` and `service/get_corp_token`: a token and its lifetime.
#[derive(Deserialize)]
pub(crate) struct TokenAnswer {
    #[serde(default, alias = "suite_access_token")]
    pub(crate) access_token: String,
    #[serde(default)]
    pub(crate) expires_in: i64,
}

/// The corp in a `get_permanent_code` answer.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct AuthCorpInfo {
    pub(crate) corpid: String,
    pub(crate) corp_name: String,
}

/// One agent of `auth_info.agent[]`.
#[derive(Deserialize)]
pub(crate) struct AuthAgent {
    #[serde(default)]
    pub(crate) agentid: i64,
}

/// `auth_info`.
#[derive(Deserialize, Default)]
pub(crate) struct AuthInfo {
    #[serde(default)]
    pub(crate) agent: Vec<AuthAgent>,
}

/// `service/get_permanent_code` (§8).
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct PermanentCodeAnswer {
    pub(crate) permanent_code: String,
    pub(crate) auth_corp_info: AuthCorpInfo,
    pub(crate) auth_info: AuthInfo,
}

/// `service/auth/getuserinfo3rd` (§8): a member's `corpid`, `userid`, `open_userid` (a
/// non-member gets only `openid`, which is never an employee: no field needed).
#[derive(Deserialize)]
pub(crate) struct UserInfo3rd {
    #[serde(default, alias = "CorpId")]
    pub(crate) corpid: String,
    #[serde(default, alias = "UserId")]
    pub(crate) userid: String,
    #[serde(default)]
    pub(crate) open_userid: String,
}

/// `auth/getuserinfo` (§4), as a 代开发 app's code is redeemed: a member's `userid` (a
/// non-member gets `openid` only, never an employee: no field needed).
#[derive(Deserialize)]
pub(crate) struct UserInfo {
    #[serde(default)]
    pub(crate) userid: String,
}

/// `user/get` (§6) and `department/get` (§7) answer a suite as they answer a self-built app:
/// the same response types. A department's `name` may be absent (代开发, not authorised: read
/// as empty) or the id itself (third-party apps).
pub(crate) use crate::connector::wecom::api::{
    DepartmentGetResponse as DepartmentAnswer, UserGetResponse as Member,
};

/// A GET endpoint: its path and the names of its two query parameters; `T` is its answer.
pub(crate) struct Get<T> {
    path: &'static str,
    params: [&'static str; 2],
    answer: PhantomData<fn() -> T>,
}

impl<T> Get<T> {
    const fn new(path: &'static str, params: [&'static str; 2]) -> Self {
        Self {
            path,
            params,
            answer: PhantomData,
        }
    }
}

/// `gettoken` (§1) with the permanent code as `corpsecret` (a 代开发 app, see
/// [`super::CorpTokenApi`]).
pub(crate) const GETTOKEN: Get<TokenAnswer> =
    Get::new("/cgi-bin/gettoken", ["corpid", "corpsecret"]);
/// `service/auth/getuserinfo3rd` (§8): a third-party app's login code.
pub(crate) const USER_INFO_3RD: Get<UserInfo3rd> = Get::new(
    "/cgi-bin/service/auth/getuserinfo3rd",
    ["suite_access_token", "code"],
);
/// `auth/getuserinfo` (§4): a 代开发 app's login code, with the corp's token.
pub(crate) const USER_INFO: Get<UserInfo> =
    Get::new("/cgi-bin/auth/getuserinfo", ["access_token", "code"]);
/// `user/get` (§6), with the corp's token.
pub(crate) const USER_GET: Get<Member> = Get::new("/cgi-bin/user/get", ["access_token", "userid"]);
/// `department/get` (§7), with the corp's token.
pub(crate) const DEPARTMENT_GET: Get<DepartmentAnswer> =
    Get::new("/cgi-bin/department/get", ["access_token", "id"]);

/// The suite's HTTP client.
#[derive(Clone)]
pub(crate) struct SuiteApi {
    http: reqwest::Client,
    base: String,
    /// Where each call is counted, under WeCom's name (`wecom_oidc_wecom_api_*`).
    metrics: Arc<Metrics>,
}

impl SuiteApi {
    pub(crate) fn new(
        base: &str,
        timeout: Duration,
        proxy: Option<&str>,
    ) -> Result<Self, ConnectorError> {
        let builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        let http = crate::connector::wecom::proxy::with_proxy(builder, proxy)?
            .build()
            .map_err(|e| ConnectorError::Unavailable(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            metrics: Arc::new(Metrics::new()),
        })
    }

    /// The same client, counting its calls into `metrics`.
    pub(crate) fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    pub(crate) async fn suite_token(
        &self,
        suite_id: &str,
        suite_secret: &str,
        suite_ticket: &str,
    ) -> Result<TokenAnswer, ConnectorError> {
        let body = json!({"suite_id": suite_id, "suite_secret": suite_secret, "suite_ticket": suite_ticket});
        self.call("/cgi-bin/service/get_suite_token", &[], Some(body))
            .await
    }

    pub(crate) async fn permanent_code(
        &self,
        suite_token: &str,
        auth_code: &str,
    ) -> Result<PermanentCodeAnswer, ConnectorError> {
        let body = json!({ "auth_code": auth_code });
        self.post_as_suite("/cgi-bin/service/get_permanent_code", suite_token, body)
            .await
    }

    pub(crate) async fn corp_token(
        &self,
        suite_token: &str,
        corp_id: &str,
        permanent_code: &str,
    ) -> Result<TokenAnswer, ConnectorError> {
        let body = json!({"auth_corpid": corp_id, "permanent_code": permanent_code});
        self.post_as_suite("/cgi-bin/service/get_corp_token", suite_token, body)
            .await
    }

    /// A POST of the service-provider API (§8), authorised by the suite's token.
    async fn post_as_suite<T: DeserializeOwned>(
        &self,
        path: &str,
        suite_token: &str,
        body: serde_json::Value,
    ) -> Result<T, ConnectorError> {
        self.call(path, &[("suite_access_token", suite_token)], Some(body))
            .await
    }

    /// One GET of `endpoint` with its two query parameters set to `values`.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        endpoint: Get<T>,
        values: [&str; 2],
    ) -> Result<T, ConnectorError> {
        let [a, b] = endpoint.params;
        self.call(endpoint.path, &[(a, values[0]), (b, values[1])], None)
            .await
    }

    /// GET (no body) or POST JSON; `errcode != 0` is [`ConnectorError::Upstream`]. Counted by
    /// endpoint and errcode (`transport` when no WeCom answer came).
    async fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Result<T, ConnectorError> {
        let url = format!("{}{path}", self.base);
        let request = match body {
            Some(b) => self.http.post(url).json(&b),
            None => self.http.get(url),
        };
        let started = std::time::Instant::now();
        let answer = answer_of(path, request.query(query)).await;
        let code = match &answer {
            Ok(_) => "0".to_owned(),
            Err(ConnectorError::Upstream { code, .. }) => code.to_string(),
            Err(_) => "transport".to_owned(),
        };
        self.metrics.record_upstream_call(
            crate::connector::wecom::METRICS_NAME,
            path,
            &code,
            started.elapsed(),
        );
        answer
    }
}

/// Sends `request` to `path` and reads WeCom's answer: `errcode != 0` is
/// [`ConnectorError::Upstream`], anything but a JSON answer of `T` is
/// [`ConnectorError::Unavailable`].
async fn answer_of<T: DeserializeOwned>(
    path: &str,
    request: reqwest::RequestBuilder,
) -> Result<T, ConnectorError> {
    // Without the URL: its query holds the token or the code.
    let transport = |e: reqwest::Error| {
        ConnectorError::Unavailable(format!("WeCom {path}: {}", e.without_url()))
    };
    let response = request.send().await.map_err(transport)?;
    if !response.status().is_success() {
        return Err(ConnectorError::Unavailable(format!(
            "WeCom {path} answered HTTP {}",
            response.status()
        )));
    }
    let bytes = response.bytes().await.map_err(transport)?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ConnectorError::Unavailable(format!(
            "WeCom {path} answered too much"
        )));
    }
    let envelope: Envelope = serde_json::from_slice(&bytes).map_err(|_| {
        ConnectorError::Unavailable(format!("WeCom {path} answered something not JSON"))
    })?;
    if envelope.errcode != 0 {
        return Err(ConnectorError::Upstream {
            code: envelope.errcode,
            message: format!(
                "{path}: {}",
                envelope
                    .errmsg
                    .chars()
                    .take(MAX_ERRMSG_CHARS)
                    .collect::<String>()
            ),
        });
    }
    serde_json::from_slice(&bytes)
        .map_err(|_| ConnectorError::Unavailable(format!("WeCom {path} answered unexpected JSON")))
}
