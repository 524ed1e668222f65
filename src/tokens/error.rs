//! The one error type of the key store and signer.
//!
//! Every variant names the file or the operation that failed and the problem, and none carries
//! key material: parse failures are reported with our own fixed wording rather than the
//! underlying library's message, which may quote bytes of the input.

use std::path::PathBuf;

/// What went wrong while loading, generating or using a signing key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file-system operation on `path` failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What we were doing (`"read"`, `"create"` …).
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A key file could not be used: not PEM, not a private key, an unsupported key type, or a
    /// key of another type than the manifest says.
    #[error("key file {}: {reason}", path.display())]
    InvalidKey {
        /// The key file.
        path: PathBuf,
        /// Why it was rejected (never quotes the file's contents).
        reason: String,
    },

    /// The key in `path` does not have the `kid` the manifest records for it, so the manifest and
    /// the key files disagree (a key file was replaced or the manifest edited by hand).
    #[error(
        "key file {}: its RFC 7638 thumbprint is {actual} but keys.json records kid {expected}",
        path.display()
    )]
    KidMismatch {
        /// The key file.
        path: PathBuf,
        /// The kid recorded in the manifest.
        expected: String,
        /// The kid computed from the key.
        actual: String,
    },

    /// The key manifest (`keys.json`) is unreadable as JSON or inconsistent.
    #[error("key manifest {}: {reason}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The key directory holds several key files but no manifest saying which one signs.
    #[error(
        "key directory {}: {count} key files but no keys.json saying which one is active",
        dir.display()
    )]
    AmbiguousKeys {
        /// The key directory.
        dir: PathBuf,
        /// How many `*.pem` files it holds.
        count: usize,
    },

    /// Generating a new key failed.
    #[error("cannot generate a {alg} key: {reason}")]
    Generate {
        /// The JWS algorithm of the key.
        alg: &'static str,
        /// Why.
        reason: String,
    },

    /// Signing a JWT failed.
    #[error("cannot sign the JWT: {reason}")]
    Sign {
        /// Why.
        reason: String,
    },

    /// A JWK could not be thumbprinted (RFC 7638 §3.2: a required member is missing, or the key
    /// type is unknown).
    #[error("invalid JWK: {reason}")]
    InvalidJwk {
        /// Why.
        reason: String,
    },

    /// A JWT presented to us is not one we signed (bad signature, unknown kid, not a JWS).
    #[error("token not verified: {reason}")]
    Verify {
        /// Why (never quotes the token).
        reason: String,
    },

    /// `keys generate` for an algorithm that already has an active key.
    #[error("an {0} key is already active; use `keys rotate` to replace it")]
    AlreadyActive(&'static str),

    /// An algorithm name that this key store cannot sign with.
    #[error("unsupported signing algorithm {0:?} (supported: RS256, ES256, EdDSA)")]
    UnsupportedAlg(String),

    /// The signing keys kept in a shared store could not be read or written, or are
    /// inconsistent (see `tokens::shared`).
    #[error("signing keys in the store: {reason}")]
    Store {
        /// Why (never quotes key material).
        reason: String,
    },
}
