//! One test binary for the deployment artifacts (see the crate docs).

mod argocd;
mod crd;
mod docs;
mod helm;
