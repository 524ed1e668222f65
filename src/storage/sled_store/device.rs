//! Device authorizations in sled: records by device key in one tree, the user-code index in
//! another, both opened on use (sled caches open trees).

use serde::{Deserialize, Serialize};

use super::{Table, Trees, Write};
use crate::storage::{DeviceAuthorization, DeviceChange, Result};

/// The user-code index entry: which record, and until when (for the sweep).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct UserCodeEntry {
    device_key: String,
    keep_until: i64,
}

super::expiring!(UserCodeEntry => keep_until, DeviceAuthorization => keep_until);

impl Trees {
    pub(super) fn device_tables(&self) -> Result<(Table, Table)> {
        Ok((
            Table::open(&self.db, "device_authorizations")?,
            Table::open(&self.db, "device_user_codes")?,
        ))
    }

    pub(super) fn create_device_authorization_now(
        &self,
        device_key: &str,
        user_key: &str,
        record: &DeviceAuthorization,
    ) -> Result<()> {
        let (records, users) = self.device_tables()?;
        // The index first: a user-code collision is the one that can happen (a device key is
        // 256 random bits), and it must leave nothing behind.
        users.create(
            user_key,
            &UserCodeEntry {
                device_key: device_key.to_owned(),
                keep_until: record.keep_until,
            },
        )?;
        if let Err(e) = records.create(device_key, record) {
            users.delete(user_key)?;
            return Err(e);
        }
        Ok(())
    }

    pub(super) fn find_device_authorization_now(
        &self,
        user_key: &str,
    ) -> Result<(String, DeviceAuthorization)> {
        let (records, users) = self.device_tables()?;
        let entry: UserCodeEntry = users.find(user_key)?;
        let record = records.find(&entry.device_key)?;
        Ok((entry.device_key, record))
    }

    pub(super) fn update_device_authorization_now(
        &self,
        device_key: &str,
        change: DeviceChange<'_>,
    ) -> Result<DeviceAuthorization> {
        let (records, _) = self.device_tables()?;
        // Compare-and-swap (`Table::update`): the change is written only over exactly the record
        // it was applied to, so of two racing polls or answers each sees the other's result.
        records.update_found(device_key, |before: DeviceAuthorization| {
            let mut after = before.clone();
            change(&mut after);
            let write = if after == before {
                Write::Keep
            } else {
                Write::Put(after)
            };
            Ok((before, write))
        })
    }
}
