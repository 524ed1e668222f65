//! The two WeCom login links: the OAuth link for WeCom's in-app browser (wecom-api.md §2) and
//! the PC / external-browser login page (§3), chosen by the User-Agent (§9); and the hand-off
//! for phones outside WeCom, which can use neither (§9).

use url::Url;

use crate::connector::{Bilingual, ConnectorError, Handoff};

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

/// User-Agent tokens of phones and tablets (matched case-insensitively). `mobile` covers
/// `Mobile Safari`, iOS's `Mobile/15E148`, Firefox's `Mobile;` and HarmonyOS NEXT's trailing
/// `Mobile`; the others name the systems outright. Android tablets send `Android` without
/// `Mobile` and count too: a tablet cannot scan its own screen either.
const MOBILE_TOKENS: &[&str] = &[
    "iphone",
    "ipad",
    "ipod",
    "android",
    "mobile",
    "harmonyos",
    "openharmony",
    "windows phone",
];

/// WeChat's desktop clients (Windows, macOS) send `MicroMessenger` too; their browser is on a
/// computer, where the QR page works (a phone scans it).
const WECHAT_DESKTOP_TOKENS: &[&str] = &["windowswechat", "macwechat"];

/// Whether the browser is on a phone or tablet but not inside WeCom (wecom-api.md §9): Safari,
/// Chrome, or WeChat's browser (`MicroMessenger` without `wxwork`). Such a browser can neither
/// use the in-app OAuth link (it only works inside WeCom) nor the QR page (the code would be
/// on the screen that has to scan it).
///
/// A known blind spot: iPadOS Safari asks for desktop sites by default and then sends a
/// Macintosh User-Agent that no server can tell from a Mac's; such an iPad gets the QR page.
pub(crate) fn is_phone_outside_wecom(user_agent: Option<&str>) -> bool {
    let Some(ua) = user_agent else {
        return false;
    };
    let ua = ua.to_ascii_lowercase();
    if ua.contains("wxwork") {
        return false;
    }
    if ua.contains("micromessenger") && !WECHAT_DESKTOP_TOKENS.iter().any(|t| ua.contains(t)) {
        // WeChat's browser: on phones it names the system as well, but a WeChat User-Agent
        // that does not say it is a desktop client is treated as a phone.
        return true;
    }
    MOBILE_TOKENS.iter().any(|t| ua.contains(t))
}

/// The hand-off for a phone outside WeCom: open the login inside WeCom, or use WeCom's PC login
/// page (`pc_url`, this login's state) on a computer.
pub(crate) fn phone_handoff(pc_url: String) -> Handoff {
    Handoff {
        app_name: Bilingual::new("企业微信", "WeCom"),
        why: Bilingual::new(
            "在手机上，企业微信登录只能在企业微信 App 内完成。这个浏览器无法打开企业微信的登录，也无法扫描显示在自己屏幕上的二维码。",
            "On a phone, signing in with WeCom works only inside the WeCom app. This browser cannot open WeCom's sign-in, and it cannot scan a QR code shown on its own screen.",
        ),
        how: Bilingual::new(
            "复制下面的链接，在企业微信的任意聊天中发送（例如发给自己），然后在企业微信里点开它。",
            "Copy the link below, send it in any WeCom chat (for example to yourself), then tap it inside WeCom.",
        ),
        other_device_url: pc_url,
        other_device_label: Bilingual::new(
            "仍要打开企业微信扫码登录页",
            "Open WeCom's QR sign-in page anyway",
        ),
    }
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

    // Real User-Agent strings, as the browsers send them, grouped by the page each must get.
    /// Phone and tablet browsers, WeChat's included: the handoff page.
    const PHONES_OUTSIDE_WECOM: [&str; 11] = [
        // iOS Safari
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        // iOS Chrome
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/123.0.6312.52 Mobile/15E148 Safari/604.1",
        // Android Chrome
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
        // Android Firefox
        "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
        // an Android tablet
        "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        // iPad Safari asking for mobile sites
        "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
        // iPad Chrome
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/123.0.6312.52 Mobile/15E148 Safari/604.1",
        // HarmonyOS, Huawei Browser
        "Mozilla/5.0 (Linux; Android 12; HarmonyOS; NOH-AN00; HMSCore 6.13.0.302) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.88 HuaweiBrowser/14.0.5.302 Mobile Safari/537.36",
        // HarmonyOS NEXT
        "Mozilla/5.0 (Phone; OpenHarmony 4.1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 Safari/537.36 ArkWeb/4.1.6.1 Mobile",
        // WeChat on iOS
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49(0x18003130) NetType/WIFI Language/zh_CN",
        // WeChat on Android
        "Mozilla/5.0 (Linux; Android 13; V2183A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 MMWEBID/2247 MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64",
    ];
    /// WeCom's own browser on every platform: the in-app link.
    const WECOM_EVERYWHERE: [&str; 4] = [
        // WeCom on iOS
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.22 MicroMessenger/7.0.1 Language/zh ColorScheme/Light",
        // WeCom on Android
        "Mozilla/5.0 (Linux; Android 13; 22081212C Build/TKQ1.220829.002; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/107.0.5304.141 Mobile Safari/537.36 wxwork/4.1.22 MicroMessenger/7.0.1 NetType/WIFI Language/zh Lang/zh ColorScheme/Light",
        // WeCom on Windows
        "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/107.0.0.0 Safari/537.36 wxwork/4.1.22 (MicroMessenger/6.2) WindowsWechat MailPlugin_Electron WeMail embeddisk",
        // WeCom on macOS
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) wxwork/4.1.22 (MicroMessenger/6.2) WeChat/2.0.4",
    ];
    /// Safari on a Mac, which iPadOS Safari also claims to be by default.
    const DESKTOP_SAFARI: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15";
    /// Computers, WeChat on Windows included: the QR page.
    const DESKTOPS: [&str; 5] = [
        // Chrome on Windows
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        // Firefox on Linux
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        DESKTOP_SAFARI,
        // Edge on Windows
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.67",
        // WeChat on Windows
        "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.138 Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x63090a13) XWEB/9129 Flue",
    ];

    #[test]
    fn phone_browsers_outside_wecom_get_the_handoff() {
        for ua in PHONES_OUTSIDE_WECOM {
            assert!(is_phone_outside_wecom(Some(ua)), "{ua}");
            assert!(!is_wecom_browser(Some(ua)), "{ua}");
        }
    }

    #[test]
    fn wecom_on_every_platform_gets_the_in_app_link_not_the_handoff() {
        for ua in WECOM_EVERYWHERE {
            assert!(is_wecom_browser(Some(ua)), "{ua}");
            assert!(!is_phone_outside_wecom(Some(ua)), "{ua}");
        }
    }

    #[test]
    fn desktop_browsers_and_wechat_on_a_computer_get_the_qr_page() {
        for ua in DESKTOPS {
            assert!(!is_phone_outside_wecom(Some(ua)), "{ua}");
            assert!(!is_wecom_browser(Some(ua)), "{ua}");
        }
        // No User-Agent at all (scripts, health checks): the QR page, as before.
        assert!(!is_phone_outside_wecom(None));
        assert!(!is_phone_outside_wecom(Some("")));
    }

    #[test]
    fn ipad_asking_for_desktop_sites_is_indistinguishable_from_a_mac() {
        // iPadOS Safari's default User-Agent is a Mac's (documented blind spot).
        assert!(!is_phone_outside_wecom(Some(DESKTOP_SAFARI)));
    }

    #[test]
    fn phone_detection_ignores_case() {
        assert!(is_phone_outside_wecom(Some("SomeBrowser (IPHONE)")));
        assert!(!is_phone_outside_wecom(Some("x (iPhone) WXWORK/4.0")));
    }

    #[test]
    fn handoff_offers_the_qr_page_it_was_given() {
        let h = phone_handoff("https://sso.example/wwlogin/sso/login?state=S".into());
        assert_eq!(
            h.other_device_url,
            "https://sso.example/wwlogin/sso/login?state=S"
        );
        assert_eq!(h.app_name.zh, "企业微信");
        assert_eq!(h.app_name.en, "WeCom");
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
