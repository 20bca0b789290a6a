//! Ingesting one backup archive into its VM's volume: prepare, one-pass sync, verify,
//! companions and manifest, fsync, snapshot, hold, and (if configured) delete the input.
//!
//! The order is what makes it crash-safe (docs/ingest.md, "Crash safety"): nothing is
//! snapshotted before the whole archive was read and found complete and every image is on
//! stable storage; the input is deleted only after its snapshot (and hold) exist; and any
//! failure before the snapshot returns the volume to its previous snapshot.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
use serde::Serialize;
use store::layout::{
    self, LOG_FILE, Manifest, ManifestDevice, NOTES_FILE, PROTECTED_HOLD_TAG, meta_keys,
};
use store::{MetaKey, SnapshotName, Store, StoreError, VolumeName};
use vma::VmaReader;
use vma::compress::{Compression, open_decompressed_threaded};
use vma::progress::Progress;

use crate::error::IngestError;
use crate::files::{copy_if_changed, remove_if_present, write_if_changed};
use crate::options::IngestOptions;
use crate::scan::Archive;
use crate::sync::vma_stream::{Targets, sync_stream};
use crate::sync::{ImageSync, SyncStats};
use crate::volume::{self, Recovery};

/// Reads the archive file: counts the bytes read (the compressed input, for progress and
/// statistics) and keeps the kernel reading [`ARCHIVE_PREFETCH`] bytes ahead, so the
/// decompressing thread rarely waits for the disk.
struct ArchiveInput {
    file: File,
    pos: u64,
    prefetched_to: u64,
    count: Arc<AtomicU64>,
}

/// Read-ahead window of the archive.
const ARCHIVE_PREFETCH: u64 = 16 << 20;

impl Read for ArchiveInput {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.prefetched_to < self.pos + ARCHIVE_PREFETCH / 2 {
            let start = self.prefetched_to.max(self.pos);
            let end = self.pos + ARCHIVE_PREFETCH;
            // Advisory: a file system without readahead hints still works.
            let _ = posix_fadvise(
                &self.file,
                start as i64,
                (end - start) as i64,
                PosixFadviseAdvice::POSIX_FADV_WILLNEED,
            );
            self.prefetched_to = end;
        }
        let n = self.file.read(buf)?;
        self.pos += n as u64;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// One device image after the sync.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DeviceResult {
    pub dev_id: u8,
    pub name: String,
    pub file: String,
    pub size: u64,
    /// Size before this backup (`None`: the image is new).
    pub previous_size: Option<u64>,
    pub stats: SyncStats,
}

/// A backup that was ingested.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Ingested {
    pub snapshot: String,
    pub compression: String,
    pub uuid: String,
    /// All devices together; `read` is the compressed archive bytes.
    pub stats: SyncStats,
    pub devices: Vec<DeviceResult>,
    /// Device images removed because the backup no longer has them.
    pub removed_devices: Vec<String>,
    /// Config, log and notes files that were (re)written or removed.
    pub files_changed: Vec<String>,
    pub recovery: Option<Recovery>,
    pub protected: bool,
    pub input_deleted: bool,
}

/// A backup that could not be ingested, and what happened to the volume.
#[derive(Debug)]
pub struct Failed {
    pub error: IngestError,
    /// Set when rolling back (or removing a first-ingest volume) failed as well; the next
    /// run repairs the volume before touching it.
    pub undo_error: Option<StoreError>,
    pub recovery: Option<Recovery>,
}

impl Failed {
    fn new(error: impl Into<IngestError>) -> Box<Self> {
        Box::new(Failed {
            error: error.into(),
            undo_error: None,
            recovery: None,
        })
    }
}

/// The volume name of a VM: its VMID.
pub fn volume_name(vmid: u32) -> Result<VolumeName, StoreError> {
    Ok(VolumeName::new(vmid.to_string())?)
}

/// Snapshot metadata for a backup.
fn snapshot_meta(
    archive: &Archive,
    uuid: &str,
    ctime: i64,
    backup_time: i64,
    bytes_written: u64,
) -> Result<BTreeMap<MetaKey, String>, StoreError> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: String| -> Result<(), StoreError> {
        m.insert(MetaKey::new(k)?, v);
        Ok(())
    };
    put(meta_keys::SOURCE, archive.file_name.clone())?;
    put(meta_keys::ARCHIVE_SIZE, archive.size.to_string())?;
    put(meta_keys::UUID, uuid.to_owned())?;
    put(meta_keys::CTIME, ctime.to_string())?;
    put(meta_keys::BACKUP_TIME, backup_time.to_string())?;
    put(meta_keys::BYTES_WRITTEN, bytes_written.to_string())?;
    put(
        meta_keys::PROTECTED,
        if archive.protected { "1" } else { "0" }.to_owned(),
    )?;
    Ok(m)
}

/// Deletes an archive's input files: companions first, the archive last, so an interruption
/// never leaves companions without their archive. Refuses (and deletes nothing) if the
/// archive is no longer the file the scan found (size or modification time changed): only
/// the file a snapshot was made from may be deleted.
pub fn delete_input(archive: &Archive) -> io::Result<()> {
    let now = std::fs::metadata(&archive.path)?;
    if now.len() != archive.size || now.modified()? != archive.modified {
        return Err(io::Error::other(
            "not deleted: the file changed since it was scanned (size or modification time)",
        ));
    }
    for p in [&archive.notes, &archive.log].into_iter().flatten() {
        remove_if_present(p)?;
    }
    remove_if_present(&archive.path)?;
    Ok(())
}

/// Ingests `archive` into the volume of its VM. See the module docs.
pub fn ingest_backup(
    store: &dyn Store,
    opts: &IngestOptions,
    progress: &dyn Progress,
    archive: &Archive,
) -> Result<Ingested, Box<Failed>> {
    let vol = volume_name(archive.vmid()).map_err(Failed::new)?;
    let snap = SnapshotName::new(archive.name.time.snapshot_name())
        .map_err(|e| Failed::new(StoreError::from(e)))?;
    let prepared = volume::prepare(store, &vol, &opts.volume_properties).map_err(Failed::new)?;
    opts.crash.at("after-prepare");
    let fail = |error: IngestError| {
        let undo_error = volume::undo(store, &vol, prepared.has_snapshots).err();
        if let Some(e) = &undo_error {
            tracing::error!(volume = %vol, "undoing the failed ingest failed too: {e}");
        }
        Box::new(Failed {
            error,
            undo_error,
            recovery: prepared.recovery.clone(),
        })
    };
    let synced = match sync_into(opts, progress, archive, &prepared.path) {
        Ok(s) => s,
        Err(e) => return Err(fail(e)),
    };
    opts.crash.at("before-snapshot");
    let meta = snapshot_meta(
        archive,
        &synced.uuid,
        synced.ctime,
        synced.backup_time,
        synced.stats.changed(),
    );
    if let Err(e) = meta.and_then(|m| store.snapshot(&vol, &snap, &m)) {
        return Err(fail(e.into()));
    }
    opts.crash.at("after-snapshot");
    let mut result = Ingested {
        snapshot: snap.to_string(),
        compression: synced.compression.name().to_owned(),
        uuid: synced.uuid,
        stats: synced.stats,
        devices: synced.devices,
        removed_devices: synced.removed_devices,
        files_changed: synced.files_changed,
        recovery: prepared.recovery.clone(),
        protected: archive.protected,
        input_deleted: false,
    };
    // From here on the snapshot is good; a failure is reported but never undoes it.
    let after = |error: IngestError| {
        Box::new(Failed {
            error,
            undo_error: None,
            recovery: prepared.recovery.clone(),
        })
    };
    if archive.protected {
        store
            .hold(&vol, &snap, PROTECTED_HOLD_TAG)
            .map_err(|e| after(e.into()))?;
    }
    opts.crash.at("after-hold");
    if opts.delete_input && !archive.protected {
        delete_input(archive).map_err(|source| {
            after(IngestError::Input {
                path: archive.path.clone(),
                source,
            })
        })?;
        result.input_deleted = true;
    }
    opts.crash.at("after-delete");
    Ok(result)
}

struct Synced {
    compression: Compression,
    uuid: String,
    ctime: i64,
    backup_time: i64,
    stats: SyncStats,
    devices: Vec<DeviceResult>,
    removed_devices: Vec<String>,
    files_changed: Vec<String>,
}

fn out_err(path: &Path) -> impl Fn(io::Error) -> IngestError + '_ {
    move |source| IngestError::Output {
        path: path.to_path_buf(),
        source,
    }
}

/// Everything between a prepared volume and the snapshot.
fn sync_into(
    opts: &IngestOptions,
    progress: &dyn Progress,
    archive: &Archive,
    vol_dir: &Path,
) -> Result<Synced, IngestError> {
    let started = Instant::now();
    let input_err = |source| IngestError::Input {
        path: archive.path.clone(),
        source,
    };
    let file = File::open(&archive.path).map_err(input_err)?;
    let _ = posix_fadvise(&file, 0, 0, PosixFadviseAdvice::POSIX_FADV_SEQUENTIAL);
    let count = Arc::new(AtomicU64::new(0));
    let input = ArchiveInput {
        file,
        pos: 0,
        prefetched_to: 0,
        count: count.clone(),
    };
    let (compression, stream) = open_decompressed_threaded(input).map_err(input_err)?;
    let mut reader = VmaReader::new_named(stream, archive.file_name.clone())?;
    let header = reader.header().clone();
    let unsupported = |detail: String| IngestError::Unsupported {
        archive: archive.file_name.clone(),
        detail,
    };

    // Names first: nothing is touched unless every device and config can be stored.
    let mut files = Vec::new();
    for d in &header.devices {
        let f = layout::disk_file_name(&d.name)?;
        if files.contains(&f) {
            return Err(unsupported(format!("two devices named {:?}", d.name)));
        }
        files.push(f);
    }
    let mut config_names = Vec::new();
    for c in &header.configs {
        layout::check_config_file_name(&c.name)?;
        if config_names.contains(&c.name) {
            return Err(unsupported(format!("two configs named {:?}", c.name)));
        }
        config_names.push(c.name.clone());
    }
    let backup_time = archive
        .name
        .time
        .to_epoch_local()
        .map_err(|e| unsupported(e.to_string()))?;
    let old_manifest = Manifest::read_from(vol_dir).ok();

    // Devices the backup no longer has.
    let mut removed_devices = Vec::new();
    let rd = std::fs::read_dir(vol_dir).map_err(out_err(vol_dir))?;
    for e in rd {
        let e = e.map_err(out_err(vol_dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(dev) = layout::parse_disk_file_name(&name)
            && !files.contains(&name)
        {
            let p = vol_dir.join(&name);
            std::fs::remove_file(&p).map_err(out_err(&p))?;
            removed_devices.push(dev.to_owned());
        }
    }

    let mut targets = Targets::new();
    let mut previous = Vec::new();
    for (d, f) in header.devices.iter().zip(&files) {
        let path = vol_dir.join(f);
        let prev = match std::fs::metadata(&path) {
            Ok(m) => Some(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(out_err(&path)(e)),
        };
        previous.push(prev);
        let img = ImageSync::open(&path, path.display().to_string(), d.size, opts.zero_mode)?;
        targets.insert(d.id, img);
    }

    let label = format!("{}: {}", archive.vmid(), archive.file_name);
    progress.start(&label, Some(archive.size));
    let crash = &opts.crash;
    let res = sync_stream(&mut reader, &archive.file_name, &mut targets, |offset| {
        progress.set_position(count.load(Ordering::Relaxed));
        crash.at_offset(offset);
        Ok(())
    });
    if let Err(e) = res {
        progress.finish("failed");
        return Err(e.into());
    }
    if let Err(e) = reader.check_complete(None) {
        progress.finish("failed");
        return Err(e.into());
    }

    let synced_at = started.elapsed();
    let mut total = SyncStats::default();
    let mut devices = Vec::new();
    for ((d, f), prev) in header.devices.iter().zip(&files).zip(previous) {
        let Some(img) = targets.take(d.id) else {
            continue;
        };
        let stats = img.finish(true)?;
        tracing::debug!(
            "{}: {f}: synced after {:.2} s, fsynced after {:.2} s",
            archive.file_name,
            synced_at.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
        total += stats;
        devices.push(DeviceResult {
            dev_id: d.id,
            name: d.name.clone(),
            file: f.clone(),
            size: d.size,
            previous_size: prev,
            stats,
        });
    }
    total.read = count.load(Ordering::Relaxed);
    opts.crash.at("after-sync");

    // Configs, then the companions, then the manifest.
    let mut files_changed = Vec::new();
    for c in &header.configs {
        let p = vol_dir.join(&c.name);
        if write_if_changed(&p, &c.data).map_err(out_err(&p))? {
            files_changed.push(c.name.clone());
        }
    }
    if let Some(old) = &old_manifest {
        for name in old.configs.iter().filter(|n| !config_names.contains(n)) {
            if layout::check_config_file_name(name).is_ok() {
                let p = vol_dir.join(name);
                if remove_if_present(&p).map_err(out_err(&p))? {
                    files_changed.push(name.clone());
                }
            }
        }
    }
    for (src, name) in [(&archive.log, LOG_FILE), (&archive.notes, NOTES_FILE)] {
        let p = vol_dir.join(name);
        let changed = match src {
            Some(s) => copy_if_changed(s, &p).map_err(|source| IngestError::Input {
                path: s.clone(),
                source,
            })?,
            None => remove_if_present(&p).map_err(out_err(&p))?,
        };
        if changed {
            files_changed.push(name.to_owned());
        }
    }
    let uuid = layout::format_uuid(&header.uuid);
    let manifest = Manifest {
        format: layout::MANIFEST_FORMAT,
        vmid: archive.vmid(),
        backup_time,
        source: layout::SourceFile {
            name: archive.file_name.clone(),
            size: archive.size,
            compression: compression.name().to_owned(),
        },
        vma: layout::VmaIdentity {
            uuid: uuid.clone(),
            ctime: header.ctime,
        },
        devices: header
            .devices
            .iter()
            .zip(&files)
            .map(|(d, f)| ManifestDevice {
                dev_id: d.id,
                name: d.name.clone(),
                size: d.size,
                file: f.clone(),
            })
            .collect(),
        configs: config_names,
    };
    manifest.write_to(vol_dir)?;
    store::sync_dir(vol_dir).map_err(out_err(vol_dir))?;
    progress.finish(&format!(
        "{} written, {} zeroed, {} unchanged in {:.1} s",
        human_bytes(total.written),
        human_bytes(total.zeroed),
        human_bytes(total.unchanged),
        started.elapsed().as_secs_f64()
    ));
    Ok(Synced {
        compression,
        uuid,
        ctime: header.ctime,
        backup_time,
        stats: total,
        devices,
        removed_devices,
        files_changed,
    })
}

/// `1.5 MiB`-style sizes for human output.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }
}
