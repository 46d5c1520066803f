//! Test helpers shared by gitseal's test suites and benchmarks, so they are
//! written once instead of copied (or `#[path]`-included) between crates.
//! Test code: helpers panic with a message saying what failed.
//!
//! Each harness is behind a feature, so a test suite compiles only what it
//! uses:
//!
//! - `fake-api`: [`fake_api`], an in-process fake Kubernetes API server
//!   (the controller's integration tests and benchmarks).

#[cfg(feature = "fake-api")]
pub mod fake_api;
