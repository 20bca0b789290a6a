//! `vzsnap dev …`: hidden helpers for the demo and tests (not part of the stable CLI).
//!
//! `vzsnap dev gen-backups --dir D --days N`: writes N days of deterministic synthetic
//! vzdump backups of one VM into D (see `ingest::synth` for the day-by-day events), exactly
//! as vzdump leaves them: archive (via a `.dat` name), `.log`, `.notes`, `.protected`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ingest::synth::{Series, SeriesSpec, write_backup};
use vma::vzdump::{BackupTime, VmId};

use super::GlobalArgs;
use crate::exit::ExitCode;

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Write several days of synthetic vzdump backups of one VM.
    GenBackups(GenArgs),
    /// Write a deterministic raw disk image for benchmarks (sparse, mixed contents).
    GenDisk(super::bench_data::GenDiskArgs),
    /// Write the next day of a raw image: a percentage of its 4 KiB blocks rewritten.
    Churn(super::bench_data::ChurnArgs),
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Dump directory to write into (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// The VM's id.
    #[arg(long, default_value = "100")]
    pub vmid: VmId,
    /// Number of daily backups.
    #[arg(long, default_value_t = 5)]
    pub days: u32,
    /// Write only from this day on (days before it are generated but not written).
    #[arg(long, default_value_t = 1)]
    pub from_day: u32,
    /// Size of the first disk (K, M, G suffixes: binary units).
    #[arg(long, default_value = "64M", value_parser = parse_size)]
    pub size: u64,
    /// Seed of everything random.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Time of the first backup, as in a vzdump file name.
    #[arg(long, default_value = "2026_11_01-02_00_03", value_parser = parse_time)]
    pub start: BackupTime,
    /// Clusters in live-backup order (shuffled, devices interleaved).
    #[arg(long)]
    pub live_order: bool,
}

/// `64M` → 67108864.
pub(super) fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mul) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .filter(|&n| n >= 4096)
        .ok_or_else(|| format!("bad size {s:?} (e.g. 64M; at least 4K)"))
}

fn parse_time(s: &str) -> Result<BackupTime, String> {
    BackupTime::parse_snapshot_name(s)
        .ok_or_else(|| format!("bad time {s:?} (YYYY_MM_DD-HH_MM_SS)"))
}

pub fn run(_global: &GlobalArgs, cmd: DevCommand) -> anyhow::Result<ExitCode> {
    let a = match cmd {
        DevCommand::GenBackups(a) => a,
        DevCommand::GenDisk(a) => {
            super::bench_data::gen_disk(&a)?;
            return Ok(ExitCode::Ok);
        }
        DevCommand::Churn(a) => {
            super::bench_data::print_report(&super::bench_data::churn(&a)?)?;
            return Ok(ExitCode::Ok);
        }
    };
    if a.days == 0 || a.from_day == 0 || a.from_day > a.days {
        bail!("--days must be at least 1 and --from-day between 1 and --days");
    }
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let mut spec = SeriesSpec::new(a.vmid.get(), a.seed, a.size);
    spec.start = a.start;
    spec.live_order = a.live_order;
    let mut series = Series::new(spec);
    let mut out = std::io::stdout().lock();
    for d in 1..=a.days {
        if d > 1 {
            series.advance();
        }
        if d < a.from_day {
            continue;
        }
        let day = series.day();
        let w = write_backup(&a.dir, a.vmid.get(), a.seed, day, a.live_order)
            .with_context(|| format!("writing day {d} into {}", a.dir.display()))?;
        let size = std::fs::metadata(&w.archive).map(|m| m.len()).unwrap_or(0);
        writeln!(
            out,
            "day {d}: {} ({} bytes, {}): {}",
            w.archive.file_name().unwrap_or_default().to_string_lossy(),
            size,
            day.compression,
            Series::events(d).join(", ")
        )?;
    }
    Ok(ExitCode::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("8k"), Ok(8192));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("1").is_err());
        assert!(parse_size("xM").is_err());
        assert!(parse_size("99999999999G").is_err());
    }
}
