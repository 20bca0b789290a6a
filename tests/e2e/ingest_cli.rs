//! `vzsnap ingest` as an admin runs it: config errors, dry run, JSON and table output, exit
//! codes, unsupported and out-of-order backups, metrics, and the single-instance lock with two
//! real concurrent runs.

use std::time::{Duration, Instant};

use ingest::synth::SeriesSpec;
use serde_json::Value;

use crate::support::*;

#[test]
fn config_errors_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let out = vzsnap()
        .args(["--config"])
        .arg(d.path().join("missing.toml"))
        .arg("ingest")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.toml"), "{err}");
    let bad = d.path().join("bad.toml");
    std::fs::write(&bad, "[store]\nspec = \"zfs:tank\"\n[ingest]\nsettle = 5\n").unwrap();
    let out = vzsnap()
        .arg("--config")
        .arg(&bad)
        .arg("ingest")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("settle"), "{err}");
}

#[test]
fn held_lock_exits_3_with_the_holder_pid() {
    let s = Setup::new("btrfs:/nonexistent-store", "");
    let _held = ingest::lock::RunLock::acquire(&s.lock, false).unwrap();
    let out = s.ingest(&[]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "locked by another vzsnap ingest (pid {})",
        std::process::id()
    );
    assert!(err.contains(&want), "{err}");
}

fn value<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| &v[*k])
}

fn admin_run(b: &Backend) {
    let s = Setup::new(&b.spec(), &format!("metrics_file = \"{}\"", "METRICS"));
    let metrics = s.dir.path().join("vzsnap.prom");
    let cfg = std::fs::read_to_string(&s.config)
        .unwrap()
        .replace("METRICS", &metrics.display().to_string());
    std::fs::write(&s.config, cfg).unwrap();
    let days = days(SeriesSpec::new(100, 3, 1 << 20), 3);
    write_days(&s.dump, 100, 3, &days[1..]);
    // An lxc backup: reported, not a failure.
    std::fs::write(
        s.dump.join("vzdump-lxc-105-2026_11_01-02_00_00.tar.zst"),
        b"x",
    )
    .unwrap();

    // Dry run: a plan, no changes.
    let out = run_ok(s.ingest(&["--dry-run", "--json"]).arg("-q"));
    let j = json(&out);
    assert_eq!(j["dry-run"], true);
    assert_eq!(value(&j, &["totals", "planned"]), 2);
    assert_eq!(value(&j, &["totals", "skipped"]), 1);
    assert!(
        b.store().list_volumes().unwrap().is_empty(),
        "a dry run creates nothing"
    );
    assert!(!metrics.exists());

    // The real run.
    let out = run_ok(&mut s.ingest(&["--json"]));
    let j = json(&out);
    assert_eq!(j["format"], 1);
    assert_eq!(value(&j, &["totals", "ingested"]), 2);
    let backups = j["backups"].as_array().unwrap();
    let lxc = backups.iter().find(|b| b["vmid"] == 105).unwrap();
    assert_eq!(
        (lxc["status"].as_str(), lxc["reason"].as_str()),
        (Some("skipped"), Some("unsupported"))
    );
    let first = backups.iter().find(|b| b["vmid"] == 100).unwrap();
    assert_eq!(first["status"], "ingested");
    assert_eq!(first["backup-time"], days[1].time.snapshot_name());
    let stats = value(first, &["ingested", "stats"]);
    for k in [
        "read",
        "compared",
        "written",
        "zeroed",
        "unchanged",
        "write-calls",
        "punch-calls",
    ] {
        assert!(stats[k].is_u64(), "{k}: {stats}");
    }
    assert!(first["snapshot-written"].is_u64());
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        prom.contains("vzsnap_ingest_last_success_timestamp_seconds{vmid=\"100\"} "),
        "{prom}"
    );
    assert!(
        prom.contains("vzsnap_ingest_last_run_failures 0\n"),
        "{prom}"
    );
    // Written atomically (temp + rename): no temporary is left next to it.
    let mut beside: Vec<_> = std::fs::read_dir(metrics.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(
        beside,
        ["dump", "ingest.lock", "vzsnap.prom", "vzsnap.toml"]
    );

    // An older backup than the newest snapshot: skipped with a reason, --force ingests it.
    write_days(&s.dump, 100, 3, &days[..1]);
    let out = run_ok(&mut s.ingest(&[]));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("older than the newest backup"), "{table}");
    assert!(table.lines().next().unwrap().starts_with("VMID"), "{table}");
    let out = run_ok(&mut s.ingest(&["--force", "--json"]));
    assert_eq!(value(&json(&out), &["totals", "ingested"]), 1);

    // A corrupt archive: exit 1, the error names the file and offset.
    let mut d4 = days[2].clone();
    d4.time = ingest::synth::add_days(d4.time, 1);
    let w = ingest::synth::write_backup(&s.dump, 100, 3, &d4, false).unwrap();
    let mut bytes = std::fs::read(&w.archive).unwrap();
    let n = bytes.len();
    bytes.truncate(n / 2);
    std::fs::write(&w.archive, &bytes).unwrap();
    let out = s.ingest(&["--json"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = json(&out);
    let failed = j["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["status"] == "failed")
        .unwrap();
    let file = failed["error"]["file"].as_str().unwrap();
    assert!(
        file.ends_with(w.archive.file_name().unwrap().to_str().unwrap()),
        "{failed}"
    );
    assert!(failed["error"]["offset"].is_u64());
    assert_eq!(std::fs::read(&w.archive).unwrap(), bytes, "input untouched");
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        prom.contains("vzsnap_ingest_last_run_failures 1\n"),
        "{prom}"
    );
}

/// The config's `include`/`exclude` and `settle_seconds`, VMIDs on the command line and
/// `--settle-seconds`, as a dry run sees them (the scan's rules are unit-tested in
/// `ingest::scan`; this checks the binary wires the config and the command line to them).
fn filters_settle_and_vmids(b: &Backend) {
    let s = Setup::new(&b.spec(), "include = [100, 101, 102]\nexclude = [102]");
    let cfg = std::fs::read_to_string(&s.config)
        .unwrap()
        .replace("settle_seconds = 0", "settle_seconds = 3600");
    std::fs::write(&s.config, cfg).unwrap();
    for vmid in [100, 101, 102, 103] {
        write_days(
            &s.dump,
            vmid,
            5,
            &days(SeriesSpec::new(vmid, 5, 64 << 10), 1),
        );
    }
    // A second backup of 101 that is still being copied in: modified just now.
    let mut fresh = days(SeriesSpec::new(101, 5, 64 << 10), 2).pop().unwrap();
    fresh.protected = false;
    let w = ingest::synth::write_backup(&s.dump, 101, 5, &fresh, false).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&w.archive)
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();

    let plan = |args: &[&str]| -> Vec<(u64, String, String)> {
        let mut a = vec!["--dry-run", "--json"];
        a.extend_from_slice(args);
        let j = json(&run_ok(&mut s.ingest(&a)));
        j["backups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["vmid"].as_u64().unwrap(),
                    b["status"].as_str().unwrap().to_string(),
                    b["reason"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let t = |v: u64, st: &str, r: &str| (v, st.to_string(), r.to_string());
    assert_eq!(
        plan(&[]),
        [
            t(100, "planned", ""),
            t(101, "planned", ""),
            t(101, "skipped", "settling")
        ],
        "102 excluded, 103 not included, the fresh archive settling"
    );
    assert_eq!(
        plan(&["--settle-seconds", "0", "101"]),
        [t(101, "planned", ""), t(101, "planned", "")]
    );
    let out = s.ingest(&["--dry-run", "103"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("none of the given VMIDs is in [ingest] include"),
        "{err}"
    );
    assert!(b.store().list_volumes().unwrap().is_empty());
}

/// Two real runs at once: the second sees the first's pid and exits 3; with `--wait` it
/// queues and then finds nothing left to do.
fn concurrent_runs(b: &Backend) {
    let s = Setup::new(&b.spec(), "");
    write_days(&s.dump, 100, 9, &days(SeriesSpec::new(100, 9, 16 << 20), 1));
    let mut first = s.ingest(&["-q"]).spawn().unwrap();
    let pid = first.id();
    // Freeze the first run as soon as it holds the lock (its pid is in the lock file).
    let t0 = Instant::now();
    loop {
        if std::fs::read_to_string(&s.lock).is_ok_and(|t| t.trim() == pid.to_string()) {
            run_ok(std::process::Command::new("kill").args(["-STOP", &pid.to_string()]));
            break;
        }
        assert!(
            first.try_wait().unwrap().is_none(),
            "first run ended before it was seen holding the lock"
        );
        assert!(t0.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(1));
    }
    let out = s.ingest(&[]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("locked by another vzsnap ingest (pid {pid})")),
        "{err}"
    );
    // --wait queues behind it.
    let mut second = s
        .ingest(&["--wait", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        second.try_wait().unwrap().is_none(),
        "--wait must block while the lock is held"
    );
    run_ok(std::process::Command::new("kill").args(["-CONT", &pid.to_string()]));
    assert!(first.wait().unwrap().success());
    let out = second.wait_with_output().unwrap();
    assert!(out.status.success());
    let j = json(&out);
    assert_eq!(value(&j, &["totals", "ingested"]), 0);
    assert_eq!(value(&j, &["totals", "skipped"]), 1);
}

mod btrfs {
    use super::*;

    #[test]
    fn admin_run() {
        if let Some(b) = Backend::btrfs() {
            super::admin_run(&b);
        }
    }

    #[test]
    fn concurrent_runs() {
        if let Some(b) = Backend::btrfs() {
            super::concurrent_runs(&b);
        }
    }

    #[test]
    fn filters_settle_and_vmids() {
        if let Some(b) = Backend::btrfs() {
            super::filters_settle_and_vmids(&b);
        }
    }
}

mod zfs {
    use super::*;

    #[test]
    fn admin_run() {
        if let Some(b) = Backend::zfs() {
            super::admin_run(&b);
        }
    }
}
