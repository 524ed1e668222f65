//! The record of a device authorization (RFC 8628 §3.2): what the device asked for, how fast it
//! may poll, and whether the person approved, denied or has not yet answered.

use serde::{Deserialize, Serialize};

use crate::identity::Identity;

/// A device authorization. Stored under the hash of the `device_code` and found by the hash of
/// the `user_code` (both keys are chosen by the caller).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuthorization {
    /// The client (device) that asked.
    pub client_id: String,
    /// The scopes the device asked for, as granted.
    pub scopes: Vec<String>,
    /// The store key of the user code, so that a sweep removes both keys.
    pub user_key: String,
    /// The minimum seconds between two polls; `slow_down` raises it (RFC 8628 §3.5).
    pub interval: i64,
    /// When the device last polled (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_polled_at: Option<i64>,
    /// Unix seconds after which the codes are dead (`expired_token`).
    pub expires_at: i64,
    /// Unix seconds after which the record may be swept: a while after `expires_at`, so a late
    /// poll still hears `expired_token` rather than `invalid_grant`.
    pub keep_until: i64,
    /// What the person answered so far.
    pub status: DeviceStatus,
}

/// Where a device authorization stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DeviceStatus {
    /// The person has not answered yet (`authorization_pending`).
    Pending,
    /// The person approved; the next poll receives the tokens.
    Approved {
        /// Who approved, as the client sees them (boxed: the other states are small).
        identity: Box<Identity>,
        /// When they authenticated upstream.
        auth_time: i64,
        /// The provider session they approved from (the id_token's `sid`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sid: Option<String>,
    },
    /// The person denied (`access_denied`).
    Denied,
    /// The tokens were issued; the device code is spent.
    Redeemed,
}

impl DeviceAuthorization {
    /// Whether the person has not answered yet.
    pub fn is_pending(&self) -> bool {
        self.status == DeviceStatus::Pending
    }
}

/// A change applied atomically to a device authorization by
/// [`super::Store::update_device_authorization`]. It may run more than once (a backend retries
/// on a concurrent change), so it must depend only on the record it is given.
pub type DeviceChange<'a> = &'a (dyn Fn(&mut DeviceAuthorization) + Send + Sync);
