//! Vault references: which secret a `SealedSecret` item comes from.
//!
//! A [`VaultRef`] names one field of one KV secret (mount, path, field,
//! optional version, KV engine version). It exists so that Git holds only the
//! *address* of a secret and the controller reads the value at reconcile time.
//! It has two spellings that round-trip into each other:
//!
//! * the structured form stored in `SealedSecret.spec.vaultData` (serde,
//!   camelCase: `mount`, `path`, `field`, `version`, `kv`), and
//! * a compact text form for the command line:
//!
//! ```text
//! [kv1:|kv2:]MOUNT/PATH#FIELD[@VERSION]
//!
//! kv/app/db#password        KV v2 (the default), latest version
//! kv/app/db#password@3      KV v2, pinned to version 3
//! kv1:secret/app#token      KV v1 (no versions)
//! ```
//!
//! The mount is the first `/`-separated segment, the path is the rest (at
//! least one segment). Segments may contain ASCII letters, digits, `-`, `_` and
//! `.`; they must not be empty, `.` or `..`. A field may contain any visible
//! character except `#`, `@` and `/`. These rules are the same for both forms,
//! so every valid reference prints as text and parses back to itself, and no
//! reference can smuggle `..`, percent-encoding, a query string or a fragment
//! into the URL the client builds. The built-in paths `sys`, `auth`,
//! `identity` and `cubbyhole` are not KV mounts: a reference to them is
//! [`Error::Forbidden`] (otherwise a KV v1 reference such as
//! `kv1:auth/token/lookup-self#id` would read the client's own token).
//!
//! The KV version a reference declares is only a claim: the client checks it
//! against the mount's real engine before any read (see `mount.rs`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The expected text form, shown in parse errors.
pub const TEXT_FORM: &str = "[kv1:|kv2:]MOUNT/PATH#FIELD[@VERSION], e.g. kv/app/db#password@3";

/// Built-in Vault/OpenBao paths that are never KV mounts. Refusing them
/// here means no reference (and so no tenant) can make the client read
/// `auth/token/lookup-self`, `sys/...` or `cubbyhole/...` with its own token.
pub(crate) const RESERVED_MOUNTS: [&str; 4] = ["sys", "auth", "identity", "cubbyhole"];

const MAX_SEGMENT_LEN: usize = 128;
const MAX_FIELD_LEN: usize = 256;
const MAX_SEGMENTS: usize = 32;

/// Version of the KV secrets engine behind a mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum KvVersion {
    /// KV version 1: one unversioned value per path.
    #[serde(rename = "v1")]
    V1,
    /// KV version 2: versioned values (`MOUNT/data/PATH` on the wire).
    #[default]
    #[serde(rename = "v2")]
    V2,
}

impl KvVersion {
    fn is_default(&self) -> bool {
        *self == KvVersion::V2
    }
}

impl fmt::Display for KvVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KvVersion::V1 => "v1",
            KvVersion::V2 => "v2",
        })
    }
}

/// A reference to one field of one secret in a Vault/OpenBao KV engine.
///
/// Text form (for the CLI; [`Display`](fmt::Display) prints it, [`FromStr`]
/// parses it):
///
/// ```text
/// [kv1:|kv2:]MOUNT/PATH#FIELD[@VERSION]
///
/// kv/app/db#password        KV v2 (the default), latest version
/// kv/app/db#password@3      KV v2, pinned to version 3
/// kv1:secret/app#token      KV v1 (no versions)
/// ```
///
/// Structured form (serde, in `spec.vaultData`): `mount`, `path`, `field`,
/// optional `version`, optional `kv: v1|v2` (default `v2`). The mount is the
/// first segment, the path is relative to it (no `data/` for KV v2).
/// Segments use ASCII letters, digits, `-`, `_`, `.`, and are never empty,
/// `.` or `..`; fields are visible characters except `#`, `@`, `/`; the
/// built-in paths `sys`, `auth`, `identity`, `cubbyhole` are refused.
///
/// Construct it with [`VaultRef::new`], by parsing the text form
/// (`"kv/app/db#password@3".parse()`), or by deserializing the structured
/// form; all three validate the same way.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawVaultRef", rename_all = "camelCase")]
pub struct VaultRef {
    mount: String,
    path: String,
    field: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    #[serde(skip_serializing_if = "KvVersion::is_default")]
    kv: KvVersion,
}

/// The unvalidated serde shape; turned into a [`VaultRef`] by `TryFrom`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawVaultRef {
    mount: String,
    path: String,
    field: String,
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    kv: KvVersion,
}

impl TryFrom<RawVaultRef> for VaultRef {
    type Error = Error;

    fn try_from(raw: RawVaultRef) -> Result<Self, Error> {
        VaultRef::new(raw.mount, raw.path, raw.field, raw.version, raw.kv)
    }
}

impl VaultRef {
    /// Builds and validates a reference.
    ///
    /// `path` is relative to the mount (for KV v2, without the `data/`
    /// segment). `version` must be at least 1 and is only allowed for KV v2.
    pub fn new(
        mount: impl Into<String>,
        path: impl Into<String>,
        field: impl Into<String>,
        version: Option<u64>,
        kv: KvVersion,
    ) -> Result<Self, Error> {
        let r = VaultRef {
            mount: mount.into(),
            path: path.into(),
            field: field.into(),
            version,
            kv,
        };
        r.validate()?;
        Ok(r)
    }

    /// The KV mount (first segment), e.g. `kv` or `secret`.
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// The secret's path below the mount, e.g. `app/db`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path's segments below the mount.
    pub fn path_segments(&self) -> impl Iterator<Item = &str> {
        self.path.split('/')
    }

    /// The field inside the secret, e.g. `password`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The pinned KV v2 version, or `None` for the latest.
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// The KV engine version of the mount.
    pub fn kv(&self) -> KvVersion {
        self.kv
    }

    fn invalid(&self, reason: impl Into<String>) -> Error {
        Error::InvalidRef {
            reference: sanitize_for_message(&self.to_string_unchecked()),
            reason: reason.into(),
        }
    }

    fn validate(&self) -> Result<(), Error> {
        check_segment(&self.mount, "mount").map_err(|r| self.invalid(r))?;
        if RESERVED_MOUNTS.contains(&self.mount.as_str()) {
            return Err(reserved_mount(&self.mount, &self.path));
        }
        if self.path.is_empty() {
            return Err(self.invalid("the path below the mount is empty"));
        }
        let segments: Vec<&str> = self.path.split('/').collect();
        if segments.len() > MAX_SEGMENTS {
            return Err(self.invalid(format!("the path has more than {MAX_SEGMENTS} segments")));
        }
        for seg in segments {
            check_segment(seg, "path").map_err(|r| self.invalid(r))?;
        }
        check_field(&self.field).map_err(|r| self.invalid(r))?;
        match (self.kv, self.version) {
            (KvVersion::V1, Some(_)) => Err(self
                .invalid("KV v1 secrets have no versions; drop `@VERSION` or use a KV v2 mount")),
            (_, Some(0)) => Err(self.invalid("versions start at 1")),
            _ => Ok(()),
        }
    }

    /// Text form without validation; used for error messages (and by
    /// `Display`, which only ever sees validated references).
    fn to_string_unchecked(&self) -> String {
        let mut s = String::new();
        if self.kv == KvVersion::V1 {
            s.push_str("kv1:");
        }
        s.push_str(&self.mount);
        s.push('/');
        s.push_str(&self.path);
        s.push('#');
        s.push_str(&self.field);
        if let Some(v) = self.version {
            s.push('@');
            s.push_str(&v.to_string());
        }
        s
    }
}

/// The refusal of a reference to a built-in Vault path (`sys`, `auth`, ...).
pub(crate) fn reserved_mount(mount: &str, path: &str) -> Error {
    Error::Forbidden {
        namespace: None,
        mount: sanitize_for_message(mount),
        path: sanitize_for_message(path),
        detail: format!("`{mount}` is a built-in Vault path, not a KV mount"),
    }
}

/// Keeps error messages printable: control characters become `?`, and the
/// text is cut at a sane length.
pub(crate) fn sanitize_for_message(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(300)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().count() > 300 {
        out.push('…');
    }
    out
}

fn check_segment(seg: &str, what: &str) -> Result<(), String> {
    if seg.is_empty() {
        return Err(format!(
            "the {what} has an empty segment (`//`, or a leading or trailing `/`)"
        ));
    }
    if seg == "." || seg == ".." {
        return Err(format!("the {what} must not contain `{seg}` segments"));
    }
    if seg.len() > MAX_SEGMENT_LEN {
        return Err(format!(
            "a {what} segment is longer than {MAX_SEGMENT_LEN} characters"
        ));
    }
    if let Some(c) = seg
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        let shown = if c.is_control() || c.is_whitespace() {
            format!("{:?}", c)
        } else {
            format!("`{c}`")
        };
        return Err(format!(
            "the {what} contains {shown}; segments may only use ASCII letters, digits, `-`, `_` and `.`"
        ));
    }
    Ok(())
}

fn check_field(field: &str) -> Result<(), String> {
    if field.is_empty() {
        return Err("the field after `#` is empty".into());
    }
    if field.len() > MAX_FIELD_LEN {
        return Err(format!(
            "the field is longer than {MAX_FIELD_LEN} characters"
        ));
    }
    if let Some(c) = field
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || matches!(c, '#' | '@' | '/'))
    {
        let shown = if c.is_control() || c.is_whitespace() {
            format!("{:?}", c)
        } else {
            format!("`{c}`")
        };
        return Err(format!(
            "the field contains {shown}; fields may use any visible character except `#`, `@` and `/`"
        ));
    }
    Ok(())
}

impl fmt::Display for VaultRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_unchecked())
    }
}

impl FromStr for VaultRef {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidRef {
            reference: sanitize_for_message(input),
            reason: format!("{reason}; expected {TEXT_FORM}"),
        };
        let (kv, rest) = if let Some(rest) = input.strip_prefix("kv1:") {
            (KvVersion::V1, rest)
        } else if let Some(rest) = input.strip_prefix("kv2:") {
            (KvVersion::V2, rest)
        } else {
            (KvVersion::V2, input)
        };
        let Some((location, field_part)) = rest.split_once('#') else {
            return Err(invalid("missing `#FIELD`".into()));
        };
        let (field, version) = match field_part.split_once('@') {
            None => (field_part, None),
            Some((field, v)) => {
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid(format!(
                        "the version after `@` must be a positive whole number, not `{}`",
                        sanitize_for_message(v)
                    )));
                }
                let n: u64 = v
                    .parse()
                    .map_err(|_| invalid("the version after `@` is too large".into()))?;
                (field, Some(n))
            }
        };
        let Some((mount, path)) = location.split_once('/') else {
            return Err(invalid(
                "missing the path: the first segment is the mount, the rest is the path".into(),
            ));
        };
        VaultRef::new(mount, path, field, version, kv).map_err(|e| match e {
            Error::InvalidRef { reason, .. } => invalid(reason),
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Result<VaultRef, Error> {
        s.parse()
    }

    fn reason(s: &str) -> String {
        match parse(s) {
            Err(Error::InvalidRef { reason, .. }) => reason,
            other => panic!("{s}: expected InvalidRef, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_documented_forms() {
        let r = parse("kv/app/db#password").unwrap();
        assert_eq!(
            (r.mount(), r.path(), r.field(), r.version(), r.kv()),
            ("kv", "app/db", "password", None, KvVersion::V2)
        );
        let r = parse("kv/app/db#password@3").unwrap();
        assert_eq!(r.version(), Some(3));
        let r = parse("kv1:secret/app#token").unwrap();
        assert_eq!(
            (r.mount(), r.path(), r.kv()),
            ("secret", "app", KvVersion::V1)
        );
        let r = parse("kv2:secret/a.b/c_d-e#tls.crt@12").unwrap();
        assert_eq!(
            (r.path(), r.field(), r.version()),
            ("a.b/c_d-e", "tls.crt", Some(12))
        );
        assert_eq!(r.path_segments().collect::<Vec<_>>(), ["a.b", "c_d-e"]);
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "kv/app/db#password",
            "kv/app/db#password@3",
            "kv1:secret/app#token",
            "secret/team/a/b/c#F:x=1",
        ] {
            assert_eq!(parse(s).unwrap().to_string(), s);
        }
        // The explicit kv2: prefix is accepted and printed without it.
        assert_eq!(parse("kv2:kv/a#b").unwrap().to_string(), "kv/a#b");
    }

    #[test]
    fn parse_errors_say_what_is_wrong_and_show_the_form() {
        let e = parse("kv/app/db").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid Vault reference `kv/app/db`: missing `#FIELD`; expected \
             [kv1:|kv2:]MOUNT/PATH#FIELD[@VERSION], e.g. kv/app/db#password@3"
        );
        assert_eq!(e.reason(), "VaultInvalidRef");
        assert!(reason("kv#pw").starts_with("missing the path"));
        assert!(reason("kv/app#").starts_with("the field after `#` is empty"));
        assert!(reason("kv/app#@2").starts_with("the field after `#` is empty"));
        assert!(reason("kv/app#pw@")
            .starts_with("the version after `@` must be a positive whole number"));
        assert!(reason("kv/app#pw@x1").contains("not `x1`"));
        assert!(reason("kv/app#pw@-1").contains("not `-1`"));
        assert!(reason("kv/app#pw@0").starts_with("versions start at 1"));
        assert!(reason("kv/app#pw@99999999999999999999999")
            .starts_with("the version after `@` is too large"));
        assert!(reason("kv1:kv/app#pw@2").starts_with("KV v1 secrets have no versions"));
        assert!(reason("kv/app#a@b@3").contains("not `b@3`"));
    }

    #[test]
    fn path_tricks_are_refused() {
        for (s, want) in [
            ("kv/team/../other#pw", "must not contain `..` segments"),
            ("kv/./team/x#pw", "must not contain `.` segments"),
            ("kv/team//x#pw", "empty segment"),
            ("kv/team/x/#pw", "empty segment"),
            ("/kv/team#pw", "empty segment"),
            ("kv/#pw", "the path below the mount is empty"),
            ("kv/team/%2e%2e/x#pw", "contains `%`"),
            ("kv/team%2Fother/x#pw", "contains `%`"),
            ("kv/team x/y#pw", "contains ' '"),
            ("kv/team?version=1/y#pw", "contains `?`"),
            ("kv/t\u{e9}am/y#pw", "contains `\u{e9}`"),
            ("kv/team\\..\\x#pw", "contains `\\`"),
            ("k:v/team/x#pw", "contains `:`"),
            ("kv/team/x#a/b", "the field contains `/`"),
            ("kv/team/x#a b", "the field contains ' '"),
            ("kv/team/x#a\nb", "the field contains '\\n'"),
        ] {
            let got = reason(s);
            assert!(got.contains(want), "{s:?}: {got}");
        }
        let long = format!("kv/{}#f", "a".repeat(129));
        assert!(reason(&long).contains("longer than 128"));
        let deep = format!("kv/{}#f", vec!["a"; 33].join("/"));
        assert!(reason(&deep).contains("more than 32 segments"));
    }

    #[test]
    fn built_in_mounts_are_forbidden_not_invalid() {
        for (s, mount, path) in [
            ("kv1:auth/token/lookup-self#id", "auth", "token/lookup-self"),
            ("sys/policy/root#policy", "sys", "policy/root"),
            ("kv1:cubbyhole/x#y", "cubbyhole", "x"),
            ("identity/entity/id#name", "identity", "entity/id"),
        ] {
            let e = parse(s).unwrap_err();
            assert_eq!(e.reason(), "VaultForbidden", "{s}: {e}");
            assert_eq!(
                e.to_string(),
                format!(
                    "Vault path {mount}/{path} may not be read: `{mount}` is a built-in Vault \
                     path, not a KV mount"
                )
            );
        }
        let e = serde_yaml::from_str::<VaultRef>("mount: sys\npath: x\nfield: y\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`sys` is a built-in Vault path"), "{e}");
    }

    #[test]
    fn error_messages_do_not_echo_control_characters() {
        let e = parse("kv/a\u{1b}[31m/b#f").unwrap_err().to_string();
        assert!(!e.contains('\u{1b}'), "{e}");
    }

    #[test]
    fn serde_structured_form() {
        let r: VaultRef =
            serde_yaml::from_str("mount: kv\npath: app/db\nfield: password\nversion: 3\n").unwrap();
        assert_eq!(r, parse("kv/app/db#password@3").unwrap());
        let r: VaultRef =
            serde_yaml::from_str("mount: legacy\npath: app\nfield: token\nkv: v1\n").unwrap();
        assert_eq!(r, parse("kv1:legacy/app#token").unwrap());
        assert_eq!(
            serde_json::to_string(&parse("kv/app/db#password").unwrap()).unwrap(),
            r#"{"mount":"kv","path":"app/db","field":"password"}"#
        );
        assert_eq!(
            serde_json::to_string(&parse("kv1:legacy/app#token").unwrap()).unwrap(),
            r#"{"mount":"legacy","path":"app","field":"token","kv":"v1"}"#
        );
        let back: VaultRef =
            serde_json::from_str(&serde_json::to_string(&parse("kv/a/b#c@4").unwrap()).unwrap())
                .unwrap();
        assert_eq!(back.to_string(), "kv/a/b#c@4");
    }

    #[test]
    fn serde_validates_like_the_text_form() {
        let err = serde_yaml::from_str::<VaultRef>("mount: kv\npath: team/../x\nfield: pw\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must not contain `..` segments"), "{err}");
        let err = serde_yaml::from_str::<VaultRef>("mount: kv\npath: a\nfield: pw\nfeild: x\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `feild`"), "{err}");
        let err = serde_yaml::from_str::<VaultRef>("mount: kv\npath: a\nfield: pw\nkv: v3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `v3`"), "{err}");
        let err =
            serde_yaml::from_str::<VaultRef>("mount: kv\npath: a\nfield: pw\nkv: v1\nversion: 2\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("KV v1 secrets have no versions"), "{err}");
        assert!(serde_yaml::from_str::<VaultRef>("mount: kv\npath: a\n").is_err());
    }

    fn segment() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_-][A-Za-z0-9._-]{0,12}"
    }

    proptest! {
        #[test]
        fn valid_refs_round_trip(
            mount in segment().prop_filter("reserved", |m| !RESERVED_MOUNTS.contains(&m.as_str())),
            path in proptest::collection::vec(segment(), 1..5),
            field in "[!-~&&[^#@/]]{1,20}",
            version in proptest::option::of(1u64..1000),
            v1 in any::<bool>(),
        ) {
            let kv = if v1 { KvVersion::V1 } else { KvVersion::V2 };
            let version = if v1 { None } else { version };
            let r = VaultRef::new(mount, path.join("/"), field, version, kv).unwrap();
            let text = r.to_string();
            prop_assert_eq!(text.parse::<VaultRef>().unwrap(), r.clone());
            let json = serde_json::to_string(&r).unwrap();
            prop_assert_eq!(serde_json::from_str::<VaultRef>(&json).unwrap(), r);
        }

        #[test]
        fn parsing_any_string_never_panics(s in "\\PC{0,64}") {
            let _ = s.parse::<VaultRef>();
        }

        #[test]
        fn parsed_refs_have_no_dot_segments(s in "[a-z./#@%0-9]{0,24}") {
            if let Ok(r) = s.parse::<VaultRef>() {
                prop_assert!(r.path_segments().all(|seg| !seg.is_empty() && seg != "." && seg != ".."));
            }
        }
    }
}
