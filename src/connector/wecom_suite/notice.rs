//! What a person (and the operator) is told when a suite login fails for a reason that is not
//! an ordinary refusal: the corp may not use this service (not allowed, not installed, or the
//! person is outside the visible range its admin granted), no `suite_ticket` has arrived yet,
//! or WeCom refuses the suite's credentials.

use super::api::STALE_TICKET;
use super::config::{AppKind, SuiteSettings};
use super::{NOT_ALLOWED, NOT_INSTALLED, NO_TICKET, OUT_OF_RANGE_WHY};
use crate::connector::{ConnectorError, FailureNotice};

/// The notice for `error`, `None` for failures that go back to the client as they are.
pub(super) fn for_error(s: &SuiteSettings, error: &ConnectorError) -> Option<FailureNotice> {
    match error {
        ConnectorError::NotPermitted(why) => Some(refusal(s, why)),
        ConnectorError::Unavailable(why) if why.starts_with(&NO_TICKET[..30]) => {
            Some(FailureNotice {
                zh: "此登录服务尚未就绪：还没有收到企业微信推送的 suite_ticket。请稍后再试；如果一直如此，请联系管理员。".to_owned(),
                en: "This sign-in service is not ready yet: WeCom has not sent it its first suite_ticket. Please try again later, and tell your administrator if it persists.".to_owned(),
                operator: format!(
                    "{}. Vendor console (服务商管理后台) → 应用管理 → suite {} → 回调配置: set and verify \
                     the command callback URL; WeCom pushes a ticket every 10 minutes.",
                    NO_TICKET.replace("{id}", &s.id),
                    s.suite_id
                ),
                temporary: true,
            })
        }
        ConnectorError::Upstream { code, message }
            if message.starts_with("/cgi-bin/service/get_suite_token") && *code == STALE_TICKET =>
        {
            Some(FailureNotice {
                zh: "此登录服务暂时无法使用：正在等待企业微信推送新的 suite_ticket。请稍后再试。".to_owned(),
                en: "This sign-in service is waiting for WeCom to send it a new suite_ticket. Please try again in a few minutes.".to_owned(),
                operator: format!(
                    "get_suite_token refused the stored suite_ticket ({code}): it is too old (the \
                     server missed WeCom's pushes to /callback/{}/events); a new one arrives \
                     within 10 minutes once the callback URL is reachable",
                    s.id
                ),
                temporary: true,
            })
        }
        ConnectorError::Upstream { code, message }
            if message.starts_with("/cgi-bin/service/get_suite_token") =>
        {
            Some(FailureNotice {
                zh: "这是登录服务的配置问题，与您的账号无关。请联系管理员。".to_owned(),
                en: "This is a configuration problem of the sign-in service, not of your account. Please tell your administrator.".to_owned(),
                operator: format!(
                    "get_suite_token refused ({code}): check suite_id {} and its suite_secret in \
                     the vendor console (服务商管理后台 → 应用管理 → the app); `wecom-oidc check` \
                     says more",
                    s.suite_id
                ),
                temporary: false,
            })
        }
        _ => None,
    }
}

/// A person the suite may not serve: say which of the three reasons it is and who can change it.
fn refusal(s: &SuiteSettings, why: &str) -> FailureNotice {
    let (zh, en, fix) = if why.contains(NOT_ALLOWED) {
        (
            "您所在的企业不在此服务允许的企业之列，因此不能用企业微信登录这里。如需开通，请联系此服务的提供方。",
            "Your company is not among the companies this service accepts, so you cannot sign in here with WeCom. Ask the provider of this service if your company should have access.",
            match s.kind {
                AppKind::Customised => format!(
                    "this 代开发 connector serves corp {} only",
                    s.corp_id
                ),
                AppKind::ThirdParty => "add the corp to allowed_corps of this connector".to_owned(),
            },
        )
    } else if why.contains(NOT_INSTALLED) {
        (
            "您所在的企业尚未安装（或已移除）此企业微信应用，因此不能用它登录。请联系企业微信管理员安装此应用。",
            "Your company has not installed this WeCom app (or has removed it), so it cannot be used to sign in. Ask your WeCom administrator to install it.",
            "the corp's admin installs the app from the WeCom app marketplace (or authorises the 代开发 app); create_auth then reaches the command callback".to_owned(),
        )
    } else {
        debug_assert!(why.contains(OUT_OF_RANGE_WHY));
        (
            "您的企业微信账号不在此应用的可见范围内，因此不能用它登录。请联系您企业的企业微信管理员：在管理后台「应用管理」中打开此应用，在「可见范围」中加入您本人、您所在的部门或标签。",
            "Your WeCom account is not in this app's visible range, so it cannot sign in here. Ask your company's WeCom administrator to add you, your department or a tag of yours to the app's visible range (admin console → 应用管理 (Apps) → the app → 可见范围 (Visible range)).",
            "the customer corp's admin widens the app's visible range (应用管理 → the app → 可见范围)".to_owned(),
        )
    };
    FailureNotice {
        zh: zh.to_owned(),
        en: en.to_owned(),
        operator: format!("{why}. To let this person in: {fix}"),
        temporary: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::wecom::CallbackSettings;

    fn settings() -> SuiteSettings {
        SuiteSettings::new(
            "suite",
            "wwsuite",
            "secret",
            CallbackSettings {
                token: "t".into(),
                encoding_aes_key: "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt".into(),
            },
            "k".repeat(40),
        )
    }

    #[test]
    fn each_refusal_says_its_own_reason() {
        let s = settings();
        let page = |why: String| for_error(&s, &ConnectorError::NotPermitted(why)).expect("notice");
        assert!(page(format!("corp wwx is {NOT_ALLOWED}"))
            .en
            .contains("not among the companies"));
        assert!(page(format!("corp wwx {NOT_INSTALLED}"))
            .en
            .contains("has not installed"));
        assert!(page(format!("the member is {OUT_OF_RANGE_WHY}"))
            .en
            .contains("visible range"));
    }

    #[test]
    fn no_ticket_yet_is_explained_and_temporary() {
        let s = settings();
        let n = for_error(&s, &ConnectorError::Unavailable(NO_TICKET.to_owned())).expect("notice");
        assert!(n.temporary);
        assert!(
            n.operator.contains("/callback/suite/events"),
            "{}",
            n.operator
        );
        assert!(for_error(&s, &ConnectorError::Unavailable("timeout".into())).is_none());
    }

    #[test]
    fn a_stale_ticket_waits_for_the_next_push_and_a_wrong_secret_is_a_configuration_fault() {
        let s = settings();
        let refused = |code| ConnectorError::Upstream {
            code,
            message: "/cgi-bin/service/get_suite_token: refused".into(),
        };
        let stale = for_error(&s, &refused(STALE_TICKET)).expect("notice");
        assert!(
            stale.temporary && stale.operator.contains("too old"),
            "{stale:?}"
        );
        let secret = for_error(&s, &refused(40001)).expect("notice");
        assert!(
            !secret.temporary && secret.operator.contains("suite_secret"),
            "{secret:?}"
        );
    }
}
