//! `scripts/demo`, the README's first command, end to end on btrfs: it makes its own
//! throw-away btrfs on a loop file, generates the nights, ingests them one by one, re-runs,
//! reports and cleans up. Run small (`--days 4 --size 4M`) and with `--no-build`: the test
//! suite has built the binary already (a cargo build from inside `cargo test` would fight
//! over the build lock).

use std::path::Path;

use crate::support::run_ok;

#[test]
fn btrfs_demo_runs_end_to_end() {
    // Only for the root/skip decision (the demo makes its own file system).
    if store::testutil::btrfs_or_skip().is_none() {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The demo runs target/debug/vzsnap, which is this build's binary.
    assert_eq!(
        Path::new(env!("CARGO_BIN_EXE_vzsnap")),
        repo.join("target/debug/vzsnap")
    );
    let out = run_ok(
        std::process::Command::new(repo.join("scripts/demo"))
            .args(["--no-build", "--days", "4", "--size", "4M"])
            .env("RUST_LOG", "warn"),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "night 1: vzsnap ingest",
        "night 4: vzsnap ingest",
        "re-run: nothing new",
        "vzsnap report",
        "snapshot 100@2026_11_02-02_00_03 exists",
        "== done",
    ] {
        assert!(text.contains(want), "{want:?} missing in:\n{text}");
    }
    // Four ingested nights: four snapshots listed at the end.
    let snaps = text
        .lines()
        .filter(|l| l.starts_with("2026_11_0") && !l.contains(' '))
        .count();
    assert_eq!(snaps, 4, "{text}");
}
