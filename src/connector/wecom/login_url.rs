//! The two WeCom login links: the OAuth link for WeCom's in-app browser (wecom-api.md §2) and
//! the PC / external-browser login page (§3), chosen by the User-Agent (§9).

use url::Url;

use crate::connector::ConnectorError;

/// The parameters both links carry.
pub(crate) struct LinkParams<'a> {
    /// The CorpID (`appid`).
    pub(crate) corp_id: &'a str,
    /// The app's AgentId.
    pub(crate) agent_id: i64,
    /// Our callback URL; percent-encoded here.
    pub(crate) redirect_uri: &'a str,
    /// Opaque state, returned unchanged on the callback.
    pub(crate) state: &'a str,
    /// Ask for `snsapi_privateinfo` (in-app link only) instead of the silent `snsapi_base`.
    pub(crate) private_info: bool,
}

/// Whether the browser is WeCom's in-app browser. Its User-Agent contains `wxwork/<ver>`; the
/// `MicroMessenger` token it also sends is shared with plain WeChat, so it proves nothing
/// (wecom-api.md §9).
pub(crate) fn is_wecom_browser(user_agent: Option<&str>) -> bool {
    user_agent.is_some_and(|ua| ua.to_ascii_lowercase().contains("wxwork"))
}

/// The `lang` of the PC login page: `en` when the first OIDC `ui_locales` tag is English
/// (`en`, `en-US` …), `zh` otherwise — WeCom only offers these two (wecom-api.md §3).
pub(crate) fn page_lang(ui_locales: Option<&str>) -> &'static str {
    let first = ui_locales.and_then(|l| l.split_whitespace().next());
    match first {
        Some(tag) => {
            let primary = tag.split(['-', '_']).next().unwrap_or_default();
            if primary.eq_ignore_ascii_case("en") {
                "en"
            } else {
                "zh"
            }
        }
        None => "zh",
    }
}

/// `{oauth_base}/connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope=snsapi_base&state&agentid#wechat_redirect`
/// (wecom-api.md §2). `snsapi_base` is a silent login that yields the UserId;
/// `snsapi_privateinfo` (with `agentid`, which it requires) makes the member confirm and
/// earns a `user_ticket` for `getuserdetail` (§5).
pub(crate) fn in_app_url(oauth_base: &str, p: &LinkParams<'_>) -> Result<String, ConnectorError> {
    let mut url = endpoint(oauth_base, "/connect/oauth2/authorize")?;
    url.query_pairs_mut()
        .append_pair("appid", p.corp_id)
        .append_pair("redirect_uri", p.redirect_uri)
        .append_pair("response_type", "code")
        .append_pair(
            "scope",
            if p.private_info {
                "snsapi_privateinfo"
            } else {
                "snsapi_base"
            },
        )
        .append_pair("state", p.state)
        .append_pair("agentid", &p.agent_id.to_string());
    // The `#wechat_redirect` suffix is required (wecom-api.md §2).
    url.set_fragment(Some("wechat_redirect"));
    Ok(url.into())
}

/// `{sso_base}/wwlogin/sso/login?login_type=CorpApp&appid&agentid&redirect_uri&state&lang`
/// (wecom-api.md §3): `CorpApp` because this is a self-built app, so `appid` is the CorpID and
/// `agentid` is required.
pub(crate) fn pc_url(
    sso_base: &str,
    p: &LinkParams<'_>,
    lang: &str,
) -> Result<String, ConnectorError> {
    let mut url = endpoint(sso_base, "/wwlogin/sso/login")?;
    url.query_pairs_mut()
        .append_pair("login_type", "CorpApp")
        .append_pair("appid", p.corp_id)
        .append_pair("agentid", &p.agent_id.to_string())
        .append_pair("redirect_uri", p.redirect_uri)
        .append_pair("state", p.state)
        .append_pair("lang", lang);
    Ok(url.into())
}

/// `base` + `path`, by string so that a base with a path prefix (a simulator mounted at
/// `/wecom-sim`) keeps it; `Url::join` would drop it.
fn endpoint(base: &str, path: &str) -> Result<Url, ConnectorError> {
    Url::parse(&format!("{}{path}", base.trim_end_matches('/'))).map_err(|_| {
        ConnectorError::Unavailable(format!("the WeCom login base URL {base:?} is invalid"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLBACK: &str = "https://idp.example.com/callback/wecom?x=1&y=a b";

    fn params() -> LinkParams<'static> {
        LinkParams {
            corp_id: "ww1436e0e65a779aee",
            agent_id: 1000002,
            redirect_uri: CALLBACK,
            state: "AbC123",
            private_info: false,
        }
    }

    #[test]
    fn in_app_link_has_wecoms_exact_shape_and_encodes_redirect_uri() {
        let url = in_app_url("https://open.weixin.qq.com", &params()).expect("url");
        assert_eq!(
            url,
            "https://open.weixin.qq.com/connect/oauth2/authorize?appid=ww1436e0e65a779aee\
             &redirect_uri=https%3A%2F%2Fidp.example.com%2Fcallback%2Fwecom%3Fx%3D1%26y%3Da+b\
             &response_type=code&scope=snsapi_base&state=AbC123&agentid=1000002#wechat_redirect"
        );
    }

    #[test]
    fn private_info_link_asks_for_snsapi_privateinfo_with_agentid() {
        let p = LinkParams {
            private_info: true,
            ..params()
        };
        let url = in_app_url("https://open.weixin.qq.com", &p).expect("url");
        assert!(url.contains("&scope=snsapi_privateinfo&"), "{url}");
        assert!(url.contains("&agentid=1000002#wechat_redirect"), "{url}");
    }

    #[test]
    fn pc_link_has_wecoms_exact_shape_and_encodes_redirect_uri() {
        let url = pc_url("https://login.work.weixin.qq.com", &params(), "en").expect("url");
        assert_eq!(
            url,
            "https://login.work.weixin.qq.com/wwlogin/sso/login?login_type=CorpApp\
             &appid=ww1436e0e65a779aee&agentid=1000002\
             &redirect_uri=https%3A%2F%2Fidp.example.com%2Fcallback%2Fwecom%3Fx%3D1%26y%3Da+b\
             &state=AbC123&lang=en"
        );
    }

    #[test]
    fn encoded_redirect_uri_decodes_back_to_the_original() {
        let url = Url::parse(&pc_url("https://sso.example", &params(), "zh").expect("url"))
            .expect("parses");
        let redirect = url
            .query_pairs()
            .find(|(k, _)| k == "redirect_uri")
            .map(|(_, v)| v.into_owned());
        assert_eq!(redirect.as_deref(), Some(CALLBACK));
        assert_eq!(url.query_pairs().filter(|(k, _)| k == "state").count(), 1);
    }

    #[test]
    fn base_url_path_prefix_is_kept() {
        let url =
            in_app_url("http://127.0.0.1:8080/wecom-sim/", &params()).expect("url with prefix");
        assert!(url.starts_with("http://127.0.0.1:8080/wecom-sim/connect/oauth2/authorize?"));
        let url = pc_url("http://127.0.0.1:8080/wecom-sim", &params(), "zh").expect("url");
        assert!(url.starts_with("http://127.0.0.1:8080/wecom-sim/wwlogin/sso/login?"));
    }

    #[test]
    fn invalid_base_url_is_an_error_not_a_panic() {
        assert!(in_app_url("not a url", &params()).is_err());
    }

    #[test]
    fn wecom_browser_is_detected_by_wxwork_case_insensitively() {
        let ua = "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 MicroMessenger/8.0 wxwork/4.1.0";
        assert!(is_wecom_browser(Some(ua)));
        assert!(is_wecom_browser(Some("Mozilla/5.0 WXWork/3.0")));
        // Plain WeChat sends MicroMessenger too, but is not WeCom.
        assert!(!is_wecom_browser(Some("Mozilla/5.0 MicroMessenger/8.0.1")));
        assert!(!is_wecom_browser(None));
    }

    #[test]
    fn page_language_follows_the_first_ui_locale() {
        assert_eq!(page_lang(Some("en-US zh-CN")), "en");
        assert_eq!(page_lang(Some("EN")), "en");
        assert_eq!(page_lang(Some("zh-CN en")), "zh");
        assert_eq!(page_lang(Some("fr")), "zh");
        assert_eq!(page_lang(Some("   ")), "zh");
        assert_eq!(page_lang(None), "zh");
    }
}
