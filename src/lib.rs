//! wecom-oidc: an OpenID Connect provider that logs people in with WeCom (企业微信).
#![warn(missing_docs)]

pub mod clock;
pub mod connector;
pub mod random;
pub mod simulator;
pub mod storage;
pub mod tokens;
