//! A secret string that never shows itself in `Debug` output or logs.

use std::fmt;

/// A secret (client secret, upstream app secret). `Debug` prints `Secret(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used (comparison, upstream request).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares with `candidate` in constant time.
    pub fn matches(&self, candidate: &str) -> bool {
        crate::random::constant_time_eq(self.0.as_bytes(), candidate.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `Debug` for a struct that shows only the fields named and ends with `..`: the others hold
/// secrets, or clients and caches whose contents say nothing useful (and may hold tokens).
/// `debug_showing!(TokenCache: key);`
macro_rules! debug_showing {
    ($t:ident: $($field:ident),+) => {
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t))
                    $(.field(stringify!($field), &self.$field))+
                    .finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use debug_showing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert!(!format!("{:?}", Some(&s)).contains("hunter2"));
    }

    #[test]
    fn debug_showing_names_only_the_fields_given() {
        struct Client {
            id: &'static str,
            #[allow(dead_code)]
            secret: &'static str,
        }
        debug_showing!(Client: id);
        let c = Client {
            id: "app",
            secret: "hunter2",
        };
        assert_eq!(format!("{c:?}"), r#"Client { id: "app", .. }"#);
    }

    #[test]
    fn matches_compares_whole_value() {
        let s = Secret::new("abc");
        assert!(s.matches("abc"));
        assert!(!s.matches("abcd"));
        assert!(!s.matches("ab"));
        assert!(!s.matches(""));
    }
}
