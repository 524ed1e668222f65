//! Typed HTTP client for the service-provider APIs of a WeCom suite (wecom-api.md §8) and the
//! one data API a login needs (`user/get`, §6): success decided by `errcode` alone, tokens in
//! the query string, errors that never carry a token, a code or a secret.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::connector::ConnectorError;

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

/// `user/get` (§6), the fields a suite login uses.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct Member {
    pub(crate) name: Option<String>,
    pub(crate) status: Option<i64>,
    /// Only the departments the app may view (§6).
    pub(crate) department: Vec<i64>,
}

/// `department/get` (§7): `name` may be absent (代开发, not authorised) or the id itself
/// (third-party apps).
#[derive(Deserialize)]
pub(crate) struct DepartmentAnswer {
    #[serde(default)]
    pub(crate) department: Option<Department>,
}

/// The department of [`DepartmentAnswer`].
#[derive(Deserialize)]
pub(crate) struct Department {
    #[serde(default)]
    pub(crate) name: Option<String>,
}

/// The suite's HTTP client.
#[derive(Clone)]
pub(crate) struct SuiteApi {
    http: reqwest::Client,
    base: String,
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
        })
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
        self.call(
            "/cgi-bin/service/get_permanent_code",
            &[("suite_access_token", suite_token)],
            Some(json!({ "auth_code": auth_code })),
        )
        .await
    }

    pub(crate) async fn corp_token(
        &self,
        suite_token: &str,
        corp_id: &str,
        permanent_code: &str,
    ) -> Result<TokenAnswer, ConnectorError> {
        self.call(
            "/cgi-bin/service/get_corp_token",
            &[("suite_access_token", suite_token)],
            Some(json!({"auth_corpid": corp_id, "permanent_code": permanent_code})),
        )
        .await
    }

    /// `gettoken` with the permanent code as `corpsecret` (a 代开发 app, see
    /// [`super::CorpTokenApi`]).
    pub(crate) async fn gettoken(
        &self,
        corp_id: &str,
        permanent_code: &str,
    ) -> Result<TokenAnswer, ConnectorError> {
        self.call(
            "/cgi-bin/gettoken",
            &[("corpid", corp_id), ("corpsecret", permanent_code)],
            None,
        )
        .await
    }

    pub(crate) async fn user_info_3rd(
        &self,
        suite_token: &str,
        code: &str,
    ) -> Result<UserInfo3rd, ConnectorError> {
        self.call(
            "/cgi-bin/service/auth/getuserinfo3rd",
            &[("suite_access_token", suite_token), ("code", code)],
            None,
        )
        .await
    }

    pub(crate) async fn user_get(
        &self,
        corp_token: &str,
        userid: &str,
    ) -> Result<Member, ConnectorError> {
        self.call(
            "/cgi-bin/user/get",
            &[("access_token", corp_token), ("userid", userid)],
            None,
        )
        .await
    }

    pub(crate) async fn user_info(
        &self,
        corp_token: &str,
        code: &str,
    ) -> Result<UserInfo, ConnectorError> {
        self.call(
            "/cgi-bin/auth/getuserinfo",
            &[("access_token", corp_token), ("code", code)],
            None,
        )
        .await
    }

    pub(crate) async fn department_get(
        &self,
        corp_token: &str,
        id: i64,
    ) -> Result<DepartmentAnswer, ConnectorError> {
        let id = id.to_string();
        self.call(
            "/cgi-bin/department/get",
            &[("access_token", corp_token), ("id", &id)],
            None,
        )
        .await
    }

    /// GET (no body) or POST JSON; `errcode != 0` is [`ConnectorError::Upstream`].
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
        let response = request.query(query).send().await.map_err(|e| {
            ConnectorError::Unavailable(format!("WeCom {path}: {}", e.without_url()))
        })?;
        if !response.status().is_success() {
            return Err(ConnectorError::Unavailable(format!(
                "WeCom {path} answered HTTP {}",
                response.status()
            )));
        }
        let bytes = response.bytes().await.map_err(|e| {
            ConnectorError::Unavailable(format!("WeCom {path}: {}", e.without_url()))
        })?;
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
        serde_json::from_slice(&bytes).map_err(|_| {
            ConnectorError::Unavailable(format!("WeCom {path} answered unexpected JSON"))
        })
    }
}
