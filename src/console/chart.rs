//! The 24-hour chart of logins and failures: one bar pair per hour, drawn on the server as an
//! inline SVG (no script, no framework; the page's CSP allows nothing else anyway).

use std::fmt::Write as _;

use crate::storage::LoginEvent;

/// Hours shown.
pub(super) const HOURS: usize = 24;

/// Successes and failures per hour, oldest hour first, of the 24 hours before `now`.
pub(super) fn buckets(events: &[LoginEvent], now: i64) -> [(u32, u32); HOURS] {
    let mut out = [(0u32, 0u32); HOURS];
    for e in events {
        let age = now - e.at;
        if !(0..HOURS as i64 * 3600).contains(&age) {
            continue;
        }
        let slot = HOURS - 1 - (age / 3600) as usize;
        if e.outcome == "success" {
            out[slot].0 += 1;
        } else {
            out[slot].1 += 1;
        }
    }
    out
}

/// The chart as an SVG element. Only numbers and the two fixed legend texts go into it.
pub(super) fn svg(buckets: &[(u32, u32); HOURS], zh: bool) -> String {
    const W: u32 = 720;
    const H: u32 = 180;
    const BASE: u32 = 150;
    let max = buckets
        .iter()
        .map(|(s, f)| (*s).max(*f))
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = W / HOURS as u32;
    let bar = (slot - 6) / 2;
    let height = |n: u32| n * (BASE - 10) / max;
    let (ok, failed, ago) = if zh {
        ("成功", "失败", "小时前")
    } else {
        ("success", "failed", "h ago")
    };
    let mut s = format!(
        r##"<svg class="chart" viewBox="0 0 {W} {H}" role="img" xmlns="http://www.w3.org/2000/svg"><line x1="0" y1="{BASE}" x2="{W}" y2="{BASE}" stroke="#ccd1d9"/>"##
    );
    for (i, (succ, fail)) in buckets.iter().enumerate() {
        let x = i as u32 * slot + 3;
        let (hs, hf) = (height(*succ), height(*fail));
        let _ = write!(
            s,
            r##"<rect x="{x}" y="{}" width="{bar}" height="{hs}" fill="#2da44e"><title>{succ} {ok}</title></rect><rect x="{}" y="{}" width="{bar}" height="{hf}" fill="#cf222e"><title>{fail} {failed}</title></rect>"##,
            BASE - hs,
            x + bar,
            BASE - hf,
        );
        if i % 6 == 0 {
            let _ = write!(
                s,
                r##"<text x="{x}" y="{}" font-size="11" fill="#6b7280">{} {ago}</text>"##,
                BASE + 16,
                HOURS - i
            );
        }
    }
    let _ = write!(
        s,
        r##"<text x="{}" y="14" font-size="12" fill="#6b7280" text-anchor="end">max {max}/h</text><rect x="0" y="168" width="10" height="10" fill="#2da44e"/><text x="14" y="177" font-size="11">{ok}</text><rect x="80" y="168" width="10" height="10" fill="#cf222e"/><text x="94" y="177" font-size="11">{failed}</text></svg>"##,
        W - 2
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: i64, outcome: &str) -> LoginEvent {
        LoginEvent {
            at,
            user_id: None,
            client_id: None,
            address: None,
            outcome: outcome.into(),
            grant: None,
            reason: None,
            request_id: None,
            expires_at: i64::MAX,
        }
    }

    #[test]
    fn events_fall_into_their_hour_and_older_ones_are_left_out() {
        let now = 100_000;
        let events = [
            event(now, "success"),
            event(now - 10, "access_denied"),
            event(now - 3600, "success"),
            event(now - 24 * 3600 + 1, "success"),
            event(now - 24 * 3600, "success"),
            event(now + 5, "success"),
        ];
        let b = buckets(&events, now);
        assert_eq!(b[HOURS - 1], (1, 1), "this hour");
        assert_eq!(b[HOURS - 2], (1, 0), "an hour ago");
        assert_eq!(b[0], (1, 0), "the oldest hour");
        assert_eq!(b.iter().map(|(s, f)| s + f).sum::<u32>(), 4);
    }

    #[test]
    fn bars_scale_to_the_busiest_hour() {
        let mut b = [(0, 0); HOURS];
        b[3] = (10, 5);
        let s = svg(&b, false);
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(
            s.contains(r##"height="140" fill="#2da44e""##),
            "the tallest bar"
        );
        assert!(
            s.contains(r##"height="70" fill="#cf222e""##),
            "half as tall"
        );
        assert!(s.contains("max 10/h"));
        assert!(svg(&b, true).contains("成功"));
    }
}
