//! `blocksync`: one raw file onto another with the same engine as ingest.
//!
//! The source is read sequentially in [`CHUNK`]-byte preads on one thread, the old contents
//! of the destination on a second, while this thread compares and writes — the same pipeline
//! as the VMA path; every 64 KiB of the source is a
//! [`NewCluster::Full`]. A missing destination is created sparse (only non-zero blocks are
//! written); a destination of another size is truncated or extended first.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};

use super::compare::{CLUSTER_SIZE, NewCluster};
use super::old::OldData;
use super::{ImageSync, SyncError, SyncStats, ZeroMode, pipeline};

/// Bytes per source read (a multiple of the cluster size).
pub const CHUNK: usize = 1 << 20;
/// Source chunks in flight.
pub const CHUNK_BUFFERS: usize = 4;

/// Options of [`sync_file`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RawSyncOptions {
    pub zero_mode: ZeroMode,
    /// `fsync` the destination at the end.
    pub durable: bool,
}

#[derive(Debug, Default)]
struct Chunk {
    offset: u64,
    len: usize,
    data: Vec<u8>,
    old: OldData,
}

/// Size of a regular file or block device.
fn source_size(f: &mut File, name: &str) -> Result<u64, SyncError> {
    let meta = f
        .metadata()
        .map_err(|e| SyncError::io(name, 0, "stat", e))?;
    if meta.is_file() {
        return Ok(meta.len());
    }
    // A block device reports length 0; its end is where a seek to the end lands.
    let end = f
        .seek(SeekFrom::End(0))
        .map_err(|e| SyncError::io(name, 0, "seek", e))?;
    Ok(end)
}

/// Makes `dst` byte-identical to `src`, writing only the 4 KiB blocks that differ.
/// `after_chunk` runs after each source chunk with the source bytes done.
pub fn sync_file(
    src: &Path,
    dst: &Path,
    opts: RawSyncOptions,
    mut after_chunk: impl FnMut(u64),
) -> Result<SyncStats, SyncError> {
    let sname = src.display().to_string();
    let dname = dst.display().to_string();
    let mut sf = File::open(src).map_err(|e| SyncError::io(&sname, 0, "open", e))?;
    let size = source_size(&mut sf, &sname)?;
    let _ = posix_fadvise(&sf, 0, 0, PosixFadviseAdvice::POSIX_FADV_SEQUENTIAL);
    let mut img = ImageSync::open(dst, dname, size, opts.zero_mode)?;
    let old_reader = img.reader()?;
    let mut next = 0u64;
    let buffers = (0..CHUNK_BUFFERS).map(|_| Chunk::default()).collect();
    pipeline::run::<_, SyncError, _, _, _>(
        buffers,
        |c: &mut Chunk| {
            if next >= size {
                return Ok(false);
            }
            let len = (CHUNK as u64).min(size - next) as usize;
            if c.data.len() < CHUNK {
                c.data.resize(CHUNK, 0);
            }
            sf.read_exact_at(&mut c.data[..len], next)
                .map_err(|e| SyncError::io(&sname, next, "read", e))?;
            c.offset = next;
            c.len = len;
            next += len as u64;
            Ok(true)
        },
        |c: &mut Chunk| {
            c.old.clear();
            let first = c.offset / CLUSTER_SIZE as u64;
            for i in 0..c.len.div_ceil(CLUSTER_SIZE) as u64 {
                match old_reader.cluster_range(first + i) {
                    Some((off, len)) if !old_reader.known_zero(off) => c.old.push_read(0, off, len),
                    _ => c.old.push_zero(),
                }
            }
            c.old.read(|_| Some(&old_reader))
        },
        |c: &mut Chunk| {
            for (i, piece) in c.data[..c.len].chunks(CLUSTER_SIZE).enumerate() {
                let cluster = c.offset / CLUSTER_SIZE as u64 + i as u64;
                img.apply_old(cluster, NewCluster::Full(piece), c.old.get(i))?;
            }
            after_chunk(c.offset + c.len as u64);
            Ok(())
        },
    )?;
    let mut stats = img.finish(opts.durable)?;
    stats.read = size;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::compare::BLOCK_SIZE;

    #[test]
    fn syncs_and_counts_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let (s, d) = (dir.path().join("s"), dir.path().join("d"));
        let n = 3 * CHUNK + 5 * BLOCK_SIZE + 17;
        let src: Vec<u8> = (0..n).map(|i| ((i / 4096) % 251) as u8 + 1).collect();
        std::fs::write(&s, &src).unwrap();
        // Missing destination: created; every non-zero block written.
        let st = sync_file(&s, &d, RawSyncOptions::default(), |_| {}).unwrap();
        assert_eq!(std::fs::read(&d).unwrap(), src);
        assert_eq!(st.written, n as u64);
        // Identical: nothing written.
        let st = sync_file(&s, &d, RawSyncOptions::default(), |_| {}).unwrap();
        assert_eq!((st.written, st.zeroed, st.write_calls), (0, 0, 0));
        assert_eq!(st.unchanged, n as u64);
        // Longer destination with garbage: truncated, one block changed, one zeroed.
        let mut dst = src.clone();
        dst[CHUNK + 10] ^= 0xff;
        dst.extend(vec![1u8; 3 * BLOCK_SIZE]);
        std::fs::write(&d, &dst).unwrap();
        let mut src2 = src.clone();
        src2[2 * CHUNK..2 * CHUNK + BLOCK_SIZE].fill(0);
        std::fs::write(&s, &src2).unwrap();
        let mut last = 0;
        let st = sync_file(
            &s,
            &d,
            RawSyncOptions {
                durable: true,
                ..Default::default()
            },
            |p| last = p,
        )
        .unwrap();
        assert_eq!(std::fs::read(&d).unwrap(), src2);
        assert_eq!(
            (st.written, st.zeroed),
            (BLOCK_SIZE as u64, BLOCK_SIZE as u64)
        );
        assert_eq!(last, n as u64);
        assert_eq!(st.read, n as u64);
    }

    #[test]
    fn missing_source_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = sync_file(
            &dir.path().join("nope"),
            &dir.path().join("d"),
            RawSyncOptions::default(),
            |_| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("nope: byte 0: open:"), "{err}");
    }
}
