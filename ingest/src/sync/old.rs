//! [`OldData`]: the destination's old contents for the clusters of one work item (an extent,
//! or a chunk of a raw source), read by the pipeline's middle stage.
//!
//! Reads are planned first, one slot per cluster, then issued with adjacent ranges of the
//! same image merged into one `pread` — an extent of a sequential archive becomes a single
//! read of up to 3.7 MiB.

use super::SyncError;
use super::image::ImageReader;

#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Known zero (or nothing to read): the writer uses the zero page.
    Zero,
    /// `len` bytes at `pos` of the buffer.
    Read { pos: usize, len: usize },
}

#[derive(Debug, Clone, Copy)]
struct Planned {
    image: u8,
    off: u64,
    len: usize,
    pos: usize,
}

/// See the module docs. Reused across work items; allocation-free once grown.
#[derive(Debug, Default)]
pub struct OldData {
    buf: Vec<u8>,
    slots: Vec<Slot>,
    plan: Vec<Planned>,
    used: usize,
}

impl OldData {
    pub fn clear(&mut self) {
        self.slots.clear();
        self.plan.clear();
        self.used = 0;
    }

    /// The next cluster needs no read (known zero, or it will be rejected by the writer).
    pub fn push_zero(&mut self) {
        self.slots.push(Slot::Zero);
    }

    /// The next cluster is `len` bytes at `off` of image `image`.
    pub fn push_read(&mut self, image: u8, off: u64, len: usize) {
        let pos = self.used;
        self.used += len;
        self.slots.push(Slot::Read { pos, len });
        match self.plan.last_mut() {
            Some(p) if p.image == image && p.off + p.len as u64 == off && p.pos + p.len == pos => {
                p.len += len;
            }
            _ => self.plan.push(Planned {
                image,
                off,
                len,
                pos,
            }),
        }
    }

    /// Issues the planned reads; `reader(image)` gives the image's reader.
    pub fn read<'r>(
        &mut self,
        reader: impl Fn(u8) -> Option<&'r ImageReader>,
    ) -> Result<(), SyncError> {
        if self.buf.len() < self.used {
            self.buf.resize(self.used, 0);
        }
        for p in &self.plan {
            // Planned only for images that have a reader.
            if let Some(r) = reader(p.image) {
                r.read_at(p.off, &mut self.buf[p.pos..p.pos + p.len])?;
            }
        }
        Ok(())
    }

    /// The old bytes of cluster slot `i`; `None` = zeros.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        match self.slots.get(i)? {
            Slot::Zero => None,
            Slot::Read { pos, len } => Some(&self.buf[*pos..*pos + *len]),
        }
    }
}
