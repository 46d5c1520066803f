//! Step 3 of reconcile: templated items (`spec.template.data`), rendered
//! from the object's resolved inputs by `gitseal-template` (the same code
//! `gitseal render` runs offline).
//!
//! Afterwards the resolved data is the Secret's data: the rendered items
//! plus the inputs no template reads ([`gitseal_template::secret_data`]),
//! so `status.dataHash`, the item count and rollout on change all cover the
//! rendered output. A template that does not render changes nothing: the
//! caller reports `TemplateError` with the key and the line (never a
//! value), and the existing Secret stays as it is.

use gitseal_manifest::SealedSecret;
use gitseal_template::{Limits, Place, SaltKey};

use crate::hash::DataHasher;
use crate::sources::Resolved;

/// Label of the bcrypt salt key derived from the controller's hash key:
/// htpasswd lines are the same on every reconcile and every replica.
const SALT_LABEL: &[u8] = b"template/bcrypt-salt";

/// Renders `obj`'s templated items into `resolved.data`. On failure returns
/// the condition message, with `resolved` unchanged.
pub fn render_into(
    obj: &SealedSecret,
    namespace: &str,
    name: &str,
    hasher: &DataHasher,
    resolved: &mut Resolved,
) -> Result<(), String> {
    let Some(template) = obj.spec.template.as_ref().filter(|t| t.has_data()) else {
        return Ok(());
    };
    let salt = SaltKey::new(hasher.derive_key(SALT_LABEL));
    gitseal_template::secret_data(
        &template.data,
        template.include_inputs == Some(true),
        &mut resolved.data,
        Place { namespace, name },
        &salt,
        &Limits::default(),
    )
    .map_err(|e| format!("{e}; the existing Secret was left unchanged"))
}
