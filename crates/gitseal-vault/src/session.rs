//! Per-reconcile read sessions.
//!
//! A `SealedSecret` often takes several fields from one Vault secret
//! (`db#user`, `db#password`, ...). A [`Session`] makes each distinct
//! (engine, mount, path, version) read at most once and serves every field
//! from it; concurrent `resolve` calls for the same secret wait for the same
//! read. Across sessions the client additionally coalesces reads that are in
//! flight at the same time and reuses successful reads for
//! [`VaultConfig::shared_cache_ttl`](crate::VaultConfig::shared_cache_ttl).
//! Make one session per reconcile (or per refresh) so values are re-read
//! when they should be.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use secrecy::SecretString;
use tokio::sync::OnceCell;

use crate::client::{ReadCell, ReadKey};
use crate::metrics::inc;
use crate::{Error, PathPolicy, VaultClient, VaultRef};

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
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reads = self.memo.lock().map(|m| m.len()).unwrap_or_default();
        f.debug_struct("Session")
            .field("distinct_reads", &reads)
            .field("namespace", &self.tenant.as_ref().map(|(_, ns)| ns))
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(client: VaultClient) -> Self {
        Session {
            client,
            memo: Mutex::new(HashMap::new()),
            tenant: None,
        }
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
    pub async fn resolve(&self, reference: &VaultRef) -> Result<SecretString, Error> {
        if let Some((policy, namespace)) = &self.tenant {
            policy.check(namespace, reference)?;
        }
        let key = ReadKey::of(reference);
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
                    let (result, performed) = self.client.inner.read_shared(&key).await;
                    if !performed {
                        inc(&self.client.inner.metrics.cache_hits);
                    }
                    result
                }
            })
            .await;
        if !read_here {
            inc(&self.client.inner.metrics.cache_hits);
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
