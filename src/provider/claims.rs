//! Which user claims a token carries, by granted scope (OIDC Core §5.4).

use serde::Serialize;
use serde_json::Value;

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

/// Claims the provider sets itself, about the token rather than the person (OIDC Core §2;
/// `sid`: Back-Channel Logout 1.0 §2.1).
pub const TOKEN_CLAIMS: &[&str] = &[
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "sid",
];

/// Claims about the person we can release besides `sub` (OIDC Core §5.1; `groups` is ours).
pub const PERSON_CLAIMS: &[&str] = &[
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

/// Claim names we can release, for discovery's `claims_supported`: `sub`, the token's, the
/// person's.
pub fn supported_claims() -> impl Iterator<Item = &'static str> {
    std::iter::once("sub").chain(TOKEN_CLAIMS.iter().chain(PERSON_CLAIMS).copied())
}

/// The user claims of a token or userinfo answer (OIDC Core §5.1), as released by
/// [`user_claims`]. Absent values are absent claims, never empty strings or empty arrays.
/// Borrowed from the [`Identity`] they describe: they are serialised once, at once, so copying
/// each value first would only add an allocation per claim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserClaims<'a> {
    /// `sub`: always present.
    pub sub: &'a str,
    /// `name` (`profile`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    /// `preferred_username` (`profile`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<&'a str>,
    /// `picture` (`profile`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<&'a str>,
    /// `gender` (`profile`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<&'a str>,
    /// `phone_number` (`phone`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<&'a str>,
    /// `address` (`address`): the §5.1.1 JSON object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<AddressClaim<'a>>,
    /// `groups` (`groups`): an array of strings, absent when empty.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub groups: &'a [String],
    /// `email` (`email`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    /// `email_verified` (`email`), present exactly when `email` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// The connector's own claims ([`Identity::extra_claims`], `profile`), never one of
    /// [`supported_claims`].
    #[serde(flatten)]
    pub extra: std::collections::BTreeMap<&'a str, &'a str>,
}

/// The `address` claim (OIDC Core §5.1.1): `formatted` only, since WeCom keeps one free-text
/// line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressClaim<'a> {
    /// The full address as one line.
    pub formatted: &'a str,
}

/// The user claims for `scopes` (OIDC Core §5.4): `sub` always; `profile` → `name`,
/// `preferred_username`, `picture`, `gender`; `email` → `email`, `email_verified` when an
/// address is known; `phone` → `phone_number`; `address` → `address` as the §5.1.1 JSON object
/// (`formatted` only: WeCom keeps one free-text line); `groups` → `groups`, an array of strings.
/// Absent values are absent claims, never empty strings or empty arrays.
pub fn user_claims<'a>(identity: &'a Identity, scopes: &[String]) -> UserClaims<'a> {
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let mut c = UserClaims {
        sub: &identity.user_id,
        ..UserClaims::default()
    };
    if has("profile") {
        let name = identity
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(&identity.user_id);
        c.name = Some(name);
        if !identity.username.is_empty() {
            c.preferred_username = Some(&identity.username);
        }
        c.picture = non_empty(&identity.picture);
        c.gender = non_empty(&identity.gender);
        // A connector's claim never shadows or duplicates a claim of the core (`sub`, `iss` …).
        c.extra = identity
            .extra_claims
            .iter()
            .filter(|(name, value)| !supported_claims().any(|c| c == *name) && !value.is_empty())
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
    }
    if has("phone") {
        c.phone_number = non_empty(&identity.phone_number);
    }
    if has("address") {
        c.address = non_empty(&identity.address).map(|formatted| AddressClaim { formatted });
    }
    if has("groups") {
        c.groups = &identity.groups;
    }
    if has("email") {
        if let Some(email) = non_empty(&identity.email) {
            c.email = Some(email);
            c.email_verified = Some(identity.email_verified);
        }
    }
    c
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

impl<'a> UserClaims<'a> {
    /// Adds the claims named in `names` that `identity` can supply, as `claims` requested them
    /// (OIDC Core §5.5), beside those of the scopes; absent data stays absent.
    pub fn add_requested(&mut self, identity: &'a Identity, names: &[String]) {
        if names.is_empty() {
            return;
        }
        let all = user_claims(identity, &["profile".to_string(), "email".to_string()]);
        let wants = |claim: &str| names.iter().any(|n| n == claim);
        let take = |mine: &mut Option<&'a str>, theirs: Option<&'a str>, claim: &str| {
            if wants(claim) && theirs.is_some() {
                *mine = theirs;
            }
        };
        take(&mut self.name, all.name, "name");
        take(
            &mut self.preferred_username,
            all.preferred_username,
            "preferred_username",
        );
        take(&mut self.picture, all.picture, "picture");
        take(&mut self.gender, all.gender, "gender");
        take(&mut self.email, all.email, "email");
        if wants("email_verified") && all.email_verified.is_some() {
            self.email_verified = all.email_verified;
        }
    }
}

/// The registered claims every JWT we sign carries (RFC 7519 §4.1): who issued it, for whom,
/// when, and until when.
#[derive(Debug, Serialize)]
pub struct JwtClaims<'a> {
    /// `iss`.
    pub iss: &'a str,
    /// `aud`: the client (the resource server of a JWT access token, RFC 9068 §2.2).
    pub aud: &'a str,
    /// `iat`.
    pub iat: i64,
    /// `exp`.
    pub exp: i64,
}

/// The claims of an id_token (OIDC Core §2): the user claims of its scopes and `claims`
/// request, beside the token's own.
#[derive(Debug, Serialize)]
pub struct IdTokenClaims<'a> {
    /// `iss`, `aud` (the client), `iat`, `exp`.
    #[serde(flatten)]
    pub jwt: JwtClaims<'a>,
    /// `auth_time`: when the person logged in upstream.
    pub auth_time: i64,
    /// `nonce`, when the authorization request carried one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<&'a str>,
    /// `sid` (Back-Channel Logout 1.0 §2.1): the session the login came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<&'a str>,
    /// `at_hash` (OIDC Core §3.1.3.6).
    pub at_hash: String,
    /// The user claims.
    #[serde(flatten)]
    pub user: UserClaims<'a>,
}

/// The claims of a JWT access token (RFC 9068 §2.2).
#[derive(Debug, Serialize)]
pub struct AccessTokenClaims<'a> {
    /// `iss`, `aud` (the client's `access_token_audience`, else the client), `iat`, `exp`.
    #[serde(flatten)]
    pub jwt: JwtClaims<'a>,
    /// `sub`.
    pub sub: &'a str,
    /// `client_id`.
    pub client_id: &'a str,
    /// `jti`: the token's store key is its hash.
    pub jti: &'a str,
    /// `scope`: the granted scopes, space-separated.
    pub scope: &'a str,
    /// `auth_time`; absent from a token no person stands behind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
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

    /// The claims as the JSON object they are sent as.
    fn map(c: UserClaims<'_>) -> serde_json::Map<String, Value> {
        match serde_json::to_value(c).expect("serializes") {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn requested_claims_release_only_what_the_identity_has() {
        let mut who = zhangsan();
        who.email = None;
        let openid = ["openid".to_string()];
        let mut c = user_claims(&who, &openid);
        c.add_requested(&who, &["email".to_string(), "name".to_string()]);
        let m = map(c);
        assert!(m.contains_key("name"));
        assert!(!m.contains_key("email"), "no data, no claim");
        let mut none = user_claims(&who, &openid);
        none.add_requested(&who, &[]);
        assert_eq!(map(none), map(user_claims(&who, &openid)));
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
    fn a_connectors_extra_claims_come_with_profile_and_never_shadow_core_claims() {
        let mut who = zhangsan();
        who.extra_claims.insert("corp_id".into(), "wwa".into());
        who.extra_claims.insert("sub".into(), "someone-else".into());
        let c = map(user_claims(&who, &["openid".into(), "profile".into()]));
        assert_eq!(c["corp_id"], "wwa");
        assert_eq!(c["sub"], "zhangsan");
        let c = map(user_claims(&who, &["openid".into()]));
        assert!(!c.contains_key("corp_id"));
    }

    #[test]
    fn openid_scope_alone_releases_only_sub() {
        let c = map(user_claims(&zhangsan(), &["openid".into()]));
        assert_eq!(c.len(), 1);
        assert_eq!(c["sub"], "zhangsan");
    }

    #[test]
    fn profile_scope_releases_name_and_preferred_username() {
        let c = map(user_claims(
            &zhangsan(),
            &["openid".into(), "profile".into()],
        ));
        assert_eq!(c["name"], "张三");
        assert_eq!(c["preferred_username"], "zhangsan");
    }

    #[test]
    fn name_falls_back_to_userid() {
        let mut id = zhangsan();
        id.name = Some(String::new());
        let c = map(user_claims(&id, &["openid".into(), "profile".into()]));
        assert_eq!(c["name"], "zhangsan");
    }

    #[test]
    fn missing_email_is_an_absent_claim_not_an_empty_string() {
        let c = map(user_claims(&zhangsan(), &["openid".into(), "email".into()]));
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
        let c = map(user_claims(&full(), &scopes(&["openid", "profile"])));
        assert_eq!(c["picture"], "https://wework.qpic.cn/a/0");
        assert_eq!(c["gender"], "male");
        for absent in ["phone_number", "address", "groups", "email"] {
            assert!(!c.contains_key(absent), "{absent} needs its own scope");
        }
        let c = map(user_claims(
            &full(),
            &scopes(&["openid", "phone", "address", "groups"]),
        ));
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
        let c = map(user_claims(
            &zhangsan(),
            &scopes(&["openid", "profile", "phone", "address", "groups"]),
        ));
        for absent in ["picture", "gender", "phone_number", "address", "groups"] {
            assert!(!c.contains_key(absent), "{absent}");
        }
    }

    #[test]
    fn upstream_id_is_never_released() {
        let c = map(user_claims(
            &full(),
            &scopes(&["openid", "profile", "email", "phone", "address", "groups"]),
        ));
        assert!(!c.values().any(|v| v == "ZhangSan"));
    }
}
