//! Reads the disk images of a snapshot for the VMA writer: large sequential reads on a thread
//! of its own, holes skipped via `SEEK_DATA`/`SEEK_HOLE` without reading them.
//!
//! Why a thread: reading (disk or ZFS ARC), building extents and compressing then overlap;
//! the writer side never waits for I/O unless the disk is the bottleneck. Why `SEEK_DATA`:
//! VM images are mostly sparse, and on ZFS with compression all-zero records are holes too;
//! a hole becomes a run of all-zero clusters (mask 0 entries) at no read cost.
//!
//! Memory is bounded: at most `depth` chunks are in flight, and buffers come back over a
//! return channel for reuse.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, channel, sync_channel};
use std::thread::JoinHandle;

use nix::errno::Errno;
use nix::unistd::{Whence, lseek};
use vma::format::CLUSTER_SIZE;

use crate::error::RestoreError;

const CS: u64 = CLUSTER_SIZE as u64;
/// Clusters per read: 4 MiB, large enough for sequential throughput on any backend.
pub const CHUNK_CLUSTERS: u64 = 64;
/// Longest zero run handed over at once (1 GiB), so progress moves smoothly over huge holes.
const MAX_ZERO_RUN: u64 = 16 * 1024;

/// A run of clusters of one image: read them, or they are all zero (a hole).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    Data { first: u64, count: u64 },
    Zero { first: u64, count: u64 },
}

/// Turns byte extents of data (ascending, non-overlapping, as `SEEK_DATA`/`SEEK_HOLE` report
/// them) into cluster runs covering `0..total_clusters` exactly: a cluster touched by data is
/// read, everything else is a zero run. Pure over its input iterator.
#[derive(Debug)]
pub struct ClusterRuns<I> {
    extents: I,
    total: u64,
    next: u64,
    pending: Option<(u64, u64)>,
    extents_done: bool,
}

impl<I: Iterator<Item = io::Result<(u64, u64)>>> ClusterRuns<I> {
    pub fn new(extents: I, total_clusters: u64) -> Self {
        ClusterRuns {
            extents,
            total: total_clusters,
            next: 0,
            pending: None,
            extents_done: false,
        }
    }

    fn to_clusters(&self, (start, end): (u64, u64)) -> (u64, u64) {
        (
            (start / CS).min(self.total),
            end.div_ceil(CS).min(self.total),
        )
    }
}

impl<I: Iterator<Item = io::Result<(u64, u64)>>> Iterator for ClusterRuns<I> {
    type Item = io::Result<Run>;

    fn next(&mut self) -> Option<io::Result<Run>> {
        loop {
            if let Some((a, b)) = self.pending {
                let a = a.max(self.next);
                if self.next < a {
                    let run = Run::Zero {
                        first: self.next,
                        count: a - self.next,
                    };
                    self.next = a;
                    return Some(Ok(run));
                }
                if self.extents_done {
                    self.pending = None;
                    if a < b {
                        self.next = b;
                        return Some(Ok(Run::Data {
                            first: a,
                            count: b - a,
                        }));
                    }
                    continue;
                }
                match self.extents.next() {
                    Some(Ok(e)) => {
                        let (ca, cb) = self.to_clusters(e);
                        if ca <= b {
                            self.pending = Some((a, b.max(cb)));
                        } else {
                            self.pending = Some((ca, cb));
                            if a < b {
                                self.next = b;
                                return Some(Ok(Run::Data {
                                    first: a,
                                    count: b - a,
                                }));
                            }
                        }
                    }
                    Some(Err(e)) => return Some(Err(e)),
                    None => self.extents_done = true,
                }
            } else if !self.extents_done {
                match self.extents.next() {
                    Some(Ok(e)) => self.pending = Some(self.to_clusters(e)),
                    Some(Err(e)) => return Some(Err(e)),
                    None => self.extents_done = true,
                }
            } else if self.next < self.total {
                let run = Run::Zero {
                    first: self.next,
                    count: self.total - self.next,
                };
                self.next = self.total;
                return Some(Ok(run));
            } else {
                return None;
            }
        }
    }
}

/// The data extents of a file via `lseek(SEEK_DATA/SEEK_HOLE)`. A file system without
/// support (EINVAL) is treated as all data, which is correct, only slower.
#[derive(Debug)]
pub struct DataExtents<'a> {
    file: &'a File,
    pos: u64,
    size: u64,
}

impl<'a> DataExtents<'a> {
    pub fn new(file: &'a File, size: u64) -> Self {
        DataExtents { file, pos: 0, size }
    }
}

impl Iterator for DataExtents<'_> {
    type Item = io::Result<(u64, u64)>;

    fn next(&mut self) -> Option<io::Result<(u64, u64)>> {
        if self.pos >= self.size {
            return None;
        }
        let off = |v: u64| v as libc::off_t;
        let data = match lseek(self.file, off(self.pos), Whence::SeekData) {
            Ok(d) => d as u64,
            Err(Errno::ENXIO) => {
                self.pos = self.size;
                return None;
            }
            Err(Errno::EINVAL | Errno::EOPNOTSUPP) => {
                let e = (self.pos, self.size);
                self.pos = self.size;
                return Some(Ok(e));
            }
            Err(e) => return Some(Err(e.into())),
        };
        if data >= self.size {
            self.pos = self.size;
            return None;
        }
        let hole = match lseek(self.file, off(data), Whence::SeekHole) {
            Ok(h) => (h as u64).min(self.size),
            Err(e) => return Some(Err(e.into())),
        };
        self.pos = hole.max(data + 1);
        Some(Ok((data, hole)))
    }
}

/// One disk image to read.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub path: PathBuf,
    pub size: u64,
}

/// What the reader thread hands over, in device order and ascending cluster order.
#[derive(Debug)]
pub enum Piece {
    /// `len` valid bytes of `buf` hold clusters `first..` of image `image` (the last cluster of
    /// an image may be short: `len` stops at the image end).
    Data {
        image: usize,
        first: u64,
        buf: Vec<u8>,
        len: usize,
    },
    /// Clusters `first..first + count` of image `image` are all zero.
    Zero {
        image: usize,
        first: u64,
        count: u64,
    },
}

/// Handle of a running reader thread.
#[derive(Debug)]
pub struct ImageReader {
    pub pieces: Receiver<Result<Piece, RestoreError>>,
    /// Send `Piece::Data` buffers back here for reuse.
    pub recycle: Sender<Vec<u8>>,
    thread: Option<JoinHandle<()>>,
}

impl ImageReader {
    /// Starts reading `images` in order (opened before the thread starts, so a missing image is
    /// reported at once). At most `depth` pieces wait in the channel.
    pub fn start(images: Vec<ImageSpec>, depth: usize) -> Result<ImageReader, RestoreError> {
        let mut files = Vec::with_capacity(images.len());
        for img in &images {
            let f = File::open(&img.path).map_err(crate::error::io_err(&img.path))?;
            // Tell the kernel we stream it once: bigger readahead, no cache pollution worries.
            let _ = nix::fcntl::posix_fadvise(
                &f,
                0,
                0,
                nix::fcntl::PosixFadviseAdvice::POSIX_FADV_SEQUENTIAL,
            );
            files.push(f);
        }
        let (tx, rx) = sync_channel(depth);
        let (recycle_tx, recycle_rx) = channel();
        let thread = std::thread::Builder::new()
            .name("vzsnap-image-reader".into())
            .spawn(move || read_all(&images, &files, &tx, &recycle_rx))
            .map_err(crate::error::io_err("<reader thread>"))?;
        Ok(ImageReader {
            pieces: rx,
            recycle: recycle_tx,
            thread: Some(thread),
        })
    }
}

impl Drop for ImageReader {
    fn drop(&mut self) {
        // Closing our receiver first makes a blocked send fail, so the thread ends promptly.
        let (_, dead) = sync_channel(0);
        drop(std::mem::replace(&mut self.pieces, dead));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_all(
    images: &[ImageSpec],
    files: &[File],
    tx: &SyncSender<Result<Piece, RestoreError>>,
    recycle: &Receiver<Vec<u8>>,
) {
    let chunk_bytes = (CHUNK_CLUSTERS * CS) as usize;
    for (image, (spec, file)) in images.iter().zip(files).enumerate() {
        let total = spec.size.div_ceil(CS);
        for run in ClusterRuns::new(DataExtents::new(file, spec.size), total) {
            let run = match run {
                Ok(r) => r,
                Err(source) => {
                    let _ = tx.send(Err(RestoreError::Io {
                        path: spec.path.clone(),
                        source,
                    }));
                    return;
                }
            };
            match run {
                Run::Zero { first, count } => {
                    let mut c = first;
                    while c < first + count {
                        let n = (first + count - c).min(MAX_ZERO_RUN);
                        if tx
                            .send(Ok(Piece::Zero {
                                image,
                                first: c,
                                count: n,
                            }))
                            .is_err()
                        {
                            return;
                        }
                        c += n;
                    }
                }
                Run::Data { first, count } => {
                    let mut c = first;
                    while c < first + count {
                        let n = (first + count - c).min(CHUNK_CLUSTERS);
                        let offset = c * CS;
                        let len = (n * CS).min(spec.size - offset) as usize;
                        let mut buf = match recycle.try_recv() {
                            Ok(b) => b,
                            Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                                vec![0u8; chunk_bytes]
                            }
                        };
                        if let Err(source) = file.read_exact_at(&mut buf[..len], offset) {
                            let source = io::Error::new(
                                source.kind(),
                                format!("reading {len} bytes at byte {offset}: {source}"),
                            );
                            let _ = tx.send(Err(RestoreError::Io {
                                path: spec.path.clone(),
                                source,
                            }));
                            return;
                        }
                        if tx
                            .send(Ok(Piece::Data {
                                image,
                                first: c,
                                buf,
                                len,
                            }))
                            .is_err()
                        {
                            return;
                        }
                        c += n;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn runs(extents: &[(u64, u64)], total: u64) -> Vec<Run> {
        ClusterRuns::new(extents.iter().map(|&e| Ok(e)), total)
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn extents_become_cluster_runs() {
        assert_eq!(runs(&[], 4), vec![Run::Zero { first: 0, count: 4 }]);
        assert_eq!(runs(&[], 0), vec![]);
        assert_eq!(
            runs(&[(0, 4 * CS)], 4),
            vec![Run::Data { first: 0, count: 4 }]
        );
        // Unaligned extents widen to whole clusters; touching/overlapping ones merge.
        assert_eq!(
            runs(
                &[
                    (CS + 10, CS + 20),
                    (2 * CS - 1, 2 * CS + 1),
                    (5 * CS, 6 * CS)
                ],
                8
            ),
            vec![
                Run::Zero { first: 0, count: 1 },
                Run::Data { first: 1, count: 2 },
                Run::Zero { first: 3, count: 2 },
                Run::Data { first: 5, count: 1 },
                Run::Zero { first: 6, count: 2 },
            ]
        );
        // Data up to a short last cluster.
        assert_eq!(
            runs(&[(3 * CS, 3 * CS + 100)], 4),
            vec![
                Run::Zero { first: 0, count: 3 },
                Run::Data { first: 3, count: 1 }
            ]
        );
    }

    proptest::proptest! {
        /// Runs tile 0..total exactly, alternate kinds never repeat back to back, and every
        /// cluster a data extent touches is in a data run.
        #[test]
        fn runs_tile_the_image(raw in proptest::collection::vec((0u64..40, 1u64..300_000), 0..12), total in 0u64..48) {
            let mut pos = 0;
            let mut extents = Vec::new();
            for (gap, len) in raw {
                let start = pos + gap * 9973;
                extents.push((start, start + len));
                pos = start + len;
            }
            let rs = runs(&extents, total);
            let mut next = 0;
            let mut data = vec![false; total as usize];
            for r in &rs {
                let (first, count, is_data) = match *r {
                    Run::Data { first, count } => (first, count, true),
                    Run::Zero { first, count } => (first, count, false),
                };
                proptest::prop_assert_eq!(first, next);
                proptest::prop_assert!(count > 0);
                for c in first..first + count { data[c as usize] = is_data; }
                next += count;
            }
            proptest::prop_assert_eq!(next, total);
            for (s, e) in extents {
                for c in s / CS..e.div_ceil(CS) {
                    if c < total { proptest::prop_assert!(data[c as usize], "cluster {} not read", c); }
                }
            }
        }
    }

    #[test]
    fn seek_data_finds_the_written_ranges_of_a_sparse_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse.raw");
        let mut f = File::create(&path).unwrap();
        f.set_len(64 * CS + 1000).unwrap();
        f.write_all_at(&[1u8; 100], 10 * CS + 5).unwrap();
        f.write_all_at(&[2u8; 100], 64 * CS + 10).unwrap();
        f.flush().unwrap();
        f.sync_all().unwrap();
        let f = File::open(&path).unwrap();
        let size = f.metadata().unwrap().len();
        let rs: Vec<Run> = ClusterRuns::new(DataExtents::new(&f, size), size.div_ceil(CS))
            .map(Result::unwrap)
            .collect();
        // The file system may allocate in blocks larger than what we wrote, but the data
        // clusters 10 and 64 must be in data runs and most of the file must be zero runs.
        let zero: u64 = rs
            .iter()
            .map(|r| {
                if let Run::Zero { count, .. } = r {
                    *count
                } else {
                    0
                }
            })
            .sum();
        assert!(zero >= 60, "{rs:?}");
        let has = |c: u64| {
            rs.iter().any(
                |r| matches!(*r, Run::Data { first, count } if (first..first + count).contains(&c)),
            )
        };
        assert!(has(10) && has(64), "{rs:?}");
    }

    #[test]
    fn reader_thread_delivers_every_cluster_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut images = Vec::new();
        for (i, size) in [(0u8, 3 * CHUNK_CLUSTERS * CS + 777), (1, 100)].into_iter() {
            let path = dir.path().join(format!("d{i}"));
            let f = File::create(&path).unwrap();
            f.set_len(size).unwrap();
            let n = ((CHUNK_CLUSTERS * CS) as usize + 3).min(size as usize - 20);
            f.write_all_at(&vec![i + 1; n], 5).unwrap();
            f.write_all_at(&[9u8; 10], size - 10).unwrap();
            assert_eq!(f.metadata().unwrap().len(), size);
            images.push(ImageSpec { path, size });
        }
        let reader = ImageReader::start(images.clone(), 2).unwrap();
        let mut rebuilt: Vec<Vec<u8>> = images.iter().map(|i| vec![0u8; i.size as usize]).collect();
        let mut next = [0u64; 2];
        for piece in reader.pieces.iter() {
            match piece.unwrap() {
                Piece::Data {
                    image,
                    first,
                    buf,
                    len,
                } => {
                    assert_eq!(first, next[image]);
                    let off = (first * CS) as usize;
                    rebuilt[image][off..off + len].copy_from_slice(&buf[..len]);
                    next[image] += (len as u64).div_ceil(CS);
                    let _ = reader.recycle.send(buf); // fails once the thread is done
                }
                Piece::Zero {
                    image,
                    first,
                    count,
                } => {
                    assert_eq!(first, next[image]);
                    next[image] += count;
                }
            }
        }
        for (i, img) in images.iter().enumerate() {
            assert_eq!(next[i], img.size.div_ceil(CS));
            assert!(
                rebuilt[i] == std::fs::read(&img.path).unwrap(),
                "image {i} differs"
            );
        }
    }
}
