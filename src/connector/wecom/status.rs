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

/// The status lines of one app at `now`.
pub(super) async fn lines(
    tokens: &TokenCache,
    directory: &DirectoryCache,
    has_callback: bool,
    last_event_at: i64,
    now: i64,
) -> Vec<StatusLine> {
    let mut out = Vec::new();
    // WeCom answers `expires_in` 7200 (wecom-api.md §1); the cache keeps a margin before it.
    out.push(match tokens.usable_until().await {
        Some(until) if until > now => {
            let left = span(until - now);
            StatusLine {
                label: Bilingual::new("access_token", "access_token"),
                value: Bilingual::new(
                    format!("有效，还剩 {}", left.zh),
                    format!("usable for another {}", left.en),
                ),
                ok: true,
            }
        }
        _ => StatusLine {
            label: Bilingual::new("access_token", "access_token"),
            value: Bilingual::new(
                "尚未获取（首次登录时获取）",
                "not fetched yet (the first login fetches it)",
            ),
            ok: true,
        },
    });
    out.push(match directory.size() {
        Some((departments, tags, at)) => {
            let ago = span(now - at);
            StatusLine {
                label: Bilingual::new("通讯录", "Directory"),
                value: Bilingual::new(
                    format!(
                        "可见 {departments} 个部门、{tags} 个标签（{} 前读取）",
                        ago.zh
                    ),
                    format!(
                        "{departments} departments, {tags} tags visible (read {} ago)",
                        ago.en
                    ),
                ),
                ok: departments > 0,
            }
        }
        None => StatusLine {
            label: Bilingual::new("通讯录", "Directory"),
            value: Bilingual::new(
                "尚未读取（首个请求 groups 的登录时读取）",
                "not read yet (read at the first login that asks for groups)",
            ),
            ok: true,
        },
    });
    out.push(if !has_callback {
        StatusLine {
            label: Bilingual::new("回调", "Callbacks"),
            value: Bilingual::new(
                "未配置（离职、停用要等会话到期或刷新时才生效）",
                "not configured (a departure takes effect only at refresh or session expiry)",
            ),
            ok: false,
        }
    } else if last_event_at == i64::MIN {
        StatusLine {
            label: Bilingual::new("回调", "Callbacks"),
            value: Bilingual::new(
                "已配置，本次启动后尚未收到",
                "configured; none received since start",
            ),
            ok: true,
        }
    } else {
        let ago = span(now - last_event_at);
        StatusLine {
            label: Bilingual::new("回调", "Callbacks"),
            value: Bilingual::new(
                format!("最近一次在 {} 前收到", ago.zh),
                format!("last received {} ago", ago.en),
            ),
            ok: true,
        }
    });
    out
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
