//! A minimal driver for profiling the scanner without the CLI:
//! `cargo run --release -p gitseal-scan --example scan -- DIR [THREADS]`
//! prints the number of findings, files, bytes and the wall time.
#![allow(clippy::print_stdout)]

use gitseal_scan::{Config, Scanner};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| ".".into()));
    let threads = args.next().and_then(|t| t.parse().ok()).unwrap_or(0);
    let scanner = Scanner::new(Config {
        threads,
        ..Config::default()
    })?;
    let t = Instant::now();
    let out = scanner.scan_paths(&[dir], None)?;
    let s = t.elapsed().as_secs_f64();
    let mb = out.summary.bytes_scanned as f64 / 1e6;
    println!(
        "{} findings, {} files, {:.1} MB in {:.3} s ({:.0} MB/s)",
        out.findings.len(),
        out.summary.files_scanned,
        mb,
        s,
        mb / s
    );
    for f in out.findings.iter().take(200) {
        println!("{}:{}: {} [{}]", f.path, f.line, f.rule, f.redacted);
    }
    Ok(())
}
