//! Snapshot → vzdump archive: rebuilds `vzdump-qemu-<VMID>-<DATE>.vma[.zst|.gz|.lzo]` (plus
//! its `.log` and `.notes`) from a snapshot's read-only files, for PVE's own restore.
//!
//! The archive is streamed from the snapshot directly (ZFS `.zfs/snapshot/<name>/`, the
//! read-only btrfs snapshot): no clone, nothing written to the store. Its header comes from
//! the manifest written at ingest: same uuid and ctime, configs in slot order with their
//! bytes as stored (`#qmdump#map` lines intact), devices with their names and sizes in dev_id
//! order. So PVE sees the backup it made, with the name it gave it.
//!
//! Pipeline: a reader thread ([`image_reader`]) streams the images in 4 MiB reads, skipping
//! holes; this thread feeds 64 KiB clusters to [`vma::VmaWriter`] (zero detection, extents);
//! the compressor ([`vma::compress::compressed_writer`]) runs zstd on its own worker threads.
//! Memory stays bounded by the channel depth and the compressor's buffers.

pub mod image_reader;
pub mod output;

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use store::layout::{self, Manifest};
use store::{SnapshotName, Store, VolumeName};
use vma::compress::{CompressOptions, Compression, compressed_writer};
use vma::format::CLUSTER_SIZE;
use vma::progress::Progress;
use vma::vzdump::{BackupName, BackupTime, GuestKind, VmId};
use vma::writeback::Writeback;
use vma::{Config, VmaWriter, WriterOptions};

use crate::error::{RestoreError, io_err};
use crate::select::{DateSpec, find_snapshot};
use image_reader::{ImageReader, ImageSpec, Piece};
use output::{Outputs, ensure_absent};

const CS: u64 = CLUSTER_SIZE as u64;
/// Pieces in flight between the reader thread and the writer (× 4 MiB).
const READ_DEPTH: usize = 4;
/// Output buffer in front of the file (or the compressor's output).
const OUT_BUF: usize = 1 << 20;

/// How to restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Directory the files are written to (PVE's dump directory, usually).
    pub target_dir: PathBuf,
    /// `None`: the compression of the archive that was ingested.
    pub compression: Option<Compression>,
    /// Compression level (`None`: the format's default, as vzdump).
    pub level: Option<i32>,
    /// zstd worker threads (0: compress on the writing thread).
    pub threads: u32,
}

/// What a restore did (`--json` prints this; field names are stable).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RestoreSummary {
    pub vmid: u32,
    pub snapshot: String,
    pub archive: PathBuf,
    pub log: Option<PathBuf>,
    pub notes: Option<PathBuf>,
    /// `none`, `zstd`, `gzip` or `lzo`.
    pub compression: String,
    /// Sum of the disk sizes (what PVE will write back).
    pub image_bytes: u64,
    /// Bytes actually read from the images (holes are not read).
    pub data_bytes_read: u64,
    /// Uncompressed VMA stream size.
    pub vma_bytes: u64,
    /// Size of the archive file.
    pub archive_bytes: u64,
    pub seconds: f64,
}

impl RestoreSummary {
    /// One human line: what, where, how big, how fast.
    pub fn line(&self) -> String {
        let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
        let rate = if self.seconds > 0.0 {
            mib(self.image_bytes) / self.seconds
        } else {
            0.0
        };
        format!(
            "restored VM {} backup {} to {} ({:.1} MiB of disks, {:.1} MiB read, {:.1} MiB written, {:.1} s, {:.1} MiB/s)",
            self.vmid,
            self.snapshot,
            self.archive.display(),
            mib(self.image_bytes),
            mib(self.data_bytes_read),
            mib(self.archive_bytes),
            self.seconds,
            rate
        )
    }
}

/// The file names a restore will produce, decided before anything is written.
#[derive(Debug, Clone)]
pub struct RestorePlan {
    pub vmid: VmId,
    pub volume: VolumeName,
    pub snapshot: SnapshotName,
    /// The snapshot's read-only directory.
    pub source: PathBuf,
    pub manifest: Manifest,
    pub name: BackupName,
    pub compression: Compression,
    /// When the store created the snapshot, epoch seconds: what is written is stamped
    /// later than this (see [`Outputs::stamp_not_before`]).
    pub snapshot_created: i64,
}

/// Resolves VM + date, reads the manifest and decides names and compression.
pub fn plan_restore(
    store: &dyn Store,
    vmid: VmId,
    date: &DateSpec,
    compression: Option<Compression>,
) -> Result<RestorePlan, RestoreError> {
    let (volume, snap) = find_snapshot(store, vmid, date)?;
    let source = store.snapshot_path(&volume, &snap.name)?;
    let manifest = Manifest::read_from(&source)?;
    if manifest.vmid != vmid.get() {
        return Err(RestoreError::Inconsistent {
            path: source.join(layout::MANIFEST_FILE),
            reason: format!("manifest is for VM {}, not {vmid}", manifest.vmid),
        });
    }
    let time = BackupTime::parse_snapshot_name(snap.name.as_str()).ok_or_else(|| {
        RestoreError::Inconsistent {
            path: source.clone(),
            reason: format!("snapshot name {} is not a backup time", snap.name),
        }
    })?;
    let compression = match compression {
        Some(c) => c,
        None => manifest
            .source
            .compression
            .parse()
            .map_err(|_| RestoreError::Inconsistent {
                path: source.join(layout::MANIFEST_FILE),
                reason: format!("unknown compression {:?}", manifest.source.compression),
            })?,
    };
    let name = BackupName::new(GuestKind::Qemu, vmid, time, compression);
    Ok(RestorePlan {
        vmid,
        volume,
        snapshot: snap.name.clone(),
        source,
        manifest,
        name,
        compression,
        snapshot_created: snap.created,
    })
}

/// Counts bytes that reach the file, and starts their write-back early
/// ([`vma::writeback`]) so the final fsync does not write the whole archive at once.
struct Counting {
    inner: std::fs::File,
    count: Arc<AtomicU64>,
    writeback: Writeback,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let at = self.count.fetch_add(n as u64, Ordering::Relaxed);
        self.writeback.wrote(&self.inner, at, n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads a small file of the snapshot if it exists.
fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, RestoreError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Restores one backup into `opts.target_dir`; see the module docs.
pub fn restore_archive(
    store: &dyn Store,
    vmid: VmId,
    date: &DateSpec,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreSummary, RestoreError> {
    let plan = plan_restore(store, vmid, date, opts.compression)?;
    write_archive(&plan, opts, progress)
}

/// Writes the archive and companions of a planned restore.
pub fn write_archive(
    plan: &RestorePlan,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreSummary, RestoreError> {
    let started = Instant::now();
    let dir = &opts.target_dir;
    if !std::fs::metadata(dir).map_err(io_err(dir))?.is_dir() {
        return Err(RestoreError::Refused {
            what: dir.display().to_string(),
            reason: "not a directory".into(),
        });
    }
    let archive = dir.join(plan.name.archive_name());
    let log_path = dir.join(plan.name.log_name());
    let notes_path = dir.join(plan.name.notes_name());
    let log = read_optional(&plan.source.join(layout::LOG_FILE))?;
    let notes = read_optional(&plan.source.join(layout::NOTES_FILE))?;
    // Refuse before doing any work if anything we would write is already there.
    ensure_absent(&archive)?;
    if log.is_some() {
        ensure_absent(&log_path)?;
    }
    if notes.is_some() {
        ensure_absent(&notes_path)?;
    }

    let mut configs = Vec::with_capacity(plan.manifest.configs.len());
    for name in &plan.manifest.configs {
        let path = plan.source.join(name);
        configs.push(Config {
            name: name.clone(),
            data: std::fs::read(&path).map_err(io_err(&path))?,
        });
    }
    let mut images = Vec::new();
    let mut devices = Vec::new();
    for (i, d) in plan.manifest.devices.iter().enumerate() {
        if usize::from(d.dev_id) != i + 1 {
            // The writer numbers devices 1..n; PVE maps by name, so this only changes ids.
            tracing::warn!(
                "{}: device {} has dev_id {}, the restored archive numbers it {}",
                plan.source.display(),
                d.name,
                d.dev_id,
                i + 1
            );
        }
        let path = plan.source.join(&d.file);
        let len = std::fs::metadata(&path).map_err(io_err(&path))?.len();
        if len != d.size {
            return Err(RestoreError::Inconsistent {
                path,
                reason: format!(
                    "image is {len} bytes, the manifest says {} for {}",
                    d.size, d.name
                ),
            });
        }
        devices.push((d.name.clone(), d.size));
        images.push(ImageSpec { path, size: d.size });
    }
    let uuid =
        layout::parse_uuid(&plan.manifest.vma.uuid).ok_or_else(|| RestoreError::Inconsistent {
            path: plan.source.join(layout::MANIFEST_FILE),
            reason: format!("bad uuid {:?}", plan.manifest.vma.uuid),
        })?;
    let image_bytes: u64 = images.iter().map(|i| i.size).sum();

    let mut outputs = Outputs::default();
    // Companions first, the archive last: see Outputs::commit.
    for (data, target) in [(&log, &log_path), (&notes, &notes_path)] {
        if let Some(data) = data {
            let file_name = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let temp = dir.join(format!(".{file_name}.vzsnap-tmp"));
            let mut f = outputs.create(temp.clone(), target.clone())?;
            f.write_all(data)
                .and_then(|()| f.sync_all())
                .map_err(io_err(&temp))?;
        }
    }
    let temp = dir.join(plan.name.temp_archive_name());
    let file = outputs.create(temp.clone(), archive.clone())?;

    let label = format!("restore {} {}", plan.vmid, plan.snapshot);
    progress.start(&label, Some(image_bytes));
    let streamed = stream_archive(
        file, &temp, plan, opts, configs, devices, images, uuid, progress,
    );
    // The caller prints the summary (stdout or JSON) or the error; the display just ends.
    progress.finish("");
    let Streamed {
        vma_bytes,
        data_bytes_read,
        archive_bytes,
    } = streamed?;

    // `vzsnap ingest` must never take this file for the one the snapshot was made from (it
    // has its name, uuid and, for a plain `.vma`, its size): with `delete_input` it deletes
    // only inputs modified before their snapshot was created.
    let after_snapshot = u64::try_from(plan.snapshot_created.saturating_add(1)).unwrap_or(0);
    outputs.stamp_not_before(std::time::UNIX_EPOCH + Duration::from_secs(after_snapshot))?;
    let placed = outputs.commit()?;
    let summary = RestoreSummary {
        vmid: plan.vmid.get(),
        snapshot: plan.snapshot.to_string(),
        archive: archive.clone(),
        log: log.as_ref().map(|_| log_path.clone()),
        notes: notes.as_ref().map(|_| notes_path.clone()),
        compression: plan.compression.name().to_string(),
        image_bytes,
        data_bytes_read,
        vma_bytes,
        archive_bytes,
        seconds: started.elapsed().as_secs_f64(),
    };
    debug_assert!(placed.contains(&archive));
    Ok(summary)
}

/// Byte counts of a written archive.
struct Streamed {
    vma_bytes: u64,
    data_bytes_read: u64,
    archive_bytes: u64,
}

/// Writes the VMA stream through the compressor into `file` (the temporary) and fsyncs it.
#[allow(clippy::too_many_arguments)]
fn stream_archive(
    file: std::fs::File,
    temp: &Path,
    plan: &RestorePlan,
    opts: &RestoreOptions,
    configs: Vec<Config>,
    devices: Vec<(String, u64)>,
    images: Vec<ImageSpec>,
    uuid: [u8; 16],
    progress: &dyn Progress,
) -> Result<Streamed, RestoreError> {
    let counted = Arc::new(AtomicU64::new(0));
    let sink = BufWriter::with_capacity(
        OUT_BUF,
        Counting {
            inner: file,
            count: counted.clone(),
            writeback: Writeback::new(),
        },
    );
    let copts = CompressOptions {
        level: opts.level,
        threads: opts.threads,
    };
    let compressed = compressed_writer(sink, plan.compression, &copts).map_err(io_err(temp))?;
    let writer = VmaWriter::new(
        compressed,
        configs,
        devices,
        WriterOptions {
            uuid: Some(uuid),
            ctime: Some(plan.manifest.vma.ctime),
        },
    )
    .map_err(|source| RestoreError::Vma {
        path: temp.to_path_buf(),
        source,
    })?
    .with_target_name(temp.display().to_string());
    let (writer, data_bytes_read) = feed(writer, images, progress).map_err(|e| match e {
        Feed::Vma(source) => map_vma_io(source, temp),
        Feed::Other(e) => e,
    })?;
    let vma_bytes = writer.offset();
    let compressed = writer.finish().map_err(|source| map_vma_io(source, temp))?;
    let sink = compressed.finish().map_err(io_err(temp))?;
    let file = sink
        .into_inner()
        .map_err(|e| io_err(temp)(e.into_error()))?
        .inner;
    file.sync_all().map_err(io_err(temp))?;
    Ok(Streamed {
        vma_bytes,
        data_bytes_read,
        archive_bytes: counted.load(Ordering::Relaxed),
    })
}

/// An I/O error inside the VMA writer (ENOSPC, EIO) is reported as an I/O error on the file.
fn map_vma_io(source: vma::Error, temp: &Path) -> RestoreError {
    match source {
        vma::Error::Io { source, .. } => RestoreError::Io {
            path: temp.to_path_buf(),
            source,
        },
        other => RestoreError::Vma {
            path: temp.to_path_buf(),
            source: other,
        },
    }
}

enum Feed {
    Vma(vma::Error),
    Other(RestoreError),
}

/// Moves every cluster from the reader thread into the writer. Returns the writer and the
/// number of bytes read from the images.
fn feed<W: Write>(
    mut writer: VmaWriter<W>,
    images: Vec<ImageSpec>,
    progress: &dyn Progress,
) -> Result<(VmaWriter<W>, u64), Feed> {
    let sizes: Vec<u64> = images.iter().map(|i| i.size).collect();
    let mut done_before: Vec<u64> = Vec::with_capacity(sizes.len());
    let mut acc = 0;
    for s in &sizes {
        done_before.push(acc);
        acc += s;
    }
    let reader = ImageReader::start(images, READ_DEPTH).map_err(Feed::Other)?;
    let mut read = 0u64;
    let mut last_report = Instant::now();
    for piece in reader.pieces.iter() {
        let piece = piece.map_err(Feed::Other)?;
        let (image, end_cluster) = match piece {
            Piece::Data {
                image,
                first,
                buf,
                len,
            } => {
                let dev_id = image as u8 + 1;
                for (i, chunk) in buf[..len].chunks(CLUSTER_SIZE).enumerate() {
                    writer
                        .write_cluster(dev_id, (first + i as u64) as u32, chunk)
                        .map_err(Feed::Vma)?;
                }
                read += len as u64;
                let end = first + (len as u64).div_ceil(CS);
                let _ = reader.recycle.send(buf);
                (image, end)
            }
            Piece::Zero {
                image,
                first,
                count,
            } => {
                let dev_id = image as u8 + 1;
                // A hole: no 64 KiB of zeros to look at per cluster.
                for c in first..first + count {
                    writer
                        .write_zero_cluster(dev_id, c as u32)
                        .map_err(Feed::Vma)?;
                }
                (image, first + count)
            }
        };
        if last_report.elapsed() >= Duration::from_millis(100) {
            last_report = Instant::now();
            progress.set_position(done_before[image] + (end_cluster * CS).min(sizes[image]));
        }
    }
    progress.set_position(acc);
    Ok((writer, read))
}
