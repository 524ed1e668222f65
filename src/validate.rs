//! The shared validator of configuration tables: typed reads of TOML values that record every
//! problem (naming its key) instead of stopping at the first, so an operator fixes a file in one
//! pass. The top-level configuration and each connector type's own section use it alike.

use toml::{Table, Value};

use crate::secret::Secret;

/// Collects the problems of one configuration file.
pub struct Validator<'a> {
    /// One line per problem, each starting with the key it concerns.
    pub problems: Vec<String>,
    /// Looks up environment variables (injected so tests need not touch the process's).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Validator<'a> {
    /// A validator reading the environment through `env`.
    pub fn new(env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            problems: Vec::new(),
            env,
        }
    }

    /// Records a problem with `key`.
    pub fn problem(&mut self, key: &str, msg: impl std::fmt::Display) {
        self.problems.push(format!("{key}: {msg}"));
    }

    /// Records every key of `t` not in `allowed` (a typo must not be silently ignored).
    pub fn unknown_keys(&mut self, t: &Table, prefix: &str, allowed: &[&str]) {
        for k in t.keys() {
            if !allowed.contains(&k.as_str()) {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                self.problem(
                    &key,
                    format!("unknown key (expected one of: {})", allowed.join(", ")),
                );
            }
        }
    }

    /// The section `[name]` of `t` as `read` makes it, `absent` when there is none; a problem
    /// (and `None`) when `name` is not a table.
    pub fn section<T>(
        &mut self,
        t: &Table,
        name: &str,
        absent: T,
        read: impl FnOnce(&mut Self, &Table) -> Option<T>,
    ) -> Option<T> {
        match t.get(name) {
            None => Some(absent),
            Some(Value::Table(section)) => read(self, section),
            Some(_) => {
                self.problem(name, format!("must be a table ([{name}])"));
                None
            }
        }
    }

    /// The entries of the array at `name`, each with its own key (`{key}[{i}]`); absent is
    /// none. Anything but an array is a problem at `key`, saying it `must_be` …: `None`.
    pub fn array<'t>(
        &mut self,
        t: &'t Table,
        key: &str,
        name: &str,
        must_be: &str,
    ) -> Option<Vec<(String, &'t Value)>> {
        match t.get(name) {
            None => Some(Vec::new()),
            Some(Value::Array(a)) => Some(
                a.iter()
                    .enumerate()
                    .map(|(i, v)| (format!("{key}[{i}]"), v))
                    .collect(),
            ),
            Some(_) => {
                self.problem(key, format!("must be {must_be}"));
                None
            }
        }
    }

    /// The string at `name`, if present; a problem when it is not a string.
    pub fn string(&mut self, t: &Table, key: &str, name: &str) -> Option<String> {
        match t.get(name) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.problem(key, format!("must be a string, found {}", other.type_str()));
                None
            }
        }
    }

    /// The non-empty string at `name`; a problem when it is absent, empty or not a string.
    pub fn required_string(&mut self, t: &Table, key: &str, name: &str) -> Option<String> {
        let s = self.string(t, key, name);
        match s {
            Some(s) if !s.trim().is_empty() => Some(s),
            Some(_) => {
                self.problem(key, "must not be empty");
                None
            }
            None => {
                if !t.contains_key(name) {
                    self.problem(key, "is required");
                }
                None
            }
        }
    }

    /// The integer at `name`, if present; a problem when it is not an integer.
    pub fn integer(&mut self, t: &Table, key: &str, name: &str) -> Option<i64> {
        match t.get(name) {
            None => None,
            Some(Value::Integer(i)) => Some(*i),
            Some(other) => {
                self.problem(
                    key,
                    format!("must be an integer, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// `secret` or `secret_env` (the variable it names) of the table `key`: one, not both.
    pub fn secret(&mut self, t: &Table, key: &str) -> Option<Secret> {
        let direct = self.string(t, &format!("{key}.secret"), "secret");
        let env_name = self.string(t, &format!("{key}.secret_env"), "secret_env");
        match (direct, env_name) {
            (Some(_), Some(_)) => {
                self.problem(
                    &format!("{key}.secret"),
                    "set either secret or secret_env, not both",
                );
                None
            }
            (Some(s), None) if s.is_empty() => {
                self.problem(&format!("{key}.secret"), "must not be empty");
                None
            }
            (Some(s), None) => Some(Secret::new(s)),
            (None, Some(var)) => match (self.env)(&var) {
                Some(s) if !s.is_empty() => Some(Secret::new(s)),
                _ => {
                    self.problem(
                        &format!("{key}.secret_env"),
                        format!("environment variable {var} is not set or empty"),
                    );
                    None
                }
            },
            (None, None) => None,
        }
    }

    /// A secret given directly (`name`) or through an environment variable (`name_env`).
    pub fn secret_pair(&mut self, t: &Table, prefix: &str, name: &str) -> Option<Option<String>> {
        let env_name = format!("{name}_env");
        let key = format!("{prefix}.{name}");
        let direct = self.string(t, &key, name);
        let var = self.string(t, &format!("{key}_env"), &env_name);
        match (direct, var) {
            (Some(_), Some(_)) => {
                self.problem(&key, format!("set either {name} or {env_name}, not both"));
                None
            }
            (Some(v), None) if v.is_empty() => {
                self.problem(&key, "must not be empty");
                None
            }
            (Some(v), None) => Some(Some(v)),
            (None, Some(var)) => match (self.env)(&var) {
                Some(v) if !v.is_empty() => Some(Some(v)),
                _ => {
                    self.problem(
                        &format!("{key}_env"),
                        format!("environment variable {var} is not set or empty"),
                    );
                    None
                }
            },
            (None, None) if t.contains_key(name) || t.contains_key(&env_name) => None,
            (None, None) => Some(None),
        }
    }

    /// The boolean at `name`, if present; a problem when it is not `true` or `false`.
    pub fn boolean(&mut self, t: &Table, key: &str, name: &str) -> Option<bool> {
        match t.get(name) {
            None => None,
            Some(Value::Boolean(b)) => Some(*b),
            Some(_) => {
                self.problem(key, "must be true or false");
                None
            }
        }
    }

    /// A string that must be one of a few words; `None` (after a problem) when it is not.
    pub fn choice<T>(
        &mut self,
        t: &Table,
        key: &str,
        name: &str,
        default: T,
        parse: fn(&str) -> Option<T>,
        allowed: &str,
    ) -> Option<T> {
        match self.string(t, key, name) {
            None if t.contains_key(name) => None,
            None => Some(default),
            Some(s) => match parse(&s) {
                Some(v) => Some(v),
                None => {
                    self.problem(key, format!("{s:?} is not one of: {allowed}"));
                    None
                }
            },
        }
    }

    /// Runs `parse` and renames the problems it records from `from` to `to` (`wecom.secret_env`
    /// becomes `connectors[1].secret_env`), so a section parsed by shared code names the place
    /// the operator wrote it.
    pub fn renamed<T>(&mut self, from: &str, to: &str, parse: impl FnOnce(&mut Self) -> T) -> T {
        let before = self.problems.len();
        let out = parse(self);
        if from != to {
            for p in &mut self.problems[before..] {
                if let Some(rest) = p.strip_prefix(from) {
                    *p = format!("{to}{rest}");
                }
            }
        }
        out
    }
}
