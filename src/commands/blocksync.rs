//! `vzsnap blocksync SRC DST`: make DST byte-identical to SRC, writing only the 4 KiB blocks
//! that differ (Steinel's "smart dd"), with the same engine as `vzsnap ingest`: SRC is read
//! on one thread while DST is compared and written on another; unchanged blocks are never
//! written, so a copy-on-write snapshot of DST keeps sharing them. A missing DST is created
//! sparse; a DST of another size is truncated or extended first.
//!
//! Exit codes: 0 done; 2 failed (DST may be partly updated: re-run it).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use ingest::backup::human_bytes;
use ingest::sync::raw::{RawSyncOptions, sync_file};
use ingest::sync::{SyncStats, ZeroMode};
use serde::Serialize;

use super::GlobalArgs;
use crate::exit::ExitCode;

#[derive(Debug, Args)]
pub struct BlocksyncArgs {
    /// Source: a raw image file (or block device).
    pub src: PathBuf,
    /// Destination raw file (created sparse if missing).
    pub dst: PathBuf,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// How blocks that became zero are zeroed: punch (hole) or write (zeros).
    #[arg(long, default_value = "punch", value_name = "MODE")]
    pub zero_mode: ZeroMode,
    /// Skip the final fsync of DST.
    #[arg(long)]
    pub no_fsync: bool,
}

/// `--json` output. Field names are stable (docs/ingest.md, "blocksync").
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct BlocksyncOutput {
    pub source: String,
    pub destination: String,
    /// Bytes of SRC (= DST's size afterwards).
    pub size: u64,
    pub seconds: f64,
    pub zero_mode: ZeroMode,
    #[serde(flatten)]
    pub stats: SyncStats,
}

pub fn run(global: &GlobalArgs, args: BlocksyncArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let progress = crate::progress::for_stderr(global.quiet || args.json);
    let total = std::fs::metadata(&args.src)
        .ok()
        .map(|m| m.len())
        .filter(|&n| n > 0);
    progress.start(&format!("blocksync {}", args.src.display()), total);
    let opts = RawSyncOptions {
        zero_mode: args.zero_mode,
        durable: !args.no_fsync,
    };
    let res = sync_file(&args.src, &args.dst, opts, |pos| progress.set_position(pos));
    progress.finish("");
    let stats =
        res.with_context(|| format!("blocksync {} -> {}", args.src.display(), args.dst.display()))?;
    let out = BlocksyncOutput {
        source: args.src.display().to_string(),
        destination: args.dst.display().to_string(),
        size: stats.read,
        seconds: started.elapsed().as_secs_f64(),
        zero_mode: args.zero_mode,
        stats,
    };
    let mut w = std::io::stdout().lock();
    let res = if args.json {
        serde_json::to_writer_pretty(&mut w, &out)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(w))
    } else {
        writeln!(
            w,
            "{} -> {}: {} compared, {} unchanged, {} written in {} writes, {} zeroed in {} punches, {:.2} s",
            out.source,
            out.destination,
            human_bytes(stats.compared),
            human_bytes(stats.unchanged),
            human_bytes(stats.written),
            stats.write_calls,
            human_bytes(stats.zeroed),
            stats.punch_calls,
            out.seconds
        )
    };
    if let Err(e) = res
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e).context("writing the result");
    }
    Ok(ExitCode::Ok)
}
