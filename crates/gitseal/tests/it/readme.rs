//! The README's "Using it" lines work as written: they are run here, in
//! order, by bash, with the built binary on PATH.

use std::path::Path;
use std::process::Command;

use crate::support::BIN;

#[test]
fn readme_using_it_runs_as_written() {
    let readme = include_str!("../../../../README.md");
    let section = &readme[readme.find("## Using it").expect("section")..];
    let start = section.find("```sh\n").expect("code block") + "```sh\n".len();
    let block = &section[start..start + section[start..].find("```").expect("end of block")];
    assert!(block.contains("gitseal seal") && block.contains("gitseal verify"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let bin_dir = Path::new(BIN).parent().expect("bin dir");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-e", "-o", "pipefail", "-c", block])
        .current_dir(tmp.path())
        .env("PATH", path)
        .env("TMPDIR", tmp.path())
        .env("HOME", tmp.path())
        .env("EDITOR", "true")
        .env_remove("VISUAL")
        .env_remove("GITSEAL_CACHE_DIR")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("kind: SealedSecret"), "{stdout}");
    assert!(
        stderr.contains("sealing for environment \"dev\""),
        "{stderr}"
    );
    assert!(stderr.contains("no findings"), "{stderr}");
}
