//! Build script: lays out the release server's code so that what a start touches is together.
//!
//! The kernel maps a program's code in 64 KiB runs around every page it touches (fault-around),
//! and a start touches about 3.7 MiB of the server's code spread over its whole 11 MiB text, so
//! nearly all of it stays resident while idle. `tools/symbol-order.txt` lists the functions a
//! start, an idle second and each kind of request execute (written by `tools/symbol_order.py`);
//! the linker places them first, in that order, so they share as few 64 KiB runs as they can
//! (docs/performance.md, "idle RSS").
//!
//! Only for release builds of the `wecom-oidc` binary on x86-64 Linux, where rustc links with
//! LLD (the default since Rust 1.90): LLD reads `--symbol-ordering-file`; GNU ld would refuse
//! it. A listed function missing from the binary (another Rust release changes symbol hashes,
//! a function was renamed, or a build that also compiles the tests turned on the `testkit`
//! feature, which renames the crate's functions) is skipped, so a stale list costs memory,
//! never a build.
//! `WECOM_OIDC_LINK_ORDER=0` turns it off.

use std::env;
use std::path::Path;
use std::process::Command;

const ORDER_FILE: &str = "tools/symbol-order.txt";

fn main() {
    println!("cargo:rerun-if-changed={ORDER_FILE}");
    println!("cargo:rerun-if-changed=tools/link_order.rs");
    println!("cargo:rerun-if-env-changed=WECOM_OIDC_LINK_ORDER");
    if !wanted() {
        return;
    }
    let dir = env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let order = Path::new(&dir).join(ORDER_FILE);
    if !order.is_file() {
        return;
    }
    let order = order.display();
    println!("cargo:rustc-link-arg-bin=wecom-oidc=-Wl,--symbol-ordering-file={order}");
    println!("cargo:rustc-link-arg-bin=wecom-oidc=-Wl,--no-warn-symbol-ordering");
}

/// A release build for x86-64 Linux by a rustc that links with LLD, not turned off.
fn wanted() -> bool {
    env::var("WECOM_OIDC_LINK_ORDER").as_deref() != Ok("0")
        && env::var("PROFILE").as_deref() == Ok("release")
        && env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu")
        && env::var("RUSTC_LINKER").is_err()
        && !linker_flags_set()
        && rustc_minor().is_some_and(|minor| minor >= 90)
}

/// Flags that choose another linker or linker flavour (`-C linker=…`, `-C link-arg=-fuse-ld=…`,
/// `-C link-self-contained=…`): then LLD is not certain.
fn linker_flags_set() -> bool {
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    ["linker", "fuse-ld", "link-self-contained"]
        .iter()
        .any(|flag| flags.contains(flag))
}

/// The minor version of the rustc building us (`rustc 1.95.0 (…)`).
fn rustc_minor() -> Option<u32> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let version = text.split_whitespace().nth(1)?;
    version.split('.').nth(1)?.parse().ok()
}
