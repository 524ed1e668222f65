//! wecom-oidc: an OpenID Connect provider that logs people in with WeCom (企业微信).
#![warn(missing_docs)]

pub mod admin;
pub mod app;
pub mod backup;
pub mod bounded;
pub mod check;
#[cfg(any(test, feature = "testkit"))]
pub mod ci;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod connector;
pub mod console;
pub mod demo;
#[cfg(any(test, feature = "testkit"))]
pub mod fuzzing;
pub mod identity;
pub mod logging;
pub mod login_events;
pub mod metrics;
pub mod provider;
pub mod random;
pub mod reload;
pub mod relying_party;
pub mod secret;
pub mod server;
pub mod simulator;
pub mod storage;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod tokens;
pub mod validate;
pub mod web;
