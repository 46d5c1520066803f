//! Per-reconcile read sessions.
//!
//! A `SealedSecret` often takes several fields from one Vault secret
//! (`db#user`, `db#password`, ...). A [`Session`] makes each distinct
//! (engine, mount, path, version) read at most once and serves every field
//! from it; concurrent `resolve` calls for the same secret wait for the same
//! read. Across sessions the client additionally coalesces reads that are in
//! flight at the same time and reuses successful reads for
//! [`VaultConfig::shared_cache_ttl`](crate::VaultConfig::shared_cache_ttl)
//! (or less: [`Session::max_age`]). Make one session per reconcile (or per
//! refresh) so values are re-read when they should be.
//!
//! Every resolve follows the same steps, so no caller can skip one: the
//! tenancy policy on the declared path (no I/O), the mount's real KV version
//! (`mount.rs`, cached by the client), the policy again on what the request
//! would touch, and only then the read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::OnceCell;

use crate::client::{ReadKey, ReadResult};
use crate::metrics::inc;
use crate::{Error, PathPolicy, VaultClient, VaultRef};

type ReadCell = Arc<OnceCell<ReadResult>>;

/// Resolves [`VaultRef`]s to values, reading each distinct secret (engine,
/// mount, path, version) at most once per session; concurrent `resolve`
/// calls for one secret wait for the same read. Make one per reconcile.
/// Across sessions, the client also merges reads in flight at the same time
/// and reuses successful ones for
/// [`VaultConfig::shared_cache_ttl`](crate::VaultConfig::shared_cache_ttl).
pub struct Session {
    client: VaultClient,
    memo: Mutex<HashMap<ReadKey, ReadCell>>,
    tenant: Option<(PathPolicy, String)>,
    max_age: Duration,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reads = self.memo.lock().map(|m| m.len()).unwrap_or_default();
        f.debug_struct("Session")
            .field("distinct_reads", &reads)
            .field("namespace", &self.tenant.as_ref().map(|(_, ns)| ns))
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(client: VaultClient) -> Self {
        Session {
            client,
            memo: Mutex::new(HashMap::new()),
            tenant: None,
            max_age: Duration::MAX,
        }
    }

    /// Makes this session accept a read shared by another session only if
    /// it is younger than `max_age` (in addition to
    /// [`VaultConfig::shared_cache_ttl`](crate::VaultConfig::shared_cache_ttl)).
    /// Callers that refresh every `R` pass a fraction of `R`, so the shared
    /// cache never stretches their refresh interval; `Duration::ZERO` reads
    /// Vault (or joins a read in flight).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Makes every [`resolve`](Self::resolve) of this session check
    /// `policy` for `namespace` first (so a caller cannot forget it).
    pub fn for_namespace(mut self, policy: &PathPolicy, namespace: impl Into<String>) -> Self {
        self.tenant = Some((policy.clone(), namespace.into()));
        self
    }

    /// The value of `reference`'s field. Reads Vault at most once per
    /// distinct secret (engine, mount, path, version) in this session;
    /// failures are remembered for the session too.
    ///
    /// Before any read: the tenancy policy (with
    /// [`for_namespace`](Self::for_namespace)) on the declared path, then the
    /// mount's real engine (looked up once a minute per client). A reference
    /// whose declared KV version is not the mount's reads nothing: it is
    /// [`Error::Forbidden`] when the request it would send reaches a KV v2
    /// API endpoint or a secret outside the policy, [`Error::InvalidRef`]
    /// otherwise. A mount that is not KV, or that Vault does not show to the
    /// client's token, is [`Error::Forbidden`].
    pub async fn resolve(&self, reference: &VaultRef) -> Result<SecretString, Error> {
        let tenant = self
            .tenant
            .as_ref()
            .map(|(policy, ns)| (policy, ns.as_str()));
        if let Some((policy, namespace)) = tenant {
            policy.check(namespace, reference)?;
        }
        let inner = &self.client.inner;
        let kv = inner
            .mount_kv(reference.mount())
            .await
            .map_err(|e| e.at_path(reference.path()))?;
        let key = crate::mount::plan(reference, kv, tenant)?;
        let cell = {
            let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
            memo.entry(key.clone())
                .or_insert_with(|| Arc::new(OnceCell::new()))
                .clone()
        };
        let mut read_here = false;
        let result = cell
            .get_or_init(|| {
                read_here = true;
                async {
                    let (result, performed) = inner.read_shared(&key, self.max_age).await;
                    if !performed {
                        inc(&inner.metrics.cache_hits);
                    }
                    result
                }
            })
            .await;
        if !read_here {
            inc(&inner.metrics.cache_hits);
        }
        let data = result.as_ref().map_err(Clone::clone)?;
        data.get(reference.field())
            .cloned()
            .ok_or_else(|| Error::FieldMissing {
                mount: key.mount,
                path: key.path,
                version: key.version,
                field: reference.field().to_string(),
            })
    }
}
