//! Device authorizations in PostgreSQL: one row per authorization, found by the device key or,
//! through a unique index, by the user key.

use super::{decode, encode, PostgresStore};
use crate::storage::{DeviceAuthorization, DeviceChange, Result};

impl PostgresStore {
    pub(super) async fn create_device_authorization_now(
        &self,
        device_key: &str,
        user_key: &str,
        record: &DeviceAuthorization,
    ) -> Result<()> {
        // A conflict on either key inserts nothing: `AlreadyExists`, and the caller draws
        // another user code.
        self.create(
            "create device authorization",
            "INSERT INTO device_authorizations (key, user_key, record, keep_until)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&device_key, &user_key, &encode(record)?, &record.keep_until],
        )
        .await
    }

    pub(super) async fn find_device_authorization_now(
        &self,
        user_key: &str,
    ) -> Result<(String, DeviceAuthorization)> {
        let row = self
            .row(
                "find device authorization",
                "SELECT key, record FROM device_authorizations WHERE user_key = $1",
                &[&user_key],
            )
            .await?;
        let record = decode("device_authorizations", row.get::<_, &str>(1))?;
        Ok((row.get(0), record))
    }

    pub(super) async fn update_device_authorization_now(
        &self,
        device_key: &str,
        change: DeviceChange<'_>,
    ) -> Result<DeviceAuthorization> {
        // A compare-and-swap, as `touch_session`'s: of two racing polls or answers, in any
        // instance, each sees the other's result.
        let sql = [
            "SELECT record FROM device_authorizations WHERE key = $1",
            "UPDATE device_authorizations SET record = $2 WHERE key = $1 AND record = $3",
        ];
        let op = "update device authorization";
        self.swap_record(op, sql, device_key, |current| {
            let before: DeviceAuthorization = decode("device_authorizations", current)?;
            let mut after = before.clone();
            change(&mut after);
            let write = if after == before {
                None
            } else {
                Some(encode(&after)?)
            };
            Ok((write, before))
        })
        .await
    }
}
