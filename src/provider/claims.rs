//! Which user claims a token carries, by granted scope (OIDC Core §5.4).

use serde_json::{Map, Value};

use crate::connector::Identity;

/// Claim names we can release, for discovery's `claims_supported`.
pub const SUPPORTED_CLAIMS: &[&str] = &[
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "sid",
    "name",
    "preferred_username",
    "email",
    "email_verified",
];

/// The user claims for `scopes`: `sub` always; `profile` → `name`, `preferred_username`;
/// `email` → `email`, `email_verified` when an address is known. Absent values are absent
/// claims, never empty strings.
pub fn user_claims(identity: &Identity, scopes: &[String]) -> Map<String, Value> {
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let mut m = Map::new();
    m.insert("sub".into(), Value::String(identity.user_id.clone()));
    if has("profile") {
        let name = identity
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(&identity.user_id);
        m.insert("name".into(), Value::String(name.to_string()));
        if !identity.username.is_empty() {
            m.insert(
                "preferred_username".into(),
                Value::String(identity.username.clone()),
            );
        }
    }
    if has("email") {
        if let Some(email) = identity.email.as_deref().filter(|e| !e.is_empty()) {
            m.insert("email".into(), Value::String(email.to_string()));
            m.insert(
                "email_verified".into(),
                Value::Bool(identity.email_verified),
            );
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zhangsan() -> Identity {
        Identity {
            user_id: "zhangsan".into(),
            username: "zhangsan".into(),
            name: Some("张三".into()),
            email: None,
            email_verified: false,
            groups: vec![],
        }
    }

    #[test]
    fn openid_scope_alone_releases_only_sub() {
        let c = user_claims(&zhangsan(), &["openid".into()]);
        assert_eq!(c.len(), 1);
        assert_eq!(c["sub"], "zhangsan");
    }

    #[test]
    fn profile_scope_releases_name_and_preferred_username() {
        let c = user_claims(&zhangsan(), &["openid".into(), "profile".into()]);
        assert_eq!(c["name"], "张三");
        assert_eq!(c["preferred_username"], "zhangsan");
    }

    #[test]
    fn name_falls_back_to_userid() {
        let mut id = zhangsan();
        id.name = Some(String::new());
        let c = user_claims(&id, &["openid".into(), "profile".into()]);
        assert_eq!(c["name"], "zhangsan");
    }

    #[test]
    fn missing_email_is_an_absent_claim_not_an_empty_string() {
        let c = user_claims(&zhangsan(), &["openid".into(), "email".into()]);
        assert!(!c.contains_key("email"));
        assert!(!c.contains_key("email_verified"));
    }
}
