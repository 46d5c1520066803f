//! What a mount really is, and the one request a reference may become on it.
//!
//! A reference *declares* its KV version, and the URL a client builds follows
//! the declaration: `MOUNT/data/PATH` for KV v2, `MOUNT/PATH` for KV v1. Vault
//! routes that URL by the mount's *real* engine. So the KV v1 reference
//! `{mount: secret, path: data/team-b/db, kv: v1}` on a KV v2 mount is a read
//! of the KV v2 secret `team-b/db`, and `metadata/...`, `subkeys/...` or
//! `config` reach the KV v2 API instead of a secret. A tenancy check of the
//! declared path (`data/...`, allowed for namespace `data`) is then a check
//! of the wrong path: that is how namespace `data` read team-b's secret.
//!
//! This module is the fix at the mechanism. The client learns each mount's
//! real engine from `sys/internal/ui/mounts/MOUNT` (the endpoint the `vault`
//! and `bao` CLIs use before `kv get`; any token with any capability on the
//! mount may call it), and [`plan`] turns a reference into the one read it may
//! become:
//!
//! * declared version = real version: the read the reference describes;
//! * otherwise nothing is read. The request the reference would have sent is
//!   interpreted the way Vault would route it: a KV v2 API endpoint other
//!   than `data/` is [`Error::Forbidden`]; a secret that the namespace may not
//!   read is [`Error::Forbidden`]; anything else is an honest mistake,
//!   [`Error::InvalidRef`] with what to change.
//!
//! Only `kv` (v1 or v2) and `generic` (the old name of KV v1) mounts are read
//! at all; every other engine (`transit`, `database`, `pki`, the built-in
//! `sys`, `identity`, `cubbyhole`, ...) is [`Error::Forbidden`].

use serde_json::Value;

use crate::client::ReadKey;
use crate::reference::sanitize_for_message;
use crate::{Error, KvVersion, PathPolicy, VaultRef};

/// The first path segments below a KV v2 mount that are API endpoints:
/// `data/` reads (and writes) secrets, the others reach metadata, deletion,
/// key listings and the mount's configuration.
pub(crate) const KV2_ENDPOINTS: [&str; 7] = [
    "data", "metadata", "delete", "destroy", "undelete", "subkeys", "config",
];

/// The KV version of `mount` from Vault's `sys/internal/ui/mounts/MOUNT`
/// reply, or why the mount may not be read (the detail of an
/// [`Error::Forbidden`]).
pub(crate) fn kv_version_of(mount: &str, reply: &Value) -> Result<KvVersion, String> {
    let data = reply.get("data").unwrap_or(&Value::Null);
    let str_at = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or("");
    let path = str_at("path");
    if path.trim_end_matches('/') != mount {
        return Err(format!(
            "`{mount}` is not a mount of its own (Vault places it in `{}`)",
            sanitize_for_message(path)
        ));
    }
    let version = data
        .get("options")
        .and_then(|o| o.get("version"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match (str_at("type"), version) {
        ("kv", "2") => Ok(KvVersion::V2),
        ("kv", "" | "1") | ("generic", _) => Ok(KvVersion::V1),
        ("kv", other) => Err(format!(
            "mount `{mount}` is a KV engine of unknown version {}",
            sanitize_for_message(other)
        )),
        (other, _) => Err(format!(
            "mount `{mount}` is a `{}` engine, not KV; only KV secrets can be referenced",
            sanitize_for_message(other)
        )),
    }
}

/// What the request a reference declares would touch on a mount of the
/// other KV version.
enum Touched {
    /// The secret at this logical path.
    Secret(String),
    /// A KV v2 API endpoint that is not a secret read.
    Endpoint(&'static str),
    /// Nothing Vault would serve as a secret.
    Nothing,
}

/// The read `r` becomes on a mount whose real engine is KV `real`, after
/// the tenancy check of what it would touch (`tenant`: the policy and
/// namespace of the reading object; `None` reads with the caller's own
/// rights, as `gitseal exec` does). Does no I/O.
pub(crate) fn plan(
    r: &VaultRef,
    real: KvVersion,
    tenant: Option<(&PathPolicy, &str)>,
) -> Result<ReadKey, Error> {
    if r.kv() == real {
        return Ok(ReadKey {
            kv: real,
            mount: r.mount().to_string(),
            path: r.path().to_string(),
            version: r.version(),
        });
    }
    // The path below the mount the declared request would send.
    let mut requested: Vec<&str> = Vec::new();
    if r.kv() == KvVersion::V2 {
        requested.push("data");
    }
    requested.extend(r.path_segments());
    let touched = match real {
        KvVersion::V1 => Touched::Secret(requested.join("/")),
        KvVersion::V2 => match requested.split_first() {
            Some((&"data", rest)) if !rest.is_empty() => Touched::Secret(rest.join("/")),
            Some((first, _)) => match KV2_ENDPOINTS.iter().find(|e| *e == first) {
                Some(endpoint) => Touched::Endpoint(endpoint),
                None => Touched::Nothing,
            },
            None => Touched::Nothing,
        },
    };
    let namespace = tenant.map(|(_, ns)| sanitize_for_message(ns));
    match touched {
        Touched::Endpoint(endpoint) => Err(Error::Forbidden {
            namespace,
            mount: r.mount().to_string(),
            path: r.path().to_string(),
            detail: format!(
                "`{}` is a KV v2 mount, where `{r}` would call the KV v2 API endpoint \
                 `{endpoint}/` instead of reading a secret",
                r.mount()
            ),
        }),
        Touched::Secret(path) => {
            if let Some((policy, ns)) = tenant {
                if let Some(why) = policy.refusal(ns, r.mount(), &path) {
                    return Err(Error::Forbidden {
                        namespace,
                        mount: r.mount().to_string(),
                        path,
                        detail: format!(
                            "`{}` is a KV {real} mount, where `{r}` would read this secret; {why}",
                            r.mount()
                        ),
                    });
                }
            }
            Err(mismatch(r, real))
        }
        Touched::Nothing => Err(mismatch(r, real)),
    }
}

/// A reference whose declared KV version is not the mount's, and what to
/// change.
fn mismatch(r: &VaultRef, real: KvVersion) -> Error {
    let fix = match real {
        KvVersion::V2 if r.path().starts_with("data/") => {
            "drop `kv: v1` (text form: no `kv1:`) and the `data/` at the start of the path"
        }
        KvVersion::V2 => "drop `kv: v1` (text form: no `kv1:`)",
        KvVersion::V1 => "add `kv: v1` (text form: `kv1:` in front)",
    };
    Error::InvalidRef {
        reference: r.to_string(),
        reason: format!(
            "mount `{}` is a KV {real} engine, but the reference is KV {}; {fix}",
            r.mount(),
            r.kv()
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn r(s: &str) -> VaultRef {
        s.parse().unwrap()
    }

    fn hardened() -> PathPolicy {
        PathPolicy::from_templates(["secret:{namespace}/*", "legacy:{namespace}/*"]).unwrap()
    }

    #[test]
    fn matching_versions_read_what_the_reference_says() {
        let p = hardened();
        let k = plan(&r("secret/team/db#pw@3"), KvVersion::V2, Some((&p, "team"))).unwrap();
        assert_eq!(
            (k.kv, k.mount.as_str(), k.path.as_str(), k.version),
            (KvVersion::V2, "secret", "team/db", Some(3))
        );
        let k = plan(&r("kv1:legacy/team/db#pw"), KvVersion::V1, None).unwrap();
        assert_eq!((k.kv, k.path.as_str()), (KvVersion::V1, "team/db"));
        // A namespace named like a KV v2 endpoint reads its own secrets with
        // references that match the mount.
        let k = plan(&r("secret/data/db#pw"), KvVersion::V2, Some((&p, "data"))).unwrap();
        assert_eq!(k.path, "data/db");
    }

    /// The attack of issue 9 §10 for every namespace that collides with a
    /// KV v2 API segment: a KV v1 reference on a KV v2 mount.
    #[test]
    fn kv1_references_on_a_kv2_mount_cannot_reach_other_tenants() {
        let p = hardened();
        for ns in KV2_ENDPOINTS {
            let reference = r(&format!("kv1:secret/{ns}/team-b/db#data"));
            // The declared path passes the policy: that was the hole.
            p.check(ns, &reference).unwrap();
            let e = plan(&reference, KvVersion::V2, Some((&p, ns))).unwrap_err();
            assert_eq!(e.reason(), "VaultForbidden", "{ns}: {e}");
            let want = if ns == "data" {
                "namespace `data` may not read Vault path secret/team-b/db: `secret` is a KV v2 \
                 mount, where `kv1:secret/data/team-b/db#data` would read this secret; outside \
                 the operator's Vault path policy; this namespace may read: secret:data/*, \
                 legacy:data/*"
                    .to_string()
            } else {
                format!(
                    "namespace `{ns}` may not read Vault path secret/{ns}/team-b/db: `secret` is \
                     a KV v2 mount, where `kv1:secret/{ns}/team-b/db#data` would call the KV v2 \
                     API endpoint `{ns}/` instead of reading a secret"
                )
            };
            assert_eq!(e.to_string(), want);
        }
        // Without a tenant (a user's own token) the endpoints stay refused.
        let e = plan(&r("kv1:secret/metadata/x#y"), KvVersion::V2, None).unwrap_err();
        assert_eq!(e.reason(), "VaultForbidden", "{e}");
    }

    /// The mirror image: a KV v2 reference on a KV v1 mount requests
    /// `MOUNT/data/PATH`, i.e. namespace `data`'s secrets.
    #[test]
    fn kv2_references_on_a_kv1_mount_cannot_reach_namespace_data() {
        let p = hardened();
        for ns in KV2_ENDPOINTS.iter().filter(|ns| **ns != "data") {
            let reference = r(&format!("legacy/{ns}/db#pw"));
            p.check(ns, &reference).unwrap();
            let e = plan(&reference, KvVersion::V1, Some((&p, ns))).unwrap_err();
            assert_eq!(e.reason(), "VaultForbidden", "{ns}: {e}");
            assert!(
                e.to_string().starts_with(&format!(
                    "namespace `{ns}` may not read Vault path legacy/data/{ns}/db: `legacy` is a \
                     KV v1 mount, where `legacy/{ns}/db#pw` would read this secret; outside"
                )),
                "{e}"
            );
        }
        // From namespace `data` the same request touches its own path: not
        // an attack, but still not read (the reference says something else).
        let e = plan(&r("legacy/data/db#pw"), KvVersion::V1, Some((&p, "data"))).unwrap_err();
        assert_eq!(e.reason(), "VaultInvalidRef", "{e}");
    }

    #[test]
    fn honest_mismatches_say_what_to_change() {
        let p = hardened();
        let e = plan(
            &r("kv1:secret/team/db#pw"),
            KvVersion::V2,
            Some((&p, "team")),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid Vault reference `kv1:secret/team/db#pw`: mount `secret` is a KV v2 engine, \
             but the reference is KV v1; drop `kv: v1` (text form: no `kv1:`)"
        );
        assert_eq!(e.reason(), "VaultInvalidRef");
        // Allowed by the policy after reinterpretation, still not read.
        let e = plan(
            &r("kv1:secret/data/team/db#pw"),
            KvVersion::V2,
            Some((&p, "team")),
        )
        .unwrap_err();
        assert!(
            e.to_string().ends_with(
                "drop `kv: v1` (text form: no `kv1:`) and the `data/` at the start of the path"
            ),
            "{e}"
        );
        let e = plan(&r("legacy/team/db#pw"), KvVersion::V1, None).unwrap_err();
        assert!(
            e.to_string().ends_with(
                "mount `legacy` is a KV v1 engine, but the reference is KV v2; add `kv: v1` \
                 (text form: `kv1:` in front)"
            ),
            "{e}"
        );
    }

    #[test]
    fn mount_replies_give_the_real_engine() {
        let reply = |engine: &str, options: Value, path: &str| json!({"data": {"type": engine, "options": options, "path": path}});
        let ok = |v: Value| kv_version_of("secret", &v);
        assert_eq!(
            ok(reply("kv", json!({"version": "2"}), "secret/")),
            Ok(KvVersion::V2)
        );
        assert_eq!(
            ok(reply("kv", json!({"version": "1"}), "secret/")),
            Ok(KvVersion::V1)
        );
        assert_eq!(ok(reply("kv", json!({}), "secret/")), Ok(KvVersion::V1));
        assert_eq!(ok(reply("kv", Value::Null, "secret/")), Ok(KvVersion::V1));
        assert_eq!(
            ok(reply("generic", Value::Null, "secret/")),
            Ok(KvVersion::V1)
        );
        for (v, want) in [
            (
                reply("transit", Value::Null, "secret/"),
                "mount `secret` is a `transit` engine, not KV; only KV secrets can be referenced",
            ),
            (
                reply("kv", json!({"version": "3"}), "secret/"),
                "mount `secret` is a KV engine of unknown version 3",
            ),
            (
                reply("kv", json!({"version": "2"}), "other/"),
                "`secret` is not a mount of its own (Vault places it in `other/`)",
            ),
            (
                json!({"errors": []}),
                "`secret` is not a mount of its own (Vault places it in ``)",
            ),
        ] {
            assert_eq!(ok(v).unwrap_err(), want);
        }
    }
}
