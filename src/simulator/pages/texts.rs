//! The login pages' languages (§3 `lang`) and their texts in Chinese and English.

use axum::http::{header, HeaderMap};

/// Page language (§3 `lang`: `zh` or `en`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lang {
    Zh,
    En,
}

impl Lang {
    pub(super) fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    pub(super) fn texts(self) -> &'static Texts {
        match self {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }

    /// `lang=zh|en` wins; otherwise the first of zh/en in `Accept-Language`; otherwise Chinese,
    /// WeCom's default.
    pub(super) fn pick(param: Option<&str>, headers: &HeaderMap) -> Lang {
        match param {
            Some("en") => return Lang::En,
            Some("zh") => return Lang::Zh,
            _ => {}
        }
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // Browsers list languages in preference order; q-values only restate that order.
        for tag in accept.split(',') {
            let tag = tag
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if tag.starts_with("en") {
                return Lang::En;
            }
            if tag.starts_with("zh") {
                return Lang::Zh;
            }
        }
        Lang::Zh
    }
}

/// Every string the pages show, per language.
pub(super) struct Texts {
    pub(super) html_lang: &'static str,
    pub(super) title_in_app: &'static str,
    pub(super) title_qr: &'static str,
    pub(super) title_confirm: &'static str,
    pub(super) title_error: &'static str,
    pub(super) intro_in_app: &'static str,
    pub(super) intro_qr: &'static str,
    pub(super) app_label: &'static str,
    pub(super) redirect_label: &'static str,
    pub(super) act_in_app: &'static str,
    pub(super) act_qr: &'static str,
    pub(super) non_member: &'static str,
    pub(super) cancel: &'static str,
    pub(super) confirm_intro: &'static str,
    pub(super) confirm_fields: &'static str,
    pub(super) agree: &'static str,
    pub(super) deny: &'static str,
    pub(super) status_active: &'static str,
    pub(super) status_disabled: &'static str,
    pub(super) status_not_activated: &'static str,
    pub(super) status_left: &'static str,
    pub(super) errcode_label: &'static str,
    pub(super) other_lang: &'static str,
    pub(super) footer: &'static str,
}

const ZH: Texts = Texts {
    html_lang: "zh-CN",
    title_in_app: "企业微信授权",
    title_qr: "企业微信扫码登录",
    title_confirm: "授权确认",
    title_error: "无法登录",
    intro_in_app: "在企业微信中打开此应用。选择以哪位成员的身份打开：",
    intro_qr: "请使用企业微信扫描二维码登录。模拟器中，选择扫码的成员：",
    app_label: "应用",
    redirect_label: "登录后跳转到",
    act_in_app: "以此身份打开",
    act_qr: "扫码登录为",
    non_member: "非企业成员（外部微信用户）",
    cancel: "取消",
    confirm_intro: "该应用申请获取你的以下信息：",
    confirm_fields: "姓名、性别、头像、手机、邮箱、企业邮箱、地址、个人二维码",
    agree: "同意",
    deny: "拒绝",
    status_active: "已激活",
    status_disabled: "已禁用",
    status_not_activated: "未激活",
    status_left: "已退出企业",
    errcode_label: "错误码",
    other_lang: "English",
    footer: "企业微信模拟器 · 仅用于开发和测试",
};

const EN: Texts = Texts {
    html_lang: "en",
    title_in_app: "WeCom authorization",
    title_qr: "Log in with WeCom",
    title_confirm: "Confirm access",
    title_error: "Cannot log in",
    intro_in_app: "Opening this app inside WeCom. Choose which member opens it:",
    intro_qr: "Scan the QR code with WeCom to log in. In the simulator, choose who scans:",
    app_label: "App",
    redirect_label: "Redirects to",
    act_in_app: "Open as",
    act_qr: "Scan as",
    non_member: "Not a member (external WeChat user)",
    cancel: "Cancel",
    confirm_intro: "This app asks for the following information:",
    confirm_fields: "name, gender, avatar, mobile, email, business email, address, QR code",
    agree: "Allow",
    deny: "Deny",
    status_active: "active",
    status_disabled: "disabled",
    status_not_activated: "not activated",
    status_left: "left the company",
    errcode_label: "Error code",
    other_lang: "中文",
    footer: "WeCom simulator · for development and testing only",
};

pub(super) fn pick(zh: bool, a: &'static str, b: &'static str) -> &'static str {
    if zh {
        a
    } else {
        b
    }
}
