//! Typed HTTP client for the WeCom server APIs the login needs (wecom-api.md §1, §4, §6): one
//! response type per endpoint, success decided by `errcode` alone, errors that never carry the
//! access_token, the code or the secret.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::connector::ConnectorError;
use crate::metrics::Metrics;

/// wecom-api.md §10: `-1` means "system busy; retry, at most 3 times".
const MAX_BUSY_RETRIES: u32 = 3;
/// The WeCom error code for "system busy".
const SYSTEM_BUSY: i64 = -1;
/// Pause before the n-th busy retry is `n * BUSY_BACKOFF`, so a busy WeCom is not hammered.
const BUSY_BACKOFF: Duration = Duration::from_millis(50);
/// wecom-api.md §1, §10: "api freq out of limit". WeCom blocks the API for 60 s (minute limit)
/// or 60 min (hour limit); calling again during the block only spends more of the quota.
const RATE_LIMITED: i64 = 45009;
/// wecom-api.md §10: too many concurrent calls.
const TOO_MANY_CONCURRENT: i64 = 45033;
/// Pause before the one retry after 45033.
const CONCURRENCY_BACKOFF: Duration = Duration::from_millis(500);
/// The largest response body we read. `user/get` is the biggest answer we ask for (a few KiB
/// even with `extattr`); the cap keeps a misbehaving upstream from exhausting memory.
const MAX_BODY_BYTES: usize = 1 << 20;
/// `errmsg` is cut to this many characters before it reaches an error value or a log.
const MAX_ERRMSG_CHARS: usize = 200;
/// What replaces a secret found inside an upstream message.
const REDACTED: &str = "[redacted]";

/// Every answer: WeCom's `errcode` / `errmsg` envelope (`errcode` absent on success for some
/// endpoints) around the endpoint's own fields, which all have defaults so that an error body
/// decodes too.
#[derive(Deserialize)]
struct Reply<T> {
    /// WeCom's error code; 0 is success.
    #[serde(default)]
    errcode: i64,
    /// WeCom's error message (`"ok"` on success).
    #[serde(default)]
    errmsg: Option<String>,
    #[serde(flatten)]
    body: T,
}

/// `GET /cgi-bin/gettoken` (wecom-api.md §1).
///
/// Every field has a default: error bodies omit the token fields, and success is decided by
/// `errcode` alone. A body without `errcode` counts as 0, and is then checked for a usable token.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct GetTokenResponse {
    /// The app's access token (at most 512 bytes).
    pub(crate) access_token: Option<String>,
    /// Seconds until the token expires, normally 7200.
    pub(crate) expires_in: Option<i64>,
}

impl std::fmt::Debug for GetTokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetTokenResponse")
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| REDACTED),
            )
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// `GET /cgi-bin/auth/getuserinfo` (wecom-api.md §4): `userid` for a corp member, `openid`
/// (and maybe `external_userid`) for anyone else, and a `user_ticket` when the login used
/// `snsapi_privateinfo`.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct GetUserInfoResponse {
    /// The member's UserId; present only for corp members.
    pub(crate) userid: Option<String>,
    /// Set instead of `userid` for a person who is not a member of the corp.
    pub(crate) openid: Option<String>,
    /// The ticket for `getuserdetail` (≤ 512 bytes, 1800 s), only after `snsapi_privateinfo`.
    pub(crate) user_ticket: Option<String>,
}

// Written by hand: the user_ticket is a credential for the member's private data.
impl std::fmt::Debug for GetUserInfoResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetUserInfoResponse")
            .field("userid", &self.userid)
            .field("openid", &self.openid)
            .field("user_ticket", &self.user_ticket.as_ref().map(|_| REDACTED))
            .finish()
    }
}

/// `POST /cgi-bin/auth/getuserdetail` (wecom-api.md §5): the sensitive profile fields, all
/// strings; empty ones are treated as absent. `user/get` (§6) carries the same fields, but
/// withholds them from apps created after 2022-06-20.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct UserDetailResponse {
    /// `"0"` unknown, `"1"` male, `"2"` female.
    pub(crate) gender: Option<String>,
    /// Avatar URL (a default image when the member shared nothing).
    pub(crate) avatar: Option<String>,
    /// Mobile number.
    pub(crate) mobile: Option<String>,
    /// Personal e-mail.
    pub(crate) email: Option<String>,
    /// Corporate e-mail (企业邮箱).
    pub(crate) biz_mail: Option<String>,
    /// Postal address.
    pub(crate) address: Option<String>,
}

/// The department of `department/get` (wecom-api.md §7); only its name is used (the structure
/// comes from `department/simplelist`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DepartmentEntry {
    /// Display name (withheld — absent, empty or `null` — for some app kinds: §7).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(crate) name: String,
}

/// A string field an upstream may send as `null`: read as empty, like an absent one.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// One tag of `tag/list` (wecom-api.md §7).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TagEntry {
    /// Tag id.
    pub(crate) tagid: i64,
    /// Tag name.
    #[serde(default)]
    pub(crate) tagname: String,
}

/// `GET /cgi-bin/tag/list` (wecom-api.md §7).
#[derive(Debug, Deserialize)]
pub(crate) struct TagListResponse {
    /// Every tag.
    #[serde(default)]
    pub(crate) taglist: Vec<TagEntry>,
}

/// A member listed in a tag.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TagUser {
    /// The member's UserId.
    pub(crate) userid: String,
}

/// `GET /cgi-bin/tag/get?tagid=` (wecom-api.md §7): the tag's members and departments.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TagGetResponse {
    /// Members tagged directly.
    pub(crate) userlist: Vec<TagUser>,
    /// Departments tagged: their members count as tagged.
    pub(crate) partylist: Vec<i64>,
}

/// `GET /cgi-bin/user/get` (wecom-api.md §6), only the fields the login uses. Since the 2022
/// privacy change apps created after 2022-06-20 get no `email` / `biz_mail` here; whether the
/// keys are dropped or sent empty is unconfirmed, so both are optional and empty means absent.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct UserGetResponse {
    /// Display name; not removed by the 2022 privacy change.
    pub(crate) name: Option<String>,
    /// 1 active, 2 disabled, 4 not activated, 5 left.
    pub(crate) status: Option<i64>,
    /// English name / alias.
    pub(crate) alias: Option<String>,
    /// Job title.
    pub(crate) position: Option<String>,
    /// Ids of the member's departments the app may view.
    pub(crate) department: Vec<i64>,
    /// The sensitive fields (`mobile`, `gender`, `email`, `biz_mail`, `avatar`, `address`),
    /// as `getuserdetail` names them.
    #[serde(flatten)]
    pub(crate) private: UserDetailResponse,
}

/// `POST /cgi-bin/linkedcorp/user/get` (wecom-api.md §12): a member of a linked corp
/// (互联企业 / 上下游). The `user_info` wrapper is unconfirmed (the field list is confirmed for
/// `linkedcorp/user/list`); an answer without it is treated as "cannot read this member".
#[derive(Debug, Deserialize)]
pub(crate) struct LinkedUserResponse {
    /// The member.
    #[serde(default)]
    pub(crate) user_info: Option<LinkedUserInfo>,
}

/// The member of a linked corp, as `linkedcorp/user/get` describes them (wecom-api.md §12).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LinkedUserInfo {
    /// The linked corp's CorpID.
    pub(crate) corpid: Option<String>,
    /// Display name.
    pub(crate) name: Option<String>,
    /// Departments as `LINKEDID/DEPTID` strings.
    pub(crate) department: Vec<String>,
    /// Mobile number.
    pub(crate) mobile: Option<String>,
    /// E-mail.
    pub(crate) email: Option<String>,
    /// Job title.
    pub(crate) position: Option<String>,
}

/// One department of `department/simplelist` (wecom-api.md §7): structure without names.
#[derive(Debug, Clone, Copy, Deserialize)]
pub(crate) struct SimpleDepartment {
    /// Department id; the corp's root is 1.
    pub(crate) id: i64,
    /// Parent id; 0 for the root.
    #[serde(default)]
    pub(crate) parentid: i64,
}

/// `GET /cgi-bin/department/simplelist` (wecom-api.md §7): every department the app may see,
/// ids and parents only — one cheap call for the whole structure, even in a large corp.
#[derive(Debug, Deserialize)]
pub(crate) struct DepartmentSimpleListResponse {
    /// The departments.
    #[serde(default)]
    pub(crate) department_id: Vec<SimpleDepartment>,
}

/// `GET /cgi-bin/department/get?id=` (wecom-api.md §7): one department with its name.
#[derive(Debug, Deserialize)]
pub(crate) struct DepartmentGetResponse {
    /// The department.
    #[serde(default)]
    pub(crate) department: Option<DepartmentEntry>,
}

/// The HTTP client for one WeCom API base URL. Cheap to clone (reqwest's client is an `Arc`).
#[derive(Clone, Debug)]
pub(crate) struct ApiClient {
    http: reqwest::Client,
    /// e.g. `https://qyapi.weixin.qq.com`, without a trailing slash.
    base: String,
    timeout: Duration,
    /// Where each call's endpoint, errcode and latency are counted.
    metrics: Arc<Metrics>,
    /// APIs WeCom has rate-limited, not to be called again until their block ends.
    backoff: Arc<super::backoff::Backoff>,
}

impl ApiClient {
    /// A client for `base` whose every call (connect included) ends after `timeout`, through
    /// `proxy` when one is set (else the environment's proxy variables).
    pub(crate) fn new(
        base: &str,
        timeout: Duration,
        proxy: Option<&str>,
    ) -> Result<Self, ConnectorError> {
        let http = super::proxy::with_proxy(reqwest::Client::builder(), proxy)?
            .connect_timeout(timeout)
            .timeout(timeout)
            // Every WeCom URL carries the access_token (or the corpsecret) in its query: following
            // a redirect could hand it to another host. WeCom itself only redirects plain http
            // (301, wecom-api.md "Conventions"), which is a configuration error to surface.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("wecom-oidc/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ConnectorError::Unavailable(format!(
                    "cannot build the WeCom HTTP client: {}",
                    e.without_url()
                ))
            })?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            timeout,
            metrics: Arc::new(Metrics::new()),
            backoff: Arc::new(super::backoff::Backoff::default()),
        })
    }

    /// The same client, counting its calls into `metrics`.
    pub(crate) fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// `GET /cgi-bin/gettoken?corpid=&corpsecret=` (wecom-api.md §1).
    pub(crate) async fn get_token(
        &self,
        corp_id: &str,
        secret: &str,
    ) -> Result<GetTokenResponse, ConnectorError> {
        self.get(
            "/cgi-bin/gettoken",
            &[("corpid", corp_id), ("corpsecret", secret)],
            &[secret],
        )
        .await
    }

    /// `GET /cgi-bin/auth/getuserinfo?access_token=&code=` (wecom-api.md §4).
    pub(crate) async fn get_user_info(
        &self,
        access_token: &str,
        code: &str,
    ) -> Result<GetUserInfoResponse, ConnectorError> {
        self.get(
            "/cgi-bin/auth/getuserinfo",
            &[("access_token", access_token), ("code", code)],
            &[access_token, code],
        )
        .await
    }

    /// `GET /cgi-bin/user/get?access_token=&userid=` (wecom-api.md §6).
    pub(crate) async fn get_user(
        &self,
        access_token: &str,
        userid: &str,
    ) -> Result<UserGetResponse, ConnectorError> {
        self.read("/cgi-bin/user/get", access_token, &[("userid", userid)])
            .await
    }

    /// `POST /cgi-bin/auth/getuserdetail?access_token=` with `{"user_ticket": …}`
    /// (wecom-api.md §5). A read, so the busy retry applies.
    pub(crate) async fn get_user_detail(
        &self,
        access_token: &str,
        user_ticket: &str,
    ) -> Result<UserDetailResponse, ConnectorError> {
        let body = serde_json::json!({ "user_ticket": user_ticket }).to_string();
        self.call(
            "/cgi-bin/auth/getuserdetail",
            &[("access_token", access_token)],
            Some(&body),
            &[access_token, user_ticket],
        )
        .await
    }

    /// `GET /cgi-bin/department/simplelist?access_token=` (wecom-api.md §7).
    pub(crate) async fn list_departments_simple(
        &self,
        access_token: &str,
    ) -> Result<DepartmentSimpleListResponse, ConnectorError> {
        self.read("/cgi-bin/department/simplelist", access_token, &[])
            .await
    }

    /// `GET /cgi-bin/department/get?access_token=&id=` (wecom-api.md §7).
    pub(crate) async fn get_department(
        &self,
        access_token: &str,
        id: i64,
    ) -> Result<DepartmentGetResponse, ConnectorError> {
        let id = id.to_string();
        self.read("/cgi-bin/department/get", access_token, &[("id", &id)])
            .await
    }

    /// `POST /cgi-bin/linkedcorp/user/get?access_token=` with `{"userid": "CORPID/USERID"}`
    /// (wecom-api.md §12). A read, so the busy retry applies.
    pub(crate) async fn get_linked_user(
        &self,
        access_token: &str,
        userid: &str,
    ) -> Result<LinkedUserResponse, ConnectorError> {
        let body = serde_json::json!({ "userid": userid }).to_string();
        self.read_posting("/cgi-bin/linkedcorp/user/get", access_token, &body)
            .await
    }

    /// `GET /cgi-bin/tag/list?access_token=` (wecom-api.md §7).
    pub(crate) async fn list_tags(
        &self,
        access_token: &str,
    ) -> Result<TagListResponse, ConnectorError> {
        self.read("/cgi-bin/tag/list", access_token, &[]).await
    }

    /// `GET /cgi-bin/tag/get?access_token=&tagid=` (wecom-api.md §7).
    pub(crate) async fn get_tag(
        &self,
        access_token: &str,
        tagid: i64,
    ) -> Result<TagGetResponse, ConnectorError> {
        let tagid = tagid.to_string();
        self.read("/cgi-bin/tag/get", access_token, &[("tagid", &tagid)])
            .await
    }

    /// One GET with the busy retry. `secrets` are scrubbed from every message that leaves here.
    async fn get<T: DeserializeOwned>(
        &self,
        path: &'static str,
        query: &[(&str, &str)],
        secrets: &[&str],
    ) -> Result<T, ConnectorError> {
        self.call(path, query, None, secrets).await
    }

    /// A GET of member or directory data: `access_token` first in the query, then `params`,
    /// and the token scrubbed from every message.
    async fn read<T: DeserializeOwned>(
        &self,
        path: &'static str,
        access_token: &str,
        params: &[(&str, &str)],
    ) -> Result<T, ConnectorError> {
        let mut query = vec![("access_token", access_token)];
        query.extend_from_slice(params);
        self.call(path, &query, None, &[access_token]).await
    }

    /// A read of member data asked for with a JSON `body` (POST), the token scrubbed from
    /// every message.
    async fn read_posting<T: DeserializeOwned>(
        &self,
        path: &'static str,
        access_token: &str,
        body: &str,
    ) -> Result<T, ConnectorError> {
        let query = [("access_token", access_token)];
        self.call(path, &query, Some(body), &[access_token]).await
    }

    /// One call (GET, or POST with a JSON `body`) with the busy retry: every endpoint we call
    /// is a read, so repeating it is safe.
    async fn call<T: DeserializeOwned>(
        &self,
        path: &'static str,
        query: &[(&str, &str)],
        body: Option<&str>,
        secrets: &[&str],
    ) -> Result<T, ConnectorError> {
        let mut busy_retries = 0;
        let mut concurrency_retried = false;
        loop {
            if let Some(wait) = self.backoff.blocked_for(path) {
                self.metrics.record_upstream_call(
                    super::METRICS_NAME,
                    path,
                    "backoff",
                    Duration::ZERO,
                );
                return Err(ConnectorError::Upstream {
                    code: RATE_LIMITED,
                    message: format!(
                        "not calling {path}: WeCom rate-limited it; backing off for {} s more",
                        wait.as_secs().max(1)
                    ),
                });
            }
            let started = std::time::Instant::now();
            let response: Reply<T> = match self.get_once(path, query, body, secrets).await {
                Ok(r) => r,
                Err(e) => {
                    self.metrics.record_upstream_call(
                        super::METRICS_NAME,
                        path,
                        "transport",
                        started.elapsed(),
                    );
                    return Err(e);
                }
            };
            let code = response.errcode;
            self.metrics.record_upstream_call(
                super::METRICS_NAME,
                path,
                &code.to_string(),
                started.elapsed(),
            );
            tracing::debug!(path, errcode = code, "WeCom API call");
            match code {
                0 => {
                    self.backoff.succeeded(path);
                    return Ok(response.body);
                }
                SYSTEM_BUSY if busy_retries < MAX_BUSY_RETRIES => {
                    busy_retries += 1;
                    tokio::time::sleep(BUSY_BACKOFF * busy_retries).await;
                }
                // Too many concurrent calls: wait a moment, then try once more, rather than
                // joining the crowd again at once.
                TOO_MANY_CONCURRENT if !concurrency_retried => {
                    concurrency_retried = true;
                    tokio::time::sleep(CONCURRENCY_BACKOFF).await;
                }
                RATE_LIMITED => {
                    let block = self.backoff.rate_limited(path);
                    tracing::warn!(
                        path,
                        block_secs = block.as_secs(),
                        "WeCom rate-limited this API (45009); not calling it again until the block ends"
                    );
                    return Err(ConnectorError::Upstream {
                        code,
                        message: sanitize(response.errmsg.as_deref().unwrap_or_default(), secrets),
                    });
                }
                _ => {
                    return Err(ConnectorError::Upstream {
                        code,
                        message: sanitize(response.errmsg.as_deref().unwrap_or_default(), secrets),
                    })
                }
            }
        }
    }

    /// One GET (or POST of a JSON `body`), decoded, without looking at `errcode`.
    async fn get_once<T: DeserializeOwned>(
        &self,
        path: &'static str,
        query: &[(&str, &str)],
        body: Option<&str>,
        secrets: &[&str],
    ) -> Result<T, ConnectorError> {
        let mut url = url::Url::parse(&format!("{}{}", self.base, path)).map_err(|_| {
            ConnectorError::Unavailable(format!("the WeCom API base URL is invalid ({path})"))
        })?;
        url.query_pairs_mut().extend_pairs(query);

        let mut connect_retries = 0;
        let mut response = loop {
            let request = match body {
                None => self.http.get(url.clone()),
                Some(body) => self
                    .http
                    .post(url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_owned()),
            };
            match request.send().await {
                Ok(r) => break r,
                // A connection that was never made carried no request: retrying cannot repeat
                // anything. Timeouts are not retried: the person is already waiting.
                Err(e) if e.is_connect() && connect_retries < MAX_BUSY_RETRIES => {
                    connect_retries += 1;
                    tracing::debug!(
                        path,
                        attempt = connect_retries,
                        "WeCom unreachable, retrying"
                    );
                    tokio::time::sleep(BUSY_BACKOFF * connect_retries).await;
                }
                Err(e) => return Err(self.transport_error(path, e, secrets)),
            }
        };
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            // WeCom answers 200 even for errors; anything else means a wrong base URL (404),
            // plain http (301) or a proxy in trouble (wecom-api.md "Conventions").
            return Err(ConnectorError::Unavailable(format!(
                "WeCom answered HTTP {} on {path}",
                status.as_u16()
            )));
        }

        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(path, e, secrets))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ConnectorError::Unavailable(format!(
                    "WeCom's answer on {path} is larger than {MAX_BODY_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        // The serde error is left out of the message: it may quote the body, which may quote
        // the token.
        serde_json::from_slice(&body).map_err(|_| {
            ConnectorError::Unavailable(format!(
                "WeCom's answer on {path} is not the expected JSON"
            ))
        })
    }

    /// A network or timeout failure, described without the URL (whose query holds the
    /// access_token, the code or the secret).
    fn transport_error(
        &self,
        path: &'static str,
        err: reqwest::Error,
        secrets: &[&str],
    ) -> ConnectorError {
        let what = if err.is_timeout() {
            format!("no answer within {} ms", self.timeout.as_millis())
        } else if err.is_connect() {
            format!("cannot connect: {}", err.without_url())
        } else {
            err.without_url().to_string()
        };
        ConnectorError::Unavailable(sanitize(&format!("WeCom {path}: {what}"), secrets))
    }
}

/// Makes an upstream message safe to keep and show: every secret (raw or form-encoded) is
/// replaced, control characters are dropped and the result is cut to [`MAX_ERRMSG_CHARS`].
/// WeCom's `errmsg` is not known to echo credentials, but a proxy or a future format might.
pub(crate) fn sanitize(message: &str, secrets: &[&str]) -> String {
    let mut out: String = message.chars().filter(|c| !c.is_control()).collect();
    // Redact before cutting: a secret straddling the cut must not survive half-visible.
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(*secret, REDACTED);
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        if encoded != *secret {
            out = out.replace(&encoded, REDACTED);
        }
    }
    out.chars().take(MAX_ERRMSG_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_removes_raw_and_encoded_secrets() {
        let msg = "invalid code abc/+= and token T0KEN, encoded abc%2F%2B%3D";
        let out = sanitize(msg, &["abc/+=", "T0KEN"]);
        assert!(!out.contains("abc/+="));
        assert!(!out.contains("abc%2F%2B%3D"));
        assert!(!out.contains("T0KEN"));
        assert_eq!(
            out,
            "invalid code [redacted] and token [redacted], encoded [redacted]"
        );
    }

    #[test]
    fn sanitize_cuts_long_messages_and_drops_control_characters() {
        let msg = format!("a\nb{}", "x".repeat(1000));
        let out = sanitize(&msg, &[]);
        assert_eq!(out.chars().count(), MAX_ERRMSG_CHARS);
        assert!(out.starts_with("abx"));
    }

    #[test]
    fn sanitize_does_not_leave_half_a_secret_at_the_cut() {
        let secret = "S".repeat(50);
        let msg = format!("{}{}", "x".repeat(MAX_ERRMSG_CHARS - 10), secret);
        let out = sanitize(&msg, &[&secret]);
        assert!(!out.contains("SSSSS"));
    }

    #[test]
    fn error_bodies_decode_with_absent_fields() {
        let r: Reply<UserGetResponse> = serde_json::from_str(
            r#"{"errcode":60111,"errmsg":"userid not found","department":[]}"#,
        )
        .expect("decodes");
        assert_eq!(r.errcode, 60111);
        assert_eq!(r.errmsg.as_deref(), Some("userid not found"));
        assert!(r.body.name.is_none() && r.body.status.is_none());
    }

    #[test]
    fn a_withheld_department_name_reads_empty_whether_absent_empty_or_null() {
        for body in [
            r#"{"id":2}"#,
            r#"{"id":2,"name":""}"#,
            r#"{"id":2,"name":null}"#,
        ] {
            let d: DepartmentEntry = serde_json::from_str(body).expect(body);
            assert_eq!(d.name, "", "{body}");
        }
        let d: DepartmentEntry = serde_json::from_str(r#"{"name":"研发"}"#).expect("named");
        assert_eq!(d.name, "研发");
    }

    #[test]
    fn token_response_debug_redacts_the_token() {
        let r: GetTokenResponse = serde_json::from_str(
            r#"{"errcode":0,"errmsg":"ok","access_token":"SECRET-TOKEN","expires_in":7200}"#,
        )
        .expect("decodes");
        let dbg = format!("{r:?}");
        assert!(!dbg.contains("SECRET-TOKEN"));
        assert!(dbg.contains("7200"));
    }
}
