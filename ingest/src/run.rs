//! One `vzsnap ingest` run: scan, plan per VM, ingest oldest first, prune, summarise.
//!
//! A failed backup never stops the run: its volume is back at its previous snapshot, the
//! VM's remaining (newer) backups wait for the next run (they would most likely fail the
//! same way, e.g. on a full pool, and must not be snapshotted out of order), and the other
//! VMs go on. Only problems that make the whole run meaningless (a dump directory that
//! cannot be read) are an `Err`.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use store::layout::{PROTECTED_HOLD_TAG, meta_keys};
use store::{SnapshotName, Store, StoreError};
use vma::progress::Progress;

use crate::backup::{self, Failed, volume_name};
use crate::options::IngestOptions;
use crate::plan::{Action, ExistingSnapshot, KeepInput, plan_vm};
use crate::scan::{Archive, ScanError, scan};
use crate::summary::{BackupResult, ErrorInfo, RunSummary, SUMMARY_FORMAT, Status, Totals};

fn result_for(a: &Archive, status: Status) -> BackupResult {
    BackupResult::new(
        a.vmid(),
        &a.file_name,
        &a.path.display().to_string(),
        a.name.time.snapshot_name(),
        status,
    )
}

fn skipped(a: &Archive, reason: &str, message: String) -> BackupResult {
    let mut r = result_for(a, Status::Skipped);
    r.reason = Some(reason.to_owned());
    r.message = Some(message);
    r
}

/// The snapshots of a VM's volume (none if it has no volume yet).
fn existing_snapshots(store: &dyn Store, vmid: u32) -> Result<Vec<ExistingSnapshot>, StoreError> {
    let vol = volume_name(vmid)?;
    if !store.list_volumes()?.contains(&vol) {
        return Ok(Vec::new());
    }
    Ok(store
        .list_snapshots(&vol)?
        .into_iter()
        .map(|s| ExistingSnapshot {
            name: s.name.to_string(),
            source: s.meta.get(meta_keys::SOURCE).cloned(),
            archive_size: s
                .meta
                .get(meta_keys::ARCHIVE_SIZE)
                .and_then(|v| v.parse().ok()),
            uuid: s.meta.get(meta_keys::UUID).cloned(),
            created: s.created,
        })
        .collect())
}

/// Runs an ingest (or, with `opts.dry_run`, plans one). `now` is injected for tests.
pub fn run(
    store: &dyn Store,
    opts: &IngestOptions,
    progress: &dyn Progress,
    now: SystemTime,
) -> Result<RunSummary, ScanError> {
    let started = Instant::now();
    let found = scan(&opts.scan, now)?;
    let mut summary = RunSummary {
        format: SUMMARY_FORMAT,
        dry_run: opts.dry_run,
        started: now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
        duration_seconds: 0.0,
        backups: Vec::new(),
        prune: Vec::new(),
        errors: Vec::new(),
        totals: Totals::default(),
    };
    for (a, why) in &found.skipped {
        tracing::warn!("{}: skipped: {}", a.file_name, why.message());
        summary.backups.push(skipped(a, why.code(), why.message()));
    }
    for p in &found.in_progress {
        tracing::info!(
            "{}: vzdump is still writing; left for the next run",
            p.display()
        );
    }
    for (&vmid, archives) in &found.vms {
        run_vm(store, opts, progress, vmid, archives, &mut summary);
    }
    summary
        .backups
        .sort_by(|a, b| (a.vmid, &a.backup_time).cmp(&(b.vmid, &b.backup_time)));
    summary.duration_seconds = started.elapsed().as_secs_f64();
    summary.compute_totals();
    Ok(summary)
}

fn run_vm(
    store: &dyn Store,
    opts: &IngestOptions,
    progress: &dyn Progress,
    vmid: u32,
    archives: &[Archive],
    summary: &mut RunSummary,
) {
    let existing = match existing_snapshots(store, vmid) {
        Ok(e) => e,
        Err(e) => {
            summary
                .errors
                .push(format!("VM {vmid}: cannot list its snapshots: {e}"));
            for a in archives {
                let mut r = result_for(a, Status::Failed);
                r.error = Some(error_info(&e.to_string(), None, false, None));
                summary.backups.push(r);
            }
            return;
        }
    };
    let actions = plan_vm(archives, &existing, opts.force);
    let mut failed = false;
    let mut ingested_any = false;
    let first_new = summary.backups.len();
    for (a, action) in archives.iter().zip(actions) {
        let t0 = Instant::now();
        let mut r = match action {
            Action::Ingest if opts.dry_run => {
                let mut r = result_for(a, Status::Planned);
                r.message = Some(format!(
                    "would ingest into {vmid}@{}",
                    a.name.time.snapshot_name()
                ));
                r
            }
            Action::Ingest if failed => skipped(
                a,
                "earlier-failure",
                "an older backup of this VM failed in this run; retried next run".into(),
            ),
            Action::Ingest => match backup::ingest_backup(store, opts, progress, a) {
                Ok(i) => {
                    ingested_any = true;
                    let mut r = result_for(a, Status::Ingested);
                    r.input_deleted = i.input_deleted;
                    r.ingested = Some(i);
                    r
                }
                Err(f) => {
                    failed = true;
                    let mut r = result_for(a, Status::Failed);
                    tracing::error!("{}: ingest failed: {}", a.file_name, f.error);
                    r.error = Some(failure_info(&f));
                    r
                }
            },
            Action::AlreadyIngested { keep } => {
                let mut r = skipped(
                    a,
                    "already-ingested",
                    format!("snapshot {vmid}@{} exists", a.name.time.snapshot_name()),
                );
                let snapshot = existing
                    .iter()
                    .find(|s| s.name == a.name.time.snapshot_name());
                if !opts.dry_run
                    && let Err(e) = finish_already_ingested(store, opts, a, keep, snapshot, &mut r)
                {
                    r.status = Status::Failed;
                    r.error = Some(error_info(&e, None, false, None));
                }
                r
            }
            Action::OlderThanNewest { newest } => {
                let msg = format!(
                    "older than the newest backup in the volume ({newest}); use --force to ingest it anyway"
                );
                tracing::warn!("{}: skipped: {msg}", a.file_name);
                skipped(a, "older-than-newest", msg)
            }
        };
        r.seconds = t0.elapsed().as_secs_f64();
        summary.backups.push(r);
    }
    if !ingested_any {
        return;
    }
    // The store's own size of each new snapshot, listed once per VM.
    if let Ok(vol) = volume_name(vmid)
        && let Ok(snaps) = store.list_snapshots(&vol)
    {
        for r in &mut summary.backups[first_new..] {
            if let Some(i) = &r.ingested {
                r.snapshot_written = snaps
                    .iter()
                    .find(|s| s.name.as_str() == i.snapshot)
                    .map(|s| s.written);
            }
        }
    }
    if let Some(cfg) = opts.prune.as_ref().filter(|c| c.after_ingest) {
        let vol = match volume_name(vmid) {
            Ok(v) => v,
            Err(e) => return summary.errors.push(e.to_string()),
        };
        let tz = match cfg.time_zone() {
            Ok(tz) => tz,
            Err(e) => return summary.errors.push(format!("prune {vmid}: {e}")),
        };
        let policy = cfg.policy_for(&vmid.to_string());
        match crate::prune::prune_volume(store, &vol, &policy, &tz, false) {
            Ok(report) => {
                tracing::info!("prune {vmid}: {}", report.summary());
                summary.prune.push(report);
            }
            Err(e) => summary.errors.push(format!("prune {vmid}: {e}")),
        }
    }
}

/// For a backup whose snapshot exists: make sure a protected one is held (a crash may have
/// come between snapshot and hold), and delete its input if configured and it is the very
/// file the snapshot was made from ([`crate::plan::KeepInput`]: name, size, modified before
/// the snapshot — checked by the plan — and here the VMA uuid in its header).
fn finish_already_ingested(
    store: &dyn Store,
    opts: &IngestOptions,
    a: &Archive,
    keep: Option<KeepInput>,
    snapshot: Option<&ExistingSnapshot>,
    r: &mut BackupResult,
) -> Result<(), String> {
    let vol = volume_name(a.vmid()).map_err(|e| e.to_string())?;
    let snap = SnapshotName::new(a.name.time.snapshot_name()).map_err(|e| e.to_string())?;
    if a.protected {
        store
            .hold(&vol, &snap, PROTECTED_HOLD_TAG)
            .map_err(|e| e.to_string())?;
    }
    if opts.delete_input && !a.protected {
        let keep = keep.or_else(|| {
            let recorded = snapshot.and_then(|s| s.uuid.clone());
            let found = archive_uuid(&a.path);
            (found.is_none() || found != recorded).then_some(KeepInput::OtherUuid {
                archive: found,
                snapshot: recorded,
            })
        });
        match keep {
            None => {
                backup::delete_input(a).map_err(|e| format!("{}: {e}", a.path.display()))?;
                r.input_deleted = true;
            }
            Some(why) => {
                tracing::warn!(
                    "{}: input kept although delete_input is set: {why}",
                    a.file_name
                );
                if let Some(m) = &mut r.message {
                    m.push_str(&format!("; input kept: {why}"));
                }
                r.input_kept = Some(why.to_string());
            }
        }
    }
    Ok(())
}

/// The VMA uuid in an archive's header, or `None` if it cannot be read.
fn archive_uuid(path: &std::path::Path) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let (_, stream) = vma::compress::open_decompressed(file).ok()?;
    let reader = vma::VmaReader::new(stream).ok()?;
    Some(store::layout::format_uuid(&reader.header().uuid))
}

fn error_info(
    message: &str,
    loc: Option<(String, u64)>,
    no_space: bool,
    undo: Option<String>,
) -> ErrorInfo {
    let (file, offset) = match loc {
        Some((f, o)) => (Some(f), Some(o)),
        None => (None, None),
    };
    ErrorInfo {
        message: message.to_owned(),
        file,
        offset,
        no_space,
        undo_error: undo,
    }
}

fn failure_info(f: &Failed) -> ErrorInfo {
    error_info(
        &f.error.to_string(),
        f.error.location(),
        f.error.is_no_space(),
        f.undo_error.as_ref().map(|e| e.to_string()),
    )
}
