//! Early write-back for large outputs (`vma extract` images, restored archives).
//!
//! Why: the kernel keeps written data dirty in the page cache until the dirty limits (here
//! gigabytes) are reached, so a tool that writes a multi-GiB image and then `fdatasync`s it
//! first only copies into memory and then waits for the whole disk write at the end — the
//! time is decode + write instead of max(decode, write). Asking for write-back every
//! [`WRITEBACK_EVERY`] bytes keeps the disk busy while the input is still being decoded, and
//! the final sync finds little left to do.
//!
//! How: `posix_fadvise(POSIX_FADV_DONTNEED)` over the range written since the previous
//! request. Linux starts asynchronous write-back of the dirty pages in the range
//! (`WB_SYNC_NONE`) and drops the pages that are already clean — those written back after the
//! previous request — so a large extract does not push everything else out of the cache
//! either. It never discards data: dirty pages are only written, never dropped. Advisory only:
//! a file system that ignores it (ZFS keeps file data in the ARC, not in dirty pages) just
//! flushes at the final sync as before.

use std::os::fd::AsFd;

use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};

/// Bytes written between two write-back requests.
pub const WRITEBACK_EVERY: u64 = 32 << 20;

/// Tracks what was written since the last request; see the module docs.
#[derive(Debug, Default, Clone)]
pub struct Writeback {
    /// The range written since the last request (`lo == hi`: nothing).
    lo: u64,
    hi: u64,
    /// The range of the previous request: clean by now, dropped with the next request.
    prev: Option<(u64, u64)>,
    pending: u64,
}

impl Writeback {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `len` bytes written at `off` of `file`; issues a request once
    /// [`WRITEBACK_EVERY`] bytes are pending. Returns whether it did.
    pub fn wrote(&mut self, file: impl AsFd, off: u64, len: u64) -> bool {
        if len == 0 {
            return false;
        }
        if self.pending == 0 {
            (self.lo, self.hi) = (off, off + len);
        } else {
            self.lo = self.lo.min(off);
            self.hi = self.hi.max(off + len);
        }
        self.pending += len;
        if self.pending < WRITEBACK_EVERY {
            return false;
        }
        let (lo, hi) = match self.prev {
            Some((a, b)) => (a.min(self.lo), b.max(self.hi)),
            None => (self.lo, self.hi),
        };
        // Advisory: an error (e.g. ESPIPE on a pipe) only means no early write-back.
        let _ = posix_fadvise(
            file,
            lo as i64,
            (hi - lo) as i64,
            PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
        self.prev = Some((self.lo, self.hi));
        self.pending = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    #[test]
    fn requests_every_threshold_and_keeps_data() {
        let mut f = tempfile::tempfile().unwrap();
        let mut w = Writeback::new();
        let chunk = vec![7u8; 1 << 20];
        let mut requests = 0;
        for i in 0..(2 * WRITEBACK_EVERY / chunk.len() as u64) {
            f.write_all(&chunk).unwrap();
            if w.wrote(&f, i * chunk.len() as u64, chunk.len() as u64) {
                requests += 1;
            }
        }
        assert_eq!(requests, 2);
        // Out of order writes are covered too; nothing is lost.
        f.write_all_at(b"x", 5).unwrap();
        w.wrote(&f, 5, 1);
        f.flush().unwrap();
        let mut b = [0u8; 3];
        f.read_exact_at(&mut b, 4).unwrap();
        assert_eq!(&b, b"\x07x\x07");
        assert_eq!(f.metadata().unwrap().len(), 2 * WRITEBACK_EVERY);
        assert!(!w.wrote(&f, 0, 0));
    }
}
