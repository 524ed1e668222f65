//! Conformance checks for device authorizations (RFC 8628): create, find by user code, atomic
//! update, sweep.

use super::{
    identity, is_already_exists, is_not_found, key, race, race_keys, FAR_FUTURE, RACERS, SWEEP_NOW,
};
use crate::storage::{DeviceAuthorization, DeviceStatus, Store};

fn device(user_key: &str, keep_until: i64) -> DeviceAuthorization {
    DeviceAuthorization {
        client_id: "client-a".into(),
        scopes: vec!["openid".into(), "profile".into()],
        user_key: user_key.into(),
        interval: 5,
        last_polled_at: None,
        expires_at: keep_until - 600,
        keep_until,
        status: DeviceStatus::Pending,
    }
}

/// A device authorization is found by its user key, a taken user key (or device key) refuses a
/// second one without leaving anything behind, and an update returns the record before it.
pub async fn device_authorization_is_found_by_user_code_and_updated(store: &dyn Store) {
    let (d, u) = (key("device"), key("user-code"));
    let record = device(&u, FAR_FUTURE);
    store
        .create_device_authorization(&d, &u, &record)
        .await
        .expect("create");
    assert_eq!(
        store.find_device_authorization(&u).await.expect("find"),
        (d.clone(), record.clone())
    );
    // A colliding user code: refused, and the other device key stays unknown.
    let other = key("device");
    assert!(is_already_exists(
        &store.create_device_authorization(&other, &u, &record).await
    ));
    assert!(is_already_exists(
        &store
            .create_device_authorization(&d, &key("user-code"), &record)
            .await
    ));
    assert!(is_not_found(
        &store.update_device_authorization(&other, &|_| {}).await
    ));
    let approve = |r: &mut DeviceAuthorization| {
        if r.is_pending() {
            r.status = DeviceStatus::Approved {
                identity: Box::new(identity()),
                auth_time: 7,
                sid: Some("sid-1".into()),
            };
        }
    };
    let before = store
        .update_device_authorization(&d, &approve)
        .await
        .expect("update");
    assert_eq!(before, record);
    let again = store
        .update_device_authorization(&d, &approve)
        .await
        .expect("update");
    assert!(
        matches!(&again.status, DeviceStatus::Approved { identity: i, sid: Some(_), .. } if **i == identity()),
        "{again:?}"
    );
    assert_eq!(
        store.find_device_authorization(&u).await.expect("find").1,
        again
    );
    assert!(is_not_found(
        &store.find_device_authorization(&key("user-code")).await
    ));
}

/// Of racing answers to one device authorization exactly one finds it pending (a user code is
/// single use), and racing polls each see the others' counts (no update is lost).
pub async fn racing_device_updates_are_atomic(store: &dyn Store) {
    let keys = race_keys("device-race");
    for d in &keys {
        store
            .create_device_authorization(d, &key("user-code"), &device("u", FAR_FUTURE))
            .await
            .expect("create");
    }
    let results = race(&keys, |d| async move {
        store
            .update_device_authorization(d, &|r| {
                if r.is_pending() {
                    r.status = DeviceStatus::Denied;
                }
                r.interval += 1;
            })
            .await
            .expect("update")
            .is_pending()
    });
    for (d, seen) in keys.iter().zip(results) {
        assert_eq!(seen.iter().filter(|p| **p).count(), 1, "{d}: {seen:?}");
        let after = store
            .update_device_authorization(d, &|_| {})
            .await
            .expect("read");
        assert_eq!(
            after.interval,
            5 + RACERS as i64,
            "a racing update of {d} was lost"
        );
        assert_eq!(after.status, DeviceStatus::Denied);
    }
}

/// A device authorization goes at the sweep after `keep_until`, and its user code with it.
pub async fn expired_device_authorizations_are_swept(store: &dyn Store) {
    let (d, u) = (key("device"), key("user-code"));
    store
        .create_device_authorization(&d, &u, &device(&u, SWEEP_NOW - 1))
        .await
        .expect("create");
    let (kept_d, kept_u) = (key("device"), key("user-code"));
    store
        .create_device_authorization(&kept_d, &kept_u, &device(&kept_u, SWEEP_NOW))
        .await
        .expect("create");
    store.delete_expired(SWEEP_NOW).await.expect("sweep");
    assert!(is_not_found(&store.find_device_authorization(&u).await));
    assert!(is_not_found(
        &store.update_device_authorization(&d, &|_| {}).await
    ));
    assert!(store.find_device_authorization(&kept_u).await.is_ok());
    // The user code is free again once its authorization is gone.
    store
        .create_device_authorization(&key("device"), &u, &device(&u, FAR_FUTURE))
        .await
        .expect("user code reusable after the sweep");
}
