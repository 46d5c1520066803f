//! Test helpers shared by gitseal's test suites and benchmarks, so they are
//! written once instead of copied (or `#[path]`-included) between crates.
//! Test code: helpers panic with a message saying what failed.
//!
//! Always there: [`fixtures`] (random-looking text that is the same on every
//! run, files in a test directory) and [`git`] (temporary repositories).
//! Each harness is behind a feature, so a test suite compiles only what it
//! uses:
//!
//! - `fake-api`: [`fake_api`], an in-process fake Kubernetes API server
//!   (the controller's integration tests and benchmarks).
//! - `controller`: [`process`], the `gitseal-controller` binary as its own
//!   process against the fake API over HTTP, a seeded fake cluster, and
//!   `/proc` usage (the controller's tests and benchmarks).
//! - `vault`: [`openbao`], a real OpenBao dev server per test (the Vault,
//!   controller and CLI tests).
//! - `yaml11`: [`yaml11`], what PyYAML (a YAML 1.1 reader, as kubectl's)
//!   reads from a text (the manifest and CLI tests).

use std::path::PathBuf;

#[cfg(feature = "fake-api")]
pub mod fake_api;
pub mod fixtures;
pub mod git;
#[cfg(feature = "vault")]
pub mod openbao;
#[cfg(feature = "controller")]
pub mod process;
#[cfg(feature = "yaml11")]
pub mod yaml11;

/// The path of binary `name` built for the test or benchmark running now:
/// Cargo's `CARGO_BIN_EXE_<name>` when it is set at run time, else `name`
/// beside the running executable's `deps/` folder (`target/PROFILE/`, where
/// Cargo builds a package's binaries for its integration tests and
/// benchmarks). Panics, saying where it looked, when there is none.
pub fn cargo_bin(name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(format!("CARGO_BIN_EXE_{name}")) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("the running executable: {e}"));
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "no {name} binary at {} (only a test or bench of its own package has it built)",
        path.display()
    );
    path
}
