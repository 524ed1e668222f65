//! What a connector type provides to the registry, Dex-style: each type owns its configuration
//! section (parsed and validated in its own folder with the shared [`Validator`]), knows how to
//! open itself, and describes itself for the start page and `check`. The list of types is
//! [`super::catalog::TYPES`]; nothing outside a type's folder names it except its line there.

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use toml::Table;

use super::{Connector, ConnectorError};
use crate::check::Finding;
use crate::clock::SharedClock;
use crate::metrics::Metrics;
use crate::storage::UpstreamStore;
use crate::validate::Validator;

/// A type's parser: (validator, table, key for problems, `id` of a `[[connectors]]` table).
pub type ParseFn =
    fn(&mut Validator<'_>, &Table, &str, Option<&str>) -> Option<Box<dyn ConnectorConfig>>;

/// A kind of upstream (`type = "wecom"` in `[[connectors]]`).
pub struct ConnectorType {
    /// The `type` value that selects it.
    pub name: &'static str,
    /// Parses and validates one table of this type — a `[[connectors]]` table without its
    /// `type` and `id` (given as `id`), or a table of the legacy section (`id` `None`) —
    /// recording every problem in the validator under `key` (e.g. `connectors[1]`).
    pub parse: ParseFn,
    /// An older top-level section of this type's own (`[wecom]` / `[[wecom]]`), still read.
    pub legacy_section: Option<&'static str>,
    /// Checks made across every connector of this type once all are parsed (and settles what
    /// depends on the others, e.g. WeCom's home corp); returns the problems.
    pub finish: fn(&mut [Box<dyn ConnectorConfig>]) -> Vec<String>,
}

/// What a connector needs to open.
#[derive(Clone)]
pub struct OpenDeps {
    /// Where upstream tokens, user links and leases are kept: the store in its connector role.
    pub store: Arc<dyn UpstreamStore>,
    /// The injected clock.
    pub clock: SharedClock,
    /// Where upstream calls are counted.
    pub metrics: Arc<Metrics>,
}

/// One configured connector: its type's validated settings.
#[async_trait]
pub trait ConnectorConfig: ConfigObject + Send + Sync + std::fmt::Debug {
    /// The connector id (`/callback/{id}`, a client's `connector`).
    fn id(&self) -> &str;
    /// The type name (`wecom`).
    fn type_name(&self) -> &'static str;
    /// Opens the connector. No upstream call is made here.
    fn open(&self, deps: &OpenDeps) -> Result<Arc<dyn Connector>, ConnectorError>;
    /// Rows for the start page: (label, value), never a secret.
    fn summary(&self) -> Vec<(String, String)>;
    /// Where each claim this connector fills comes from upstream (the demo's claims page);
    /// empty when the type does not say.
    fn claim_origins(&self) -> Vec<super::ClaimOrigin> {
        Vec::new()
    }
    /// Files the upstream wants served at the domain root (e.g. WeCom's domain verification).
    fn root_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    /// Whether this connector gives each client its own `sub`.
    fn is_pairwise(&self) -> bool {
        false
    }
    /// `wecom-oidc check`'s questions to the upstream; `label` is appended to topics when there
    /// are several connectors. `trusted_domain` is the issuer's host[:port].
    async fn check(&self, ctx: &CheckContext<'_>) -> Vec<Finding>;
    /// Whether [`Self::check`] reads what the running provider stored (e.g. a pushed ticket):
    /// `check` then opens the store, when it can, and passes it in [`CheckContext::store`].
    fn check_reads_store(&self) -> bool {
        false
    }
}

/// What every configuration has by being `Clone` and `'static`, written once here rather than
/// in each type's folder.
pub trait ConfigObject: Any {
    /// A copy (configurations are shared behind `Arc`s and finished on copies).
    fn clone_box(&self) -> Box<dyn ConnectorConfig>;
    /// For the type's own `finish`, which downcasts its configurations.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// For code that needs the type's own settings (tests, the demo).
    fn as_any(&self) -> &dyn Any;
}

impl<T: ConnectorConfig + Clone + 'static> ConfigObject for T {
    fn clone_box(&self) -> Box<dyn ConnectorConfig> {
        Box::new(self.clone())
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// What `check` tells a connector about the deployment.
pub struct CheckContext<'a> {
    /// The issuer URL.
    pub issuer: &'a str,
    /// host[:port] of the issuer, when it is valid.
    pub trusted_domain: Option<&'a str>,
    /// Appended to topics: empty with one connector, ` (id)` with several.
    pub label: &'a str,
    /// The clock.
    pub clock: SharedClock,
    /// The deployment's store in the connector role, when a connector asked for it
    /// ([`ConnectorConfig::check_reads_store`]) and it could be opened (a sled store held by a
    /// running server cannot).
    pub store: Option<Arc<dyn UpstreamStore>>,
}
