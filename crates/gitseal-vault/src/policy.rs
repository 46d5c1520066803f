//! Tenancy: which Vault paths a namespace may read through the controller.
//!
//! The controller reads Vault with *its own* identity, so without a check any
//! tenant could put any Vault path in a `SealedSecret` and have the controller
//! copy it into a `Secret` the tenant can read. [`PathPolicy`] is that check.
//! It is built from operator path templates and runs **before** any Vault
//! call; a reference outside every template is refused with
//! [`Error::Forbidden`](crate::Error::Forbidden).
//!
//! The path judged is the secret a request actually reads, not only the one
//! a reference declares: a reference whose declared KV version differs from
//! the mount's (say `kv: v1` with path `data/team-b/db` on a KV v2 mount,
//! which Vault serves as the KV v2 secret `team-b/db`) is judged again on
//! what it would touch once the client knows the mount (see `mount.rs`).
//!
//! The template syntax is documented on [`PathPolicy`].

use std::fmt;
use std::str::FromStr;

use crate::reference::{sanitize_for_message, RESERVED_MOUNTS};
use crate::{Error, VaultRef};

/// The placeholder replaced by the namespace's name.
pub const NAMESPACE_PLACEHOLDER: &str = "{namespace}";

/// The default template: `{namespace}/*`.
pub const DEFAULT_TEMPLATE: &str = "{namespace}/*";

/// One segment of a template (or its mount).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// Matches exactly this text.
    Literal(String),
    /// `prefix{namespace}suffix`.
    Namespace { prefix: String, suffix: String },
}

impl Pattern {
    fn parse(seg: &str, template: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::InvalidPolicy {
            template: sanitize_for_message(template),
            reason: reason.to_string(),
        };
        if seg.is_empty() {
            return Err(bad("empty segment"));
        }
        if seg == "." || seg == ".." {
            return Err(bad("`.` and `..` segments are not allowed"));
        }
        let (prefix, suffix, has_ns) = match seg.find(NAMESPACE_PLACEHOLDER) {
            Some(i) => (&seg[..i], &seg[i + NAMESPACE_PLACEHOLDER.len()..], true),
            None => (seg, "", false),
        };
        for part in [prefix, suffix] {
            if part.contains('*') {
                return Err(bad("`*` may only be the whole last segment"));
            }
            if !part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(bad(
                    "segments may only use ASCII letters, digits, `-`, `_`, `.` and `{namespace}`",
                ));
            }
        }
        Ok(if has_ns {
            Pattern::Namespace {
                prefix: prefix.to_string(),
                suffix: suffix.to_string(),
            }
        } else {
            Pattern::Literal(seg.to_string())
        })
    }

    /// Whole-string comparison after substitution; no prefix matching.
    fn matches(&self, value: &str, namespace: &str) -> bool {
        match self {
            Pattern::Literal(l) => l == value,
            Pattern::Namespace { prefix, suffix } => {
                value.len() == prefix.len() + namespace.len() + suffix.len()
                    && value.starts_with(prefix.as_str())
                    && value.ends_with(suffix.as_str())
                    && value.get(prefix.len()..value.len() - suffix.len()) == Some(namespace)
            }
        }
    }

    fn render(&self, namespace: &str) -> String {
        match self {
            Pattern::Literal(l) => l.clone(),
            Pattern::Namespace { prefix, suffix } => format!("{prefix}{namespace}{suffix}"),
        }
    }
}

/// One operator path template; the syntax is described on [`PathPolicy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    text: String,
    mount: Option<Pattern>,
    segments: Vec<Pattern>,
    any_tail: bool,
}

impl PathTemplate {
    /// True when `mount`/`segs` is inside this template for `namespace`.
    fn allows(&self, namespace: &str, mount: &str, segs: &[&str]) -> bool {
        if let Some(m) = &self.mount {
            if !m.matches(mount, namespace) {
                return false;
            }
        }
        let fixed = self.segments.len();
        let count_ok = if self.any_tail {
            segs.len() > fixed
        } else {
            segs.len() == fixed
        };
        count_ok
            && self
                .segments
                .iter()
                .zip(segs)
                .all(|(p, s)| p.matches(s, namespace))
    }

    fn render(&self, namespace: &str) -> String {
        let mut out = String::new();
        if let Some(m) = &self.mount {
            out.push_str(&m.render(namespace));
            out.push(':');
        }
        let mut parts: Vec<String> = self.segments.iter().map(|p| p.render(namespace)).collect();
        if self.any_tail {
            parts.push("*".into());
        }
        out.push_str(&parts.join("/"));
        out
    }
}

impl FromStr for PathTemplate {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::InvalidPolicy {
            template: sanitize_for_message(text),
            reason: format!(
                "{reason}; expected [MOUNT:]SEGMENT/.../[*], e.g. secret:{{namespace}}/*"
            ),
        };
        let text_trimmed = text.trim();
        if text_trimmed.is_empty() {
            return Err(bad("empty template"));
        }
        let (mount, path) = match text_trimmed.split_once(':') {
            Some((m, p)) => (Some(Pattern::parse(m, text)?), p),
            None => (None, text_trimmed),
        };
        if let Some(Pattern::Literal(m)) = &mount {
            if RESERVED_MOUNTS.contains(&m.as_str()) {
                return Err(bad("built-in Vault paths cannot be allowed"));
            }
        }
        if path.is_empty() {
            return Err(bad("empty path"));
        }
        let raw: Vec<&str> = path.split('/').collect();
        let (any_tail, fixed) = match raw.split_last() {
            Some((&"*", rest)) => (true, rest),
            _ => (false, &raw[..]),
        };
        if !any_tail && fixed.is_empty() {
            return Err(bad("empty path"));
        }
        let segments = fixed
            .iter()
            .map(|s| Pattern::parse(s, text))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PathTemplate {
            text: text_trimmed.to_string(),
            mount,
            segments,
            any_tail,
        })
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The operator's tenancy policy: a reference is allowed for a namespace when
/// at least one template allows it. An empty policy allows nothing.
///
/// # Templates
///
/// ```text
/// [MOUNT:]SEGMENT/SEGMENT/.../[*]
///
/// {namespace}/*               default: any mount, first path segment = the namespace
/// secret:{namespace}/*        only the `secret` mount
/// kv:shared/{namespace}/*     only `kv`, below `shared/<namespace>/`
/// kv:teams/{namespace}/db     exactly one path
/// tenant-{namespace}:*        a mount per namespace, any path in it
/// ```
///
/// `{namespace}` is replaced by the namespace's name; it may stand alone or
/// with a literal prefix/suffix inside one segment (`ns-{namespace}`). A final
/// `*` matches one or more further segments; there are no other wildcards.
/// Matching compares whole segments, never string prefixes, so namespace
/// `team` does not match `team-b/...`. References are validated on
/// construction (no empty, `.` or `..` segments, no `%` or other characters
/// outside `[A-Za-z0-9._-]`); the check re-verifies that and also refuses
/// namespaces that are not valid Kubernetes names.
///
/// The default template allows any mount. Give the controller's Vault token a
/// policy that can only read your KV mounts, or name the mount in the
/// template, so a namespace that happens to share its name with a path inside
/// some other secrets engine cannot reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPolicy {
    templates: Vec<PathTemplate>,
}

impl Default for PathPolicy {
    /// `{namespace}/*`: any mount, first path segment = the namespace.
    fn default() -> Self {
        PathPolicy {
            templates: vec![PathTemplate {
                text: DEFAULT_TEMPLATE.to_string(),
                mount: None,
                segments: vec![Pattern::Namespace {
                    prefix: String::new(),
                    suffix: String::new(),
                }],
                any_tail: true,
            }],
        }
    }
}

impl PathPolicy {
    /// Parses templates (syntax on [`PathPolicy`]). Any invalid template
    /// is an error: a typo must not silently widen or narrow access.
    pub fn from_templates<I, S>(templates: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let templates = templates
            .into_iter()
            .map(|t| t.as_ref().parse())
            .collect::<Result<Vec<PathTemplate>, _>>()?;
        Ok(PathPolicy { templates })
    }

    /// The templates, in order.
    pub fn templates(&self) -> &[PathTemplate] {
        &self.templates
    }

    /// Checks that `namespace` may read `reference`. Call it before any
    /// Vault call; it does no I/O.
    ///
    /// This judges the path the reference *declares*. The client judges
    /// again, when it knows the mount's real KV version, the path the
    /// request would actually touch (a [`Session`](crate::Session) made
    /// with [`for_namespace`](crate::Session::for_namespace) does both).
    pub fn check(&self, namespace: &str, reference: &VaultRef) -> Result<(), Error> {
        self.check_path(namespace, reference.mount(), reference.path())
    }

    /// Checks that `namespace` may read the secret at `mount`/`path` (a
    /// logical KV path: for KV v2 without `data/`).
    pub(crate) fn check_path(&self, namespace: &str, mount: &str, path: &str) -> Result<(), Error> {
        match self.refusal(namespace, mount, path) {
            None => Ok(()),
            Some(detail) => Err(Error::Forbidden {
                namespace: Some(sanitize_for_message(namespace)),
                mount: sanitize_for_message(mount),
                path: sanitize_for_message(path),
                detail,
            }),
        }
    }

    /// Why `namespace` may not read `mount`/`path`, or `None` when it may.
    pub(crate) fn refusal(&self, namespace: &str, mount: &str, path: &str) -> Option<String> {
        if !is_namespace_name(namespace) {
            return Some("the namespace name is not a valid Kubernetes namespace".into());
        }
        // Defence in depth: VaultRef validates on construction, re-check the
        // tricks the policy must never be fooled by.
        let plain = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        let segs: Vec<&str> = path.split('/').collect();
        if !plain(mount) || !segs.iter().all(|s| plain(s)) || RESERVED_MOUNTS.contains(&mount) {
            return Some("the path is not a plain KV path".into());
        }
        if self
            .templates
            .iter()
            .any(|t| t.allows(namespace, mount, &segs))
        {
            return None;
        }
        let allowed: Vec<String> = self.templates.iter().map(|t| t.render(namespace)).collect();
        Some(if allowed.is_empty() {
            "the operator's Vault path policy allows no paths".into()
        } else {
            format!(
                "outside the operator's Vault path policy; this namespace may read: {}",
                allowed.join(", ")
            )
        })
    }
}

/// A Kubernetes namespace name: an RFC 1123 DNS label.
fn is_namespace_name(ns: &str) -> bool {
    let b = ns.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> VaultRef {
        s.parse().unwrap()
    }

    fn policy(t: &[&str]) -> PathPolicy {
        PathPolicy::from_templates(t).unwrap()
    }

    fn allowed(p: &PathPolicy, ns: &str, s: &str) -> bool {
        match p.check(ns, &r(s)) {
            Ok(()) => true,
            Err(Error::Forbidden { .. }) => false,
            Err(other) => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn default_is_namespace_first_segment_on_any_mount() {
        let p = PathPolicy::default();
        assert_eq!(p, policy(&["{namespace}/*"]));
        assert!(allowed(&p, "team", "secret/team/db#pw"));
        assert!(allowed(&p, "team", "kv/team/a/b/c#pw@2"));
        assert!(allowed(&p, "team", "kv1:legacy/team/x#pw"));
        assert!(!allowed(&p, "team", "secret/other/db#pw"));
        assert!(
            !allowed(&p, "team", "secret/team#pw"),
            "the namespace itself is not below it"
        );
        assert!(!allowed(&p, "team", "secret/x/team/db#pw"));
        assert!(!allowed(&p, "team", "secret/Team/db#pw"), "case matters");
    }

    #[test]
    fn namespace_prefix_of_another_does_not_match() {
        let p = PathPolicy::default();
        assert!(!allowed(&p, "team", "secret/team-b/db#pw"));
        assert!(!allowed(&p, "team", "secret/teamb/db#pw"));
        assert!(!allowed(&p, "team-b", "secret/team/db#pw"));
        assert!(allowed(&p, "team-b", "secret/team-b/db#pw"));
        let p = policy(&["kv:shared/{namespace}/*", "ns-{namespace}-x:*"]);
        assert!(!allowed(&p, "team", "kv/shared/team-b/x#pw"));
        assert!(allowed(&p, "team", "ns-team-x/a#pw"));
        assert!(!allowed(&p, "team", "ns-team-b-x/a#pw"));
        assert!(!allowed(&p, "team-b", "ns-team-x/a#pw"));
        assert!(!allowed(&p, "b", "ns-team-b-x/a#pw"));
    }

    #[test]
    fn templates_may_name_the_mount() {
        let p = policy(&["secret:{namespace}/*", "kv:shared/{namespace}/*"]);
        assert!(allowed(&p, "team", "secret/team/db#pw"));
        assert!(!allowed(&p, "team", "kv/team/db#pw"));
        assert!(allowed(&p, "team", "kv/shared/team/db#pw"));
        assert!(!allowed(&p, "team", "kv/shared/other/db#pw"));
        assert!(!allowed(&p, "team", "other/shared/team/db#pw"));
        assert!(!allowed(&p, "team", "kv/shared/team#pw"));
    }

    #[test]
    fn templates_without_star_match_exactly() {
        let p = policy(&["kv:teams/{namespace}/db"]);
        assert!(allowed(&p, "team", "kv/teams/team/db#pw"));
        assert!(!allowed(&p, "team", "kv/teams/team/db/more#pw"));
        assert!(!allowed(&p, "team", "kv/teams/team#pw"));
        // Literal-only templates grant every namespace (shared secrets).
        let p = policy(&["kv:shared/common/*"]);
        assert!(allowed(&p, "anyone", "kv/shared/common/ca#crt"));
    }

    #[test]
    fn refusal_says_what_is_allowed() {
        let p = policy(&["secret:{namespace}/*", "kv:shared/{namespace}/*"]);
        let e = p.check("team", &r("kv/other/x#pw")).unwrap_err();
        assert_eq!(e.reason(), "VaultForbidden");
        assert_eq!(
            e.to_string(),
            "namespace `team` may not read Vault path kv/other/x: outside the operator's Vault \
             path policy; this namespace may read: secret:team/*, kv:shared/team/*"
        );
        let empty = PathPolicy::from_templates(Vec::<String>::new()).unwrap();
        let e = empty.check("team", &r("kv/team/x#pw")).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("the operator's Vault path policy allows no paths"),
            "{e}"
        );
    }

    #[test]
    fn invalid_namespace_names_are_refused() {
        let p = PathPolicy::default();
        for ns in [
            "",
            "Team",
            "-team",
            "team-",
            "te.am",
            "..",
            "team/x",
            "t%65am",
            &"a".repeat(64),
        ] {
            let e = p.check(ns, &r("kv/team/x#pw")).unwrap_err();
            assert!(
                e.to_string().contains("not a valid Kubernetes namespace"),
                "{ns:?}: {e}"
            );
        }
    }

    #[test]
    fn path_tricks_cannot_even_be_expressed() {
        for s in [
            "secret/team/../team-b/db#pw",
            "secret/team/./x#pw",
            "secret/team//x#pw",
            "secret/team/%2e%2e/team-b#pw",
            "secret/team%2f..%2fteam-b/x#pw",
        ] {
            assert!(
                matches!(s.parse::<VaultRef>(), Err(Error::InvalidRef { .. })),
                "{s}"
            );
        }
    }

    #[test]
    fn invalid_templates_are_errors() {
        for (t, want) in [
            ("", "empty template"),
            ("secret:", "empty path"),
            ("{namespace}/*/x", "`*` may only be the whole last segment"),
            ("{namespace}/a*", "`*` may only be the whole last segment"),
            ("../{namespace}/*", "`.` and `..` segments are not allowed"),
            ("{namespace}//*", "empty segment"),
            ("{name}/*", "segments may only use"),
            (
                "sys:{namespace}/*",
                "built-in Vault paths cannot be allowed",
            ),
            ("sec ret:{namespace}/*", "segments may only use"),
        ] {
            match t.parse::<PathTemplate>() {
                Err(e @ Error::InvalidPolicy { .. }) => {
                    assert!(e.to_string().contains(want), "{t:?}: {e}");
                    assert_eq!(e.reason(), "VaultConfigInvalid");
                }
                other => panic!("{t:?}: {other:?}"),
            }
        }
        assert!(PathPolicy::from_templates(["{namespace}/*", "bad*"]).is_err());
    }

    #[test]
    fn template_text_is_kept() {
        let p = policy(&[" secret:{namespace}/* "]);
        assert_eq!(p.templates()[0].to_string(), "secret:{namespace}/*");
    }
}
