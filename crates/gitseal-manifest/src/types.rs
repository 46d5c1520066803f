//! The `SealedSecret` custom resource (`gitseal.dev/v1alpha1`), as Rust types.
//!
//! These types are the single source of truth: the CLI writes them, the
//! controller reads them, and the CRD in `deploy/crd.yaml` is generated from
//! them (`gitseal-controller crd`).

use std::collections::BTreeMap;

use gitseal_crypto::Scope;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of gitseal's resources.
pub const GROUP: &str = "gitseal.dev";
/// API version of `SealedSecret`.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of a `SealedSecret` manifest.
pub const API_VERSION: &str = "gitseal.dev/v1alpha1";

/// A Secret whose values are sealed to a cluster's public key (or are
/// references into Vault), safe to commit. The controller turns it into an
/// ordinary `Secret` of the same name and namespace.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "gitseal.dev",
    version = "v1alpha1",
    kind = "SealedSecret",
    plural = "sealedsecrets",
    shortname = "seal",
    category = "gitseal",
    doc = "A Secret whose values are sealed to a cluster's public key or are Vault references; the gitseal controller writes the Secret of the same name and namespace.",
    namespaced,
    status = "SealedSecretStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecretSpec {
    /// Where the sealed values may be opened: `strict` (namespace + name +
    /// item key, the default), `namespace` (namespace + item key) or
    /// `cluster` (item key only). Must match the scope the values were sealed with.
    #[serde(default, skip_serializing_if = "is_strict")]
    #[schemars(schema_with = "scope_schema")]
    pub scope: Scope,

    /// Item key → sealed value (`gs1:…`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "encrypted_data_schema")]
    pub encrypted_data: BTreeMap<String, String>,

    /// Item key → a reference to a value in Vault, resolved by the controller.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = MAX_VAULT_ITEMS))]
    pub vault_data: BTreeMap<String, VaultReference>,

    /// What the generated Secret looks like besides its data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<SecretTemplate>,

    /// How often Vault items are read again (e.g. `1h`, `15m`); default 1h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub refresh_interval: Option<String>,
}

fn is_strict(scope: &Scope) -> bool {
    *scope == Scope::Strict
}

/// Most items in `encryptedData`. Kubernetes sets no count, only the 1 MiB
/// total; this bounds the work one object can ask for (one open per item)
/// far above any Secret seen in practice.
pub const MAX_SEALED_ITEMS: u32 = 4096;

/// Most items in `vaultData` (each may be one Vault read).
pub const MAX_VAULT_ITEMS: u32 = 512;

/// Largest plaintext a Secret can hold: Kubernetes refuses a Secret whose
/// data exceeds 1 MiB.
pub const MAX_SECRET_DATA: usize = 1024 * 1024;

/// Longest sealed value (`gs1:` + base64 body) that can hold a value a
/// Secret accepts: the largest envelope body (docs/envelope.md) is scope (1),
/// namespace, name and item key (1 + 255 each at most), count (1), 64
/// recipient stanzas of 72 bytes, and the value with its 16-byte tag.
pub const MAX_SEALED_VALUE_LEN: usize = {
    let body = 1 + 3 * (1 + 255) + 1 + 64 * 72 + MAX_SECRET_DATA + 16;
    "gs1:".len() + body.div_ceil(3) * 4
};

fn encrypted_data_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "Item key → sealed value (`gs1:…`).",
        "maxProperties": MAX_SEALED_ITEMS,
        "additionalProperties": {"type": "string", "maxLength": MAX_SEALED_VALUE_LEN}
    })
}

fn scope_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "enum": ["strict", "namespace", "cluster"],
        "default": "strict",
        "description": "Binding of the sealed values: strict, namespace or cluster."
    })
}

/// A value in Vault's KV engine.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultReference {
    /// Mount of the KV engine, e.g. `secret`.
    #[schemars(length(min = 1, max = 256))]
    pub mount: String,
    /// Path of the secret under the mount, e.g. `team-a/db`.
    #[schemars(length(min = 1, max = 1024))]
    pub path: String,
    /// Field of the secret to take.
    #[schemars(length(min = 1, max = 256))]
    pub field: String,
    /// KV v2 version to read; latest when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// KV engine version: `v2` (default) or `v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv: Option<KvVersion>,
}

/// KV secrets engine version.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KvVersion {
    /// KV version 1 (no versions).
    V1,
    /// KV version 2 (versioned).
    #[default]
    V2,
}

/// The generated Secret's type, metadata and immutability.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretTemplate {
    /// Secret `type`, e.g. `Opaque` or `kubernetes.io/tls`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub type_: Option<String>,
    /// Labels and annotations of the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,
    /// Whether the Secret is immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    /// Templated items: Secret key → template rendered from the object's
    /// inputs (its sealed and Vault items). See docs/templates.md.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "template_data_schema")]
    pub data: BTreeMap<String, String>,
    /// Whether inputs read by a template are written to the Secret too. By
    /// default (false) they are not: the Secret holds the rendered items
    /// and the inputs no template reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_inputs: Option<bool>,
}

impl SecretTemplate {
    /// Whether the template renders any item.
    pub fn has_data(&self) -> bool {
        !self.data.is_empty()
    }
}

fn template_data_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    // No template syntax in the description: Helm renders the chart's copy
    // of the CRD.
    schemars::json_schema!({
        "type": "object",
        "description": "Templated items: Secret key → template over the object's inputs (see docs/templates.md).",
        "maxProperties": gitseal_template::MAX_TEMPLATES,
        "additionalProperties": {"type": "string", "maxLength": gitseal_template::MAX_TEMPLATE_LEN}
    })
}

/// Labels and annotations copied onto the generated Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMetadata {
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "labels_schema")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "annotations_schema")]
    pub annotations: BTreeMap<String, String>,
}

/// Kubernetes' limit on all of an object's annotations together (256 KiB).
const MAX_ANNOTATIONS_SIZE: usize = 256 * 1024;

fn labels_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "Labels.",
        "maxProperties": 64,
        "additionalProperties": {"type": "string", "maxLength": 63}
    })
}

fn annotations_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "Annotations.",
        "maxProperties": 128,
        "additionalProperties": {"type": "string", "maxLength": MAX_ANNOTATIONS_SIZE}
    })
}

/// What the controller last did with a SealedSecret. Never holds data.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecretStatus {
    /// `Ready` with a reason: `Synced`, `DecryptFailed`, `UnknownKey`,
    /// `ScopeMismatch`, `VaultUnavailable`, `VaultAuthFailed`,
    /// `VaultNotFound`, `VaultForbidden`, `SecretNotOwned`, `InvalidSpec`,
    /// `ApplyFailed`, `TemplateError`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Key ids the sealed values were opened with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_ids: Vec<String>,
    /// When the Secret was last written or confirmed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<String>,
    /// Keyed hash (HMAC-SHA256 under a controller key) of the Secret's data; never the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_hash: Option<String>,
}

/// A status condition, as in `metav1.Condition`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// One CamelCase word, machine-readable.
    pub reason: String,
    /// Human-readable detail (never a secret value).
    #[serde(default)]
    pub message: String,
    /// When `status` last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// The generation the condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
