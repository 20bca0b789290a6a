//! `vzsnap restore <VMID> <DATE|latest>`: rebuild the vzdump archive of one backup from its
//! snapshot, into PVE's dump directory, for PVE's own restore (`qmrestore` or the GUI).
//!
//! Exit codes: 0 written; 2 nothing written (unknown VM or date, file exists, no space, …;
//! no partial file is ever left).

use std::path::PathBuf;

use clap::Args;
use restore::archive::{RestoreOptions, restore_archive};
use restore::select::DateSpec;
use vma::compress::Compression;
use vma::vzdump::VmId;

use super::GlobalArgs;
use super::prune::{load_config, write_stdout};
use crate::exit::ExitCode;

#[derive(Debug, Args)]
#[command(after_help = "\
DATE is a backup's snapshot name (YYYY_MM_DD-HH_MM_SS, see `vzsnap list`), a day
(YYYY-MM-DD, if that day has exactly one backup) or `latest`.

Writes vzdump-qemu-<VMID>-<DATE>.vma[.zst|.gz|.lzo] with the backup's own name, configs,
disks, uuid and time, plus <name>.log and <archive>.notes if the backup had them. The archive
is written as vzdump's own temporary `.dat` name and renamed when complete, so PVE never lists
a partial file; an existing file is never overwritten.

Note: restored into a directory `vzsnap ingest` scans, the archive looks like the original
backup; ingest skips it (its snapshot exists) but with delete_input it may delete it as
already ingested. Restore PVE from it promptly, or use --to with another PVE storage.

JSON (--json): {\"vmid\", \"snapshot\", \"archive\", \"log\", \"notes\", \"compression\",
\"image-bytes\", \"data-bytes-read\", \"vma-bytes\", \"archive-bytes\", \"seconds\"}.")]
pub struct RestoreArgs {
    #[arg(value_name = "VMID")]
    pub vmid: VmId,
    /// YYYY_MM_DD-HH_MM_SS, YYYY-MM-DD or latest.
    #[arg(value_name = "DATE")]
    pub date: String,
    /// Target directory (default: [restore] dump_dir, else the first [ingest] dump_dirs).
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// Compression of the archive (default: that of the archive that was ingested).
    #[arg(long, value_name = "zstd|gzip|lzo|none")]
    pub compress: Option<Compression>,
    /// Compression level (default: the format's, as vzdump: zstd 3, gzip 6).
    #[arg(long, value_name = "N")]
    pub level: Option<i32>,
    /// zstd worker threads (default: [restore] threads, else one per CPU).
    #[arg(long, value_name = "N")]
    pub threads: Option<u32>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Store spec instead of [store] spec, e.g. `zfs:tank/vzsnap`.
    #[arg(long, value_name = "SPEC")]
    pub store: Option<String>,
}

pub fn run(global: &GlobalArgs, args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(global, args.store.as_deref())?;
    let date: DateSpec = args.date.parse()?;
    let store = config.open_store()?;
    let threads = args
        .threads
        .or(config.restore.threads)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
    let opts = RestoreOptions {
        target_dir: args.to.clone().unwrap_or_else(|| config.restore_dir()),
        compression: args.compress,
        level: args.level,
        threads,
    };
    let progress = crate::progress::for_stderr(global.quiet || args.json);
    let summary = restore_archive(store.as_ref(), args.vmid, &date, &opts, progress.as_ref())?;
    let text = if args.json {
        serde_json::to_string_pretty(&summary)? + "\n"
    } else {
        summary.line() + "\n"
    };
    write_stdout(text.as_bytes())?;
    Ok(ExitCode::Ok)
}
