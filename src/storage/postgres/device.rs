//! Device authorizations in PostgreSQL: one row per authorization, found by the device key or,
//! through a unique index, by the user key.

use super::{decode, encode, pg_error, PostgresStore};
use crate::storage::{DeviceAuthorization, DeviceChange, Result, StorageError};

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
            .query_opt(
                "find device authorization",
                "SELECT key, record FROM device_authorizations WHERE user_key = $1",
                &[&user_key],
            )
            .await?
            .ok_or(StorageError::NotFound)?;
        let record = decode("device_authorizations", row.get::<_, &str>(1))?;
        Ok((row.get(0), record))
    }

    pub(super) async fn update_device_authorization_now(
        &self,
        device_key: &str,
        change: DeviceChange<'_>,
    ) -> Result<DeviceAuthorization> {
        // A compare-and-swap on the record, as `touch_session` does: the UPDATE writes only
        // over exactly the record the change was applied to (re-checked under the row lock),
        // so of two racing polls or answers, in any instance, each sees the other's result.
        let client = self.client().await?;
        let op = "update device authorization";
        let select = client
            .prepare_cached("SELECT record FROM device_authorizations WHERE key = $1")
            .await
            .map_err(|e| pg_error(op, &e))?;
        let update = client
            .prepare_cached(
                "UPDATE device_authorizations SET record = $2 WHERE key = $1 AND record = $3",
            )
            .await
            .map_err(|e| pg_error(op, &e))?;
        loop {
            let row = client
                .query_opt(&select, &[&device_key])
                .await
                .map_err(|e| pg_error(op, &e))?
                .ok_or(StorageError::NotFound)?;
            let current: &str = row.get(0);
            let before: DeviceAuthorization = decode("device_authorizations", current)?;
            let mut after = before.clone();
            change(&mut after);
            if after == before {
                return Ok(before);
            }
            let changed = client
                .execute(&update, &[&device_key, &encode(&after)?, &current])
                .await
                .map_err(|e| pg_error(op, &e))?;
            if changed == 1 {
                return Ok(before);
            }
        }
    }
}
