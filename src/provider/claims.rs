//! Which user claims a token carries, by granted scope (OIDC Core §5.4).

use serde_json::{Map, Value};

use crate::connector::Identity;

/// User claims a `claims` request parameter may ask for individually: those our scopes supply
/// (`profile`, `email`). Others (`phone_number`, `address` …) are ignored: we have no data for
/// them.
pub const REQUESTABLE_CLAIMS: &[&str] = &["name", "preferred_username", "email", "email_verified"];

pub use crate::storage::ClaimsRequest;

/// Parses the `claims` parameter's JSON (OIDC Core §5.5): an object whose optional `userinfo`
/// and `id_token` members are objects mapping claim names to `null` or an object. Anything else
/// is malformed; claim names we cannot supply are dropped. `essential` makes no difference (we
/// release what we have either way) and `value`/`values` are ignored, as §5.5.1 allows.
pub fn parse_claims_request(json: &str) -> Result<ClaimsRequest, &'static str> {
    let malformed = "claims must be a JSON object as in OpenID Connect Core 5.5";
    let Ok(Value::Object(top)) = serde_json::from_str::<Value>(json) else {
        return Err(malformed);
    };
    let member = |name: &str| -> Result<Vec<String>, &'static str> {
        match top.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(m)) => {
                let mut out = Vec::new();
                for (claim, req) in m {
                    if !matches!(req, Value::Null | Value::Object(_)) {
                        return Err(malformed);
                    }
                    if REQUESTABLE_CLAIMS.contains(&claim.as_str()) && !out.contains(claim) {
                        out.push(claim.clone());
                    }
                }
                Ok(out)
            }
            Some(_) => Err(malformed),
        }
    };
    Ok(ClaimsRequest {
        id_token: member("id_token")?,
        userinfo: member("userinfo")?,
    })
}

/// The claims named in `names` that `identity` can supply, as `claims` requested them
/// (OIDC Core §5.5); absent data stays absent.
pub fn requested_claims(identity: &Identity, names: &[String]) -> Map<String, Value> {
    if names.is_empty() {
        return Map::new();
    }
    let all = user_claims(identity, &["profile".to_string(), "email".to_string()]);
    all.into_iter()
        .filter(|(k, _)| names.iter().any(|n| n == k))
        .collect()
}

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
    "picture",
    "gender",
    "phone_number",
    "address",
    "groups",
];

/// The user claims for `scopes` (OIDC Core §5.4): `sub` always; `profile` → `name`,
/// `preferred_username`, `picture`, `gender`; `email` → `email`, `email_verified` when an
/// address is known; `phone` → `phone_number`; `address` → `address` as the §5.1.1 JSON object
/// (`formatted` only: WeCom keeps one free-text line); `groups` → `groups`, an array of strings.
/// Absent values are absent claims, never empty strings or empty arrays.
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
    if has("profile") {
        for (claim, value) in [("picture", &identity.picture), ("gender", &identity.gender)] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                m.insert(claim.into(), Value::String(v.to_string()));
            }
        }
    }
    if has("phone") {
        if let Some(phone) = identity.phone_number.as_deref().filter(|p| !p.is_empty()) {
            m.insert("phone_number".into(), Value::String(phone.to_string()));
        }
    }
    if has("address") {
        if let Some(address) = identity.address.as_deref().filter(|a| !a.is_empty()) {
            let mut object = Map::new();
            object.insert("formatted".into(), Value::String(address.to_string()));
            m.insert("address".into(), Value::Object(object));
        }
    }
    if has("groups") && !identity.groups.is_empty() {
        m.insert(
            "groups".into(),
            Value::Array(
                identity
                    .groups
                    .iter()
                    .map(|g| Value::String(g.clone()))
                    .collect(),
            ),
        );
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

    #[test]
    fn claims_parameter_parses_members_and_drops_unknown_claims_oidc_core_5_5() {
        let r = parse_claims_request(
            r#"{"id_token":{"email":{"essential":true},"phone_number":null},
                "userinfo":{"name":null,"email_verified":{"value":true}}}"#,
        )
        .expect("valid");
        assert_eq!(r.id_token, ["email"]);
        assert_eq!(r.userinfo, ["name", "email_verified"]);
        assert!(parse_claims_request("{}").expect("empty").is_empty());
        for bad in [
            "[]",
            "nope",
            r#"{"id_token":[]}"#,
            r#"{"userinfo":{"name":1}}"#,
        ] {
            assert!(parse_claims_request(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn requested_claims_release_only_what_the_identity_has() {
        let mut who = zhangsan();
        who.email = None;
        let m = requested_claims(&who, &["email".to_string(), "name".to_string()]);
        assert!(m.contains_key("name"));
        assert!(!m.contains_key("email"), "no data, no claim");
        assert!(requested_claims(&who, &[]).is_empty());
    }

    fn zhangsan() -> Identity {
        Identity {
            user_id: "zhangsan".into(),
            username: "zhangsan".into(),
            name: Some("张三".into()),
            email: None,
            email_verified: false,
            groups: vec![],
            ..Identity::default()
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

    fn full() -> Identity {
        Identity {
            picture: Some("https://wework.qpic.cn/a/0".into()),
            gender: Some("male".into()),
            phone_number: Some("13800000001".into()),
            address: Some("北京市海淀区示例路1号".into()),
            groups: vec!["平台".into(), "/研发/平台".into()],
            upstream_id: Some("ZhangSan".into()),
            ..zhangsan()
        }
    }

    fn scopes(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn each_scope_releases_only_its_claims_oidc_core_5_4() {
        let c = user_claims(&full(), &scopes(&["openid", "profile"]));
        assert_eq!(c["picture"], "https://wework.qpic.cn/a/0");
        assert_eq!(c["gender"], "male");
        for absent in ["phone_number", "address", "groups", "email"] {
            assert!(!c.contains_key(absent), "{absent} needs its own scope");
        }
        let c = user_claims(&full(), &scopes(&["openid", "phone", "address", "groups"]));
        assert_eq!(c["phone_number"], "13800000001");
        assert_eq!(
            c["address"],
            serde_json::json!({"formatted": "北京市海淀区示例路1号"})
        );
        assert_eq!(c["groups"], serde_json::json!(["平台", "/研发/平台"]));
        assert!(!c.contains_key("picture"));
    }

    #[test]
    fn absent_profile_values_and_empty_groups_are_absent_claims() {
        let c = user_claims(
            &zhangsan(),
            &scopes(&["openid", "profile", "phone", "address", "groups"]),
        );
        for absent in ["picture", "gender", "phone_number", "address", "groups"] {
            assert!(!c.contains_key(absent), "{absent}");
        }
    }

    #[test]
    fn upstream_id_is_never_released() {
        let c = user_claims(
            &full(),
            &scopes(&["openid", "profile", "email", "phone", "address", "groups"]),
        );
        assert!(!c.values().any(|v| v == "ZhangSan"));
    }
}
