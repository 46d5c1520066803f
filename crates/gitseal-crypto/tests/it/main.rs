//! Integration tests of gitseal-crypto's public API (one test binary).

mod envelope;
mod keys;
mod sealer;
