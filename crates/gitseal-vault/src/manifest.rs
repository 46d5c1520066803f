//! Conversions between the manifest's `spec.vaultData` entries
//! ([`gitseal_manifest::types::VaultReference`]) and [`VaultRef`] (feature
//! `manifest`).
//!
//! The controller (reconcile) and the CLI (`exec`, `seal --from-vault`) both
//! cross this border; it lives here, once, so both validate a reference the
//! same way and write it back in the same shape:
//!
//! * `VaultReference` → `VaultRef` ([`TryFrom`]) validates like every other
//!   way of making a `VaultRef` (no `..`, no version on KV v1, ...) and fails
//!   with [`Error::InvalidRef`], or [`Error::Forbidden`] for a built-in mount
//!   such as `sys`; a missing `kv` means KV v2.
//! * `VaultRef` → `VaultReference` ([`From`]) cannot fail; KV v2 is written
//!   as an absent `kv` (the default), so manifests stay minimal.

use gitseal_manifest::types::{KvVersion as ManifestKv, VaultReference};

use crate::{Error, KvVersion, VaultRef};

impl TryFrom<&VaultReference> for VaultRef {
    type Error = Error;

    fn try_from(r: &VaultReference) -> Result<Self, Error> {
        let kv = match r.kv.unwrap_or_default() {
            ManifestKv::V1 => KvVersion::V1,
            ManifestKv::V2 => KvVersion::V2,
        };
        VaultRef::new(
            r.mount.clone(),
            r.path.clone(),
            r.field.clone(),
            r.version,
            kv,
        )
    }
}

impl From<&VaultRef> for VaultReference {
    fn from(r: &VaultRef) -> Self {
        VaultReference {
            mount: r.mount().to_string(),
            path: r.path().to_string(),
            field: r.field().to_string(),
            version: r.version(),
            kv: match r.kv() {
                KvVersion::V1 => Some(ManifestKv::V1),
                KvVersion::V2 => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitseal_test_support::openbao::vault_reference as manifest;

    fn convert(r: &VaultReference) -> Result<VaultRef, Error> {
        VaultRef::try_from(r)
    }

    #[test]
    fn manifest_references_become_vault_refs() {
        let cases = [
            (
                manifest("secret", "team/db", "password", None, None),
                "secret/team/db#password",
                KvVersion::V2,
            ),
            (
                manifest(
                    "secret",
                    "team/db",
                    "password",
                    Some(3),
                    Some(ManifestKv::V2),
                ),
                "secret/team/db#password@3",
                KvVersion::V2,
            ),
            (
                manifest("legacy", "team/api", "token", None, Some(ManifestKv::V1)),
                "kv1:legacy/team/api#token",
                KvVersion::V1,
            ),
        ];
        for (reference, text, kv) in cases {
            let r = convert(&reference).unwrap_or_else(|e| panic!("{reference:?}: {e}"));
            assert_eq!(r.to_string(), text);
            assert_eq!(r.kv(), kv);
            assert_eq!(
                (r.mount(), r.path(), r.field(), r.version()),
                (
                    reference.mount.as_str(),
                    reference.path.as_str(),
                    reference.field.as_str(),
                    reference.version
                )
            );
        }
    }

    #[test]
    fn invalid_manifest_references_are_invalid_ref_errors() {
        for (reference, want) in [
            (
                manifest("secret", "team/../other", "pw", None, None),
                "must not contain `..` segments",
            ),
            (
                manifest("kv", "team/x", "pw", Some(2), Some(ManifestKv::V1)),
                "KV v1 secrets have no versions",
            ),
            (
                manifest("kv", "team/x", "", None, None),
                "the field after `#` is empty",
            ),
            (
                manifest("kv", "team/x", "pw", Some(0), None),
                "versions start at 1",
            ),
            (
                manifest("kv", "", "pw", None, None),
                "the path below the mount is empty",
            ),
        ] {
            match convert(&reference) {
                Err(e @ Error::InvalidRef { .. }) => {
                    let message = e.to_string();
                    assert!(
                        message.starts_with("invalid Vault reference `"),
                        "{message}"
                    );
                    assert!(message.contains(want), "{reference:?}: {message}");
                    assert_eq!(e.reason(), "VaultInvalidRef");
                }
                other => panic!("{reference:?}: expected InvalidRef, got {other:?}"),
            }
        }
    }

    #[test]
    fn manifest_references_to_built_in_mounts_are_forbidden() {
        let e = convert(&manifest("sys", "team/x", "pw", None, None)).unwrap_err();
        assert_eq!(e.reason(), "VaultForbidden");
        assert_eq!(
            e.to_string(),
            "Vault path sys/team/x may not be read: `sys` is a built-in Vault path, not a KV mount"
        );
    }

    #[test]
    fn vault_refs_become_minimal_manifest_references_and_round_trip() {
        for (text, want) in [
            (
                "kv/app/db#password@3",
                manifest("kv", "app/db", "password", Some(3), None),
            ),
            (
                "kv2:kv/app/db#host",
                manifest("kv", "app/db", "host", None, None),
            ),
            (
                "kv1:secret/app/api#token",
                manifest("secret", "app/api", "token", None, Some(ManifestKv::V1)),
            ),
        ] {
            let r: VaultRef = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            let back = VaultReference::from(&r);
            assert_eq!(back, want, "{text}");
            assert_eq!(convert(&back).as_ref(), Ok(&r), "{text}");
        }
    }
}
