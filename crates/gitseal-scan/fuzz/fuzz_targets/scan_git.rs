//! `gitseal verify --staged / --since / --history` reads git's change lists
//! (`git log --raw -p -U0`, `git diff --raw -p -U0`) and scans each blob
//! under the path git printed. Both are total over arbitrary bytes: the
//! change-list parser gives entries or a typed error, never a panic (git
//! quotes unusual paths C-style, with octal escapes, so the paths are
//! fuzzer-controlled), and the scanner takes any path the parser yields.
//! Oracles: asking for line ranges does not change the entries; every
//! added range is well-formed (start ≤ end) and names a path the output
//! named; without line ranges none are returned; a finding names the path
//! it was scanned under.
#![no_main]

use std::sync::OnceLock;

use gitseal_scan::git::{parse_changes, unquote};
use gitseal_scan::{Config, Error, Scanner};
use libfuzzer_sys::fuzz_target;

fn scanner() -> &'static Scanner {
    static S: OnceLock<Scanner> = OnceLock::new();
    S.get_or_init(|| {
        Scanner::new(Config {
            threads: 1,
            ..Config::default()
        })
        .expect("scanner")
    })
}

fuzz_target!(|data: &[u8]| {
    let with_lines = parse_changes(data, true);
    let without = parse_changes(data, false);
    match (with_lines, without) {
        (Ok((entries, added)), Ok((entries2, added2))) => {
            assert_eq!(entries, entries2, "line ranges do not change the entries");
            assert!(added2.is_empty(), "no ranges unless asked");
            let text = String::from_utf8_lossy(data);
            for ((_, path), ranges) in &added {
                assert!(!ranges.is_empty());
                for (start, end) in ranges {
                    assert!(start <= end, "range {start}..={end} of {path:?}");
                }
                assert!(!path.is_empty() || text.contains("+++ b/"));
            }
            for e in entries.iter().take(8) {
                assert!(!e.blob.is_empty());
                // The blob's bytes are the input itself: any content under
                // any path git can print.
                for f in scanner().scan_bytes(&e.path, data) {
                    assert_eq!(f.path, e.path);
                    assert!(f.line >= 1);
                }
            }
        }
        (Err(a), Err(b)) => {
            assert!(matches!(a, Error::GitOutput { .. }), "untyped refusal: {a}");
            assert_eq!(a.to_string(), b.to_string());
        }
        (a, b) => panic!(
            "line ranges change the outcome: {:?} vs {:?}",
            a.is_ok(),
            b.is_ok()
        ),
    }
    // Unquoting is total over any text, quoted or not.
    if let Ok(text) = std::str::from_utf8(data) {
        let once = unquote(text);
        if !(text.starts_with('"') && text.ends_with('"') && text.len() >= 2) {
            assert_eq!(once, text, "an unquoted path is kept as it is");
        }
    }
});
