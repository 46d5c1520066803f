//! Integration tests of gitseal-controller: one test binary.

mod api_timeouts;
mod cluster;
mod common;
mod convergence;
mod deploy_flags;
mod dr_drill;
mod e2e;
mod fault_storm;
mod hardening;
mod http_limits;
mod interpose;
mod leader_ha;
mod misc;
mod process_smoke;
mod rollout;
mod scenarios;
mod shards;
mod startup;
mod status;
mod storm;
mod templates;
mod vault_e2e;
mod web_page;

use gitseal_test_support::{fake_api, process};
