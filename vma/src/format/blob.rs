//! The header's blob buffer: config names, config data and device names.
//!
//! Layout (C code, not `vma_spec.txt`): one pad byte at offset 0 (so pointer 0 means "none"),
//! then blobs, each a **little-endian** u16 length followed by that many bytes. Strings include
//! their terminating NUL in the length. Pointers stored elsewhere in the header are offsets
//! relative to the start of the blob buffer and point at a blob's length prefix.

use super::MAX_BLOB_LEN;

/// A parsed blob buffer: its bytes plus the blob offsets the C reader's walk registers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobTable {
    data: Vec<u8>,
    /// Offsets of the registered blobs, ascending (the walk only moves forward).
    starts: Vec<u32>,
}

/// Why a blob pointer does not resolve; used in [`crate::Error::InvalidBlobPointer`].
pub mod reason {
    pub const NO_BLOB: &str = "does not point at a blob";
    pub const NOT_NUL_TERMINATED: &str = "string blob is not NUL-terminated";
    pub const NOT_UTF8: &str = "string is not valid UTF-8";
}

impl BlobTable {
    /// Walks the blob buffer exactly like `vma_reader_read_head`:
    /// `p = 1; while p + 2 <= size { len = LE16(p); if p + len + 2 <= size { register p };
    /// p += len + 2 }`. A blob that would run past the end is not registered, but the walk
    /// still moves on (and so ends). Never fails; bad pointers are found on lookup.
    pub fn parse(region: &[u8]) -> BlobTable {
        let size = region.len();
        let mut starts = Vec::new();
        let mut p = 1usize;
        while p + 2 <= size {
            let len = usize::from(u16::from_le_bytes([region[p], region[p + 1]]));
            if p + len + 2 <= size {
                // p < size <= MAX_HEADER_SIZE, so it fits in u32.
                starts.push(p as u32);
            }
            p += len + 2;
        }
        BlobTable {
            data: region.to_vec(),
            starts,
        }
    }

    /// The blob buffer's bytes (`blob_buffer_size` of them).
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// Offsets of all registered blobs.
    pub fn offsets(&self) -> &[u32] {
        &self.starts
    }

    /// The data of the blob whose length prefix is at `ptr`, if the walk registered one there.
    pub fn get(&self, ptr: u32) -> Option<&[u8]> {
        self.starts.binary_search(&ptr).ok()?;
        let p = ptr as usize;
        let len = usize::from(u16::from_le_bytes([self.data[p], self.data[p + 1]]));
        Some(&self.data[p + 2..p + 2 + len])
    }

    /// A string blob (C `get_header_str`): the blob must end in NUL. Like C, the string is
    /// what precedes the first NUL. We also require UTF-8, since names become file names.
    pub fn get_str(&self, ptr: u32) -> Result<&str, &'static str> {
        let b = self.get(ptr).ok_or(reason::NO_BLOB)?;
        if b.last() != Some(&0) {
            return Err(reason::NOT_NUL_TERMINATED);
        }
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        std::str::from_utf8(&b[..end]).map_err(|_| reason::NOT_UTF8)
    }
}

/// Builds a blob buffer with the C writer's allocation rule, so headers come out byte-exact.
///
/// `allocate_header_blob`: the table starts empty with `pos = 1`; before each blob of `len`
/// bytes, if `size < pos + len + 2` then `size += ceil((len + 2) / 512) * 512` (zero-filled).
/// The header is then `12288 + size` bytes and `blob_buffer_size = pos`.
#[derive(Debug, Clone)]
pub struct BlobTableBuilder {
    buf: Vec<u8>,
    pos: usize,
}

impl Default for BlobTableBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BlobTableBuilder {
    pub fn new() -> Self {
        BlobTableBuilder {
            buf: Vec::new(),
            pos: 1,
        }
    }

    /// A table of one zeroed 512-byte block and no blobs: what a header without configs and
    /// devices needs, since readers require `header_size > 12288`. (The C writer never gets
    /// here: `vma create` always has a device or a config.)
    pub fn with_empty_block() -> Self {
        BlobTableBuilder {
            buf: vec![0; 512],
            pos: 1,
        }
    }

    /// Appends a raw blob and returns its pointer, or `None` if it is longer than 65535 bytes
    /// (C returns 0 there).
    pub fn add_blob(&mut self, data: &[u8]) -> Option<u32> {
        let len = data.len();
        if len > MAX_BLOB_LEN {
            return None;
        }
        if self.buf.is_empty() || self.buf.len() < self.pos + len + 2 {
            let grow = (len + 2).div_ceil(512) * 512;
            self.buf.resize(self.buf.len() + grow, 0);
        }
        let p = self.pos;
        self.buf[p..p + 2].copy_from_slice(&(len as u16).to_le_bytes());
        self.buf[p + 2..p + 2 + len].copy_from_slice(data);
        self.pos += len + 2;
        u32::try_from(p).ok()
    }

    /// Appends a string blob (with its NUL) and returns its pointer; `None` if too long.
    pub fn add_str(&mut self, s: &str) -> Option<u32> {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.add_blob(&v)
    }

    /// Allocated table size (a multiple of 512); `header_size = 12288 + size()`.
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// Used bytes including the pad byte; written as `blob_buffer_size`.
    pub fn used(&self) -> usize {
        self.pos
    }

    /// The whole allocated table (`size()` bytes, zero past `used()`).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_registers_blobs_like_c() {
        // pad, blob "ab\0" at 1, raw blob [9] at 6, then a length running past the end
        let region = [0u8, 3, 0, b'a', b'b', 0, 1, 0, 9, 200, 0, 1];
        let t = BlobTable::parse(&region);
        assert_eq!(t.offsets(), &[1, 6]);
        assert_eq!(t.get(1), Some(&b"ab\0"[..]));
        assert_eq!(t.get_str(1), Ok("ab"));
        assert_eq!(t.get(6), Some(&[9u8][..]));
        assert_eq!(t.get_str(6), Err(reason::NOT_NUL_TERMINATED));
        assert_eq!(t.get(9), None, "blob past the end is not registered");
        assert_eq!(t.get(0), None);
        assert_eq!(t.get(2), None, "pointer into the middle of a blob");
        assert_eq!(t.get_str(2), Err(reason::NO_BLOB));
        assert_eq!(t.get(u32::MAX), None);
    }

    #[test]
    fn length_prefix_is_little_endian() {
        let mut region = vec![0u8, 0x02, 0x01];
        region.extend(std::iter::repeat_n(b'x', 0x0102));
        let t = BlobTable::parse(&region);
        assert_eq!(t.get(1).map(<[u8]>::len), Some(0x0102));
    }

    #[test]
    fn string_stops_at_first_nul_and_must_be_utf8() {
        let t = BlobTable::parse(&[0, 4, 0, b'a', 0, b'b', 0, 2, 0, 0xff, 0]);
        assert_eq!(t.get_str(1), Ok("a"));
        assert_eq!(t.get_str(7), Err(reason::NOT_UTF8));
    }

    #[test]
    fn empty_and_tiny_regions() {
        assert!(BlobTable::parse(&[]).offsets().is_empty());
        assert!(BlobTable::parse(&[0]).offsets().is_empty());
        assert!(BlobTable::parse(&[0, 0]).offsets().is_empty());
        // zero-length blob at 1
        assert_eq!(BlobTable::parse(&[0, 0, 0]).offsets(), &[1]);
    }

    #[test]
    fn builder_reproduces_sample_geometry() {
        let mut b = BlobTableBuilder::new();
        assert_eq!(b.add_str("qemu-server.conf"), Some(1));
        assert_eq!(b.add_blob(&[b'x'; 417]), Some(20));
        assert_eq!(b.add_str("drive-scsi0"), Some(439));
        assert_eq!(b.used(), 453);
        assert_eq!(b.size(), 512);
        assert_eq!(&b.as_bytes()[..3], &[0, 17, 0]);
        assert_eq!(&b.as_bytes()[20..22], &417u16.to_le_bytes());
        let t = BlobTable::parse(&b.as_bytes()[..b.used()]);
        assert_eq!(t.get_str(439), Ok("drive-scsi0"));
    }

    #[test]
    fn builder_growth_rule() {
        let mut b = BlobTableBuilder::new();
        // first blob always allocates ceil((len+2)/512)*512
        b.add_blob(&[1; 509]).unwrap(); // pos 1 + 511 = 512 fits exactly
        assert_eq!((b.size(), b.used()), (512, 512));
        b.add_blob(&[]).unwrap(); // needs 514 > 512: grows by 512
        assert_eq!((b.size(), b.used()), (1024, 514));
        b.add_blob(&[2; 1000]).unwrap(); // needs 1516 > 1024: grows by ceil(1002/512)*512 = 1024
        assert_eq!((b.size(), b.used()), (2048, 1516));
        assert_eq!(b.add_blob(&vec![0; 65536]), None);
        assert!(b.add_blob(&vec![0; 65535]).is_some());
    }
}
