//! A store that is another store with a hook of the test's before every call and its own
//! `flush` (testkit): how the tests make a store go away between two writes
//! ([`super::outage::Outage`]), fail or stall its flush, or count its flushes, without listing
//! the whole [`Store`] once more for each of them.

use std::ops::Deref;

use async_trait::async_trait;

use super::{
    AccessToken, AuditEvent, AuthCode, AuthRequest, DeviceAuthorization, DeviceChange, LoginEvent,
    RefreshToken, Result, Rotation, Session, SigningKeySet, Store, Subject, SubjectGrants,
    UpstreamToken,
};

/// What a test changes of a store: everything else is [`StoreHook::inner`]'s.
#[async_trait]
pub trait StoreHook: Send + Sync + 'static {
    /// The store every call goes to.
    fn inner(&self) -> &dyn Store;

    /// Asked before each call, with whether the call writes; an error is the call's answer.
    fn before(&self, _write: bool) -> Result<()> {
        Ok(())
    }

    /// The answer of `flush` (after [`StoreHook::before`]): the inner store's unless changed.
    async fn flush(&self) -> Result<()> {
        self.inner().flush().await
    }

    /// Whether the store says its writes survive a restart: the inner store's unless changed.
    fn is_persistent(&self) -> bool {
        self.inner().is_persistent()
    }
}

/// The [`Store`] made of a [`StoreHook`]; derefs to the hook, so a test reaches its knobs.
pub struct Hooked<H>(pub H);

impl<H> Deref for Hooked<H> {
    type Target = H;

    fn deref(&self) -> &H {
        &self.0
    }
}

/// The impl: each method asks the hook (`read` or `write`), then calls the inner store. Methods
/// the trait gives a default (a login's steps, a count-then-create) are left to that default,
/// so a hook sees each of their writes.
macro_rules! hooked {
    ($($kind:ident $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        #[async_trait]
        impl<H: StoreHook> Store for Hooked<H> {
            $(async fn $name(&self, $($arg: $ty),*) -> $ret {
                self.0.before(hooked!(@write $kind))?;
                self.0.inner().$name($($arg),*).await
            })*

            async fn flush(&self) -> Result<()> {
                self.0.before(false)?;
                StoreHook::flush(&self.0).await
            }

            fn is_persistent(&self) -> bool {
                StoreHook::is_persistent(&self.0)
            }

            fn is_shared(&self) -> bool {
                self.0.inner().is_shared()
            }
        }
    };
    (@write read) => { false };
    (@write write) => { true };
}

hooked! {
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
}
