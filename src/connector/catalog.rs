//! The connector types this build knows, and what the configuration loader and the server do
//! with all of them at once. Adding a type = its folder + its line in [`TYPES`].

use std::sync::Arc;

use super::registry::{ConnectorConfig, ConnectorType};

/// Every connector type this build knows. Adding one = its folder + one line here.
pub const TYPES: &[ConnectorType] = &[
    super::wecom::CONNECTOR_TYPE,
    super::wecom_suite::CONNECTOR_TYPE,
];

/// The type named `name`.
pub fn find(name: &str) -> Option<&'static ConnectorType> {
    TYPES.iter().find(|t| t.name == name)
}

/// The names of every type, for error messages.
pub fn type_names() -> String {
    TYPES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
}

/// Runs every type's `finish` over its own connectors (in configuration order).
pub fn finish_all(configs: &mut [Box<dyn ConnectorConfig>]) -> Vec<String> {
    let mut problems = Vec::new();
    for t in TYPES {
        let mut mine: Vec<Box<dyn ConnectorConfig>> = Vec::new();
        let mut slots = Vec::new();
        for (i, c) in configs.iter().enumerate() {
            if c.type_name() == t.name {
                mine.push(c.clone_box());
                slots.push(i);
            }
        }
        if mine.is_empty() {
            continue;
        }
        problems.extend((t.finish)(&mut mine));
        for (slot, c) in slots.into_iter().zip(mine) {
            configs[slot] = c;
        }
    }
    problems
}

/// Shares configurations after [`finish_all`].
pub fn share(configs: Vec<Box<dyn ConnectorConfig>>) -> Vec<Arc<dyn ConnectorConfig>> {
    configs.into_iter().map(Arc::from).collect()
}
