//! What the controller parses from objects anyone with write access to a
//! namespace can shape is total: any bytes give a value or a typed error,
//! never a panic. The input is split at NUL bytes into up to four parts:
//!
//! 1. a duration (`spec.refreshInterval`, the controller's duration flags):
//!    `parse_duration` agrees with a reference parser written here from
//!    its documentation (`0`, or one or more `<digits><d|h|m|s>`, no
//!    overflow); `parse_refresh_interval` accepts exactly the durations
//!    between 10 s and 30 d, and its refusal quotes at most 32 characters;
//! 2. and 3. two Secret names for the rollout annotations:
//!    `hash_annotation_key` keeps the key's name part within Kubernetes'
//!    63 characters, keeps short names whole, and gives distinct names
//!    distinct keys; `opts_in_value` finds a name listed among others
//!    (spaces around it) and never one the list does not contain;
//! 4. the data item of a sealing-key Secret, with part 1 as its
//!    `gitseal.dev/created` annotation: `keys_from_secret` gives keys or
//!    `Error::BadKey`, a key is never dated after the Secret's creation
//!    time, and a refusal is one of a few fixed texts (line numbers
//!    aside), so it never repeats anything of the item's value.
#![no_main]

use std::collections::BTreeMap;
use std::time::Duration;

use gitseal_controller::rollout::{hash_annotation_key, opts_in_value, HASH_ANNOTATION_PREFIX};
use gitseal_controller::{keys::keys_from_secret, parse_duration, vault, Error};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;
use libfuzzer_sys::fuzz_target;

/// The reference: `0`, or `<digits><unit>` repeated, after trimming.
fn reference_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    if t == "0" {
        return Some(Duration::ZERO);
    }
    if t.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    digits.is_empty().then(|| Duration::from_secs(total))
}

fn durations(text: &str) {
    let parsed = parse_duration(text);
    match (&parsed, reference_duration(text)) {
        (Ok(d), Some(r)) => assert_eq!(*d, r, "{text:?}"),
        (Err(Error::InvalidDuration(shown)), None) => {
            assert!(shown.chars().count() <= 32, "refusal quotes {shown:?}")
        }
        (got, want) => panic!(
            "{text:?}: parse_duration {:?}, reference {want:?}",
            got.as_ref().ok()
        ),
    }
    match vault::parse_refresh_interval(Some(text)) {
        Ok(d) => {
            assert_eq!(parsed.ok(), Some(d));
            assert!(d >= Duration::from_secs(10) && d <= Duration::from_secs(30 * 86_400));
        }
        Err(Error::Items { message, .. }) => {
            if let Ok(d) = parsed {
                assert!(d < Duration::from_secs(10) || d > Duration::from_secs(30 * 86_400));
            }
            let quoted = message
                .strip_prefix("spec.refreshInterval ")
                .expect("names the field");
            let shown: String = text.chars().take(32).collect();
            assert!(quoted.starts_with(&format!("{shown:?}")), "{message}");
        }
        Err(e) => panic!("untyped refusal: {e}"),
    }
}

fn annotations(a: &str, b: &str) {
    // The room after `gitseal.dev/secret-hash.` within 63 characters.
    let room = 63 - (HASH_ANNOTATION_PREFIX.len() - "gitseal.dev/".len());
    let ka = hash_annotation_key(a);
    let kb = hash_annotation_key(b);
    for (name, key) in [(a, &ka), (b, &kb)] {
        let part = key
            .strip_prefix(HASH_ANNOTATION_PREFIX)
            .expect("the prefix");
        assert!(part.len() <= room, "{key:?} is too long");
        if name.len() <= room {
            assert_eq!(part, name);
        } else {
            // Cut: a prefix of the name, '-', 8 hex digits of its hash.
            let (head, digest) = part.rsplit_once('-').expect("cut names end in -hash");
            assert!(name.starts_with(head));
            assert!(digest.len() == 8 && digest.bytes().all(|c| c.is_ascii_hexdigit()));
        }
    }
    if a != b {
        assert_ne!(ka, kb, "{a:?} and {b:?} share an annotation key");
    }
    let wanted = b.trim();
    if !b.contains(',') {
        assert!(opts_in_value(&format!("{a}, {b} "), wanted));
    }
    if !wanted.is_empty() && !a.contains(wanted) {
        assert!(!opts_in_value(a, wanted));
    }
}

fn key_secret(created: &str, item: &[u8]) {
    let stored = Timestamp::from_second(1_700_000_000).expect("a time");
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("gitseal-key-fuzz".into()),
            creation_timestamp: Some(Time(stored)),
            annotations: Some(BTreeMap::from([(
                "gitseal.dev/created".to_string(),
                created.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "key.txt".to_string(),
            ByteString(item.to_vec()),
        )])),
        ..Secret::default()
    };
    match keys_from_secret(&secret) {
        Ok(keys) => {
            assert!(!keys.is_empty());
            for k in &keys {
                assert!(k.created <= stored, "dated after the Secret");
                assert_eq!(k.secret_name, "gitseal-key-fuzz");
            }
        }
        Err(e @ Error::BadKey { .. }) => {
            // Digits aside (line numbers), a refusal is one of a few fixed
            // texts: nothing of the item's value is in it.
            let mut text = String::new();
            for c in e.to_string().chars() {
                if !c.is_ascii_digit() {
                    text.push(c);
                } else if !text.ends_with('N') {
                    text.push('N');
                }
            }
            let known = |rest: &str| {
                text == format!("sealing key Secret gitseal-key-fuzz: data item \"key.txt\"{rest}")
            };
            assert!(
                known(" is not UTF-N text")
                    || known(": invalid identity: expected an age XN identity (AGE-SECRET-KEY-N…)")
                    || known(": invalid identity on line N: expected an age XN identity (AGE-SECRET-KEY-N…)")
                    || known(": no identity found: the file has no AGE-SECRET-KEY-N… line"),
                "an unexpected refusal: {text}"
            );
        }
        Err(e) => panic!("untyped refusal: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |&b| b == 0);
    let duration = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let a = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let b = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let item = parts.next().unwrap_or_default();
    durations(&duration);
    annotations(&a, &b);
    key_secret(&duration, item);
});
