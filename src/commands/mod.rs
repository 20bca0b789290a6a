//! Subcommands. One file per subcommand; each returns the process exit code.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::exit::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "vzsnap", version, about = "Proxmox VE VMA backups as dated ZFS/btrfs snapshots")]
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
pub enum Command {}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {}
}
