//! `vzsnap ingest`: every new vzdump backup in the dump directories → its VM's volume,
//! synced in one pass (only changed 4 KiB blocks written) and snapshotted with the backup's
//! own time. The run is a cron/systemd job: single instance (flock), a summary table or
//! `--json` on stdout, progress on stderr, Prometheus metrics if configured.
//!
//! Exit codes: 0 everything done; 1 some backups (or prunes) failed, the rest were done;
//! 2 nothing done (configuration, store, unreadable dump directory); 3 another ingest holds
//! the lock (without `--wait`).

use std::io::Write;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::Context;
use clap::Args;
use ingest::crash::CrashHook;
use ingest::lock::{LockError, RunLock};
use ingest::scan::ScanOptions;
use ingest::{IngestOptions, metrics};
use vma::vzdump::VmId;

use super::GlobalArgs;
use crate::config::Config;
use crate::exit::ExitCode;

/// Test facility (docs/ingest.md, "Crash tests"): abort at a chosen point.
const CRASH_ENV: &str = "VZSNAP_TEST_CRASH_AT";

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Only these VMs (in addition to the config's include/exclude).
    #[arg(value_name = "VMID")]
    pub vmids: Vec<VmId>,
    /// Print the plan (what would be ingested or skipped, and why); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the run summary as JSON on stdout (fields: docs/ingest.md).
    #[arg(long)]
    pub json: bool,
    /// If another ingest is running, wait for it instead of exiting with code 3.
    #[arg(long)]
    pub wait: bool,
    /// Also ingest backups older than a VM's newest snapshot.
    #[arg(long)]
    pub force: bool,
    /// Delete each archive (with .log and .notes) once its snapshot exists.
    #[arg(long)]
    pub delete_input: bool,
    /// Store spec instead of [store] spec, e.g. `btrfs:/srv/vzsnap` (with it, the default
    /// config file may be absent).
    #[arg(long, value_name = "SPEC")]
    pub store: Option<String>,
    /// Dump directory instead of [ingest] dump_dirs (repeatable).
    #[arg(long = "dump-dir", value_name = "DIR")]
    pub dump_dirs: Vec<PathBuf>,
    /// Settle time in seconds instead of [ingest] settle_seconds.
    #[arg(long, value_name = "SECONDS")]
    pub settle_seconds: Option<u64>,
    /// Lock file instead of [ingest] lock_file.
    #[arg(long, value_name = "PATH")]
    pub lock_file: Option<PathBuf>,
    /// Do not prune after ingesting, whatever [prune] after_ingest says.
    #[arg(long)]
    pub no_prune: bool,
}

/// The config with the command line's overrides applied.
fn effective_config(global: &GlobalArgs, args: &IngestArgs) -> anyhow::Result<Config> {
    let mut c = Config::load_or_default(&global.config, args.store.as_deref())?;
    if let Some(s) = &args.store {
        c.store.spec = s.clone();
    }
    if !args.dump_dirs.is_empty() {
        c.ingest.dump_dirs = args.dump_dirs.clone();
    }
    if let Some(s) = args.settle_seconds {
        c.ingest.settle_seconds = s;
    }
    if let Some(l) = &args.lock_file {
        c.ingest.lock_file = l.clone();
    }
    c.ingest.force |= args.force;
    c.ingest.delete_input |= args.delete_input;
    Ok(c)
}

fn options(c: &Config, args: &IngestArgs) -> anyhow::Result<IngestOptions> {
    let mut include = c.ingest.include.clone();
    if !args.vmids.is_empty() {
        let wanted: Vec<u32> = args.vmids.iter().map(|v| v.get()).collect();
        include = if include.is_empty() {
            wanted
        } else {
            include.into_iter().filter(|v| wanted.contains(v)).collect()
        };
        if include.is_empty() {
            anyhow::bail!("none of the given VMIDs is in [ingest] include");
        }
    }
    let crash = match std::env::var(CRASH_ENV) {
        Ok(spec) => CrashHook::parse(&spec).map_err(anyhow::Error::msg)?,
        Err(_) => CrashHook::default(),
    };
    if crash.is_armed() {
        tracing::warn!("{CRASH_ENV} is set: this run will crash on purpose (test facility)");
    }
    Ok(IngestOptions {
        scan: ScanOptions {
            dump_dirs: c.ingest.dump_dirs.clone(),
            settle: std::time::Duration::from_secs(c.ingest.settle_seconds),
            include,
            exclude: c.ingest.exclude.clone(),
        },
        volume_properties: c.volume_properties(),
        zero_mode: c.ingest.zero_mode,
        delete_input: c.ingest.delete_input,
        force: c.ingest.force,
        dry_run: args.dry_run,
        prune: (!args.no_prune && c.prune.after_ingest).then(|| c.prune.clone()),
        crash,
    })
}

pub fn run(global: &GlobalArgs, args: IngestArgs) -> anyhow::Result<ExitCode> {
    let config = effective_config(global, &args)?;
    let opts = options(&config, &args)?;
    // A dry run changes nothing, so it needs no lock (and works while an ingest runs).
    let _lock = if args.dry_run {
        None
    } else {
        match RunLock::acquire(&config.ingest.lock_file, args.wait) {
            Ok(l) => Some(l),
            Err(e @ LockError::Busy { .. }) => {
                eprintln!("vzsnap: {e}; use --wait to queue behind it");
                return Ok(ExitCode::Locked);
            }
            Err(e) => return Err(e).context("taking the ingest lock"),
        }
    };
    let store = config.open_store()?;
    let progress = crate::progress::for_stderr(global.quiet);
    let summary = ingest::run::run(store.as_ref(), &opts, progress.as_ref(), SystemTime::now())?;

    if let Some(path) = config
        .ingest
        .metrics_file
        .as_ref()
        .filter(|_| !args.dry_run)
    {
        // Metrics are best effort: a failure is reported, not fatal for the backups.
        let res = metrics::collect(store.as_ref())
            .map_err(anyhow::Error::from)
            .and_then(|vols| Ok(metrics::write(path, &metrics::render(&vols, &summary))?));
        if let Err(e) = res {
            tracing::error!("writing metrics to {}: {e:#}", path.display());
        }
    }

    let mut out = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut out, &summary)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else if !global.quiet || summary.has_failures() {
        out.write_all(summary.render_table().as_bytes())
    } else {
        Ok(())
    };
    // A closed pipe (`| head`) is not an error of the ingest.
    if let Err(e) = written.and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e).context("writing the summary");
    }
    Ok(if summary.has_failures() {
        ExitCode::Partial
    } else {
        ExitCode::Ok
    })
}
