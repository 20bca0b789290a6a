//! `vzsnap report`: per snapshot, the virtual disk size, the source archive's size, the space
//! the snapshot takes (the store's `written`) and the savings against the archive; totals per
//! VM and over all VMs. Definitions: `ingest::report` (and `--help`).

use anyhow::Context;
use clap::Args;
use ingest::report::{SnapshotRow, Totals, VolumeReport, report_volume, totals};
use ingest::retention::{TimeZone, format_local, zone_name};
use serde::Serialize;
use vma::vzdump::VmId;

use super::GlobalArgs;
use super::prune::{VolumeError, select_volumes, table, write_stdout};
use crate::exit::ExitCode;

#[derive(Debug, Args)]
#[command(after_help = "\
Columns:
  virtual   sum of the snapshot's disk sizes (manifest vzsnap.json; vmstate excluded)
  archive   size of the vzdump archive it was ingested from (as compressed on disk)
  written   space the snapshot takes: bytes not shared with the previous snapshot
            (ZFS `written`; btrfs: unshared extent bytes). Summed over a VM's snapshots it
            is the space they use together.
  savings   1 - written/archive: how much less space than keeping the archive
Totals: archive ratio = sum(archive)/sum(written), virtual ratio = sum(virtual)/sum(written);
a total is '?' (null in JSON) unless every snapshot's value is known.")]
pub struct ReportArgs {
    /// VMs to report on (default: every VM volume in the store).
    #[arg(value_name = "VMID")]
    pub vmids: Vec<VmId>,
    /// Machine-readable output on stdout.
    #[arg(long)]
    pub json: bool,
    /// Store spec instead of [store] spec, e.g. `btrfs:/srv/vzsnap` (with it, the default
    /// config file may be absent).
    #[arg(long, value_name = "SPEC")]
    pub store: Option<String>,
}

/// `vzsnap report --json` output: `{"timezone", "volumes": [VolumeReport], "totals",
/// "errors": [{"volume", "error"}]}`; field names as in `ingest::report` (kebab-case:
/// `virtual-size`, `archive-size`, `written`, `referenced`, `savings-percent`,
/// `archive-ratio`, `virtual-ratio`, …).
#[derive(Debug, Serialize)]
pub struct ReportOutput {
    pub timezone: String,
    pub volumes: Vec<VolumeReport>,
    /// Over every snapshot of every listed volume.
    pub totals: Totals,
    pub errors: Vec<VolumeError>,
}

pub fn run(global: &GlobalArgs, args: ReportArgs) -> anyhow::Result<ExitCode> {
    let config = super::prune::load_config(global, args.store.as_deref())?;
    let tz = config.prune.time_zone().context("[prune] timezone")?;
    let store = config.open_store()?;
    let mut volumes = Vec::new();
    let mut errors = Vec::new();
    for vol in select_volumes(store.as_ref(), &args.vmids)? {
        match report_volume(store.as_ref(), &vol) {
            Ok(r) => volumes.push(r),
            Err(e) => {
                tracing::error!("{e}");
                errors.push(VolumeError {
                    volume: vol.to_string(),
                    error: e.to_string(),
                });
            }
        }
    }
    let all = totals(volumes.iter().flat_map(|v| &v.snapshots));
    let out = ReportOutput {
        timezone: zone_name(&tz),
        volumes,
        totals: all,
        errors,
    };
    let text = if args.json {
        serde_json::to_string_pretty(&out)? + "\n"
    } else {
        render(&out, &tz)
    };
    write_stdout(text.as_bytes())?;
    Ok(if out.errors.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::Partial
    })
}

/// Binary units with one decimal: `512 B`, `1.5 KiB`, `32.0 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

fn opt_bytes(n: Option<u64>) -> String {
    n.map_or_else(|| "?".to_string(), human_bytes)
}

fn percent(p: Option<f64>) -> String {
    p.map_or_else(|| "?".to_string(), |p| format!("{p:.0} %"))
}

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "?".to_string(), |r| format!("{r:.1}x"))
}

fn row(r: &SnapshotRow, tz: &TimeZone) -> [String; 6] {
    [
        r.backup_time
            .map_or_else(|| "-".to_string(), |t| format_local(t, tz)),
        r.snapshot.to_string(),
        opt_bytes(r.virtual_size),
        opt_bytes(r.archive_size),
        human_bytes(r.written),
        percent(r.savings_percent),
    ]
}

fn totals_line(label: &str, t: &Totals) -> String {
    format!(
        "  {label}: {} snapshots, virtual {}, archives {}, used {} (written); savings {}; \
         archive ratio {}, virtual ratio {}\n",
        t.snapshots,
        opt_bytes(t.virtual_size),
        opt_bytes(t.archive_size),
        human_bytes(t.written),
        percent(t.savings_percent),
        ratio(t.archive_ratio),
        ratio(t.virtual_ratio),
    )
}

/// The human table, one block per VM, then the overall totals.
pub fn render(out: &ReportOutput, tz: &TimeZone) -> String {
    let header = [
        "backup time",
        "snapshot",
        "virtual",
        "archive",
        "written",
        "savings",
    ];
    let mut s = String::new();
    for v in &out.volumes {
        s.push_str(&format!("VM {}  (times in {})\n", v.volume, out.timezone));
        let rows: Vec<[String; 6]> = v.snapshots.iter().map(|r| row(r, tz)).collect();
        s.push_str(&table(&header, &rows));
        for r in v.snapshots.iter().filter(|r| r.manifest_error.is_some()) {
            s.push_str(&format!(
                "  note: {}: virtual size unknown: {}\n",
                r.snapshot,
                r.manifest_error.as_deref().unwrap_or_default()
            ));
        }
        s.push_str(&totals_line("total", &v.totals));
        s.push('\n');
    }
    for e in &out.errors {
        s.push_str(&format!("VM {}: FAILED: {}\n", e.volume, e.error));
    }
    if out.volumes.is_empty() && out.errors.is_empty() {
        s.push_str("no VM volumes in the store\n");
    } else {
        s.push_str(&totals_line("all VMs", &out.totals));
    }
    s
}

#[cfg(test)]
mod tests {
    use ingest::report::build_volume_report;
    use store::layout::meta_keys;
    use store::{SnapshotInfo, SnapshotName, VolumeName};

    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(32 << 30), "32.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn table_and_totals() {
        let snap = |name: &str, written: u64, archive: &str| SnapshotInfo {
            name: SnapshotName::new(name).unwrap(),
            created: 0,
            meta: [
                (meta_keys::ARCHIVE_SIZE.to_string(), archive.to_string()),
                (meta_keys::BACKUP_TIME.to_string(), "1759622400".to_string()),
            ]
            .into_iter()
            .collect(),
            referenced: 0,
            written,
            held: false,
        };
        let v = build_volume_report(
            &VolumeName::new("100").unwrap(),
            &[
                snap("2025_10_05-02_00_00", 3 << 20, "2097152"),
                snap("2025_10_06-02_00_00", 1 << 20, "20971520"),
            ],
            &[Err("no manifest".into()), Err("no manifest".into())],
        );
        let all = totals(&v.snapshots);
        let out = ReportOutput {
            timezone: "Europe/Berlin".into(),
            volumes: vec![v],
            totals: all,
            errors: vec![],
        };
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let text = render(&out, &tz);
        assert!(
            text.contains(
                "Sun 2025-10-05 02:00  2025_10_05-02_00_00  ?        2.0 MiB   3.0 MiB  -50 %"
            ),
            "{text}"
        );
        assert!(text.contains("95 %"), "{text}");
        assert!(
            text.contains("note: 2025_10_05-02_00_00: virtual size unknown: no manifest"),
            "{text}"
        );
        assert!(text.contains("total: 2 snapshots, virtual ?, archives 22.0 MiB, used 4.0 MiB (written); savings 82 %; archive ratio 5.5x, virtual ratio ?"), "{text}");
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json["totals"]["written"], 4 << 20);
        assert_eq!(
            json["volumes"][0]["snapshots"][1]["archive-size"],
            20_971_520
        );
    }
}
