//! `[[connectors]]`: the upstreams, each parsed by its type's own code from the registry
//! (`type = "…"`, a unique `id`). A type may also keep an older top-level section of its own
//! (`[wecom]` / `[[wecom]]`), read into the same form with a deprecation line.

use std::sync::Arc;

use toml::{Table, Value};

use crate::connector::catalog;
use crate::connector::registry::ConnectorConfig;
use crate::validate::Validator;

/// What a `[[connectors]]` table holds besides its type's own keys.
const COMMON_KEYS: &[&str] = &["type", "id"];

impl Validator<'_> {
    /// Every connector of the file, finished by their types; `None` after a problem. Also the
    /// deprecation lines for older forms.
    pub(super) fn connectors(
        &mut self,
        t: &Table,
    ) -> (Option<Vec<Arc<dyn ConnectorConfig>>>, Vec<String>) {
        let mut configs: Vec<Box<dyn ConnectorConfig>> = Vec::new();
        // Where each one's id was written, for the duplicate check.
        let mut id_keys: Vec<String> = Vec::new();
        let mut deprecations = Vec::new();
        let mut complete = true;
        let list = self.array(
            t,
            "connectors",
            "connectors",
            "an array of tables ([[connectors]])",
        );
        complete &= list.is_some();
        for (key, item) in list.unwrap_or_default() {
            match item {
                Value::Table(c) => match self.connector(c, &key) {
                    Some(c) => {
                        configs.push(c);
                        id_keys.push(format!("{key}.id"));
                    }
                    None => complete = false,
                },
                _ => {
                    self.problem(&key, "must be a table ([[connectors]])");
                    complete = false;
                }
            }
        }
        for ty in catalog::TYPES {
            let Some(section) = ty.legacy_section else {
                continue;
            };
            let tables: Vec<(String, &Table)> = match t.get(section) {
                None => continue,
                Some(Value::Table(one)) => vec![(section.to_owned(), one)],
                Some(Value::Array(list)) if !list.is_empty() => {
                    let mut out = Vec::new();
                    for (i, item) in list.iter().enumerate() {
                        match item {
                            Value::Table(one) => out.push((format!("{section}[{i}]"), one)),
                            _ => {
                                self.problem(&format!("{section}[{i}]"), "must be a table");
                                complete = false;
                            }
                        }
                    }
                    out
                }
                Some(_) => {
                    self.problem(
                        section,
                        format!("must be a table ([{section}]) or a list ([[{section}]])"),
                    );
                    complete = false;
                    continue;
                }
            };
            deprecations.push(format!(
                "[{section}] is the older form of [[connectors]] with type = \"{}\": it keeps \
                 working; write new configurations as [[connectors]]",
                ty.name
            ));
            let several = tables.len() > 1;
            for (key, table) in tables {
                if several && !table.contains_key("name") {
                    self.problem(
                        &format!("{key}.name"),
                        format!("is required for each [[{section}]] app (e.g. name = \"hq\")"),
                    );
                }
                match (ty.parse)(self, table, &key, None) {
                    Some(c) => {
                        configs.push(c);
                        id_keys.push(format!("{key}.name"));
                    }
                    None => complete = false,
                }
            }
        }
        // Ids are unique: they name callback URLs and the clients' `connector`.
        for i in 0..configs.len() {
            if configs[..i].iter().any(|c| c.id() == configs[i].id()) {
                self.problem(
                    &id_keys[i],
                    format!("duplicate connector id {:?}", configs[i].id()),
                );
                complete = false;
            }
        }
        if configs.is_empty() && complete {
            self.problem(
                "connectors",
                format!(
                    "no upstream configured: add a [[connectors]] table (type = one of: {})",
                    catalog::type_names()
                ),
            );
            complete = false;
        }
        if !complete {
            return (None, deprecations);
        }
        for problem in catalog::finish_all(&mut configs) {
            self.problem("connectors", problem);
        }
        (Some(catalog::share(configs)), deprecations)
    }

    /// One `[[connectors]]` table: its type's parser, with `id` required.
    fn connector(&mut self, c: &Table, key: &str) -> Option<Box<dyn ConnectorConfig>> {
        let type_name = self.required_string(c, &format!("{key}.type"), "type")?;
        let Some(ty) = catalog::find(&type_name) else {
            self.problem(
                &format!("{key}.type"),
                format!(
                    "{type_name:?} is not a connector type (one of: {})",
                    catalog::type_names()
                ),
            );
            return None;
        };
        let id = self.required_string(c, &format!("{key}.id"), "id")?;
        let mut own = c.clone();
        for k in COMMON_KEYS {
            own.remove(*k);
        }
        (ty.parse)(self, &own, key, Some(&id))
    }
}
