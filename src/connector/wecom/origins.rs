//! Where each claim of a WeCom login comes from — the WeCom call and field, under this app's
//! claim mapping, e-mail policy, `sub` form, private-info setting and `groups` options — for
//! the demo's claims page. It follows [`super::profile::MemberProfile::to_identity`] and
//! `groups`; the tests below hold the two together.

use super::profile::{ClaimSource, EmailPolicy, PrivateInfo, SubjectMode};
use super::WeComSettings;
use crate::connector::{Bilingual, ClaimOrigin};

fn origin(claim: &str, zh: impl Into<String>, en: impl Into<String>) -> ClaimOrigin {
    ClaimOrigin {
        claim: claim.to_owned(),
        from: Bilingual::new(zh, en),
    }
}

/// The `user/get` field(s) behind a mapping source.
fn field(source: ClaimSource) -> (&'static str, &'static str) {
    match source {
        ClaimSource::Userid => ("user/get 的 userid", "user/get userid"),
        ClaimSource::UseridLower => ("user/get 的 userid（小写）", "user/get userid, lower-cased"),
        ClaimSource::Name => ("user/get 的 name", "user/get name"),
        ClaimSource::Alias => (
            "user/get 的 alias（英文名）",
            "user/get alias (English name)",
        ),
        ClaimSource::Email => (
            "user/get 的 email，没有时用 biz_mail",
            "user/get email, else biz_mail",
        ),
        ClaimSource::EmailLocalPart => (
            "email（或 biz_mail）@ 之前的部分",
            "the part of email (or biz_mail) before @",
        ),
        ClaimSource::Position => (
            "user/get 的 position（职务）",
            "user/get position (job title)",
        ),
    }
}

/// Every claim a login through `s` may carry, with its WeCom source.
pub(super) fn claim_origins(s: &WeComSettings) -> Vec<ClaimOrigin> {
    // §5: with snsapi_privateinfo, getuserdetail's non-empty fields win over user/get's.
    let private = match s.privateinfo {
        PrivateInfo::Never => ("", ""),
        PrivateInfo::Always => (
            "；成员授权后 getuserdetail 的值优先",
            "; getuserdetail's value first, once the member consents",
        ),
        PrivateInfo::WhenRequested => (
            "；请求 email/phone/address 时，成员授权后 getuserdetail 的值优先",
            "; getuserdetail's value first when email, phone or address is asked for and the member consents",
        ),
    };
    let sub = match s.subject {
        SubjectMode::Userid => (
            "auth/getuserinfo 的 userid".to_owned(),
            "auth/getuserinfo userid".to_owned(),
        ),
        SubjectMode::Lowercase => (
            "auth/getuserinfo 的 userid（小写）".to_owned(),
            "auth/getuserinfo userid, lower-cased".to_owned(),
        ),
        SubjectMode::Pairwise => (
            "由 userid 与应用的 sector 计算（每个应用不同）".to_owned(),
            "computed from the userid and the client's sector (one per client)".to_owned(),
        ),
    };
    let (name_zh, name_en) = field(s.profile.name);
    let (user_zh, user_en) = field(s.profile.preferred_username);
    let email = match &s.profile.email {
        EmailPolicy::Upstream => (
            format!(
                "user/get 的 email，没有时用 biz_mail；都没有则无此声明{}",
                private.0
            ),
            format!(
                "user/get email, else biz_mail; no claim when neither is set{}",
                private.1
            ),
        ),
        EmailPolicy::Template(t) => (
            format!(
                "user/get 的 email，没有时用 biz_mail，都没有时按模板 {t} 生成{}",
                private.0
            ),
            format!(
                "user/get email, else biz_mail, else made from the template {t}{}",
                private.1
            ),
        ),
    };
    let g = &s.groups;
    let mut kinds_zh = Vec::new();
    let mut kinds_en = Vec::new();
    if g.names {
        kinds_zh.push("部门名称");
        kinds_en.push("department names");
    }
    if g.paths {
        kinds_zh.push(if g.parents {
            "部门路径及上级路径"
        } else {
            "部门路径"
        });
        kinds_en.push(if g.parents {
            "department paths with their parents"
        } else {
            "department paths"
        });
    }
    if g.ids {
        kinds_zh.push("部门 ID");
        kinds_en.push("department ids");
    }
    if g.tags {
        kinds_zh.push("标签名称");
        kinds_en.push("tag names");
    }
    vec![
        origin("sub", sub.0, sub.1),
        origin("name", name_zh, name_en),
        origin("preferred_username", user_zh, user_en),
        origin("email", email.0, email.1),
        origin(
            "email_verified",
            if s.profile.email_verified { "配置 email_verified = true" } else { "false：企业微信不说明邮箱是否验证过（模板生成的地址为 true）" },
            if s.profile.email_verified { "set by email_verified = true" } else { "false: WeCom does not say whether an address was verified (template addresses are true)" },
        ),
        origin("phone_number", format!("user/get 的 mobile{}", private.0), format!("user/get mobile{}", private.1)),
        origin("gender", format!("user/get 的 gender（1 男、2 女）{}", private.0), format!("user/get gender (1 male, 2 female){}", private.1)),
        origin("picture", format!("user/get 的 avatar{}", private.0), format!("user/get avatar{}", private.1)),
        origin("address", format!("user/get 的 address{}", private.0), format!("user/get address{}", private.1)),
        origin(
            "groups",
            format!("user/get 的 department 经 department/simplelist、department/get 得到的{}，以及 tag/list、tag/get", kinds_zh.join("、")),
            format!("{} from user/get department through department/simplelist and department/get, and tag/list + tag/get", kinds_en.join(", ")),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::wecom::profile::MemberProfile;

    fn find<'a>(o: &'a [ClaimOrigin], claim: &str) -> &'a ClaimOrigin {
        o.iter().find(|x| x.claim == claim).expect(claim)
    }

    #[test]
    fn origins_follow_the_claim_mapping_and_email_policy() {
        let mut s = WeComSettings::new("ww1", 1, "secret");
        let o = claim_origins(&s);
        assert_eq!(find(&o, "name").from.en, "user/get name");
        assert!(find(&o, "email")
            .from
            .en
            .starts_with("user/get email, else biz_mail"));
        assert!(find(&o, "groups").from.en.contains("tag names"));
        s.profile.name = ClaimSource::Alias;
        s.profile.email = EmailPolicy::Template("{userid_lower}@corp.example".into());
        s.subject = SubjectMode::Pairwise;
        let o = claim_origins(&s);
        assert!(find(&o, "name").from.en.contains("alias"));
        assert!(find(&o, "email")
            .from
            .en
            .contains("{userid_lower}@corp.example"));
        assert!(find(&o, "sub").from.en.contains("one per client"));
    }

    #[test]
    fn every_profile_claim_the_mapping_fills_has_an_origin() {
        let s = WeComSettings::new("ww1", 1, "secret");
        let o = claim_origins(&s);
        let full = MemberProfile {
            userid: "zhangsan".into(),
            name: Some("张三".into()),
            private: crate::connector::wecom::api::UserDetailResponse {
                email: Some("z@example.com".into()),
                mobile: Some("138".into()),
                gender: Some("1".into()),
                avatar: Some("https://example.com/a".into()),
                address: Some("北京".into()),
                biz_mail: None,
            },
            ..MemberProfile::default()
        }
        .to_identity(&s.profile, "zhangsan".into());
        let claims = serde_json::to_value(&full).unwrap();
        fn named(field: &str) -> &str {
            match field {
                "user_id" => "sub",
                "username" => "preferred_username",
                "phone_number" => "phone_number",
                other => other,
            }
        }
        for (field, value) in claims.as_object().unwrap() {
            if value.is_null() || field == "connector_id" || field == "upstream_id" {
                continue;
            }
            let claim = named(field);
            assert!(o.iter().any(|x| x.claim == claim), "{claim} has no origin");
        }
    }
}
