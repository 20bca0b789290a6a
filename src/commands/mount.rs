//! `vzsnap mount`, `vzsnap umount`, `vzsnap mounts`: browse a backup's filesystems read-only.
//!
//! Exit codes: mount 0 every recognised filesystem mounted, 1 some mounted and some failed
//! (see the report), 2 nothing mounted (all undone); umount 0 undone, 1 (with --all) some
//! could not be undone, 2 failed; mounts 0.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use restore::mount::report::MountReport;
use restore::mount::{
    MountListing, MountOptions, UnmountOutcome, destroy_orphan, list_mounts, mount_backup,
    orphan_clones, unmount,
};
use restore::select::DateSpec;
use serde::Serialize;
use vma::vzdump::VmId;

use super::GlobalArgs;
use super::prune::{load_config, table, write_stdout};
use crate::config::Config;
use crate::exit::ExitCode;

#[derive(Debug, Args)]
#[command(after_help = "\
Clones the snapshot (the snapshot itself is never touched), finds each disk's GPT/MBR
partitions and filesystems, and mounts ext2/3/4, xfs, btrfs and vfat read-only
(ro,nosuid,nodev,noexec; no journal replay) through read-only loop devices. Other
filesystems, swap, LVM, LUKS are reported, not mounted.

Layout: without --disk every disk is mounted under MOUNTPOINT/<disk>/part<N> (N as the guest
numbers its partitions: sda1 → part1); with --disk under MOUNTPOINT/part<N>. A filesystem on
a disk without partition table is at …/disk. Default MOUNTPOINT:
[mount] root/<VMID>-<DATE>[-<disk>] (/run/vzsnap/mounts/…). A given MOUNTPOINT must be an
empty directory or not exist (it is then created, mode 0700).

Undo with `vzsnap umount MOUNTPOINT` (or `--all`). Mounting guest filesystems runs the
kernel's filesystem code on data from the guest; mount backups of VMs you trust.")]
pub struct MountArgs {
    #[arg(value_name = "VMID")]
    pub vmid: VmId,
    /// YYYY_MM_DD-HH_MM_SS, YYYY-MM-DD or latest.
    #[arg(value_name = "DATE")]
    pub date: String,
    /// Where to mount (see below).
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: Option<PathBuf>,
    /// Only this disk (VMA device name as in `vzsnap list`, e.g. drive-scsi0).
    #[arg(long, value_name = "DISK")]
    pub disk: Option<String>,
    /// Print the report as JSON on stdout (fields: restore/README.md).
    #[arg(long)]
    pub json: bool,
    /// Store spec instead of [store] spec, e.g. `zfs:tank/vzsnap`.
    #[arg(long, value_name = "SPEC")]
    pub store: Option<String>,
}

#[derive(Debug, Args)]
pub struct UmountArgs {
    /// A mountpoint (or mount id) as `vzsnap mounts` lists it.
    #[arg(
        value_name = "MOUNTPOINT",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub target: Option<PathBuf>,
    /// Every recorded mount, and clones of vzsnap mounts left without a record (e.g. after a
    /// reboot emptied /run).
    #[arg(long)]
    pub all: bool,
    /// Print what was undone as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Store spec instead of [store] spec (used for mounts that did not record theirs).
    #[arg(long, value_name = "SPEC")]
    pub store: Option<String>,
}

#[derive(Debug, Args)]
pub struct MountsArgs {
    /// Machine-readable output on stdout.
    #[arg(long)]
    pub json: bool,
    /// Store spec instead of [store] spec (to find orphaned clones).
    #[arg(long, value_name = "SPEC")]
    pub store: Option<String>,
}

fn mount_options(config: &Config, args: &MountArgs) -> MountOptions {
    MountOptions {
        disk: args.disk.clone(),
        mountpoint: args.mountpoint.clone(),
        mount_root: config.mount.root.clone(),
        state_dir: config.mount.state_dir.clone(),
        store_spec: Some(config.store.spec.clone()),
    }
}

pub fn run_mount(global: &GlobalArgs, args: MountArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(global, args.store.as_deref())?;
    let date: DateSpec = args.date.parse()?;
    if let Some(d) = &args.disk {
        // A device name becomes a directory name and a file name in the volume.
        store::layout::disk_file_name(d).with_context(|| format!("--disk {d:?}"))?;
    }
    let store = config.open_store()?;
    let report = mount_backup(
        store.as_ref(),
        args.vmid,
        &date,
        &mount_options(&config, &args),
    )?;
    print_report(&report, args.json)?;
    Ok(if report.failed() > 0 {
        ExitCode::Partial
    } else {
        ExitCode::Ok
    })
}

fn print_report(report: &MountReport, json: bool) -> anyhow::Result<()> {
    let text = if json {
        serde_json::to_string_pretty(report)? + "\n"
    } else {
        let mut s = report.lines().join("\n");
        s.push_str(&format!(
            "\nundo with: vzsnap umount {}\n",
            report.mountpoint.display()
        ));
        s
    };
    write_stdout(text.as_bytes())
}

/// `vzsnap umount --json` output.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct UmountOutput {
    pub undone: Vec<UnmountOutcome>,
    /// Orphaned clones destroyed (`--all`).
    pub orphans: Vec<UnmountOutcome>,
    pub errors: Vec<String>,
}

/// The store a recorded mount's clone lives in: the recorded spec if it differs from the
/// configured one, else the configured store.
fn store_for(config: &Config, recorded: Option<&str>) -> anyhow::Result<Box<dyn store::Store>> {
    match recorded {
        Some(spec) if spec != config.store.spec => store::open(spec)
            .with_context(|| format!("opening the store {spec} recorded by the mount")),
        _ => config.open_store(),
    }
}

pub fn run_umount(global: &GlobalArgs, args: UmountArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(global, args.store.as_deref())?;
    let state_dir = &config.mount.state_dir;
    let mut out = UmountOutput::default();
    if let Some(target) = &args.target {
        let st = restore::mount::find_state(state_dir, target)?;
        let store = store_for(&config, st.store.as_deref())?;
        out.undone.push(unmount(store.as_ref(), state_dir, target)?);
    } else {
        let (listed, bad) = list_mounts(state_dir)?;
        out.errors.extend(bad.iter().map(|e| e.to_string()));
        for m in listed {
            let res = store_for(&config, m.store.as_deref())
                .and_then(|s| Ok(unmount(s.as_ref(), state_dir, &m.mountpoint)?));
            match res {
                Ok(o) => out.undone.push(o),
                Err(e) => out
                    .errors
                    .push(format!("{}: {e:#}", m.mountpoint.display())),
            }
        }
        let store = config.open_store()?;
        for clone in orphan_clones(store.as_ref(), state_dir)? {
            match destroy_orphan(store.as_ref(), state_dir, &clone) {
                Ok(o) => out.orphans.push(o),
                Err(e) => out.errors.push(format!("orphaned clone {clone}: {e}")),
            }
        }
    }
    let text = if args.json {
        serde_json::to_string_pretty(&out)? + "\n"
    } else {
        let mut s = String::new();
        for o in &out.undone {
            s.push_str(&format!(
                "unmounted {} ({} mounts, {} loop devices{})\n",
                o.mountpoint.display(),
                o.unmounted.len(),
                o.detached.len(),
                if o.clone_destroyed {
                    ", clone destroyed"
                } else {
                    ""
                }
            ));
            for n in &o.notes {
                s.push_str(&format!("  note: {n}\n"));
            }
        }
        for o in &out.orphans {
            s.push_str(&format!(
                "destroyed orphaned clone {} ({} mounts undone)\n",
                o.id,
                o.unmounted.len()
            ));
            for t in &o.unmounted {
                s.push_str(&format!(
                    "  unmounted {} (its directory is left in place)\n",
                    t.display()
                ));
            }
        }
        if out.undone.is_empty() && out.orphans.is_empty() && out.errors.is_empty() {
            s.push_str("nothing to undo\n");
        }
        s
    };
    write_stdout(text.as_bytes())?;
    for e in &out.errors {
        eprintln!("vzsnap: error: {e}");
    }
    Ok(if out.errors.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::Partial
    })
}

/// `vzsnap mounts --json` output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct MountsOutput {
    pub mounts: Vec<MountListing>,
    /// Clones of vzsnap mounts without a record (`vzsnap umount --all` removes them).
    pub orphaned_clones: Vec<String>,
    /// State files that could not be read.
    pub errors: Vec<String>,
}

pub fn run_mounts(global: &GlobalArgs, args: MountsArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(global, args.store.as_deref())?;
    let (mounts, bad) = list_mounts(&config.mount.state_dir)?;
    // The store may be unreachable (e.g. a ZFS pool not imported); list what is recorded anyway.
    let orphaned_clones = match config.open_store() {
        Ok(s) => orphan_clones(s.as_ref(), &config.mount.state_dir)?
            .into_iter()
            .map(|c| c.to_string())
            .collect(),
        Err(e) => {
            tracing::warn!("{e:#}: cannot look for orphaned clones");
            Vec::new()
        }
    };
    let out = MountsOutput {
        mounts,
        orphaned_clones,
        errors: bad.iter().map(|e| e.to_string()).collect(),
    };
    let text = if args.json {
        serde_json::to_string_pretty(&out)? + "\n"
    } else {
        let mut s = String::new();
        if out.mounts.is_empty() {
            s.push_str("no vzsnap mounts\n");
        } else {
            let rows: Vec<[String; 5]> = out
                .mounts
                .iter()
                .map(|m| {
                    [
                        m.vmid.to_string(),
                        m.snapshot.clone(),
                        m.status().to_string(),
                        format!("{}/{}", m.live_mounts, m.recorded_mounts),
                        m.mountpoint.display().to_string(),
                    ]
                })
                .collect();
            s.push_str(&table(
                &["VMID", "BACKUP", "STATUS", "MOUNTED", "MOUNTPOINT"],
                &rows,
            ));
        }
        for c in &out.orphaned_clones {
            s.push_str(&format!(
                "orphaned clone {c} (no record; `vzsnap umount --all` removes it)\n"
            ));
        }
        for e in &out.errors {
            s.push_str(&format!("unreadable state: {e}\n"));
        }
        s
    };
    write_stdout(text.as_bytes())?;
    Ok(ExitCode::Ok)
}
