//! Integration tests of gitseal-controller: one test binary.

mod cluster;
mod common;
mod e2e;
mod fake_api;
mod misc;
mod process;
mod process_smoke;
mod scenarios;
mod vault_e2e;
mod web_page;
