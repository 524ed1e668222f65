//! The console's own sessions: short (idle timeout from `[admin]`, at most
//! [`MAX_LIFETIME`]), kept in memory — a restart signs operators out, which is the safe side —
//! under the hash of their cookie, each with its CSRF token.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{HeaderMap, HeaderValue};

use crate::bounded::insert_evicting_oldest;
use crate::identity::Identity;
use crate::random;

/// The console session cookie.
pub(super) const COOKIE: &str = "wecom_oidc_admin";
/// However active, a console session ends after this many seconds (a working day).
pub(super) const MAX_LIFETIME: i64 = 8 * 3600;
/// The most console sessions kept at once; the least recently used go first.
const MAX_SESSIONS: usize = 1000;

/// A signed-in operator.
#[derive(Debug, Clone)]
pub(super) struct ConsoleSession {
    /// Who, as the connector vouched for them.
    pub identity: Identity,
    /// The token every form of this session carries.
    pub csrf: String,
    created: i64,
    last_seen: i64,
}

impl ConsoleSession {
    /// How the audit log names this operator: connector and upstream user id.
    pub fn actor(&self) -> String {
        format!(
            "console:{}/{}",
            self.identity.connector_id, self.identity.user_id
        )
    }
}

/// Every live console session.
pub(super) struct Sessions {
    idle_timeout: i64,
    by_hash: Mutex<HashMap<String, ConsoleSession>>,
}

impl Sessions {
    pub fn new(idle_timeout: i64) -> Self {
        Self {
            idle_timeout,
            by_hash: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a session for `identity`; returns the cookie value.
    pub fn start(&self, identity: Identity, now: i64) -> String {
        let cookie = random::token(32);
        let mut all = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|_, s| self.is_live(s, now));
        let session = ConsoleSession {
            identity,
            csrf: random::token(32),
            created: now,
            last_seen: now,
        };
        insert_evicting_oldest(
            &mut all,
            MAX_SESSIONS,
            random::hash_secret(&cookie),
            session,
            |s| s.last_seen,
        );
        cookie
    }

    fn is_live(&self, s: &ConsoleSession, now: i64) -> bool {
        now < s.last_seen.saturating_add(self.idle_timeout)
            && now < s.created.saturating_add(MAX_LIFETIME)
    }

    /// The live session of this request's cookie, marked as used now.
    pub fn current(&self, headers: &HeaderMap, now: i64) -> Option<ConsoleSession> {
        let cookie = crate::web::cookies::token_cookie(headers, COOKIE)?;
        let key = random::hash_secret(&cookie);
        let mut all = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        let live = all.get(&key).is_some_and(|s| self.is_live(s, now));
        if !live {
            all.remove(&key);
            return None;
        }
        let s = all.get_mut(&key)?;
        s.last_seen = now;
        Some(s.clone())
    }

    /// Ends the session of this request's cookie.
    pub fn end(&self, headers: &HeaderMap) {
        if let Some(cookie) = crate::web::cookies::token_cookie(headers, COOKIE) {
            self.by_hash
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&random::hash_secret(&cookie));
        }
    }
}

/// `Set-Cookie` for a console session: HttpOnly, SameSite=Strict (never sent from another
/// site, so no cross-site request acts as the operator), Path=/admin, Secure on https, and no
/// Max-Age (the server ends it; the browser drops it when closed).
pub(super) fn set_cookie(value: &str, secure: bool) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/admin; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    ))
    .ok()
}

/// `Set-Cookie` that removes the console session cookie.
pub(super) fn clear_cookie(secure: bool) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    ))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header::COOKIE as COOKIE_HEADER;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE_HEADER,
            HeaderValue::from_str(&format!("{COOKIE}={value}")).unwrap(),
        );
        h
    }

    #[test]
    fn a_session_ends_after_its_idle_timeout_and_its_maximum_lifetime() {
        let s = Sessions::new(1800);
        let who = Identity {
            user_id: "zhangsan".into(),
            ..Identity::default()
        };
        let cookie = s.start(who.clone(), 0);
        let h = with_cookie(&cookie);
        assert!(
            s.current(&h, 1799).is_some(),
            "used within the idle timeout"
        );
        assert!(s.current(&h, 1799 + 1799).is_some(), "each use extends it");
        assert!(s.current(&h, 1799 + 1799 + 1800).is_none(), "idle too long");
        let cookie = s.start(who, 0);
        let h = with_cookie(&cookie);
        let mut t = 0;
        while t + 1000 < MAX_LIFETIME {
            t += 1000;
            assert!(s.current(&h, t).is_some());
        }
        assert!(
            s.current(&h, MAX_LIFETIME).is_none(),
            "capped however active"
        );
    }

    #[test]
    fn an_unknown_or_ended_cookie_has_no_session() {
        let s = Sessions::new(1800);
        let cookie = s.start(Identity::default(), 0);
        assert!(s.current(&with_cookie(&random::token(32)), 1).is_none());
        s.end(&with_cookie(&cookie));
        assert!(s.current(&with_cookie(&cookie), 1).is_none());
    }

    #[test]
    fn the_cookie_is_strict_http_only_and_secure_on_https() {
        let c = set_cookie("v", true).unwrap();
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
        let plain = set_cookie("v", false).unwrap();
        assert!(!plain.to_str().unwrap().contains("Secure"));
    }
}
