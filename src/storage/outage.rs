//! A store that goes away mid-request, for tests (testkit): a wrapper around a real store whose
//! calls all fail `Unavailable` once a chosen number of writes have gone through — a database
//! that stops, or a disk that fills, between two writes of one request. A test cuts the store at
//! every point of an operation in turn and checks that no cut leaves a half-done state behind
//! (a refresh token spent without a successor, RFC 9700 §4.14.2).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use super::{
    AccessToken, AuditEvent, AuthCode, AuthRequest, DeviceAuthorization, DeviceChange, LoginEvent,
    RefreshToken, Result, Rotation, Session, SigningKeySet, StorageError, Store, Subject,
    SubjectGrants, UpstreamToken,
};

/// No cut: every call goes through.
const NEVER: usize = usize::MAX;

/// A [`Store`] that fails every call once [`Outage::cut_after_writes`]'s writes are used up.
pub struct Outage {
    inner: Arc<dyn Store>,
    /// Writes still let through before the cut ([`NEVER`]: no cut).
    writes_left: AtomicUsize,
}

impl Outage {
    /// `inner`, with no cut.
    pub fn new(inner: Arc<dyn Store>) -> Outage {
        Outage {
            inner,
            writes_left: AtomicUsize::new(NEVER),
        }
    }

    /// Lets the next `writes` writes through; from the one after, every call (reads too) fails
    /// `Unavailable`, as against a database that went away.
    pub fn cut_after_writes(&self, writes: usize) {
        self.writes_left.store(writes, Ordering::SeqCst);
    }

    /// The store is back: every call goes through again.
    pub fn restore(&self) {
        self.writes_left.store(NEVER, Ordering::SeqCst);
    }

    /// Whether a call may go through; a write uses up one of the writes left.
    fn pass(&self, write: bool) -> Result<()> {
        let left = self.writes_left.load(Ordering::SeqCst);
        if left == NEVER {
            return Ok(());
        }
        if left == 0 {
            return Err(StorageError::Unavailable("the test cut the store".into()));
        }
        if write {
            self.writes_left.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// The impl: each method asks [`Outage::pass`] (`read` or `write`), then calls the inner store.
macro_rules! gated {
    ($($kind:ident $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        #[async_trait]
        impl Store for Outage {
            $(async fn $name(&self, $($arg: $ty),*) -> $ret {
                self.pass(gated!(@write $kind))?;
                self.inner.$name($($arg),*).await
            })*

            fn is_persistent(&self) -> bool {
                self.inner.is_persistent()
            }

            fn is_shared(&self) -> bool {
                self.inner.is_shared()
            }
        }
    };
    (@write read) => { false };
    (@write write) => { true };
}

gated! {
    write create_auth_request(k: &str, r: &AuthRequest) -> Result<()>;
    write take_auth_request(k: &str) -> Result<AuthRequest>;
    read count_auth_requests() -> Result<usize>;
    write create_auth_code(k: &str, c: &AuthCode) -> Result<()>;
    write redeem_auth_code(k: &str) -> Result<AuthCode>;
    write create_access_token(k: &str, t: &AccessToken) -> Result<()>;
    read find_access_token(k: &str) -> Result<AccessToken>;
    write delete_access_token(k: &str) -> Result<()>;
    write revoke_grant(g: &str, u: i64) -> Result<()>;
    read is_grant_revoked(g: &str) -> Result<bool>;
    write create_session(k: &str, s: &Session) -> Result<()>;
    read find_session(k: &str) -> Result<Session>;
    write touch_session(k: &str, c: &str, n: i64) -> Result<Session>;
    write take_session(k: &str) -> Result<Session>;
    write create_refresh_token(k: &str, t: &RefreshToken) -> Result<()>;
    read find_refresh_token(k: &str) -> Result<RefreshToken>;
    write rotate_refresh_token(k: &str, r: &Rotation<'_>) -> Result<RefreshToken>;
    write create_device_authorization(d: &str, u: &str, r: &DeviceAuthorization) -> Result<()>;
    read find_device_authorization(u: &str) -> Result<(String, DeviceAuthorization)>;
    write update_device_authorization(d: &str, c: DeviceChange<'_>) -> Result<DeviceAuthorization>;
    write create_used_jti(k: &str, e: i64) -> Result<()>;
    read find_upstream_token(k: &str) -> Result<UpstreamToken>;
    write save_upstream_token(k: &str, t: &UpstreamToken) -> Result<()>;
    write delete_upstream_token(k: &str) -> Result<()>;
    read find_user_link(k: &str) -> Result<String>;
    write save_user_link(k: &str, v: &str) -> Result<()>;
    write take_sessions_of(s: &Subject) -> Result<Vec<Session>>;
    read find_grants_of(s: &Subject, n: i64) -> Result<SubjectGrants>;
    write save_subject_mark(k: &str, n: i64, u: i64) -> Result<()>;
    read find_subject_mark(k: &str) -> Result<i64>;
    write delete_expired(n: i64) -> Result<usize>;
    write create_login_event(e: &LoginEvent) -> Result<()>;
    read list_login_events(l: usize) -> Result<Vec<LoginEvent>>;
    read list_sessions(n: i64, l: usize) -> Result<Vec<Session>>;
    write create_audit_event(e: &AuditEvent) -> Result<()>;
    read list_audit_events(l: usize) -> Result<Vec<AuditEvent>>;
    read find_signing_keys() -> Result<SigningKeySet>;
    write save_signing_keys(v: Option<i64>, s: &SigningKeySet) -> Result<()>;
    write acquire_lease(n: &str, o: &str, t: i64, u: i64) -> Result<bool>;
    write release_lease(n: &str, o: &str) -> Result<()>;
    read flush() -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStore;

    #[tokio::test]
    async fn calls_fail_unavailable_once_the_writes_before_the_cut_are_used_and_pass_after_restore()
    {
        let outage = Outage::new(Arc::new(MemoryStore::new()));
        outage.cut_after_writes(1);
        assert!(
            outage.is_grant_revoked("g").await.is_ok(),
            "a read before the cut"
        );
        outage
            .revoke_grant("g", 10)
            .await
            .expect("the one write let through");
        assert!(matches!(
            outage.is_grant_revoked("g").await,
            Err(StorageError::Unavailable(_))
        ));
        assert!(matches!(
            outage.revoke_grant("h", 10).await,
            Err(StorageError::Unavailable(_))
        ));
        outage.restore();
        assert!(outage.is_grant_revoked("g").await.expect("back"));
        assert!(!outage.is_grant_revoked("h").await.expect("back"));
    }
}
