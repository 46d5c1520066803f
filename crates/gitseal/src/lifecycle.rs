//! The keyring's lifecycle facts (environments by path, required
//! recipients, previous and retired keys) handed to the scanner's policy
//! (`gitseal_scan::lifecycle`), used by `verify` and by `reseal --all`.

use std::path::Path;

use gitseal_manifest::keyring::{glob_patterns, Keyring};
use gitseal_scan::lifecycle::{EnvironmentKeys, Lifecycle};

/// The lifecycle policy of `keyring`; path rules relative to `root`.
pub fn of(keyring: &Keyring, root: Option<&Path>) -> anyhow::Result<Lifecycle> {
    let mut lifecycle = Lifecycle::new(root);
    for rule in &keyring.paths {
        lifecycle.add_path_rule(&rule.glob, &glob_patterns(&rule.glob), &rule.environment)?;
    }
    for (name, env) in &keyring.environments {
        lifecycle.add_environment(
            name,
            EnvironmentKeys {
                keys: env.key_ids(),
                required: env.required_ids().into_iter().collect(),
            },
        );
    }
    for entry in &keyring.retired {
        lifecycle.retire(entry.key_id(), entry.note.clone());
    }
    Ok(lifecycle)
}
