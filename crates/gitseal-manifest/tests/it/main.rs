//! Integration tests of gitseal-manifest: sealing and opening manifests,
//! merging into a SealedSecret file, and every bad-input path.

mod errors;
mod merge;
mod props;
mod roundtrip;
mod support;
mod yaml11;

use gitseal_test_support::yaml11 as yaml11_support;
