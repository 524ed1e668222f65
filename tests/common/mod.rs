//! Helpers the end-to-end test binaries share (each `tests/*.rs` file is a crate of its own and
//! includes this module with `mod common;`): browsers and redirect walks, token and userinfo
//! requests, JWT decoding, PKCE values, and providers started in process on `127.0.0.1:0`
//! beside the WeCom simulator (the demo, or one configured in code).
//!
//! Each binary uses a part of it, hence `dead_code` is allowed here and only here. The parts
//! live in submodules, all re-exported here: `common::walk`, `common::token`…
#![allow(dead_code)]

mod browser;
mod logout;
mod providers;
mod requests;
mod services;

// Not every binary uses every part (and `dead_code` does not cover re-exports).
#[allow(unused_imports)]
pub use self::{browser::*, logout::*, providers::*, requests::*, services::*};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::header::HeaderMap;
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use wecom_oidc::clock::{SharedClock, SystemClock};
use wecom_oidc::config::Config;
use wecom_oidc::connector::registry::ConnectorConfig;
use wecom_oidc::connector::wecom::WeComSettings;
use wecom_oidc::demo::{self, DemoOptions, RunningDemo};
use wecom_oidc::provider::Client;
use wecom_oidc::simulator::{AppSpec, Simulator, SimulatorConfig};
use wecom_oidc::storage::Store;

// Not every binary uses both (and `dead_code` does not cover re-exports).
#[allow(unused_imports)]
pub use wecom_oidc::testkit::{client, wecom_app};

/// The code verifier of RFC 7636 appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// Its S256 code challenge (RFC 7636 appendix B).
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The confidential client most tests register ([`app_client`]).
pub const APP: &str = "app";
/// [`APP`]'s secret.
pub const APP_SECRET: &str = "app-secret-0123456789abcdef";
/// [`APP`]'s redirect URI (never contacted: the tests read the code from the `Location`).
pub const APP_CB: &str = "http://127.0.0.1:9/app/callback";

/// [`APP`] as a registered client with default settings.
pub fn app_client() -> Client {
    client(APP, Some(APP_SECRET), APP_CB, Default::default())
}

/// The S256 code challenge of `verifier` (RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}
