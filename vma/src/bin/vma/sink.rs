//! Where `vma extract` puts a device's clusters: positioned writes (`pwrite`) into a sparse
//! raw file, an existing image or a block device, because clusters arrive in any order.
//!
//! Stored blocks are written in runs (adjacent stored blocks of a cluster are adjacent in the
//! extent too, so a run is one `pwrite`), nothing is written past the device size, and zero
//! blocks are written only when asked (`1:` in the `-r` map: the target may hold old data).

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::rc::Rc;

use vma::ClusterRef;
use vma::writeback::Writeback;

use crate::throttle::Throttle;

const CLUSTER: u64 = 65536;
const BLOCK: usize = 4096;
static ZEROS: [u8; 65536] = [0; 65536];

/// A disk target.
#[derive(Debug)]
pub struct DiskSink {
    /// Where, for messages.
    pub path: PathBuf,
    file: File,
    /// The device size; bytes beyond it are never written.
    size: u64,
    write_zero: bool,
    throttle: Option<Rc<RefCell<Throttle>>>,
    /// Early write-back, so the final flush does not write the whole image at once.
    writeback: RefCell<Writeback>,
}

impl DiskSink {
    /// Wraps an open, writable target of at least `size` bytes.
    pub fn new(
        path: PathBuf,
        file: File,
        size: u64,
        write_zero: bool,
        throttle: Option<Rc<RefCell<Throttle>>>,
    ) -> Self {
        Self {
            path,
            file,
            size,
            write_zero,
            throttle,
            writeback: RefCell::new(Writeback::new()),
        }
    }

    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        if offset >= self.size {
            return Ok(());
        }
        let n = data.len().min((self.size - offset) as usize);
        self.file.write_all_at(&data[..n], offset)?;
        self.writeback
            .borrow_mut()
            .wrote(&self.file, offset, n as u64);
        if let Some(t) = &self.throttle {
            t.borrow_mut().account(n as u64);
        }
        Ok(())
    }

    /// Writes one cluster's stored blocks (and zero blocks if `write_zero`).
    pub fn write_cluster(&self, c: &ClusterRef<'_>) -> io::Result<()> {
        let base = u64::from(c.cluster) * CLUSTER;
        if c.mask == 0xffff {
            return self.write_at(c.data(), base);
        }
        let data = c.data();
        let mut used = 0usize; // stored bytes consumed
        let mut j = 0usize;
        while j < 16 {
            let stored = c.mask & (1 << j) != 0;
            let mut k = j;
            while k < 16 && (c.mask & (1 << k) != 0) == stored {
                k += 1;
            }
            let len = (k - j) * BLOCK;
            let at = base + (j * BLOCK) as u64;
            if stored {
                self.write_at(&data[used..used + len], at)?;
                used += len;
            } else if self.write_zero {
                self.write_at(&ZEROS[..len], at)?;
            }
            j = k;
        }
        Ok(())
    }

    /// Flushes the data to stable storage (C: `blk_flush` on every target).
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// The legacy RAM-state stream, written to `vmstate.bin`.
///
/// C writes the stored blocks back to back and skips zero blocks, which shifts everything
/// after a zero block; we write each block at its position (cluster * 64 KiB + block * 4 KiB),
/// which is identical whenever every block is stored and correct otherwise.
#[derive(Debug)]
pub struct VmstateSink {
    /// Where, for messages.
    pub path: PathBuf,
    file: File,
    end: u64,
}

impl VmstateSink {
    /// Wraps the newly created `vmstate.bin`.
    pub fn new(path: PathBuf, file: File) -> Self {
        Self { path, file, end: 0 }
    }

    /// Writes one cluster at its position.
    pub fn write_cluster(&mut self, c: &ClusterRef<'_>) -> io::Result<()> {
        let base = u64::from(c.cluster) * CLUSTER;
        for (j, block) in c.blocks() {
            if let Some(b) = block {
                self.file.write_all_at(b, base + (j * BLOCK) as u64)?;
            }
        }
        self.end = self.end.max(base + CLUSTER);
        Ok(())
    }

    /// Gives the file its full length (trailing zero blocks) and flushes it.
    pub fn finish(&self) -> io::Result<()> {
        if self.file.metadata()?.len() < self.end {
            self.file.set_len(self.end)?;
        }
        self.file.sync_data()
    }
}
