//! CLI tests: run the built `gitseal` binary as a user would, and check
//! its output, files, exit codes, and that no error shows a plaintext.

mod cases;
mod closed_stdout;
mod edit;
mod exec;
mod first_hour;
mod from_vault;
mod keyring;
mod keys;
mod keys_remote;
mod lifecycle;
mod migrate;
mod readme;
mod real_cluster;
mod seal_unseal;
mod support;
mod templates;
mod verify_kustomize;
mod verify_levels;

use gitseal_test_support::yaml11 as yaml11_support;
