//! `vzsnap prune` end to end: real `vzsnap ingest` of synthetic vzdump backups (day 2 is
//! PVE-protected, so its snapshot is held), then the binary prunes.
//!
//! Checked: exactly the snapshots retention computes survive (and the dates worked out by
//! hand); the protected backup survives; `--dry-run` destroys nothing; the live volume's
//! files are byte-identical before and after; the config's `[prune]` policy, its per-VM
//! override and `--keep-*` on the command line; prune after every ingest
//! (`after_ingest`); a missing VM fails alone (exit 1) while the others are pruned.

use std::collections::{BTreeMap, BTreeSet};

use ingest::retention::{KeepPolicy, TimeZone};
use ingest::synth::SeriesSpec;
use ingest::synth::check::retained;
use store::VolumeName;

use crate::support::{Backend, Setup, days, json, run_ok, vzsnap, write_days};

/// vzdump names backups in local time; ingest and prune must agree on the zone, so every
/// run gets the same one (and a zone with DST).
const TZ: &str = "Europe/Berlin";

fn tz() -> TimeZone {
    TimeZone::get(TZ).unwrap()
}

/// Tiny disks: the ZFS VM runs under emulation.
fn spec(vmid: u32) -> SeriesSpec {
    SeriesSpec::new(vmid, 7, 256 << 10)
}

fn ingest(setup: &Setup, vmid: u32, n: u32) {
    write_days(&setup.dump, vmid, 7, &days(spec(vmid), n));
    let mut c = setup.ingest(&["--no-prune"]);
    c.env("TZ", TZ);
    run_ok(&mut c);
}

fn prune(setup: &Setup, args: &[&str]) -> std::process::Command {
    let mut c = vzsnap();
    c.env("TZ", TZ)
        .arg("--config")
        .arg(&setup.config)
        .arg("prune")
        .args(args);
    c
}

fn snapshots(b: &Backend, vmid: u32) -> Vec<String> {
    let vol = VolumeName::new(vmid.to_string()).unwrap();
    b.store()
        .list_snapshots(&vol)
        .unwrap()
        .into_iter()
        .map(|s| s.name.to_string())
        .collect()
}

/// Every file of the live volume with its bytes.
fn live_files(b: &Backend, vmid: u32) -> BTreeMap<String, Vec<u8>> {
    let dir = b
        .store()
        .volume_path(&VolumeName::new(vmid.to_string()).unwrap())
        .unwrap();
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// What the retention function keeps of the volume as it is now (held = protected).
fn computed(b: &Backend, vmid: u32, policy: &KeepPolicy) -> BTreeSet<String> {
    let vol = VolumeName::new(vmid.to_string()).unwrap();
    retained(b.store(), &vol, policy, &tz()).unwrap()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn thirty_ingested_backups(b: &Backend) {
    let setup = Setup::new(&b.spec(), "");
    ingest(&setup, 100, 30);
    let all = snapshots(b, 100);
    assert_eq!(all.len(), 30);
    assert_eq!(all[1], "2026_11_02-02_00_03");
    let live = live_files(b, 100);

    // Dry run: the verdicts, nothing destroyed.
    let args = [
        "--keep-last",
        "2",
        "--keep-daily",
        "5",
        "--keep-weekly",
        "3",
        "--keep-monthly",
        "2",
    ];
    let mut dry_args = args.to_vec();
    dry_args.extend(["--dry-run", "--json"]);
    let out = json(&run_ok(&mut prune(&setup, &dry_args)));
    assert_eq!(snapshots(b, 100).len(), 30);
    assert_eq!(out["dry-run"], true);
    assert_eq!(out["timezone"], TZ);
    let vol = &out["volumes"][0];
    assert_eq!(vol["volume"], "100");
    assert_eq!(vol["policy"]["keep-weekly"], 3);
    let entries = vol["snapshots"].as_array().unwrap();
    assert_eq!(entries.len(), 30);
    assert!(entries.iter().all(|e| e["destroyed"] == false));
    let protected = &entries[1];
    assert_eq!(
        (
            protected["keep"].as_bool(),
            protected["reason"].as_str(),
            protected["held"].as_bool()
        ),
        (Some(true), Some("protected"), Some(true))
    );

    let policy = KeepPolicy {
        keep_last: Some(2),
        keep_daily: Some(5),
        keep_weekly: Some(3),
        keep_monthly: Some(2),
        ..Default::default()
    };
    let want = computed(b, 100, &policy);
    let dry_kept: BTreeSet<String> = entries
        .iter()
        .filter(|e| e["keep"] == true)
        .map(|e| e["snapshot"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(dry_kept, want);

    // For real, with the human table.
    let out = run_ok(&mut prune(&setup, &args));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("VM 100  policy keep-last=2,keep-daily=5,keep-weekly=3,keep-monthly=2"),
        "{text}"
    );
    assert!(
        text.contains("2026_11_02-02_00_03  Mon 2026-11-02 02:00  keep"),
        "{text}"
    );
    assert!(text.contains("weekly 2026/47"), "{text}");
    assert!(text.contains("19 destroyed"), "{text}");
    let left: BTreeSet<String> = snapshots(b, 100).into_iter().collect();
    assert_eq!(left, want);
    // By hand (Nov 1 2026 is a Sunday; Mon Nov 30 starts ISO week 49): last = Nov 30, 29;
    // daily = Nov 28–24; weekly: W49 and W48 are covered, so Sun Nov 22 (W47), 15, 8;
    // monthly: November is covered and there is nothing older; Nov 2 is protected.
    assert_eq!(
        left,
        set(&[
            "2026_11_02-02_00_03",
            "2026_11_08-02_00_03",
            "2026_11_15-02_00_03",
            "2026_11_22-02_00_03",
            "2026_11_24-02_00_03",
            "2026_11_25-02_00_03",
            "2026_11_26-02_00_03",
            "2026_11_27-02_00_03",
            "2026_11_28-02_00_03",
            "2026_11_29-02_00_03",
            "2026_11_30-02_00_03",
        ])
    );
    assert!(live_files(b, 100) == live, "the live volume changed");

    // Again: nothing more to do.
    let out = json(&run_ok(&mut prune(
        &setup,
        &[&args[..], &["--json"]].concat(),
    )));
    let e = out["volumes"][0]["snapshots"].as_array().unwrap();
    assert_eq!(e.len(), 11);
    assert!(
        e.iter()
            .all(|e| e["keep"] == true && e["destroyed"] == false)
    );
}

fn config_policy_overrides_and_partial_failure(b: &Backend) {
    let setup = Setup::new(&b.spec(), "");
    let mut cfg = std::fs::read_to_string(&setup.config).unwrap();
    cfg.push_str(&format!("\n[prune]\nkeep-last = 3\nafter_ingest = false\ntimezone = \"{TZ}\"\n\n[prune.vm.101]\nkeep-last = 1\n"));
    std::fs::write(&setup.config, cfg).unwrap();
    ingest(&setup, 100, 5);
    ingest(&setup, 101, 5);
    assert_eq!((snapshots(b, 100).len(), snapshots(b, 101).len()), (5, 5));

    // The configured policies: VM 100 keeps 3, VM 101 (override) 1; both keep protected day 2.
    let out = json(&run_ok(&mut prune(&setup, &["--json"])));
    assert_eq!(
        out["volumes"][0]["policy"],
        serde_json::json!({"keep-last": 3})
    );
    assert_eq!(
        out["volumes"][1]["policy"],
        serde_json::json!({"keep-last": 1})
    );
    assert_eq!(
        snapshots(b, 100),
        [
            "2026_11_02-02_00_03",
            "2026_11_03-02_00_03",
            "2026_11_04-02_00_03",
            "2026_11_05-02_00_03"
        ]
    );
    assert_eq!(
        snapshots(b, 101),
        ["2026_11_02-02_00_03", "2026_11_05-02_00_03"]
    );

    // --keep-* replaces the config for this run; VM 999 has no volume: exit 1, 100 still done.
    let out = prune(&setup, &["100", "999", "--keep-last", "1", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["errors"][0]["volume"], "999");
    assert_eq!(
        snapshots(b, 100),
        ["2026_11_02-02_00_03", "2026_11_05-02_00_03"]
    );
    assert_eq!(snapshots(b, 101).len(), 2, "not selected, not touched");
}

/// `[prune] after_ingest` (the default): every ingest prunes its VM right away, as vzdump
/// prunes after each backup.
fn pruned_after_every_ingest(b: &Backend) {
    let setup = Setup::new(&b.spec(), "");
    let mut cfg = std::fs::read_to_string(&setup.config).unwrap();
    cfg.push_str(&format!(
        "\n[prune]\nkeep-daily = 2\nkeep-weekly = 1\ntimezone = \"{TZ}\"\n"
    ));
    std::fs::write(&setup.config, cfg).unwrap();
    let all = days(spec(100), 10);
    for d in &all {
        write_days(&setup.dump, 100, 7, std::slice::from_ref(d));
        let mut c = setup.ingest(&[]);
        c.env("TZ", TZ);
        run_ok(&mut c);
    }
    // After Tue Nov 10: daily Nov 10, 9 (W46); weekly: W46 covered, so Sun Nov 8 (W45);
    // Nov 2 protected.
    assert_eq!(
        snapshots(b, 100),
        [
            "2026_11_02-02_00_03",
            "2026_11_08-02_00_03",
            "2026_11_09-02_00_03",
            "2026_11_10-02_00_03"
        ]
    );
    let policy = KeepPolicy {
        keep_daily: Some(2),
        keep_weekly: Some(1),
        ..Default::default()
    };
    assert_eq!(
        snapshots(b, 100).into_iter().collect::<BTreeSet<_>>(),
        computed(b, 100, &policy)
    );
}

backend_tests!(
    thirty_ingested_backups,
    config_policy_overrides_and_partial_failure,
    pruned_after_every_ingest
);
