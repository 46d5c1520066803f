//! The keyed hash of a Secret's data written to `status.dataHash`.
//!
//! A plain hash of a low-entropy value (a PIN, a short password) could be
//! brute-forced by anyone who can read the SealedSecret's status, so the hash
//! is an HMAC-SHA256 under a key only the controller holds: the
//! `gitseal-hash-key` Secret in the controller's namespace, created on first
//! start. It tells "the data changed" apart from "it did not", nothing more.
//!
//! The MAC also covers where the object is (namespace and name, after a
//! domain-separation label): with one key for the whole cluster over the
//! items alone, a tenant could seal a guess with the same item keys in their
//! own namespace and compare their hash with a victim's. Bound to the
//! object, equal data in two objects gives unrelated hashes. Hashes written
//! before the binding (`hmac-sha256:<hex>`, no `v2:`) are still recognised
//! for the data they were computed over ([`DataHasher::is_current`]), so an
//! upgrade neither rewrites every status nor restarts every workload; a new
//! unbound hash is never computed for publication.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use rand_core::RngCore;
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::Error;

/// Name of the Secret holding the HMAC key.
pub const HASH_KEY_SECRET: &str = "gitseal-hash-key";
const DATA_KEY: &str = "key";
/// Prefix of the hashes written before they were bound to the object.
const PREFIX_V1: &str = "hmac-sha256:";
/// Prefix of the object-bound hashes.
const PREFIX_V2: &str = "hmac-sha256:v2:";
/// Domain separation: this MAC input can never be mistaken for another use
/// of the key, nor for the unbound form.
const DOMAIN_V2: &[u8] = b"gitseal.dev/status.dataHash/v2\0";

fn update_items(mac: &mut Hmac<Sha256>, data: &BTreeMap<String, SecretSlice<u8>>) {
    for (k, v) in data {
        mac.update(&(k.len() as u64).to_be_bytes());
        mac.update(k.as_bytes());
        let v = v.expose_secret();
        mac.update(&(v.len() as u64).to_be_bytes());
        mac.update(v);
    }
}

/// Computes `hmac-sha256:<hex>` over a Secret's data.
pub struct DataHasher {
    key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for DataHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataHasher { key: [REDACTED] }")
    }
}

impl DataHasher {
    /// A hasher under `key` (at least 16 bytes).
    pub fn new(key: &[u8]) -> Result<Self, Error> {
        if key.len() < 16 {
            return Err(Error::BadKey {
                origin: HASH_KEY_SECRET.to_string(),
                message: "the hash key is shorter than 16 bytes".to_string(),
            });
        }
        Ok(DataHasher {
            key: Zeroizing::new(key.to_vec()),
        })
    }

    /// A hasher under a fresh random key (tests, benchmarks).
    pub fn random() -> Self {
        let mut key = Zeroizing::new(vec![0u8; 32]);
        rand_core::OsRng.fill_bytes(&mut key);
        DataHasher { key }
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
    }

    /// The keyed hash of the data of the Secret `namespace`/`name`:
    /// `hmac-sha256:v2:<hex>` over a domain-separation label, the namespace
    /// and the name, then every item key and value, each length-prefixed,
    /// in key order.
    pub fn hash(
        &self,
        namespace: &str,
        name: &str,
        data: &BTreeMap<String, SecretSlice<u8>>,
    ) -> String {
        let mut mac = self.mac();
        mac.update(DOMAIN_V2);
        for part in [namespace, name] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        update_items(&mut mac, data);
        format!("{PREFIX_V2}{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// Whether `stored` (a `status.dataHash`) describes `data` of the
    /// Secret `namespace`/`name`: equal to [`DataHasher::hash`], or a hash
    /// in the format written before the object binding that matches `data`.
    /// The unbound form is only compared here, against a value the
    /// controller itself wrote into this object's status, and never
    /// published, so it gives no one a new guess.
    pub fn is_current(
        &self,
        stored: &str,
        namespace: &str,
        name: &str,
        data: &BTreeMap<String, SecretSlice<u8>>,
    ) -> bool {
        if stored.starts_with(PREFIX_V2) {
            return stored == self.hash(namespace, name, data);
        }
        if !stored.starts_with(PREFIX_V1) {
            return false;
        }
        let mut mac = self.mac();
        update_items(&mut mac, data);
        stored == format!("{PREFIX_V1}{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// A 32-byte key for another use of the controller's secret (e.g. the
    /// salts of templated htpasswd lines), derived under `label` so it is
    /// unrelated to the data hashes.
    pub fn derive_key(&self, label: &[u8]) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(b"gitseal.dev/derive/\0");
        mac.update(label);
        mac.finalize().into_bytes().into()
    }

    /// Loads the hash key from its Secret in `namespace`, creating it when it
    /// does not exist yet (two replicas racing: the loser reads the winner's).
    pub async fn load_or_create(api: &Api<Secret>) -> Result<Self, Error> {
        for _ in 0..3 {
            if let Some(secret) = api.get_opt(HASH_KEY_SECRET).await? {
                let key = secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(DATA_KEY))
                    .ok_or_else(|| Error::BadKey {
                        origin: HASH_KEY_SECRET.to_string(),
                        message: format!("the Secret has no data item {DATA_KEY:?}"),
                    })?;
                return DataHasher::new(&key.0);
            }
            let fresh = DataHasher::random();
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(HASH_KEY_SECRET.to_string()),
                    labels: Some(BTreeMap::from([(
                        crate::MANAGED_BY_LABEL.to_string(),
                        crate::MANAGED_BY_VALUE.to_string(),
                    )])),
                    ..ObjectMeta::default()
                },
                data: Some(BTreeMap::from([(
                    DATA_KEY.to_string(),
                    ByteString(fresh.key.to_vec()),
                )])),
                type_: Some("Opaque".to_string()),
                ..Secret::default()
            };
            match api.create(&PostParams::default(), &secret).await {
                Ok(_) => return Ok(fresh),
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::BadKey {
            origin: HASH_KEY_SECRET.to_string(),
            message: "could neither read nor create it".to_string(),
        })
    }
}

/// Short, non-reversible fingerprint for logs (first 12 hex digits of the hash).
pub fn short(hash: &str) -> &str {
    let hex = hash.strip_prefix(PREFIX_V1).unwrap_or(hash);
    let hex = hex.strip_prefix("v2:").unwrap_or(hex);
    hex.get(..12).unwrap_or(hex)
}
