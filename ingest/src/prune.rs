//! Applying a retention policy to one volume's snapshots (`vzsnap prune`, and after ingest).
//!
//! The decision is [`crate::retention::compute_prune_info`]'s; this module only maps
//! snapshots to retention input and destroys what it says, with guards that hold even if
//! the decision were wrong:
//!
//! - only snapshots that carry a vzsnap `backup-time` are considered; anything else in the
//!   volume (an admin's manual snapshot) is never touched;
//! - held snapshots are protected: never removed and never counted (PBS semantics), and a
//!   snapshot that became held after listing is skipped, not counted as a failure;
//! - the newest snapshot (by creation) is never destroyed: ingest uses it as the base for
//!   `changed_since_latest`/`rollback_to_latest`. With a positive policy and backups in time
//!   order PBS keeps it anyway; the guard matters only for out-of-order ingests;
//! - `dry_run` destroys nothing;
//! - only `destroy_snapshot` is called, so the live volume (the current images) is never
//!   touched;
//! - snapshots are destroyed oldest first (like PBS) and one failure does not stop the rest.

use std::collections::HashMap;

use jiff::tz::TimeZone;
use serde::Serialize;
use store::layout::meta_keys;
use store::{SnapshotInfo, SnapshotName, Store, StoreError, VolumeName};

use crate::retention::{
    Backup, KeepPolicy, KeepReason, RemoveReason, RetentionError, Rule, Verdict, compute_prune_info,
};

/// Pruning one volume could not even start.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error("volume {volume}: listing snapshots: {source}")]
    List {
        volume: VolumeName,
        #[source]
        source: StoreError,
    },
    #[error("volume {volume}: {source}")]
    Retention {
        volume: VolumeName,
        #[source]
        source: RetentionError,
    },
}

/// Why a snapshot is kept or removed; serialised as the kebab-case name (`daily`,
/// `keep-all`, `superseded`, …), the `reason` field of `vzsnap prune --json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Kept by `keep-last`.
    Last,
    /// Kept by `keep-hourly`.
    Hourly,
    /// Kept by `keep-daily`.
    Daily,
    /// Kept by `keep-weekly`.
    Weekly,
    /// Kept by `keep-monthly`.
    Monthly,
    /// Kept by `keep-yearly`.
    Yearly,
    /// Kept: held (PVE-protected backup, or a restore is using it).
    Protected,
    /// Kept: the policy has no positive `keep-*` option.
    KeepAll,
    /// Kept: the newest snapshot is never destroyed (see the module docs).
    Newest,
    /// Kept: not a vzsnap backup snapshot (no valid `backup-time` metadata); never touched.
    Foreign,
    /// Removed: a newer backup in the same period of `rule` was kept.
    Superseded,
    /// Removed: no rule selected it.
    Unselected,
}

impl Reason {
    pub fn keeps(self) -> bool {
        !matches!(self, Reason::Superseded | Reason::Unselected)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Last => "last",
            Reason::Hourly => "hourly",
            Reason::Daily => "daily",
            Reason::Weekly => "weekly",
            Reason::Monthly => "monthly",
            Reason::Yearly => "yearly",
            Reason::Protected => "protected",
            Reason::KeepAll => "keep-all",
            Reason::Newest => "newest",
            Reason::Foreign => "foreign",
            Reason::Superseded => "superseded",
            Reason::Unselected => "unselected",
        }
    }
}

impl From<Rule> for Reason {
    fn from(r: Rule) -> Self {
        match r {
            Rule::Last => Reason::Last,
            Rule::Hourly => Reason::Hourly,
            Rule::Daily => Reason::Daily,
            Rule::Weekly => Reason::Weekly,
            Rule::Monthly => Reason::Monthly,
            Rule::Yearly => Reason::Yearly,
        }
    }
}

/// One snapshot's line in the prune result (JSON field names are kebab-case and stable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PruneEntry {
    /// Snapshot name (`YYYY_MM_DD-HH_MM_SS`).
    pub snapshot: SnapshotName,
    /// The backup's time (epoch seconds) from its metadata; `null` for foreign snapshots.
    pub backup_time: Option<i64>,
    /// Whether the snapshot stays.
    pub keep: bool,
    pub reason: Reason,
    /// The rule behind `reason` (`daily`, …) for kept-by-rule and superseded snapshots.
    pub rule: Option<&'static str>,
    /// That rule's period key in local time (`2025/11/05`, ISO week `2025/44`, …), or, for
    /// `keep-last`, the backup time in epoch seconds.
    pub period: Option<String>,
    /// Held when listed.
    pub held: bool,
    /// Actually destroyed by this run (never in a dry run).
    pub destroyed: bool,
    /// Why destroying it failed, if it did.
    pub error: Option<String>,
}

/// The result of pruning one volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PruneReport {
    pub volume: VolumeName,
    /// The policy applied (PVE option names).
    pub policy: KeepPolicy,
    pub dry_run: bool,
    /// Every snapshot of the volume, oldest first.
    pub snapshots: Vec<PruneEntry>,
}

impl PruneReport {
    pub fn kept(&self) -> usize {
        self.snapshots.iter().filter(|e| e.keep).count()
    }

    /// Snapshots the policy removes (destroyed, or would be in a dry run).
    pub fn removed(&self) -> usize {
        self.snapshots.iter().filter(|e| !e.keep).count()
    }

    pub fn destroyed(&self) -> usize {
        self.snapshots.iter().filter(|e| e.destroyed).count()
    }

    /// Whether any destroy failed.
    pub fn failed(&self) -> bool {
        self.snapshots.iter().any(|e| e.error.is_some())
    }

    /// One line for logs: `volume 100 (keep-daily=7): 17 kept, 2 destroyed`.
    pub fn summary(&self) -> String {
        let failed = self.snapshots.iter().filter(|e| e.error.is_some()).count();
        let mut s = format!(
            "volume {} ({}): {} kept, ",
            self.volume,
            self.policy,
            self.kept()
        );
        if self.dry_run {
            s.push_str(&format!("{} would be removed (dry run)", self.removed()));
        } else {
            s.push_str(&format!("{} destroyed", self.destroyed()));
        }
        if failed > 0 {
            s.push_str(&format!(", {failed} failed"));
        }
        s
    }
}

/// The backup time vzsnap stored with a snapshot, if it is one of ours.
fn backup_time(info: &SnapshotInfo) -> Option<i64> {
    info.meta.get(meta_keys::BACKUP_TIME)?.trim().parse().ok()
}

/// Pure: the verdict for every snapshot of a volume, oldest first, without destroying
/// anything (`destroyed` false everywhere).
pub fn plan(
    volume: &VolumeName,
    snapshots: &[SnapshotInfo],
    policy: &KeepPolicy,
    tz: &TimeZone,
) -> Result<PruneReport, PruneError> {
    let backups: Vec<Backup> = snapshots
        .iter()
        .filter_map(|s| {
            backup_time(s).map(|time| Backup {
                name: s.name.to_string(),
                time,
                protected: s.held,
            })
        })
        .collect();
    let decisions =
        compute_prune_info(&backups, policy, tz).map_err(|source| PruneError::Retention {
            volume: volume.clone(),
            source,
        })?;
    let verdicts: HashMap<String, Verdict> = decisions
        .into_iter()
        .map(|d| (d.backup.name, d.verdict))
        .collect();

    let newest = snapshots.len().checked_sub(1);
    let entries = snapshots
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (mut reason, mut rule, mut period) = match verdicts.get(s.name.as_str()) {
                None => (Reason::Foreign, None, None),
                Some(Verdict::Keep { reason, period }) => match reason {
                    KeepReason::Rule(r) => (Reason::from(*r), Some(r.as_str()), period.clone()),
                    KeepReason::Protected => (Reason::Protected, None, None),
                    KeepReason::KeepAll => (Reason::KeepAll, None, None),
                },
                Some(Verdict::Remove { reason, period }) => match reason {
                    RemoveReason::Superseded(r) => {
                        (Reason::Superseded, Some(r.as_str()), period.clone())
                    }
                    RemoveReason::Unselected => (Reason::Unselected, None, None),
                },
            };
            // Belt and braces: retention already never removes a held snapshot.
            if s.held && !reason.keeps() {
                (reason, rule, period) = (Reason::Protected, None, None);
            }
            if Some(i) == newest && !reason.keeps() {
                (reason, rule, period) = (Reason::Newest, None, None);
            }
            PruneEntry {
                snapshot: s.name.clone(),
                backup_time: backup_time(s),
                keep: reason.keeps(),
                reason,
                rule,
                period,
                held: s.held,
                destroyed: false,
                error: None,
            }
        })
        .collect();
    Ok(PruneReport {
        volume: volume.clone(),
        policy: *policy,
        dry_run: true,
        snapshots: entries,
    })
}

/// Prunes one volume: lists its snapshots, applies `policy` in time zone `tz`, and (unless
/// `dry_run`) destroys the removed snapshots oldest first. Destroy failures are recorded per
/// snapshot ([`PruneReport::failed`]); only a failure to list or evaluate is an `Err`.
///
/// This is also the entry point `vzsnap ingest` calls after each ingest into a volume.
pub fn prune_volume(
    store: &dyn Store,
    volume: &VolumeName,
    policy: &KeepPolicy,
    tz: &TimeZone,
    dry_run: bool,
) -> Result<PruneReport, PruneError> {
    let snapshots = store
        .list_snapshots(volume)
        .map_err(|source| PruneError::List {
            volume: volume.clone(),
            source,
        })?;
    let mut report = plan(volume, &snapshots, policy, tz)?;
    report.dry_run = dry_run;
    if dry_run {
        return Ok(report);
    }
    // `snapshots` (and so the report) is oldest first: PBS deletes in that order too, so an
    // interrupted run leaves the newest backups.
    for entry in report.snapshots.iter_mut().filter(|e| !e.keep) {
        match store.destroy_snapshot(volume, &entry.snapshot) {
            Ok(()) => {
                entry.destroyed = true;
                tracing::info!(volume = %volume, snapshot = %entry.snapshot, reason = entry.reason.as_str(), "pruned");
            }
            Err(StoreError::Held { tags, .. }) => {
                // Held since we listed (a restore started): protected now, not a failure.
                tracing::info!(volume = %volume, snapshot = %entry.snapshot, ?tags, "not pruned: held since listing");
                entry.keep = true;
                entry.held = true;
                entry.reason = Reason::Protected;
                entry.rule = None;
                entry.period = None;
            }
            Err(e) => {
                tracing::warn!(volume = %volume, snapshot = %entry.snapshot, error = %e, "prune failed");
                entry.error = Some(e.to_string());
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use store::testutil::{FakeOp, FakeStore};
    use store::{MetaKey, names::SnapshotName};

    use super::*;

    fn vol() -> VolumeName {
        VolumeName::new("100").unwrap()
    }

    /// A daily backup at 12:00 UTC on 2025-10-<day>.
    fn add(store: &FakeStore, day: u32, meta_time: bool) -> SnapshotName {
        let path = store.volume_path(&vol()).unwrap();
        std::fs::write(
            path.join("disk-drive-scsi0.raw"),
            day.to_le_bytes().repeat(1024),
        )
        .unwrap();
        let name = SnapshotName::new(format!("2025_10_{day:02}-12_00_00")).unwrap();
        let mut meta = BTreeMap::new();
        if meta_time {
            let t = 1_759_276_800 + i64::from(day - 1) * 86_400 + 12 * 3600; // 2025-10-01T00:00Z
            meta.insert(MetaKey::new(meta_keys::BACKUP_TIME).unwrap(), t.to_string());
        }
        store.snapshot(&vol(), &name, &meta).unwrap();
        name
    }

    fn names(store: &FakeStore) -> Vec<String> {
        store
            .list_snapshots(&vol())
            .unwrap()
            .into_iter()
            .map(|s| s.name.to_string())
            .collect()
    }

    fn keep_last(n: u64) -> KeepPolicy {
        KeepPolicy {
            keep_last: Some(n),
            ..Default::default()
        }
    }

    fn store_with(days: &[u32]) -> FakeStore {
        let store = FakeStore::new().unwrap();
        store.ensure_volume(&vol(), &[]).unwrap();
        for &d in days {
            add(&store, d, true);
        }
        store
    }

    #[test]
    fn destroys_exactly_the_removed_snapshots() {
        let store = store_with(&[1, 2, 3, 4, 5]);
        let r = prune_volume(&store, &vol(), &keep_last(2), &TimeZone::UTC, false).unwrap();
        assert_eq!(
            names(&store),
            ["2025_10_04-12_00_00", "2025_10_05-12_00_00"]
        );
        assert_eq!(
            (r.kept(), r.removed(), r.destroyed(), r.failed()),
            (2, 3, 3, false)
        );
        let reasons: Vec<Reason> = r.snapshots.iter().map(|e| e.reason).collect();
        assert_eq!(
            reasons,
            [
                Reason::Unselected,
                Reason::Unselected,
                Reason::Unselected,
                Reason::Last,
                Reason::Last
            ]
        );
        assert_eq!(r.summary(), "volume 100 (keep-last=2): 2 kept, 3 destroyed");
    }

    #[test]
    fn dry_run_destroys_nothing() {
        let store = store_with(&[1, 2, 3]);
        let r = prune_volume(&store, &vol(), &keep_last(1), &TimeZone::UTC, true).unwrap();
        assert_eq!(names(&store).len(), 3);
        assert_eq!((r.removed(), r.destroyed()), (2, 0));
        assert!(
            r.summary().ends_with("2 would be removed (dry run)"),
            "{}",
            r.summary()
        );
    }

    #[test]
    fn held_and_foreign_snapshots_survive() {
        let store = store_with(&[1, 2]);
        let foreign = add(&store, 3, false);
        add(&store, 4, true);
        let first = SnapshotName::new("2025_10_01-12_00_00").unwrap();
        store
            .hold(&vol(), &first, store::layout::PROTECTED_HOLD_TAG)
            .unwrap();
        let r = prune_volume(&store, &vol(), &keep_last(1), &TimeZone::UTC, false).unwrap();
        assert_eq!(
            names(&store),
            [
                "2025_10_01-12_00_00",
                foreign.as_str(),
                "2025_10_04-12_00_00"
            ]
        );
        let by: Vec<(Reason, bool)> = r.snapshots.iter().map(|e| (e.reason, e.held)).collect();
        assert_eq!(
            by,
            [
                (Reason::Protected, true),
                (Reason::Unselected, false),
                (Reason::Foreign, false),
                (Reason::Last, false)
            ]
        );
        assert_eq!(r.snapshots[2].backup_time, None);
    }

    #[test]
    fn the_newest_snapshot_is_never_destroyed() {
        // Ingested out of order: the newest snapshot holds the oldest backup.
        let store = store_with(&[2, 3]);
        add(&store, 1, true);
        let r = prune_volume(&store, &vol(), &keep_last(1), &TimeZone::UTC, false).unwrap();
        assert_eq!(
            names(&store),
            ["2025_10_03-12_00_00", "2025_10_01-12_00_00"]
        );
        assert_eq!(r.snapshots[2].reason, Reason::Newest);
        assert!(r.snapshots[2].keep);
    }

    #[test]
    fn one_failure_does_not_stop_the_others() {
        let store = store_with(&[1, 2, 3, 4]);
        store.fail_next(FakeOp::DestroySnapshot);
        let r = prune_volume(&store, &vol(), &keep_last(1), &TimeZone::UTC, false).unwrap();
        assert!(r.failed());
        // Oldest first: the first destroy (day 1) failed, days 2 and 3 went.
        assert!(r.snapshots[0].error.is_some() && !r.snapshots[0].destroyed);
        assert!(r.snapshots[1].destroyed && r.snapshots[2].destroyed);
        assert_eq!(
            names(&store),
            ["2025_10_01-12_00_00", "2025_10_04-12_00_00"]
        );
        assert!(r.summary().ends_with(", 1 failed"), "{}", r.summary());
    }

    #[test]
    fn listing_failure_is_an_error() {
        let store = store_with(&[1]);
        store.fail_next(FakeOp::ListSnapshots);
        assert!(matches!(
            prune_volume(&store, &vol(), &keep_last(1), &TimeZone::UTC, false),
            Err(PruneError::List { .. })
        ));
        let missing = VolumeName::new("999").unwrap();
        assert!(prune_volume(&store, &missing, &keep_last(1), &TimeZone::UTC, true).is_err());
    }

    #[test]
    fn empty_policy_keeps_everything() {
        let store = store_with(&[1, 2, 3]);
        let r = prune_volume(
            &store,
            &vol(),
            &KeepPolicy::default(),
            &TimeZone::UTC,
            false,
        )
        .unwrap();
        assert_eq!(names(&store).len(), 3);
        assert!(r.snapshots.iter().all(|e| e.reason == Reason::KeepAll));
    }

    #[test]
    fn json_field_names_are_stable() {
        let store = store_with(&[1, 2]);
        let r = prune_volume(&store, &vol(), &keep_last(1), &TimeZone::UTC, true).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["volume"], "100");
        assert_eq!(v["dry-run"], true);
        assert_eq!(v["policy"]["keep-last"], 1);
        let e = &v["snapshots"][1];
        assert_eq!(e["snapshot"], "2025_10_02-12_00_00");
        assert_eq!(e["backup-time"], 1_759_406_400);
        assert_eq!(e["keep"], true);
        assert_eq!(e["reason"], "last");
        assert_eq!(e["rule"], "last");
        assert_eq!(e["period"], "1759406400");
        assert_eq!(e["held"], false);
        assert_eq!(e["destroyed"], false);
        assert_eq!(e["error"], serde_json::Value::Null);
        assert_eq!(v["snapshots"][0]["reason"], "unselected");
    }
}
