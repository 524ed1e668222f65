//! What a suite keeps in the store, shared by every instance and every connector of the same
//! SuiteID: the latest `suite_ticket` and each installing corp's record with its sealed
//! `permanent_code` (wecom-api.md §8).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::unavailable;
use super::vault::Vault;
use crate::connector::ConnectorError;
use crate::storage::{StorageError, UpstreamStore, UpstreamToken};

/// The stored ticket never expires by itself: the newest one pushed replaces it (§8).
const KEEP_FOREVER: i64 = i64::MAX;

/// What the store keeps about one installing corp (a user-link record, JSON). The permanent
/// code is sealed; the rest is not secret.
#[derive(Serialize, Deserialize)]
pub(super) struct Installation {
    pub(super) corp_name: String,
    #[serde(default)]
    pub(super) agent_id: i64,
    /// [`Vault::seal`]ed `permanent_code`.
    pub(super) permanent_code: String,
}

/// Store keys of one suite: shared by every connector and instance of that SuiteID.
#[derive(Clone)]
pub(super) struct Keys {
    pub(super) suite_id: String,
}

impl Keys {
    pub(super) fn ticket(&self) -> String {
        format!("wecom-suite:{}:suite_ticket", self.suite_id)
    }
    pub(super) fn suite_token(&self) -> String {
        format!("wecom-suite:{}", self.suite_id)
    }
    pub(super) fn corp_token(&self, corp: &str) -> String {
        format!("wecom-suite:{}:corp:{corp}", self.suite_id)
    }
    pub(super) fn installation(&self, corp: &str) -> String {
        format!("wecom-suite:{}:auth:{corp}", self.suite_id)
    }
}

/// The sealed secrets of a suite in the store.
#[derive(Clone)]
pub(super) struct Secrets {
    pub(super) store: Arc<dyn UpstreamStore>,
    pub(super) vault: Vault,
    pub(super) keys: Keys,
}

impl Secrets {
    /// The latest `suite_ticket`; `None` before the first push.
    pub(super) async fn ticket(&self) -> Result<Option<String>, ConnectorError> {
        let key = self.keys.ticket();
        match self.store.find_upstream_token(&key).await {
            Ok(t) => Ok(Some(self.vault.open(&key, &t.token).map_err(unavailable)?)),
            Err(StorageError::NotFound) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    pub(super) async fn save_ticket(&self, ticket: &str) -> Result<(), ConnectorError> {
        let key = self.keys.ticket();
        let record = UpstreamToken {
            token: self.vault.seal(&key, ticket).map_err(unavailable)?,
            expires_at: KEEP_FOREVER,
        };
        self.store
            .save_upstream_token(&key, &record)
            .await
            .map_err(unavailable)
    }

    /// The corp's installation with its permanent code opened; `None` when the corp has not
    /// installed the app or has removed it (an empty record: the role cannot delete links).
    pub(super) async fn installation(
        &self,
        corp: &str,
    ) -> Result<Option<(Installation, String)>, ConnectorError> {
        let key = self.keys.installation(corp);
        let raw = match self.store.find_user_link(&key).await {
            Ok(raw) if raw.is_empty() => return Ok(None),
            Ok(raw) => raw,
            Err(StorageError::NotFound) => return Ok(None),
            Err(e) => return Err(unavailable(e)),
        };
        let record: Installation = serde_json::from_str(&raw).map_err(unavailable)?;
        let code = self
            .vault
            .open(&key, &record.permanent_code)
            .map_err(unavailable)?;
        Ok(Some((record, code)))
    }

    pub(super) async fn save_installation(
        &self,
        corp: &str,
        corp_name: &str,
        agent_id: i64,
        permanent_code: &str,
    ) -> Result<(), ConnectorError> {
        let key = self.keys.installation(corp);
        let record = Installation {
            corp_name: corp_name.to_owned(),
            agent_id,
            permanent_code: self.vault.seal(&key, permanent_code).map_err(unavailable)?,
        };
        let json = serde_json::to_string(&record).map_err(unavailable)?;
        self.store
            .save_user_link(&key, &json)
            .await
            .map_err(unavailable)
    }

    /// Ends the corp's installation: the record is emptied and its cached token dropped.
    pub(super) async fn remove_installation(&self, corp: &str) -> Result<(), ConnectorError> {
        self.store
            .save_user_link(&self.keys.installation(corp), "")
            .await
            .map_err(unavailable)?;
        self.store
            .delete_upstream_token(&self.keys.corp_token(corp))
            .await
            .map_err(unavailable)
    }
}
