//! Request parameters as they arrived, so the rules of RFC 6749 §3.1 can be applied: a
//! parameter sent without a value counts as omitted, and none may appear more than once.

use std::collections::HashMap;

use super::error::OAuthError;

/// Decoded `application/x-www-form-urlencoded` parameters (query string or body).
#[derive(Debug, Clone, Default)]
pub struct Params {
    values: HashMap<String, String>,
    repeated: Vec<String>,
}

impl Params {
    /// Decodes a query string or form body. Never fails: undecodable bytes are replaced, so
    /// that validation, not parsing, reports what is wrong.
    pub fn parse(raw: &str) -> Self {
        Self::from_pairs(url::form_urlencoded::parse(raw.as_bytes()).into_owned())
    }

    /// Collects pairs, dropping empty values (RFC 6749 §3.1: "Parameters sent without a value
    /// MUST be treated as if they were omitted") and remembering names that repeat.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut values = HashMap::new();
        let mut repeated = Vec::new();
        for (k, v) in pairs {
            if v.is_empty() {
                continue;
            }
            match values.entry(k) {
                std::collections::hash_map::Entry::Occupied(e) => {
                    if !repeated.contains(e.key()) {
                        repeated.push(e.key().clone());
                    }
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(v);
                }
            }
        }
        Self { values, repeated }
    }

    /// The value of `name`, unless it was repeated (a repeated parameter has no trustworthy value).
    pub fn get(&self, name: &str) -> Option<&str> {
        if self.is_repeated(name) {
            return None;
        }
        self.values.get(name).map(String::as_str)
    }

    /// The value of `name`, or `invalid_request` naming it when it is missing (or repeated).
    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} is missing")))
    }

    /// Whether `name` appeared more than once (RFC 6749 §3.1, §3.2).
    pub fn is_repeated(&self, name: &str) -> bool {
        self.repeated.iter().any(|r| r == name)
    }

    /// The first repeated parameter, if any.
    pub fn first_repeated(&self) -> Option<&str> {
        self.repeated.first().map(String::as_str)
    }

    /// `invalid_request` naming the first repeated parameter, if any (RFC 6749 §3.1: "Request
    /// and response parameters MUST NOT be included more than once").
    pub fn refuse_repeated(&self) -> Result<(), OAuthError> {
        match self.first_repeated() {
            Some(name) => Err(OAuthError::invalid_request(format!(
                "parameter {name} is repeated"
            ))),
            None => Ok(()),
        }
    }

    /// Whether `name` was sent (with a value).
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_omitted_rfc6749_3_1() {
        let p = Params::parse("state=&nonce=n1");
        assert_eq!(p.get("state"), None);
        assert!(!p.has("state"));
        assert_eq!(p.get("nonce"), Some("n1"));
    }

    #[test]
    fn repeated_parameters_are_detected_rfc6749_3_1() {
        let p = Params::parse("scope=openid&scope=profile&a=1");
        assert!(p.is_repeated("scope"));
        assert_eq!(p.get("scope"), None);
        assert_eq!(p.first_repeated(), Some("scope"));
        assert_eq!(p.get("a"), Some("1"));
    }

    #[test]
    fn a_missing_or_repeated_required_parameter_is_invalid_request_rfc6749_5_2() {
        let p = Params::parse("code=c&state=a&state=b");
        assert_eq!(p.required("code"), Ok("c"));
        for name in ["redirect_uri", "state"] {
            let err = p.required(name).expect_err(name);
            assert_eq!(err.code, super::super::ErrorCode::InvalidRequest);
            assert_eq!(err.description, format!("{name} is missing"));
        }
    }

    #[test]
    fn percent_and_plus_are_decoded() {
        let p = Params::parse("redirect_uri=https%3A%2F%2Fa.example%2Fcb&scope=openid+profile");
        assert_eq!(p.get("redirect_uri"), Some("https://a.example/cb"));
        assert_eq!(p.get("scope"), Some("openid profile"));
    }

    #[test]
    fn invalid_utf8_does_not_panic() {
        let p = Params::parse("state=%FF%FE&x=1");
        assert!(p.get("state").is_some());
    }
}
