//! Integration tests of gitseal-manifest: sealing and opening manifests,
//! merging into a SealedSecret file, and every bad-input path.

mod errors;
mod merge;
mod props;
mod roundtrip;
mod support;
mod yaml11;
#[path = "../../../../tests/support/yaml11.rs"]
mod yaml11_support;
