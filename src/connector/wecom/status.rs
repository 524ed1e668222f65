//! What the operator's console shows of a WeCom app: how long its access_token stays usable,
//! how much of the directory the app sees, and when WeCom last pushed a callback.

use super::groups::DirectoryCache;
use crate::connector::token_cache::TokenCache;
use crate::connector::{Bilingual, StatusLine};

/// A duration in the largest whole unit, in both languages.
fn span(secs: i64) -> Bilingual {
    let secs = secs.max(0);
    match secs {
        s if s < 120 => Bilingual::new(format!("{s} 秒"), format!("{s} s")),
        s if s < 7200 => Bilingual::new(format!("{} 分钟", s / 60), format!("{} min", s / 60)),
        s if s < 172_800 => Bilingual::new(format!("{} 小时", s / 3600), format!("{} h", s / 3600)),
        s => Bilingual::new(format!("{} 天", s / 86_400), format!("{} days", s / 86_400)),
    }
}

/// A line labelled `zh` / `en` saying `value`, `ok` or not.
fn line(zh: &str, en: &str, (value, ok): (Bilingual, bool)) -> StatusLine {
    StatusLine {
        label: Bilingual::new(zh, en),
        value,
        ok,
    }
}

/// The status lines of one app at `now`.
pub(super) async fn lines(
    tokens: &TokenCache,
    directory: &DirectoryCache,
    has_callback: bool,
    last_event_at: i64,
    now: i64,
) -> Vec<StatusLine> {
    // WeCom answers `expires_in` 7200 (wecom-api.md §1); the cache keeps a margin before it.
    let token = match tokens.usable_until().await {
        Some(until) if until > now => {
            let left = span(until - now);
            Bilingual::new(
                format!("有效，还剩 {}", left.zh),
                format!("usable for another {}", left.en),
            )
        }
        _ => Bilingual::new(
            "尚未获取（首次登录时获取）",
            "not fetched yet (the first login fetches it)",
        ),
    };
    let directory = match directory.size() {
        Some((departments, tags, at)) => {
            let ago = span(now - at);
            let seen = Bilingual::new(
                format!(
                    "可见 {departments} 个部门、{tags} 个标签（{} 前读取）",
                    ago.zh
                ),
                format!(
                    "{departments} departments, {tags} tags visible (read {} ago)",
                    ago.en
                ),
            );
            (seen, departments > 0)
        }
        None => (
            Bilingual::new(
                "尚未读取（首个请求 groups 的登录时读取）",
                "not read yet (read at the first login that asks for groups)",
            ),
            true,
        ),
    };
    let callbacks = if !has_callback {
        (
            Bilingual::new(
                "未配置（离职、停用要等会话到期或刷新时才生效）",
                "not configured (a departure takes effect only at refresh or session expiry)",
            ),
            false,
        )
    } else if last_event_at == i64::MIN {
        (
            Bilingual::new(
                "已配置，本次启动后尚未收到",
                "configured; none received since start",
            ),
            true,
        )
    } else {
        let ago = span(now - last_event_at);
        (
            Bilingual::new(
                format!("最近一次在 {} 前收到", ago.zh),
                format!("last received {} ago", ago.en),
            ),
            true,
        )
    };
    vec![
        line("access_token", "access_token", (token, true)),
        line("通讯录", "Directory", directory),
        line("回调", "Callbacks", callbacks),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_use_the_largest_whole_unit() {
        assert_eq!(span(59).en, "59 s");
        assert_eq!(span(600).en, "10 min");
        assert_eq!(span(7200).zh, "2 小时");
        assert_eq!(span(3 * 86_400).en, "3 days");
        assert_eq!(span(-5).en, "0 s");
    }
}
