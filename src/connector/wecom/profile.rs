//! How a WeCom member becomes an [`Identity`]: which WeCom field feeds which claim, the e-mail
//! policy, the `sub` form, and when to ask for `snsapi_privateinfo` (wecom-api.md §2, §5, §6).
//!
//! Empty WeCom strings are absent values, never empty claims: apps created after 2022-06-20 may
//! get the privacy fields of `user/get` as `""` or not at all (§6), and `getuserdetail` sends
//! `""` for what the member did not share (§5).

use super::api::{UserDetailResponse, UserGetResponse};
use crate::connector::Identity;

/// When to use `snsapi_privateinfo` (the member confirms in WeCom; `getuserdetail` then gives
/// avatar, gender, mobile, e-mail and address, wecom-api.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrivateInfo {
    /// Always the silent `snsapi_base` login (the default: no WeCom screen).
    #[default]
    Never,
    /// Every login asks for the private profile.
    Always,
    /// Only when the client asked for `email`, `phone` or `address`.
    WhenRequested,
}

impl PrivateInfo {
    /// Parses the config value (`never`, `always`, `when_requested`).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "never" => Some(Self::Never),
            "always" => Some(Self::Always),
            "when_requested" => Some(Self::WhenRequested),
            _ => None,
        }
    }

    /// Whether a login with `scopes` asks for `snsapi_privateinfo`.
    pub fn wanted(self, scopes: &[String]) -> bool {
        match self {
            Self::Never => false,
            Self::Always => true,
            Self::WhenRequested => scopes
                .iter()
                .any(|s| matches!(s.as_str(), "email" | "phone" | "address")),
        }
    }
}

/// Where the `email` claim comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EmailPolicy {
    /// WeCom's address (`email`, else `biz_mail`); no claim when WeCom has none.
    #[default]
    Upstream,
    /// WeCom's address when it has one, else this template with `{userid}` (as WeCom spells
    /// it) or `{userid_lower}` replaced, e.g. `{userid_lower}@corp.example.com`.
    Template(String),
}

impl EmailPolicy {
    /// Why `template` cannot make addresses, if it cannot.
    pub fn template_problem(template: &str) -> Option<&'static str> {
        if !(template.contains("{userid}") || template.contains("{userid_lower}")) {
            return Some("must contain {userid} or {userid_lower}");
        }
        match template.rsplit_once('@') {
            Some((_, domain)) if !domain.is_empty() && !domain.contains('{') => None,
            _ => Some("must end in @domain, e.g. {userid_lower}@corp.example.com"),
        }
    }
}

/// A WeCom member field that can feed `name` or `preferred_username`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimSource {
    /// The UserId.
    Userid,
    /// The UserId in lower case (WeCom UserIds are case-insensitive, §6).
    UseridLower,
    /// The display name (`name`).
    Name,
    /// The alias (English name).
    Alias,
    /// The e-mail address (personal, else corporate).
    Email,
    /// The part of the e-mail address before `@`.
    EmailLocalPart,
    /// The job title.
    Position,
}

impl ClaimSource {
    /// Parses the config value.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "userid" => Self::Userid,
            "userid_lower" => Self::UseridLower,
            "name" => Self::Name,
            "alias" => Self::Alias,
            "email" => Self::Email,
            "email_localpart" => Self::EmailLocalPart,
            "position" => Self::Position,
            _ => return None,
        })
    }

    /// The accepted config values, for error messages.
    pub const NAMES: &'static str =
        "userid, userid_lower, name, alias, email, email_localpart, position";
}

/// The form of `sub` (OIDC Core §2: stable, never reassigned, at most 255 ASCII characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubjectMode {
    /// The WeCom UserId as WeCom spells it (the default).
    #[default]
    Userid,
    /// The UserId in lower case: WeCom treats `ZhangSan` and `zhangsan` as the same member
    /// (§6), so relying parties that compare case-sensitively see one account.
    Lowercase,
    /// A different `sub` per client (OIDC Core §8.1): `base64url(SHA-256(sector ‖ 0 ‖
    /// lower-cased UserId ‖ 0 ‖ salt))`, so clients cannot correlate people by `sub`.
    Pairwise,
}

impl SubjectMode {
    /// Parses the config value (`userid`, `lowercase`).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "userid" => Some(Self::Userid),
            "lowercase" => Some(Self::Lowercase),
            "pairwise" => Some(Self::Pairwise),
            _ => None,
        }
    }

    /// The subject for a (possibly renamed-from) UserId; for [`Self::Pairwise`] the local
    /// account id that is then hashed per client ([`pairwise_subject`]).
    pub fn apply(self, userid: &str) -> String {
        match self {
            Self::Userid => userid.to_owned(),
            Self::Lowercase | Self::Pairwise => userid.to_ascii_lowercase(),
        }
    }
}

/// OIDC Core §8.1 pairwise `sub`: `base64url(SHA-256(sector ‖ 0 ‖ local_id ‖ 0 ‖ salt))`. The zero
/// bytes keep `("ab", "c")` and `("a", "bc")` apart; the salt keeps the value unguessable from
/// the UserId.
pub fn pairwise_subject(sector: &str, local_id: &str, salt: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(sector.as_bytes());
    h.update([0]);
    h.update(local_id.as_bytes());
    h.update([0]);
    h.update(salt.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
}

/// Claim mapping and e-mail policy of one WeCom app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileMapping {
    /// Feeds `name`; default [`ClaimSource::Name`].
    pub name: ClaimSource,
    /// Feeds `preferred_username`; default [`ClaimSource::Userid`].
    pub preferred_username: ClaimSource,
    /// Where `email` comes from.
    pub email: EmailPolicy,
    /// `email_verified` for addresses WeCom gave. Default `false`: WeCom does not say whether
    /// the admin-entered address was ever verified. Template addresses are always `true`: the
    /// operator states that the corp's own domain holds a mailbox for each UserId.
    pub email_verified: bool,
}

impl Default for ProfileMapping {
    fn default() -> Self {
        Self {
            name: ClaimSource::Name,
            preferred_username: ClaimSource::Userid,
            email: EmailPolicy::Upstream,
            email_verified: false,
        }
    }
}

/// `None` for absent, empty or blank strings.
pub(crate) fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// What we know of a member, merged from `user/get` and (when available) `getuserdetail`,
/// `getuserdetail` winning: it is the newer, consented source.
#[derive(Debug, Default, Clone)]
pub(crate) struct MemberProfile {
    pub(crate) userid: String,
    pub(crate) name: Option<String>,
    pub(crate) alias: Option<String>,
    pub(crate) position: Option<String>,
    /// The sensitive fields, each `None` or non-empty.
    pub(crate) private: UserDetailResponse,
}

impl MemberProfile {
    /// From `user/get` (§6).
    pub(crate) fn from_user(userid: &str, user: &UserGetResponse) -> Self {
        let mut profile = Self {
            userid: userid.to_owned(),
            name: non_empty(user.name.clone()),
            alias: non_empty(user.alias.clone()),
            position: non_empty(user.position.clone()),
            private: UserDetailResponse::default(),
        };
        profile.merge_detail(user.private.clone());
        profile
    }

    /// Overlays the `getuserdetail` answer (§5), or `user/get`'s same fields: each non-empty
    /// field replaces ours.
    pub(crate) fn merge_detail(&mut self, d: UserDetailResponse) {
        let take = |ours: &mut Option<String>, theirs: Option<String>| {
            if let Some(v) = non_empty(theirs) {
                *ours = Some(v);
            }
        };
        let ours = &mut self.private;
        take(&mut ours.email, d.email);
        take(&mut ours.biz_mail, d.biz_mail);
        take(&mut ours.mobile, d.mobile);
        take(&mut ours.gender, d.gender);
        take(&mut ours.avatar, d.avatar);
        take(&mut ours.address, d.address);
    }

    /// The member's address: personal e-mail, else the corporate one (issue 3).
    fn upstream_email(&self) -> Option<&str> {
        let p = &self.private;
        p.email.as_deref().or(p.biz_mail.as_deref())
    }

    fn field(&self, source: ClaimSource) -> Option<String> {
        match source {
            ClaimSource::Userid => Some(self.userid.clone()),
            ClaimSource::UseridLower => Some(self.userid.to_ascii_lowercase()),
            ClaimSource::Name => self.name.clone(),
            ClaimSource::Alias => self.alias.clone(),
            ClaimSource::Email => self.upstream_email().map(str::to_owned),
            ClaimSource::EmailLocalPart => self
                .upstream_email()
                .and_then(|e| e.split_once('@'))
                .map(|(local, _)| local.to_owned())
                .filter(|l| !l.is_empty()),
            ClaimSource::Position => self.position.clone(),
        }
    }

    /// The identity under `mapping`, with `subject` as `user_id`.
    pub(crate) fn to_identity(&self, mapping: &ProfileMapping, subject: String) -> Identity {
        let (email, email_verified) = match (self.upstream_email(), &mapping.email) {
            (Some(e), _) => (Some(e.to_owned()), mapping.email_verified),
            (None, EmailPolicy::Upstream) => (None, false),
            (None, EmailPolicy::Template(t)) => (
                Some(
                    t.replace("{userid_lower}", &self.userid.to_ascii_lowercase())
                        .replace("{userid}", &self.userid),
                ),
                true,
            ),
        };
        let upstream_id = (subject != self.userid).then(|| self.userid.clone());
        Identity {
            username: self
                .field(mapping.preferred_username)
                .unwrap_or_else(|| self.userid.clone()),
            name: self.field(mapping.name),
            email,
            email_verified,
            picture: self.private.avatar.clone(),
            // OIDC Core §5.1: `female` and `male` are the defined values; WeCom's "0" means
            // unknown, which is no claim at all.
            gender: match self.private.gender.as_deref() {
                Some("1") => Some("male".to_owned()),
                Some("2") => Some("female".to_owned()),
                _ => None,
            },
            phone_number: self.private.mobile.clone(),
            address: self.private.address.clone(),
            upstream_id,
            user_id: subject,
            groups: Vec::new(),
            connector_id: String::new(),
            extra_claims: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> MemberProfile {
        MemberProfile {
            userid: "ZhangSan".into(),
            name: Some("张三".into()),
            alias: Some("Zhang San".into()),
            ..MemberProfile::default()
        }
    }

    #[test]
    fn privateinfo_when_requested_follows_email_phone_address_scopes() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(!PrivateInfo::WhenRequested.wanted(&s(&["openid", "profile"])));
        assert!(PrivateInfo::WhenRequested.wanted(&s(&["openid", "email"])));
        assert!(PrivateInfo::WhenRequested.wanted(&s(&["openid", "phone"])));
        assert!(PrivateInfo::WhenRequested.wanted(&s(&["openid", "address"])));
        assert!(PrivateInfo::Always.wanted(&s(&["openid"])));
        assert!(!PrivateInfo::Never.wanted(&s(&["email"])));
    }

    #[test]
    fn missing_email_under_upstream_policy_is_absent_not_empty() {
        let id = member().to_identity(&ProfileMapping::default(), "ZhangSan".into());
        assert_eq!(id.email, None);
        assert!(!id.email_verified);
    }

    #[test]
    fn missing_email_under_template_policy_is_made_and_verified() {
        let mapping = ProfileMapping {
            email: EmailPolicy::Template("{userid_lower}@corp.example.com".into()),
            ..ProfileMapping::default()
        };
        let id = member().to_identity(&mapping, "ZhangSan".into());
        assert_eq!(id.email.as_deref(), Some("zhangsan@corp.example.com"));
        assert!(id.email_verified);
    }

    #[test]
    fn upstream_email_wins_over_template_and_biz_mail_is_the_fallback() {
        let mapping = ProfileMapping {
            email: EmailPolicy::Template("{userid}@corp.example.com".into()),
            email_verified: true,
            ..ProfileMapping::default()
        };
        let mut m = member();
        m.private.biz_mail = Some("zs@corp.wecom.work".into());
        let id = m.to_identity(&mapping, "ZhangSan".into());
        assert_eq!(id.email.as_deref(), Some("zs@corp.wecom.work"));
        m.private.email = Some("zs@home.example".into());
        let id = m.to_identity(&mapping, "ZhangSan".into());
        assert_eq!(id.email.as_deref(), Some("zs@home.example"));
        assert!(id.email_verified);
    }

    #[test]
    fn detail_fills_gaps_and_empty_detail_strings_change_nothing() {
        let mut m = member();
        m.private.mobile = Some("13800000000".into());
        let detail: UserDetailResponse = serde_json::from_str(
            r#"{"errcode":0,"userid":"ZhangSan","gender":"2","avatar":"https://a/p.png",
                "mobile":"","email":"zs@example.com","biz_mail":"","address":""}"#,
        )
        .expect("decodes");
        m.merge_detail(detail);
        let id = m.to_identity(&ProfileMapping::default(), "ZhangSan".into());
        assert_eq!(id.phone_number.as_deref(), Some("13800000000"));
        assert_eq!(id.gender.as_deref(), Some("female"));
        assert_eq!(id.picture.as_deref(), Some("https://a/p.png"));
        assert_eq!(id.email.as_deref(), Some("zs@example.com"));
        assert_eq!(id.address, None);
    }

    #[test]
    fn unknown_gender_zero_is_no_claim() {
        let mut m = member();
        m.private.gender = Some("0".into());
        assert_eq!(
            m.to_identity(&ProfileMapping::default(), "x".into()).gender,
            None
        );
    }

    #[test]
    fn claim_mapping_picks_the_configured_fields_and_falls_back_to_userid() {
        let mapping = ProfileMapping {
            name: ClaimSource::Alias,
            preferred_username: ClaimSource::EmailLocalPart,
            ..ProfileMapping::default()
        };
        let id = member().to_identity(&mapping, "ZhangSan".into());
        assert_eq!(id.name.as_deref(), Some("Zhang San"));
        // No e-mail: preferred_username falls back to the UserId rather than vanishing.
        assert_eq!(id.username, "ZhangSan");
    }

    #[test]
    fn lowercase_subject_keeps_the_real_userid_for_refresh() {
        let sub = SubjectMode::Lowercase.apply("ZhangSan");
        let id = member().to_identity(&ProfileMapping::default(), sub);
        assert_eq!(id.user_id, "zhangsan");
        assert_eq!(id.upstream_id.as_deref(), Some("ZhangSan"));
    }

    #[test]
    fn pairwise_subjects_differ_per_sector_and_are_stable_oidc_core_8_1() {
        let a = pairwise_subject("rp-a.example", "zhangsan", "salt");
        assert_eq!(a, pairwise_subject("rp-a.example", "zhangsan", "salt"));
        assert_ne!(a, pairwise_subject("rp-b.example", "zhangsan", "salt"));
        assert_ne!(
            a,
            pairwise_subject("rp-a.example", "zhangsan", "other salt")
        );
        assert_ne!(
            pairwise_subject("ab", "c", "s"),
            pairwise_subject("a", "bc", "s")
        );
        assert_eq!(a.len(), 43);
        assert!(!a.contains("zhangsan"));
    }

    #[test]
    fn email_template_must_name_the_userid_and_a_domain() {
        assert!(EmailPolicy::template_problem("{userid}@corp.example.com").is_none());
        assert!(EmailPolicy::template_problem("{userid_lower}@c.example").is_none());
        assert!(EmailPolicy::template_problem("fixed@corp.example.com").is_some());
        assert!(EmailPolicy::template_problem("{userid}").is_some());
        assert!(EmailPolicy::template_problem("{userid}@").is_some());
    }
}
