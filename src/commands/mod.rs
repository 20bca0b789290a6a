//! Subcommands. One file per subcommand; each returns the process exit code.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::exit::ExitCode;

mod bench_data;
mod blocksync;
mod dev;
#[cfg(test)]
mod dist_tests;
mod ingest;
mod list;
mod mount;
mod prune;
mod report;
mod restore;

#[derive(Debug, Parser)]
#[command(
    name = "vzsnap",
    version,
    about = "Proxmox VE VMA backups as dated ZFS/btrfs snapshots"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand understands.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file.
    #[arg(long, global = true, default_value = "/etc/vzsnap/vzsnap.toml")]
    pub config: PathBuf,
    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors; no progress display.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest new vzdump backups: one volume per VM, changed blocks only, dated snapshots.
    Ingest(ingest::IngestArgs),
    /// Make DST byte-identical to SRC writing only the 4 KiB blocks that differ.
    Blocksync(blocksync::BlocksyncArgs),
    /// Apply the retention policy (PBS/PVE keep-* semantics) to each VM's snapshots.
    Prune(prune::PruneArgs),
    /// Space per snapshot vs the vzdump archives (virtual size, archive size, written, savings).
    Report(report::ReportArgs),
    /// VMs in the store and their backups (date, disks, space, source, held/protected).
    List(list::ListArgs),
    /// Rebuild a backup's vzdump archive (.vma[.zst|.gz|.lzo]) for PVE's own restore.
    Restore(restore::RestoreArgs),
    /// Mount a backup's filesystems read-only (from a clone of its snapshot).
    Mount(mount::MountArgs),
    /// Undo `vzsnap mount`: unmount, detach loop devices, destroy the clone.
    Umount(mount::UmountArgs),
    /// List active `vzsnap mount`s.
    Mounts(mount::MountsArgs),
    /// Helpers for the demo and tests.
    #[command(hide = true, subcommand)]
    Dev(dev::DevCommand),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Ingest(a) => ingest::run(&cli.global, a),
        Command::Blocksync(a) => blocksync::run(&cli.global, a),
        Command::Prune(a) => prune::run(&cli.global, a),
        Command::Report(a) => report::run(&cli.global, a),
        Command::List(a) => list::run(&cli.global, a),
        Command::Restore(a) => restore::run(&cli.global, a),
        Command::Mount(a) => mount::run_mount(&cli.global, a),
        Command::Umount(a) => mount::run_umount(&cli.global, a),
        Command::Mounts(a) => mount::run_mounts(&cli.global, a),
        Command::Dev(c) => dev::run(&cli.global, c),
    }
}
