//! `vzsnap prune`: apply the retention policy (PBS/PVE `keep-*` semantics) to each VM.
//!
//! The policy comes from the config's `[prune]` table (per-VM `[prune.vm.<VMID>]` tables
//! replace it for that VM); any `--keep-*` option replaces the configured policy for every VM
//! of this run. Output: a table of every snapshot with its verdict and reason, or `--json`
//! (field names documented on [`PruneOutput`]). Exit 0 = all done, 1 = some VM or snapshot
//! failed (the others were still pruned), 2 = nothing done (config, store).

use std::io::Write;

use anyhow::Context;
use clap::Args;
use ingest::prune::{PruneEntry, PruneReport, Reason, prune_volume};
use ingest::retention::{KeepPolicy, Rule, TimeZone, format_local, zone_name};
use serde::Serialize;
use store::{Store, VolumeName};
use vma::vzdump::VmId;

use super::GlobalArgs;
use crate::exit::ExitCode;

#[derive(Debug, Args)]
#[command(after_help = "\
Policy: without --keep-* options the config's [prune] keep-* keys apply, and a
[prune.vm.<VMID>] table replaces them for that VM. Any --keep-* option replaces the
configured policy for every VM of this run. With no positive keep-* option everything is
kept (PVE's keep-all). Semantics are Proxmox Backup Server's: rules run last, hourly,
daily, weekly, monthly, yearly; each keeps the newest backup of its N newest periods that
are not already covered; periods are in local time ([prune] timezone), weeks are ISO weeks.
Held (protected) snapshots are never removed and never counted; the newest snapshot and
snapshots without vzsnap metadata are never removed.
Exit codes: 0 done, 1 some VM or snapshot failed (the others were pruned), 2 nothing done.")]
pub struct PruneArgs {
    /// VMs to prune (default: every VM volume in the store).
    #[arg(value_name = "VMID")]
    pub vmids: Vec<VmId>,
    /// Show what would be removed; destroy nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep the N newest backups.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u64>,
    /// Keep the newest backup of each of the N newest hours that have backups.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u64>,
    /// Keep the newest backup of each of the N newest days that have backups.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u64>,
    /// Keep the newest backup of each of the N newest ISO weeks (Monday-based) with backups.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u64>,
    /// Keep the newest backup of each of the N newest months that have backups.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u64>,
    /// Keep the newest backup of each of the N newest years that have backups.
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<u64>,
    /// Machine-readable output on stdout.
    #[arg(long)]
    pub json: bool,
    /// Store spec instead of [store] spec, e.g. `btrfs:/srv/vzsnap` (with it, the default
    /// config file may be absent).
    #[arg(long, value_name = "SPEC")]
    pub store: Option<String>,
}

impl PruneArgs {
    /// The policy given on the command line, if any `--keep-*` option was.
    fn cli_policy(&self) -> Option<KeepPolicy> {
        let p = KeepPolicy {
            keep_last: self.keep_last,
            keep_hourly: self.keep_hourly,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
            keep_yearly: self.keep_yearly,
        };
        (p != KeepPolicy::default()).then_some(p)
    }
}

/// `vzsnap prune --json` output.
///
/// ```json
/// { "dry-run": false, "timezone": "Europe/Berlin",
///   "volumes": [ { "volume": "100", "policy": {"keep-daily": 7}, "dry-run": false,
///                  "snapshots": [ { "snapshot": "2025_11_05-02_00_00", "backup-time": 1762304400,
///                                   "keep": true, "reason": "daily", "rule": "daily",
///                                   "period": "2025/11/05", "held": false, "destroyed": false,
///                                   "error": null } ] } ],
///   "errors": [ { "volume": "101", "error": "…" } ] }
/// ```
/// `reason` is one of `last hourly daily weekly monthly yearly protected keep-all newest
/// foreign` (kept) or `superseded unselected` (removed); snapshots are oldest first.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PruneOutput {
    pub dry_run: bool,
    pub timezone: String,
    pub volumes: Vec<PruneReport>,
    pub errors: Vec<VolumeError>,
}

/// A VM that could not be pruned at all.
#[derive(Debug, Serialize)]
pub struct VolumeError {
    pub volume: String,
    pub error: String,
}

/// The config, with `--store` replacing `[store] spec` (as `vzsnap ingest` does).
pub(super) fn load_config(
    global: &GlobalArgs,
    store: Option<&str>,
) -> anyhow::Result<crate::config::Config> {
    let mut c = crate::config::Config::load_or_default(&global.config, store)?;
    if let Some(s) = store {
        c.store.spec = s.to_string();
    }
    Ok(c)
}

/// The volumes to work on: the given VMIDs, or every volume in the store.
pub(super) fn select_volumes(store: &dyn Store, vmids: &[VmId]) -> anyhow::Result<Vec<VolumeName>> {
    if vmids.is_empty() {
        return store.list_volumes().context("listing the store's volumes");
    }
    let mut v: Vec<VolumeName> = vmids
        .iter()
        .map(|id| VolumeName::new(id.to_string()))
        .collect::<Result<_, _>>()?;
    v.sort();
    v.dedup();
    Ok(v)
}

pub fn run(global: &GlobalArgs, args: PruneArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(global, args.store.as_deref())?;
    let tz = config.prune.time_zone().context("[prune] timezone")?;
    let store = config.open_store()?;
    let volumes = select_volumes(store.as_ref(), &args.vmids)?;
    let cli_policy = args.cli_policy();

    let mut out = PruneOutput {
        dry_run: args.dry_run,
        timezone: zone_name(&tz),
        volumes: Vec::new(),
        errors: Vec::new(),
    };
    for vol in volumes {
        let policy = cli_policy.unwrap_or_else(|| config.prune.policy_for(vol.as_str()));
        match prune_volume(store.as_ref(), &vol, &policy, &tz, args.dry_run) {
            Ok(report) => {
                tracing::debug!("{}", report.summary());
                out.volumes.push(report);
            }
            Err(e) => {
                tracing::error!("{e}");
                out.errors.push(VolumeError {
                    volume: vol.to_string(),
                    error: e.to_string(),
                });
            }
        }
    }

    let text = if args.json {
        serde_json::to_string_pretty(&out)? + "\n"
    } else {
        render(&out, &tz)
    };
    write_stdout(text.as_bytes())?;

    let failed = !out.errors.is_empty() || out.volumes.iter().any(PruneReport::failed);
    Ok(if failed {
        ExitCode::Partial
    } else {
        ExitCode::Ok
    })
}

/// What a row says in the reason column, e.g. `weekly 2025/44`, `superseded (daily 2025/11/05)`.
fn reason_text(e: &PruneEntry) -> String {
    let period = |p: &Option<String>| p.as_deref().map(|p| format!(" {p}")).unwrap_or_default();
    match e.reason {
        // keep-last's "period" is just the timestamp: not worth printing.
        Reason::Last => "last".to_string(),
        Reason::Hourly | Reason::Daily | Reason::Weekly | Reason::Monthly | Reason::Yearly => {
            format!("{}{}", e.reason.as_str(), period(&e.period))
        }
        Reason::Superseded if e.rule == Some(Rule::Last.as_str()) => {
            "superseded (last)".to_string()
        }
        Reason::Superseded => format!(
            "superseded ({}{})",
            e.rule.unwrap_or("?"),
            period(&e.period)
        ),
        Reason::Protected => "protected (held)".to_string(),
        Reason::KeepAll => "keep-all (no keep-* option set)".to_string(),
        Reason::Newest => "newest snapshot (never pruned)".to_string(),
        Reason::Foreign => "not a vzsnap backup (ignored)".to_string(),
        Reason::Unselected => "not selected by any rule".to_string(),
    }
}

fn action_text(e: &PruneEntry, dry_run: bool) -> String {
    match (&e.error, e.keep, e.destroyed, dry_run) {
        (Some(err), ..) => format!("FAILED: {err}"),
        (None, true, ..) => "keep".to_string(),
        (None, false, true, _) => "destroyed".to_string(),
        (None, false, false, true) => "remove".to_string(),
        (None, false, false, false) => "remove (not done)".to_string(),
    }
}

/// The human table, one block per VM.
pub fn render(out: &PruneOutput, tz: &TimeZone) -> String {
    let mut s = String::new();
    for r in &out.volumes {
        s.push_str(&format!(
            "VM {}  policy {}  (times in {}){}\n",
            r.volume,
            r.policy,
            out.timezone,
            if r.dry_run { "  DRY RUN" } else { "" }
        ));
        let rows: Vec<[String; 4]> = r
            .snapshots
            .iter()
            .map(|e| {
                [
                    e.snapshot.to_string(),
                    e.backup_time
                        .map(|t| format_local(t, tz))
                        .unwrap_or_else(|| "-".to_string()),
                    action_text(e, r.dry_run),
                    reason_text(e),
                ]
            })
            .collect();
        s.push_str(&table(
            &["snapshot", "backup time", "action", "reason"],
            &rows,
        ));
        s.push_str(&format!("  {}\n\n", r.summary()));
    }
    for e in &out.errors {
        s.push_str(&format!("VM {}: FAILED: {}\n", e.volume, e.error));
    }
    if out.volumes.is_empty() && out.errors.is_empty() {
        s.push_str("no VM volumes in the store\n");
    }
    s
}

/// Aligned columns, two-space gutter, header underlined; every line indented by two spaces.
/// (Shared with `vzsnap report`.)
pub(super) fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut width = header.map(|h| h.chars().count());
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::from("  ");
        for (i, (c, w)) in cells.zip(width).enumerate() {
            if i + 1 == N {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  "));
            }
        }
        l.truncate(l.trim_end().len());
        l.push('\n');
        l
    };
    let mut s = line(&mut header.iter().copied());
    s.push_str(&line(
        &mut width
            .iter()
            .map(|&w| "-".repeat(w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str),
    ));
    for r in rows {
        s.push_str(&line(&mut r.iter().map(String::as_str)));
    }
    s
}

/// Writes to stdout; a closed pipe (`vzsnap prune | head`) is not an error.
pub(super) fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        name: &str,
        keep: bool,
        reason: Reason,
        rule: Option<&'static str>,
        period: Option<&str>,
    ) -> PruneEntry {
        PruneEntry {
            snapshot: store::SnapshotName::new(name).unwrap(),
            backup_time: Some(1_759_622_400),
            keep,
            reason,
            rule,
            period: period.map(String::from),
            held: reason == Reason::Protected,
            destroyed: !keep,
            error: None,
        }
    }

    #[test]
    fn table_names_every_snapshot_with_its_reason() {
        let report = PruneReport {
            volume: VolumeName::new("100").unwrap(),
            policy: KeepPolicy {
                keep_daily: Some(1),
                keep_weekly: Some(1),
                ..Default::default()
            },
            dry_run: false,
            snapshots: vec![
                entry(
                    "2025_10_04-02_00_00",
                    false,
                    Reason::Superseded,
                    Some("weekly"),
                    Some("2025/40"),
                ),
                entry(
                    "2025_10_05-02_00_00",
                    true,
                    Reason::Weekly,
                    Some("weekly"),
                    Some("2025/40"),
                ),
                entry("2025_10_06-02_00_00", true, Reason::Protected, None, None),
                entry(
                    "2025_10_07-02_00_00",
                    true,
                    Reason::Daily,
                    Some("daily"),
                    Some("2025/10/07"),
                ),
            ],
        };
        let out = PruneOutput {
            dry_run: false,
            timezone: "Europe/Berlin".into(),
            volumes: vec![report],
            errors: vec![VolumeError {
                volume: "101".into(),
                error: "volume 101 does not exist".into(),
            }],
        };
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let text = render(&out, &tz);
        assert!(
            text.starts_with(
                "VM 100  policy keep-daily=1,keep-weekly=1  (times in Europe/Berlin)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "2025_10_04-02_00_00  Sun 2025-10-05 02:00  destroyed  superseded (weekly 2025/40)"
            ),
            "{text}"
        );
        assert!(text.contains("keep       weekly 2025/40"), "{text}");
        assert!(text.contains("protected (held)"), "{text}");
        assert!(text.contains("daily 2025/10/07"), "{text}");
        assert!(
            text.contains("VM 101: FAILED: volume 101 does not exist"),
            "{text}"
        );
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json["dry-run"], false);
        assert_eq!(json["volumes"][0]["snapshots"][0]["reason"], "superseded");
        assert_eq!(json["errors"][0]["volume"], "101");
    }

    #[test]
    fn cli_keep_options_replace_the_config_policy() {
        let mut a = PruneArgs {
            vmids: vec![],
            dry_run: false,
            keep_last: None,
            keep_hourly: None,
            keep_daily: None,
            keep_weekly: None,
            keep_monthly: None,
            keep_yearly: None,
            json: false,
            store: None,
        };
        assert_eq!(a.cli_policy(), None);
        a.keep_weekly = Some(0);
        assert_eq!(
            a.cli_policy(),
            Some(KeepPolicy {
                keep_weekly: Some(0),
                ..Default::default()
            })
        );
    }
}
