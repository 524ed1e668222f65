//! Scope values (RFC 6749 §3.3): a space-delimited list in which order and repetition carry no
//! meaning. Every grant reads them the same way: each scope once, in the order asked.

/// Scopes this provider understands; others are ignored (RFC 6749 §3.3 lets the server narrow).
/// `groups` is ours (not OIDC Core §5.4): it releases the `groups` claim.
pub const SUPPORTED_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "phone",
    "address",
    "groups",
    "offline_access",
];

/// The supported scopes of `requested`, each once; the others are dropped.
pub(crate) fn supported(requested: &str) -> Vec<String> {
    let kept: Result<_, std::convert::Infallible> =
        each_once(requested, |s| Ok(SUPPORTED_SCOPES.contains(&s)));
    kept.unwrap_or_default()
}

/// The scopes of `requested`, each once, if all are among `allowed`; else the first that is not.
pub(crate) fn within<'a>(requested: &'a str, allowed: &[String]) -> Result<Vec<String>, &'a str> {
    each_once(requested, |s| {
        if allowed.iter().any(|a| a == s) {
            Ok(true)
        } else {
            Err(s)
        }
    })
}

/// The scopes of `requested` that `keep` accepts, each once, in the order asked; the first
/// error of `keep` ends the reading.
fn each_once<'a, E>(
    requested: &'a str,
    mut keep: impl FnMut(&'a str) -> Result<bool, E>,
) -> Result<Vec<String>, E> {
    let mut scopes: Vec<String> = Vec::new();
    for s in requested.split(' ').filter(|s| !s.is_empty()) {
        if keep(s)? && !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_string());
        }
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_read_once_each_in_the_order_asked_rfc6749_3_3() {
        assert_eq!(
            supported("email  openid bogus email"),
            ["email", "openid"].map(String::from)
        );
        let allowed = ["read", "write"].map(String::from);
        assert_eq!(
            within("write read write", &allowed),
            Ok(["write", "read"].map(String::from).to_vec())
        );
        assert_eq!(within("read admin", &allowed), Err("admin"));
        assert_eq!(within(" ", &allowed), Ok(Vec::new()));
    }
}
