//! [`ImageSync`]: brings one destination image file to new contents, cluster by cluster,
//! writing only the 4 KiB blocks that differ.
//!
//! Why this shape:
//! - **Never write an unchanged block.** On a copy-on-write file system every written block
//!   stops being shared with the last snapshot, so each needless write costs snapshot space
//!   (perf.md §1: `dd` and `qemu-img convert` rewrite everything).
//! - **Coalesce.** Adjacent changed blocks become one `pwrite` (up to [`MAX_RUN`]), and
//!   adjacent zeroed blocks one hole punch, so a 1 % churn costs about one call per changed run.
//! - **Large reads.** The old contents are read in windows of up to [`WINDOW`] bytes with one
//!   `pread`, with `POSIX_FADV_SEQUENTIAL` so the kernel (or ZFS prefetch) reads ahead; clusters
//!   may arrive in any order (live backups), a jump just starts a new window.
//! - **Known zeros are not read.** A new image, and the tail added when an image grows, are
//!   holes: their old contents are the static zero page.
//! - **No mmap** (double caching and a slow read path on ZFS, perf.md §3.1) and no
//!   `SEEK_HOLE` map (it forces txg syncs on dirty ZFS files and has had data-loss bugs;
//!   reading a hole costs only a memcpy of zeros).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use nix::fcntl::{FallocateFlags, PosixFadviseAdvice, fallocate, posix_fadvise};

use super::compare::{
    BLOCK_SIZE, CLUSTER_SIZE, ClusterDiff, NewCluster, ZERO_CLUSTER, blocks_in, diff_cluster,
};
use super::{SyncError, SyncStats, ZeroMode};

/// Largest destination read.
pub const WINDOW: usize = 1 << 20;
/// Largest coalesced write.
pub const MAX_RUN: usize = 1 << 20;

/// One destination image being synced. See the module docs.
#[derive(Debug)]
pub struct ImageSync {
    file: File,
    name: String,
    size: u64,
    /// Bytes at and after this offset are known to be zero (a new file, or the grown tail).
    known_zero_from: u64,
    mode: ZeroMode,
    window: Vec<u8>,
    window_start: u64,
    window_len: usize,
    run_off: u64,
    run: Vec<u8>,
    zero_off: u64,
    zero_len: u64,
    stats: SyncStats,
}

/// The read side of an [`ImageSync`]: the old contents of clusters, for the pipeline stage
/// that reads the destination while another thread compares and writes. Safe because every
/// cluster is read before it is handed to the writer and written at most once per sync.
#[derive(Debug)]
pub struct ImageReader {
    file: File,
    name: String,
    size: u64,
    known_zero_from: u64,
}

impl ImageReader {
    /// `(offset, length)` of `cluster` clipped at the image end; `None` beyond the end.
    pub fn cluster_range(&self, cluster: u64) -> Option<(u64, usize)> {
        let off = cluster.checked_mul(CLUSTER_SIZE as u64)?;
        (off < self.size).then(|| (off, (CLUSTER_SIZE as u64).min(self.size - off) as usize))
    }

    /// True if the bytes at `off` are known to be zero without reading (a new image, or the
    /// part an image grew by).
    pub fn known_zero(&self, off: u64) -> bool {
        off >= self.known_zero_from
    }

    /// Reads exactly `buf.len()` bytes at `off`.
    pub fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), SyncError> {
        self.file
            .read_exact_at(buf, off)
            .map_err(|e| SyncError::io(&self.name, off, "read", e))
    }
}

impl ImageSync {
    /// Opens (or creates, sparse) the image at `path` and sets its length to `size`: a shrunk
    /// device is truncated, a grown one extended with a hole. `name` is what errors call the
    /// file (e.g. its path). A file that did not exist, or the part added by growing it, is
    /// known to be zero and never read.
    pub fn open(
        path: &Path,
        name: impl Into<String>,
        size: u64,
        mode: ZeroMode,
    ) -> Result<Self, SyncError> {
        let name = name.into();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| SyncError::io(&name, 0, "open", e))?;
        let old_len = file
            .metadata()
            .map_err(|e| SyncError::io(&name, 0, "stat", e))?
            .len();
        if old_len != size {
            file.set_len(size)
                .map_err(|e| SyncError::io(&name, size.min(old_len), "truncate", e))?;
        }
        // Advisory only: a file system without readahead hints still works.
        let _ = posix_fadvise(&file, 0, 0, PosixFadviseAdvice::POSIX_FADV_SEQUENTIAL);
        Ok(ImageSync {
            file,
            name,
            size,
            known_zero_from: old_len.min(size),
            mode,
            window: Vec::new(),
            window_start: 0,
            window_len: 0,
            run_off: 0,
            run: Vec::new(),
            zero_off: 0,
            zero_len: 0,
            stats: SyncStats::default(),
        })
    }

    /// The image size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Counters so far (pending writes count as done).
    pub fn stats(&self) -> SyncStats {
        self.stats
    }

    /// Number of clusters covering the image.
    pub fn clusters(&self) -> u64 {
        self.size.div_ceil(CLUSTER_SIZE as u64)
    }

    /// The byte range `(offset, length)` of `cluster`, clipped at the image size; an error if
    /// it starts at or beyond the end, or if `new` carries too few bytes for it.
    fn check(&self, cluster: u64, new: &NewCluster<'_>) -> Result<(u64, usize), SyncError> {
        let off = cluster.saturating_mul(CLUSTER_SIZE as u64);
        if off >= self.size {
            return Err(SyncError::BeyondEnd {
                file: self.name.clone(),
                offset: off,
                cluster,
                size: self.size,
            });
        }
        let len = (CLUSTER_SIZE as u64).min(self.size - off) as usize;
        if !new.is_well_formed(len) {
            let (got, needed) = match *new {
                NewCluster::Packed { mask, data } => {
                    (data.len(), mask.count_ones() as usize * BLOCK_SIZE)
                }
                NewCluster::Full(data) => (data.len(), len),
            };
            return Err(SyncError::ShortCluster {
                file: self.name.clone(),
                offset: off,
                cluster,
                got,
                needed,
            });
        }
        Ok((off, len))
    }

    /// Brings cluster `cluster` (bytes `cluster * 64 KiB ..`, clipped at the image size) to
    /// `new`, reading the old contents itself. Each cluster must be applied at most once per
    /// sync: the read window is not refreshed by this sync's own pending writes.
    pub fn apply(&mut self, cluster: u64, new: NewCluster<'_>) -> Result<(), SyncError> {
        let (off, len) = self.check(cluster, &new)?;
        let d = if off >= self.known_zero_from {
            diff_cluster(&ZERO_CLUSTER[..len], new)
        } else {
            self.fill_window(off, len)?;
            let at = (off - self.window_start) as usize;
            diff_cluster(&self.window[at..at + len], new)
        };
        self.apply_diff(off, len, new, d)
    }

    /// Like [`ImageSync::apply`], with the old contents supplied by the caller (read by an
    /// [`ImageReader`] on another thread): `old` is the cluster's bytes, or `None` where
    /// [`ImageReader::known_zero`] said no read was needed.
    pub fn apply_old(
        &mut self,
        cluster: u64,
        new: NewCluster<'_>,
        old: Option<&[u8]>,
    ) -> Result<(), SyncError> {
        let (off, len) = self.check(cluster, &new)?;
        let old = match old {
            Some(o) if o.len() == len => o,
            Some(o) => {
                return Err(SyncError::io(
                    &self.name,
                    off,
                    "read",
                    std::io::Error::other(format!(
                        "{} old bytes supplied for a {len}-byte cluster",
                        o.len()
                    )),
                ));
            }
            None => &ZERO_CLUSTER[..len],
        };
        let d = diff_cluster(old, new);
        self.apply_diff(off, len, new, d)
    }

    fn apply_diff(
        &mut self,
        off: u64,
        len: usize,
        new: NewCluster<'_>,
        d: ClusterDiff,
    ) -> Result<(), SyncError> {
        self.stats.compared += len as u64;
        self.stats.unchanged += d.unchanged;
        if d.changed == 0 {
            return Ok(());
        }
        for i in 0..blocks_in(len) {
            if d.changed & (1 << i) == 0 {
                continue;
            }
            let boff = off + (i * BLOCK_SIZE) as u64;
            let blen = BLOCK_SIZE.min(len - i * BLOCK_SIZE);
            if d.zero & (1 << i) != 0 {
                self.stats.zeroed += blen as u64;
                self.queue_zero(boff, blen as u64)?;
            } else {
                // diff_cluster only reports a data change for a block that has bytes.
                let bytes = new.block(i, blen).unwrap_or(&ZERO_CLUSTER[..blen]);
                self.stats.written += blen as u64;
                self.queue_data(boff, bytes)?;
            }
        }
        Ok(())
    }

    /// A read handle on the same file for another thread (see [`ImageReader`]).
    pub fn reader(&self) -> Result<ImageReader, SyncError> {
        let file = self
            .file
            .try_clone()
            .map_err(|e| SyncError::io(&self.name, 0, "dup", e))?;
        Ok(ImageReader {
            file,
            name: self.name.clone(),
            size: self.size,
            known_zero_from: self.known_zero_from,
        })
    }

    /// Makes sure `[off, off + len)` is inside the read window.
    fn fill_window(&mut self, off: u64, len: usize) -> Result<(), SyncError> {
        let wend = self.window_start + self.window_len as u64;
        if off >= self.window_start && off + len as u64 <= wend {
            return Ok(());
        }
        // Read ahead up to WINDOW, but not into the range known to be zero, nor past the end.
        let end = (off + WINDOW as u64)
            .min(self.size)
            .min(self.known_zero_from.max(off + len as u64));
        let wlen = (end - off) as usize;
        if self.window.len() < wlen {
            self.window.resize(wlen.clamp(CLUSTER_SIZE, WINDOW), 0);
        }
        self.window_len = 0;
        self.file
            .read_exact_at(&mut self.window[..wlen], off)
            .map_err(|e| SyncError::io(&self.name, off, "read", e))?;
        self.window_start = off;
        self.window_len = wlen;
        Ok(())
    }

    fn queue_data(&mut self, off: u64, bytes: &[u8]) -> Result<(), SyncError> {
        let contiguous = !self.run.is_empty() && self.run_off + self.run.len() as u64 == off;
        if !contiguous || self.run.len() + bytes.len() > MAX_RUN {
            self.flush_data()?;
            self.run_off = off;
        }
        self.run.extend_from_slice(bytes);
        Ok(())
    }

    fn queue_zero(&mut self, off: u64, len: u64) -> Result<(), SyncError> {
        if self.mode == ZeroMode::Write {
            return self.queue_data(off, &ZERO_CLUSTER[..len as usize]);
        }
        if self.zero_len == 0 || self.zero_off + self.zero_len != off {
            self.flush_zero()?;
            self.zero_off = off;
        }
        self.zero_len += len;
        Ok(())
    }

    fn flush_data(&mut self) -> Result<(), SyncError> {
        if self.run.is_empty() {
            return Ok(());
        }
        self.file
            .write_all_at(&self.run, self.run_off)
            .map_err(|e| SyncError::io(&self.name, self.run_off, "write", e))?;
        self.stats.write_calls += 1;
        self.run.clear();
        Ok(())
    }

    fn flush_zero(&mut self) -> Result<(), SyncError> {
        if self.zero_len == 0 {
            return Ok(());
        }
        let (off, len) = (self.zero_off, self.zero_len);
        self.zero_len = 0;
        let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
        match fallocate(&self.file, flags, off as i64, len as i64) {
            Ok(()) => {
                self.stats.punch_calls += 1;
                Ok(())
            }
            Err(nix::errno::Errno::EOPNOTSUPP) => {
                // The file system cannot punch holes: write zeros from now on.
                tracing::debug!("{}: hole punching not supported, writing zeros", self.name);
                self.mode = ZeroMode::Write;
                let mut at = off;
                while at < off + len {
                    let n = (off + len - at).min(CLUSTER_SIZE as u64);
                    self.queue_data(at, &ZERO_CLUSTER[..n as usize])?;
                    at += n;
                }
                self.flush_data()
            }
            Err(e) => Err(SyncError::io(&self.name, off, "punch hole", e.into())),
        }
    }

    /// Issues every pending write and hole punch (the image then holds the new contents in
    /// the page cache).
    pub fn flush(&mut self) -> Result<(), SyncError> {
        self.flush_data()?;
        self.flush_zero()
    }

    /// Flushes, then (if `durable`) `fsync`s the file so a snapshot taken next contains the
    /// data even after a power loss. Returns the counters.
    pub fn finish(mut self, durable: bool) -> Result<SyncStats, SyncError> {
        self.flush()?;
        if durable {
            self.file
                .sync_all()
                .map_err(|e| SyncError::io(&self.name, 0, "fsync", e))?;
        }
        Ok(self.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }

    #[test]
    fn writes_only_changed_blocks_and_coalesces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("img");
        let mut old = vec![7u8; 3 * CLUSTER_SIZE];
        old[CLUSTER_SIZE..CLUSTER_SIZE + BLOCK_SIZE].fill(0);
        std::fs::write(&p, &old).unwrap();
        let mut new = old.clone();
        // Blocks 15 of cluster 0 and 0 of cluster 1 change: one coalesced write.
        new[15 * BLOCK_SIZE..17 * BLOCK_SIZE].fill(9);
        // Block 3 of cluster 2 becomes zero.
        new[2 * CLUSTER_SIZE + 3 * BLOCK_SIZE..2 * CLUSTER_SIZE + 4 * BLOCK_SIZE].fill(0);
        for mode in [ZeroMode::Punch, ZeroMode::Write] {
            std::fs::write(&p, &old).unwrap();
            let mut s = ImageSync::open(&p, "img", new.len() as u64, mode).unwrap();
            for c in 0..3u64 {
                let at = c as usize * CLUSTER_SIZE;
                s.apply(c, NewCluster::Full(&new[at..at + CLUSTER_SIZE]))
                    .unwrap();
            }
            let st = s.finish(true).unwrap();
            assert_eq!(read(&p), new);
            assert_eq!(st.written, 2 * BLOCK_SIZE as u64);
            assert_eq!(st.zeroed, BLOCK_SIZE as u64);
            assert_eq!(st.compared, 3 * CLUSTER_SIZE as u64);
            assert_eq!(
                st.unchanged,
                3 * CLUSTER_SIZE as u64 - 3 * BLOCK_SIZE as u64
            );
            match mode {
                ZeroMode::Punch => assert_eq!((st.write_calls, st.punch_calls), (1, 1)),
                ZeroMode::Write => assert_eq!((st.write_calls, st.punch_calls), (2, 0)),
            }
        }
    }

    #[test]
    fn new_file_is_sparse_and_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("img");
        let size = 2 * CLUSTER_SIZE as u64 + 100;
        let mut s = ImageSync::open(&p, "img", size, ZeroMode::Punch).unwrap();
        let mut data = vec![0u8; BLOCK_SIZE];
        data[0] = 1;
        s.apply(
            2,
            NewCluster::Packed {
                mask: 1,
                data: &data,
            },
        )
        .unwrap();
        s.apply(0, NewCluster::Packed { mask: 0, data: &[] })
            .unwrap();
        s.apply(1, NewCluster::Packed { mask: 0, data: &[] })
            .unwrap();
        let st = s.finish(false).unwrap();
        // Only the 100 bytes inside the image of that last block are written.
        assert_eq!(st.written, 100);
        assert_eq!(st.zeroed, 0);
        let got = read(&p);
        assert_eq!(got.len() as u64, size);
        assert_eq!(got[2 * CLUSTER_SIZE], 1);
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, &b)| b == 0 || i == 2 * CLUSTER_SIZE)
        );
        let meta = std::fs::metadata(&p).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert!(meta.blocks() * 512 < size, "a new image must stay sparse");
    }

    #[test]
    fn resize_truncates_and_extends() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("img");
        std::fs::write(&p, vec![3u8; 2 * CLUSTER_SIZE]).unwrap();
        let s = ImageSync::open(&p, "img", CLUSTER_SIZE as u64, ZeroMode::Punch).unwrap();
        s.finish(false).unwrap();
        assert_eq!(read(&p), vec![3u8; CLUSTER_SIZE]);
        let mut s = ImageSync::open(&p, "img", 3 * CLUSTER_SIZE as u64, ZeroMode::Punch).unwrap();
        // The grown tail is known zero: an all-zero cluster there is unchanged.
        s.apply(2, NewCluster::Packed { mask: 0, data: &[] })
            .unwrap();
        assert_eq!(s.stats().unchanged, CLUSTER_SIZE as u64);
        s.finish(false).unwrap();
        let got = read(&p);
        assert_eq!(got.len(), 3 * CLUSTER_SIZE);
        assert!(got[CLUSTER_SIZE..].iter().all(|&b| b == 0));
    }

    #[test]
    fn out_of_order_clusters_and_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("img");
        let n = 40usize;
        let old: Vec<u8> = (0..n * CLUSTER_SIZE)
            .map(|i| (i / BLOCK_SIZE) as u8)
            .collect();
        std::fs::write(&p, &old).unwrap();
        let mut new = old.clone();
        new[33 * CLUSTER_SIZE + 5] ^= 1;
        let mut s = ImageSync::open(&p, "img", old.len() as u64, ZeroMode::Punch).unwrap();
        for c in (0..n).rev().step_by(2).chain((0..n).step_by(2)) {
            s.apply(
                c as u64,
                NewCluster::Full(&new[c * CLUSTER_SIZE..(c + 1) * CLUSTER_SIZE]),
            )
            .unwrap();
        }
        let err = s
            .apply(n as u64, NewCluster::Full(&new[..CLUSTER_SIZE]))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("img: byte 2621440: cluster 40 lies beyond"),
            "{err}"
        );
        let err = s
            .apply(
                0,
                NewCluster::Packed {
                    mask: 3,
                    data: &new[..BLOCK_SIZE],
                },
            )
            .unwrap_err();
        assert!(matches!(err, SyncError::ShortCluster { needed: 8192, .. }));
        let st = s.finish(false).unwrap();
        assert_eq!(read(&p), new);
        assert_eq!((st.written, st.write_calls), (BLOCK_SIZE as u64, 1));
    }
}
