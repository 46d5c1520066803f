//! Integration tests of gitseal-controller: one test binary.

mod cluster;
mod common;
mod e2e;
mod fake_api;
mod misc;
mod scenarios;
mod vault_e2e;
