//! `wecom-oidc events`: the newest login events from the store, as a table or JSON lines.

use std::fmt::Write as _;

use crate::storage::LoginEvent;

/// `YYYY-MM-DD HH:MM:SS` (UTC) for Unix seconds ([`crate::clock::civil_from_days`]), so no date
/// crate is needed for one column.
pub fn utc(secs: i64) -> String {
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = crate::clock::civil_from_days(secs.div_euclid(86_400));
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The events as an aligned table, newest first.
pub fn table(events: &[LoginEvent]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<19}  {:<15}  {:<16}  {:<16}  {:<15}  reason",
        "time (UTC)", "outcome", "user", "client", "address"
    );
    for e in events {
        let _ = writeln!(
            out,
            "{:<19}  {:<15}  {:<16}  {:<16}  {:<15}  {}",
            utc(e.at),
            e.outcome,
            e.user_id.as_deref().unwrap_or("-"),
            match (&e.client_id, &e.grant) {
                (Some(c), Some(g)) => format!("{c} ({g})"),
                (Some(c), None) => c.clone(),
                (None, _) => "-".into(),
            },
            e.address.as_deref().unwrap_or("-"),
            e.reason.as_deref().unwrap_or(""),
        );
    }
    if events.is_empty() {
        out.push_str("(no login events)\n");
    }
    out
}

/// The events as JSON lines, for scripts.
pub fn json_lines(events: &[LoginEvent]) -> String {
    let mut out = String::new();
    for e in events {
        if let Ok(line) = serde_json::to_string(e) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_unix_seconds_as_civil_time() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20");
    }

    #[test]
    fn table_shows_dashes_for_unknown_fields() {
        let e = crate::testkit::refused_login(0, None, "not a member");
        let t = table(&[e]);
        assert!(t.contains("1970-01-01 00:00:00  access_denied    -                 grafana"));
        assert!(t.contains("not a member"));
    }
}
