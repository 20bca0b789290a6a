//! `vzsnap mount` / `umount` / `mounts`: look inside a backup's disks without touching it.
//!
//! Mount: the snapshot is cloned (ZFS clone / btrfs writable snapshot, through the Store), so
//! nothing can ever change the snapshot itself; each disk image of the clone is inspected by
//! our own partition-table and superblock parsers; each partition with a filesystem vzsnap
//! mounts (ext2/3/4, xfs, btrfs, vfat) is attached as a read-only loop device by byte offset
//! and size, and mounted `ro,nosuid,nodev,noexec` plus per-filesystem options that prevent
//! journal replay ([`crate::fsdetect::FsKind::mount_spec`]). Everything else is reported.
//!
//! Layout (decided so that paths do not depend on how many disks a VM has):
//! - with `--disk <devname>`: `MOUNTPOINT/part<N>` (default MOUNTPOINT
//!   `/run/vzsnap/mounts/<VMID>-<DATE>-<devname>`);
//! - without: every disk, `MOUNTPOINT/<devname>/part<N>` (default MOUNTPOINT
//!   `/run/vzsnap/mounts/<VMID>-<DATE>`);
//! - a filesystem on the whole disk (no partition table) is mounted at `…/disk` instead of
//!   `…/part<N>`. `N` is the Linux partition number (what the guest calls `sda<N>`).
//!
//! Every step is recorded in the state file before it is taken ([`state`]), so `umount`
//! undoes whatever exists: mounts, loop devices (also ones attached but not yet recorded: any
//! loop device backed by a file in the clone), the clone, the directories vzsnap created.

pub mod loopdev;
pub mod mountinfo;
pub mod report;
pub mod state;
pub mod target;

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use store::cmd::Cmd;
use store::layout::{Manifest, disk_file_name};
use store::{Store, StoreError, VolumeName};
use vma::vzdump::VmId;

use crate::disk::{DiskLayout, inspect_disk};
use crate::error::{RestoreError, io_err};
use crate::fsdetect::{Filesystem, FsKind};
use crate::partition::{ImageFile, Scheme};
use crate::select::{DateSpec, find_snapshot};
use report::{DiskReport, ItemReport, ItemStatus, MountReport};
use state::{CLONE_PREFIX, LoopRecord, MountRecord, MountState, STATE_FORMAT, StateDir};

/// Default parent of default mountpoints.
pub const DEFAULT_MOUNT_ROOT: &str = "/run/vzsnap/mounts";
/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/run/vzsnap/state";
/// The mount options every vzsnap mount has (MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC).
pub const BASE_OPTIONS: &str = "ro,nosuid,nodev,noexec";

/// How to mount.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// Only this disk (VMA device name, e.g. `drive-scsi0`).
    pub disk: Option<String>,
    /// `None`: `<mount_root>/<VMID>-<DATE>[-<disk>]`.
    pub mountpoint: Option<PathBuf>,
    pub mount_root: PathBuf,
    pub state_dir: PathBuf,
    /// Recorded in the state so `umount` finds the clone's store again.
    pub store_spec: Option<String>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn random_suffix() -> String {
    let b = uuid::Uuid::new_v4();
    b.as_bytes()[..4]
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn mkdir_0700(path: &Path) -> Result<(), RestoreError> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(io_err(path))
}

/// The disks of a manifest that a mount considers (never the `vmstate` RAM stream), or the one
/// `--disk` names.
fn chosen_disks(
    manifest: &Manifest,
    only: Option<&str>,
    what: &str,
) -> Result<Vec<(String, u64)>, RestoreError> {
    let disks: Vec<(String, u64)> = manifest
        .devices
        .iter()
        .filter(|d| d.name != "vmstate")
        .map(|d| (d.name.clone(), d.size))
        .collect();
    match only {
        None if disks.is_empty() => Err(RestoreError::Refused {
            what: what.to_string(),
            reason: "the backup has no disks".into(),
        }),
        None => Ok(disks),
        Some(name) => match disks.iter().find(|(n, _)| n == name) {
            Some(d) => Ok(vec![d.clone()]),
            None => Err(RestoreError::Refused {
                what: what.to_string(),
                reason: format!(
                    "has no disk {name:?}; its disks: {}",
                    disks
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        },
    }
}

/// Mounts a backup; see the module docs. On success at least one filesystem is mounted; when
/// nothing could be mounted everything is undone and the error carries the report.
pub fn mount_backup(
    store: &dyn Store,
    vmid: VmId,
    date: &DateSpec,
    opts: &MountOptions,
) -> Result<MountReport, RestoreError> {
    let (volume, snap) = find_snapshot(store, vmid, date)?;
    let what = format!("VM {vmid} backup {}", snap.name);
    let manifest = Manifest::read_from(&store.snapshot_path(&volume, &snap.name)?)?;
    let disks = chosen_disks(&manifest, opts.disk.as_deref(), &what)?;

    let sd = StateDir::new(&opts.state_dir);
    let _lock = sd.lock()?;
    let requested = match &opts.mountpoint {
        Some(p) => p.clone(),
        None => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&opts.mount_root)
                .map_err(io_err(&opts.mount_root))?;
            let mut name = format!("{vmid}-{}", snap.name);
            if let Some(d) = &opts.disk {
                name.push('-');
                name.push_str(d);
            }
            opts.mount_root.join(name)
        }
    };
    let mounts = mountinfo::read_mountinfo().map_err(io_err("/proc/self/mountinfo"))?;
    let (mountpoint, create) = target::check_mountpoint(&requested, &mounts)?;

    let mut st = MountState {
        format: STATE_FORMAT,
        id: format!("{CLONE_PREFIX}{vmid}-{}-{}", snap.name, random_suffix()),
        store: opts.store_spec.clone(),
        vmid: vmid.get(),
        snapshot: snap.name.to_string(),
        disk: opts.disk.clone(),
        mountpoint: mountpoint.clone(),
        clone_path: None,
        created_dirs: Vec::new(),
        loops: Vec::new(),
        mounts: Vec::new(),
        created: now(),
        complete: false,
        report: None,
    };
    let result = build(
        store,
        &sd,
        &mut st,
        &volume,
        &snap.name,
        &disks,
        create,
        opts.disk.is_some(),
    );
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("mount of {what} failed ({e}); undoing what was done");
            if let Err(undo) = unmount_state(store, &sd, &st) {
                tracing::error!(
                    "could not undo everything ({undo}); `vzsnap umount --all` retries"
                );
            }
            return Err(e);
        }
    };
    if report.mounted() == 0 {
        let detail = report.lines().join("\n");
        if let Err(undo) = unmount_state(store, &sd, &st) {
            tracing::error!("could not undo everything ({undo}); `vzsnap umount --all` retries");
        }
        return Err(RestoreError::Refused {
            what,
            reason: format!("nothing could be mounted:\n{detail}"),
        });
    }
    Ok(report)
}

/// The steps of a mount, each recorded in `st` (and saved) before it is taken.
#[allow(clippy::too_many_arguments)]
fn build(
    store: &dyn Store,
    sd: &StateDir,
    st: &mut MountState,
    volume: &VolumeName,
    snap: &store::SnapshotName,
    disks: &[(String, u64)],
    create: bool,
    single_disk: bool,
) -> Result<MountReport, RestoreError> {
    if create {
        st.created_dirs.push(st.mountpoint.clone());
    }
    sd.save(st)?;
    if create {
        mkdir_0700(&st.mountpoint)?;
    }
    let clone = st.clone_name()?;
    let clone_path = store.clone_snapshot(volume, snap, &clone)?;
    // The kernel reports loop backing files by their resolved path; record that one.
    let clone_path = clone_path.canonicalize().map_err(io_err(&clone_path))?;
    st.clone_path = Some(clone_path.clone());
    sd.save(st)?;

    let mut reports = Vec::new();
    for (name, size) in disks {
        let file = disk_file_name(name)?;
        let image = clone_path.join(&file);
        let base = if single_disk {
            st.mountpoint.clone()
        } else {
            st.mountpoint.join(name)
        };
        let mut disk = DiskReport {
            disk: name.clone(),
            image: image.clone(),
            size: *size,
            layout: String::new(),
            items: Vec::new(),
            error: None,
        };
        let items = candidates(&image, *size, &mut disk);
        for Candidate {
            number,
            start,
            len,
            part_type,
            fs,
        } in items
        {
            let mut item = ItemReport {
                partition: number,
                start,
                size: len,
                part_type,
                filesystem: fs.as_ref().map(|f| f.kind.name().to_string()),
                label: fs.as_ref().and_then(|f| f.label.clone()),
                uuid: fs.as_ref().and_then(|f| f.uuid.clone()),
                status: ItemStatus::NotMounted,
                loop_device: None,
                mounted_at: None,
                note: None,
            };
            match fs.as_ref().map(|f| (f.kind, f.kind.mount_spec())) {
                None => item.note = Some("no filesystem vzsnap recognises".into()),
                Some((kind, None)) => {
                    let mut note = kind.not_mounted_reason().to_string();
                    if kind == FsKind::LvmPv {
                        note.push_str(&format!(
                            "; to look inside yourself: `losetup --find --show --read-only --offset {start} --sizelimit {len} {}`, \
                             `pvs --devices <loopdev>` shows its volume group (make sure no host VG has that name: `vgs`), \
                             `vgchange -ay --devices <loopdev> <vg>`, then mount /dev/<vg>/<lv> read-only; before `vzsnap umount` \
                             unmount it and run `vgchange -an --devices <loopdev> <vg>` (vzsnap umount detaches the loop device)",
                            image.display()
                        ));
                    }
                    item.note = Some(note);
                }
                Some((_, Some(spec))) => {
                    let leaf = match number {
                        Some(n) => format!("part{n}"),
                        None => "disk".to_string(),
                    };
                    mount_one(
                        sd,
                        st,
                        &base,
                        &base.join(leaf),
                        &image,
                        start,
                        len,
                        spec,
                        &mut item,
                    )?;
                }
            }
            disk.items.push(item);
        }
        reports.push(disk);
    }
    let report = MountReport {
        id: st.id.clone(),
        vmid: st.vmid,
        snapshot: st.snapshot.clone(),
        mountpoint: st.mountpoint.clone(),
        clone_path,
        disks: reports,
    };
    st.report = Some(report.clone());
    st.complete = true;
    sd.save(st)?;
    Ok(report)
}

/// A partition (or the whole disk) that may hold a filesystem.
struct Candidate {
    number: Option<u32>,
    start: u64,
    len: u64,
    part_type: Option<String>,
    fs: Option<Filesystem>,
}

/// Inspects one disk image; sets `disk.layout` (and `disk.error` if it cannot be read).
fn candidates(image: &Path, size: u64, disk: &mut DiskReport) -> Vec<Candidate> {
    let layout = ImageFile::open(image)
        .map_err(|e| format!("{}: {e}", image.display()))
        .and_then(|f| {
            inspect_disk(&f).map_err(|source| {
                RestoreError::Partition {
                    image: image.to_path_buf(),
                    source,
                }
                .to_string()
            })
        });
    let whole = |fs| {
        vec![Candidate {
            number: None,
            start: 0,
            len: size,
            part_type: None,
            fs,
        }]
    };
    match layout {
        Err(e) => {
            disk.layout = "error".into();
            disk.error = Some(e);
            Vec::new()
        }
        Ok(DiskLayout::Unrecognised) => {
            disk.layout = "none".into();
            whole(None)
        }
        Ok(DiskLayout::WholeDisk { filesystem }) => {
            disk.layout = "whole-disk".into();
            whole(Some(filesystem))
        }
        Ok(DiskLayout::Partitioned { table, partitions }) => {
            disk.layout = match table.scheme {
                Scheme::Gpt { .. } => "gpt".into(),
                Scheme::Mbr { .. } => "mbr".into(),
            };
            partitions
                .into_iter()
                .map(|p| Candidate {
                    number: Some(p.partition.number),
                    start: p.partition.start,
                    len: p.partition.size,
                    part_type: Some(
                        p.partition
                            .type_name
                            .map(str::to_string)
                            .unwrap_or(p.partition.type_id),
                    ),
                    fs: p.filesystem,
                })
                .collect()
        }
    }
}

/// Creates `dir` (and `base` if needed), attaches the loop device and mounts, recording each
/// step first. A failing mount is reported in `item` (and its loop device detached again);
/// only failures that leave state behind uncertain are errors.
#[allow(clippy::too_many_arguments)]
fn mount_one(
    sd: &StateDir,
    st: &mut MountState,
    base: &Path,
    dir: &Path,
    image: &Path,
    offset: u64,
    size: u64,
    spec: crate::fsdetect::MountSpec,
    item: &mut ItemReport,
) -> Result<(), RestoreError> {
    for d in [base, dir] {
        if !st.created_dirs.iter().any(|c| c == d) && d != st.mountpoint {
            st.created_dirs.push(d.to_path_buf());
            sd.save(st)?;
            mkdir_0700(d)?;
        }
    }
    st.loops.push(LoopRecord {
        image: image.to_path_buf(),
        offset,
        size,
        device: None,
    });
    sd.save(st)?;
    let dev = loopdev::attach_read_only(image, offset, size)?;
    if let Some(l) = st.loops.last_mut() {
        l.device = Some(dev.clone());
    }
    st.mounts.push(MountRecord {
        target: dir.to_path_buf(),
        source: dev.clone(),
        fstype: spec.fstype.to_string(),
    });
    sd.save(st)?;
    let mut options = BASE_OPTIONS.to_string();
    for o in spec.options {
        options.push(',');
        options.push_str(o);
    }
    // -i: never run a /sbin/mount.<type> helper; the kernel does the mount.
    let res = Cmd::new("mount")
        .args(["-i", "-t", spec.fstype, "-o", &options, &dev])
        .arg(dir)
        .run();
    match res {
        Ok(_) => {
            item.status = ItemStatus::Mounted;
            item.loop_device = Some(dev);
            item.mounted_at = Some(dir.to_path_buf());
        }
        Err(e) => {
            // mount(8) spreads its message over lines ("dmesg(1) may have more…"): one line.
            let text = e
                .stderr()
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string());
            let mut note = format!(
                "mount failed: {}",
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            if mountinfo::kernel_supports(spec.fstype) == Some(false) {
                note = format!(
                    "the running kernel has no {} support (not in /proc/filesystems), so vzsnap cannot mount it here ({note})",
                    spec.fstype
                );
            }
            item.status = ItemStatus::Failed;
            item.note = Some(note);
            st.mounts.pop();
            sd.save(st)?;
            let _ = loopdev::detach(&dev)?;
            st.loops.pop();
            sd.save(st)?;
        }
    }
    Ok(())
}

/// What an unmount removed.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct UnmountOutcome {
    pub id: String,
    pub mountpoint: PathBuf,
    pub unmounted: Vec<PathBuf>,
    pub detached: Vec<String>,
    pub clone_destroyed: bool,
    pub removed_dirs: Vec<PathBuf>,
    /// Pieces that were already gone or left in place on purpose (e.g. a non-empty directory).
    pub notes: Vec<String>,
}

fn busy_hint(target: &Path, e: RestoreError) -> RestoreError {
    RestoreError::Refused {
        what: format!("unmounting {}", target.display()),
        reason: format!(
            "{e} (if it is busy, a process uses files there: `fuser -vm {}`)",
            target.display()
        ),
    }
}

/// Undoes one mount, whatever state it is in (idempotent): unmounts, detaches loop devices
/// backed by the clone, destroys the clone, removes the directories vzsnap created, and
/// finally the state file. Stops at the first step that fails, so a retry can continue.
pub fn unmount_state(
    store: &dyn Store,
    sd: &StateDir,
    st: &MountState,
) -> Result<UnmountOutcome, RestoreError> {
    st.validate()?;
    let mut out = UnmountOutcome {
        id: st.id.clone(),
        mountpoint: st.mountpoint.clone(),
        ..Default::default()
    };

    // 1. Our mounts, last first.
    let mounts = mountinfo::read_mountinfo().map_err(io_err("/proc/self/mountinfo"))?;
    for m in st.mounts.iter().rev() {
        if mountinfo::is_mount_point(&mounts, &m.target) {
            Cmd::new("umount")
                .arg(&m.target)
                .run()
                .map_err(|e| busy_hint(&m.target, e.into()))?;
            out.unmounted.push(m.target.clone());
        } else {
            out.notes
                .push(format!("{} was not mounted", m.target.display()));
        }
    }
    let mounts = mountinfo::read_mountinfo().map_err(io_err("/proc/self/mountinfo"))?;
    if let Some(other) = mountinfo::mounts_at_or_below(&mounts, &st.mountpoint).first() {
        return Err(RestoreError::Refused {
            what: format!("{} ({})", other.target.display(), other.source),
            reason: format!(
                "is mounted at or below {} but not by vzsnap; unmount it first",
                st.mountpoint.display()
            ),
        });
    }

    // 2. Loop devices: every one backed by a file in the clone, recorded or not (a crash
    // between losetup and the state write leaves an unrecorded one).
    if let Some(clone_path) = &st.clone_path {
        for l in loopdev::list_loops().map_err(io_err("/sys/block"))? {
            if l.backing_file.starts_with(clone_path) {
                if loopdev::detach(&l.device)? {
                    out.detached.push(l.device);
                } else {
                    out.notes
                        .push(format!("{} was already being detached", l.device));
                }
            }
        }
        for l in &st.loops {
            if let Some(d) = &l.device
                && !out.detached.contains(d)
            {
                out.notes.push(format!("{d} was already detached"));
            }
        }
        // The kernel lets go of a detached device's file asynchronously (a last opener such
        // as udev's probe may still hold it); wait until none refers to the clone, so that
        // when umount returns nothing does.
        if !wait_loops_released(|f| f.starts_with(clone_path), LOOP_RELEASE_WAIT)? {
            out.notes.push(format!(
                "loop devices on {} were still being released after {}s",
                clone_path.display(),
                LOOP_RELEASE_WAIT.as_secs()
            ));
        }
    }

    // 3. The clone.
    let clone = st.clone_name()?;
    if store.list_clones()?.contains(&clone) {
        destroy_clone_retrying(store, &clone)?;
        out.clone_destroyed = true;
    } else {
        out.notes.push(format!("clone {clone} did not exist"));
    }

    // 4. Directories we created, deepest first; a non-empty one stays (never delete files).
    for d in st.created_dirs.iter().rev() {
        match std::fs::remove_dir(d) {
            Ok(()) => out.removed_dirs.push(d.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => out
                .notes
                .push(format!("left {} in place: {e}", d.display())),
        }
    }

    // 5. Done: forget it.
    sd.remove(&st.id)?;
    Ok(out)
}

/// One active (or half-done) mount as `vzsnap mounts` lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct MountListing {
    pub id: String,
    pub vmid: u32,
    pub snapshot: String,
    pub disk: Option<String>,
    pub mountpoint: PathBuf,
    pub store: Option<String>,
    pub created: i64,
    /// All steps finished.
    pub complete: bool,
    /// Recorded mounts that are mounted right now.
    pub live_mounts: usize,
    pub recorded_mounts: usize,
    pub report: Option<MountReport>,
}

impl MountListing {
    /// `active`, `incomplete` (a mount was interrupted) or `stale` (recorded mounts are gone,
    /// e.g. after a reboot): the last two want `vzsnap umount`.
    pub fn status(&self) -> &'static str {
        if !self.complete {
            "incomplete"
        } else if self.live_mounts < self.recorded_mounts {
            "stale"
        } else {
            "active"
        }
    }
}

/// Every recorded mount, plus the state files that could not be read (as errors).
pub fn list_mounts(
    state_dir: &Path,
) -> Result<(Vec<MountListing>, Vec<RestoreError>), RestoreError> {
    let sd = StateDir::new(state_dir);
    let mounts = mountinfo::read_mountinfo().map_err(io_err("/proc/self/mountinfo"))?;
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for s in sd.load_all()? {
        match s {
            Ok(s) => ok.push(MountListing {
                live_mounts: s
                    .mounts
                    .iter()
                    .filter(|m| mountinfo::is_mount_point(&mounts, &m.target))
                    .count(),
                recorded_mounts: s.mounts.len(),
                id: s.id,
                vmid: s.vmid,
                snapshot: s.snapshot,
                disk: s.disk,
                mountpoint: s.mountpoint,
                store: s.store,
                created: s.created,
                complete: s.complete,
                report: s.report,
            }),
            Err(e) => bad.push(e),
        }
    }
    Ok((ok, bad))
}

/// Finds the recorded mount for `arg`: its mountpoint (any path that resolves to it) or id.
pub fn find_state(state_dir: &Path, arg: &Path) -> Result<MountState, RestoreError> {
    let sd = StateDir::new(state_dir);
    let want = arg.canonicalize().ok();
    let abs = if arg.is_absolute() {
        arg.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|c| c.join(arg))
            .unwrap_or_default()
    };
    for s in sd.load_all()?.into_iter().flatten() {
        if Some(&s.mountpoint) == want.as_ref()
            || s.mountpoint == abs
            || arg.as_os_str() == s.id.as_str()
        {
            return Ok(s);
        }
    }
    Err(RestoreError::Refused {
        what: arg.display().to_string(),
        reason: "no vzsnap mount is recorded there (`vzsnap mounts` lists them)".into(),
    })
}

/// Unmounts the recorded mount at `arg` (mountpoint or id).
pub fn unmount(
    store: &dyn Store,
    state_dir: &Path,
    arg: &Path,
) -> Result<UnmountOutcome, RestoreError> {
    let sd = StateDir::new(state_dir);
    let _lock = sd.lock()?;
    let st = find_state(state_dir, arg)?;
    unmount_state(store, &sd, &st)
}

/// Clones named like vzsnap's mount clones that no state file accounts for (left by a reboot
/// that emptied /run, or by a lost state directory).
pub fn orphan_clones(store: &dyn Store, state_dir: &Path) -> Result<Vec<VolumeName>, RestoreError> {
    let known: Vec<String> = StateDir::new(state_dir)
        .load_all()?
        .into_iter()
        .flatten()
        .map(|s| s.id)
        .collect();
    Ok(store
        .list_clones()?
        .into_iter()
        .filter(|c| c.as_str().starts_with(CLONE_PREFIX) && !known.iter().any(|k| k == c.as_str()))
        .collect())
}

/// How long umount waits for detached loop devices to let go of the clone's files.
const LOOP_RELEASE_WAIT: Duration = Duration::from_secs(10);

/// Polls sysfs until no loop device's backing file satisfies `uses`; `false` on timeout.
fn wait_loops_released(
    uses: impl Fn(&Path) -> bool,
    timeout: Duration,
) -> Result<bool, RestoreError> {
    let start = std::time::Instant::now();
    loop {
        let busy = loopdev::list_loops()
            .map_err(io_err("/sys/block"))?
            .iter()
            .any(|l| uses(&l.backing_file));
        if !busy {
            return Ok(true);
        }
        if start.elapsed() >= timeout {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Destroys a clone; a loop device lets go of its file asynchronously, so `Busy` is retried
/// for a couple of seconds.
fn destroy_clone_retrying(store: &dyn Store, clone: &VolumeName) -> Result<(), RestoreError> {
    let mut attempt = 0;
    loop {
        match store.destroy_clone(clone) {
            Ok(()) => return Ok(()),
            Err(StoreError::Busy { .. }) if attempt < 10 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Destroys an orphaned mount clone (see [`orphan_clones`]). Without its state file the clone's
/// path is unknown, so its loop devices are recognised by the clone's (unique, random-suffixed)
/// name appearing as a directory in their backing file's path; mounts of those loop devices are
/// unmounted first (a state directory lost without a reboot leaves them in place). The
/// mountpoint directories cannot be known and are left; the outcome lists the unmounted paths.
pub fn destroy_orphan(
    store: &dyn Store,
    state_dir: &Path,
    clone: &VolumeName,
) -> Result<UnmountOutcome, RestoreError> {
    let sd = StateDir::new(state_dir);
    let _lock = sd.lock()?;
    if !orphan_clones(store, state_dir)?.contains(clone) {
        return Err(RestoreError::Refused {
            what: format!("clone {clone}"),
            reason: "is not an orphaned vzsnap mount clone".into(),
        });
    }
    let mut out = UnmountOutcome {
        id: clone.to_string(),
        ..Default::default()
    };
    let in_clone = |f: &Path| f.components().any(|c| c.as_os_str() == clone.as_str());
    let loops: Vec<loopdev::LoopInfo> = loopdev::list_loops()
        .map_err(io_err("/sys/block"))?
        .into_iter()
        .filter(|l| in_clone(&l.backing_file))
        .collect();
    let mounts = mountinfo::read_mountinfo().map_err(io_err("/proc/self/mountinfo"))?;
    let mut targets: Vec<&mountinfo::MountEntry> = mounts
        .iter()
        .filter(|m| loops.iter().any(|l| l.device == m.source))
        .collect();
    targets.sort_by_key(|m| std::cmp::Reverse(m.target.components().count()));
    for m in targets {
        Cmd::new("umount")
            .arg(&m.target)
            .run()
            .map_err(|e| busy_hint(&m.target, e.into()))?;
        out.unmounted.push(m.target.clone());
    }
    for l in loops {
        if loopdev::detach(&l.device)? {
            out.detached.push(l.device);
        }
    }
    if !wait_loops_released(in_clone, LOOP_RELEASE_WAIT)? {
        out.notes.push(format!(
            "loop devices on clone {clone} were still being released"
        ));
    }
    destroy_clone_retrying(store, clone)?;
    out.clone_destroyed = true;
    Ok(out)
}
