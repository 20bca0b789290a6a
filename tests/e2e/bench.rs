//! `scripts/bench` end to end on btrfs, small (64 MiB disk, one round), with this build's
//! binaries (`--bin-dir`): every group runs, every row is there, and the figures the
//! benchmark issue states as facts rather than timings hold — the one-pass ingest and the
//! two-pass blocksync write exactly the changed-block minimum, rsync and dd write more,
//! and our snapshot diverges by no more than what we wrote. Times are printed, never
//! asserted.

use std::path::Path;

use serde_json::Value;

use crate::support::run_ok;

#[test]
fn btrfs_bench_runs_and_writes_the_minimum() {
    // Only for the root/skip decision (the bench makes its own file system).
    if store::testutil::btrfs_or_skip().is_none() {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_vzsnap")).parent().unwrap();
    assert!(
        bin_dir.join("vma").is_file(),
        "{}/vma missing: build the workspace (cargo test --workspace)",
        bin_dir.display()
    );
    let work = tempfile::Builder::new()
        .prefix("vzsnap-bench-test")
        .tempdir_in("/var/tmp")
        .unwrap();
    let json = work.path().join("bench.json");
    let out = run_ok(
        std::process::Command::new(repo.join("scripts/bench"))
            .arg("--bin-dir")
            .arg(bin_dir)
            .args([
                "--size",
                "64M",
                "--rounds",
                "1",
                "--memory-sizes",
                "16M 32M",
            ])
            .arg("--dir")
            .arg(work.path().join("bench"))
            .arg("--json")
            .arg(&json),
    );
    let table = String::from_utf8_lossy(&out.stdout);
    println!("{table}");

    let j: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let min = j["churn_report"]["min-bytes"].as_u64().unwrap();
    assert!(min > 0, "{j}");
    let rows = j["rows"].as_array().unwrap();
    let row = |key: &str| {
        rows.iter()
            .find(|r| r["key"] == key)
            .unwrap_or_else(|| panic!("row {key} missing in {j}"))
    };
    for key in [
        "cat",
        "zstd",
        "ours",
        "twopass",
        "rsync",
        "dd",
        "zstd_t0",
        "restore_zstd",
        "restore_none",
        "extract_vma",
        "extract_zst",
        "mem_ingest_16M",
        "mem_extract_32M",
        "mem_restore_32M",
    ] {
        let r = row(key);
        assert!(r["wall"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["peak_rss_kib"].as_u64().unwrap() > 0, "{r}");
    }
    let bytes = |key: &str, field: &str| row(key)[field].as_u64().unwrap();
    // Exactly the changed 4 KiB blocks, by the tool's own count.
    assert_eq!(bytes("ours", "tool_bytes"), min);
    assert_eq!(bytes("twopass", "tool_bytes"), min);
    // The blind and the rolling-checksum peers write more than that.
    assert_eq!(bytes("dd", "tool_bytes"), 64 << 20);
    assert!(bytes("rsync", "tool_bytes") > min);
    // Our snapshot shares everything with day 1 but what we wrote (zeroed blocks are
    // punched and take no space); dd's clone diverges far more.
    assert!(bytes("ours", "divergence_bytes") <= min);
    assert!(bytes("dd", "divergence_bytes") > 4 * min);
    assert!(table.contains("vzsnap ingest (one pass)"), "{table}");
}
