//! `vzsnap report` end to end on the 5-day synthetic sequence, ingested by the real binary:
//! per snapshot the virtual size (the day's disks), the archive's size on disk, `written`
//! exactly as the store reports it (on ZFS also as `zfs get written` says), and the savings
//! and totals derived from them.

use ingest::synth::{SeriesSpec, write_backup};
use store::cmd::Cmd;
use store::{SnapshotName, VolumeName};

use crate::support::{Backend, Setup, days, json, run_ok, vzsnap};

const TZ: &str = "Europe/Berlin";

fn five_day_report(b: &Backend) {
    let setup = Setup::new(&b.spec(), "");
    let series = days(SeriesSpec::new(100, 3, 4 << 20), 5);
    let mut archive_sizes = Vec::new();
    for d in &series {
        let w = write_backup(&setup.dump, 100, 3, d, false).unwrap();
        archive_sizes.push(std::fs::metadata(&w.archive).unwrap().len());
    }
    let mut c = setup.ingest(&["--no-prune"]);
    c.env("TZ", TZ);
    run_ok(&mut c);

    let mut c = vzsnap();
    c.env("TZ", TZ)
        .arg("--config")
        .arg(&setup.config)
        .args(["report", "--json"]);
    let out = json(&run_ok(&mut c));
    let vol = VolumeName::new("100").unwrap();
    let listed = b.store().list_snapshots(&vol).unwrap();
    let rows = out["volumes"][0]["snapshots"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    let mut written_sum = 0u64;
    for (i, (row, info)) in rows.iter().zip(&listed).enumerate() {
        let day = &series[i];
        assert_eq!(row["snapshot"], day.time.snapshot_name());
        let written = row["written"].as_u64().unwrap();
        assert_eq!(written, info.written, "day {}", i + 1);
        written_sum += written;
        let virt: u64 = day.disks.iter().map(|d| d.data.len() as u64).sum();
        assert_eq!(row["virtual-size"].as_u64(), Some(virt), "day {}", i + 1);
        assert_eq!(
            row["archive-size"].as_u64(),
            Some(archive_sizes[i]),
            "day {}",
            i + 1
        );
        let savings = row["savings-percent"].as_f64().unwrap();
        let want = (1.0 - written as f64 / archive_sizes[i] as f64) * 100.0;
        assert!((savings - want).abs() < 1e-6, "{savings} vs {want}");
        if let Backend::Zfs(z) = b {
            let snap = SnapshotName::new(day.time.snapshot_name()).unwrap();
            let ds = z.root().child("100").unwrap();
            let zfs = Cmd::new("zfs")
                .args(["get", "-H", "-p", "-o", "value", "written"])
                .arg(ds.snapshot(&snap).unwrap())
                .run()
                .unwrap();
            assert_eq!(
                zfs.stdout.trim().parse::<u64>().unwrap(),
                written,
                "zfs written of day {}",
                i + 1
            );
        }
    }
    let t = &out["volumes"][0]["totals"];
    assert_eq!(t["snapshots"], 5);
    assert_eq!(t["written"].as_u64(), Some(written_sum));
    let archives: u64 = archive_sizes.iter().sum();
    assert_eq!(t["archive-size"].as_u64(), Some(archives));
    let ratio = t["archive-ratio"].as_f64().unwrap();
    assert!((ratio - archives as f64 / written_sum as f64).abs() < 1e-9);
    assert_eq!(out["totals"], *t, "one VM: overall = per-VM totals");
    // Days 2–5 change ~1 % of the blocks plus a run of up to 64 (rewriting whole 64 KiB
    // records on ZFS): each still costs less than its archive.
    for row in &rows[1..] {
        assert!(row["savings-percent"].as_f64().unwrap() > 0.0, "{row}");
    }

    // The human table.
    let mut c = vzsnap();
    c.env("TZ", TZ)
        .arg("--config")
        .arg(&setup.config)
        .args(["report", "100"]);
    let text = String::from_utf8(run_ok(&mut c).stdout).unwrap();
    assert!(
        text.starts_with(&format!("VM 100  (times in {TZ})\n")),
        "{text}"
    );
    assert!(
        text.contains("Sun 2026-11-01 02:00  2026_11_01-02_00_03"),
        "{text}"
    );
    assert!(text.contains("  total: 5 snapshots"), "{text}");
    assert!(text.contains("  all VMs: 5 snapshots"), "{text}");
}

backend_tests!(five_day_report);
