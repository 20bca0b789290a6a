//! The FIEMAP ioctl: where a file's data lives on disk (logical → physical extents).
//!
//! The crate denies `unsafe` everywhere; this module is the one audited exception, because
//! exact `written` bytes for btrfs snapshots need the physical extent ranges of every file and
//! there is no safe std/nix wrapper for `FS_IOC_FIEMAP`. The unsafe surface is a single ioctl
//! call on a buffer this module owns; everything it returns is plain owned data.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// `FIEMAP_FLAG_SYNC`: flush dirty data before mapping, so delalloc extents get real
/// addresses (harmless on read-only snapshots).
const FIEMAP_FLAG_SYNC: u32 = 0x1;
/// Last extent of the file.
pub const FIEMAP_EXTENT_LAST: u32 = 0x1;
/// Location unknown (delalloc not yet written); never expected after FIEMAP_FLAG_SYNC.
pub const FIEMAP_EXTENT_UNKNOWN: u32 = 0x2;
/// Data is compressed/encoded: `physical`/`length` do not describe the on-disk bytes exactly.
pub const FIEMAP_EXTENT_ENCODED: u32 = 0x8;
/// Data is stored inline in metadata; `physical` is meaningless.
pub const FIEMAP_EXTENT_DATA_INLINE: u32 = 0x200;

/// `struct fiemap` from <linux/fiemap.h> (32 bytes, followed by `fm_extent_count` extents).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct FiemapHeader {
    fm_start: u64,
    fm_length: u64,
    fm_flags: u32,
    fm_mapped_extents: u32,
    fm_extent_count: u32,
    fm_reserved: u32,
}

/// `struct fiemap_extent` (56 bytes).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct FiemapExtent {
    fe_logical: u64,
    fe_physical: u64,
    fe_length: u64,
    fe_reserved64: [u64; 2],
    fe_flags: u32,
    fe_reserved: [u32; 3],
}

const _: () = assert!(std::mem::size_of::<FiemapHeader>() == 32);
const _: () = assert!(std::mem::size_of::<FiemapExtent>() == 56);

const EXTENTS_PER_CALL: usize = 512;

/// The header immediately followed by its extent array, as the kernel expects.
#[repr(C)]
struct FiemapBuf {
    hdr: FiemapHeader,
    extents: [FiemapExtent; EXTENTS_PER_CALL],
}

// FS_IOC_FIEMAP = _IOWR('f', 11, struct fiemap); the size in the request code is that of the
// 32-byte header (the flexible array does not count), exactly as in the C header.
nix::ioctl_readwrite!(fs_ioc_fiemap, b'f', 11, FiemapHeader);

/// One mapped extent of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Byte offset in the file.
    pub logical: u64,
    /// Byte address on the device (meaningless for inline extents).
    pub physical: u64,
    pub length: u64,
    /// `FIEMAP_EXTENT_*` flags.
    pub flags: u32,
}

/// All extents of `file`, in logical order. Holes are simply absent.
pub fn file_extents(file: &File) -> io::Result<Vec<Extent>> {
    let fd = file.as_raw_fd();
    let mut buf = Box::new(FiemapBuf {
        hdr: FiemapHeader::default(),
        extents: [FiemapExtent::default(); EXTENTS_PER_CALL],
    });
    let mut out = Vec::new();
    let mut start = 0u64;
    loop {
        buf.hdr = FiemapHeader {
            fm_start: start,
            fm_length: u64::MAX,
            fm_flags: FIEMAP_FLAG_SYNC,
            fm_mapped_extents: 0,
            fm_extent_count: EXTENTS_PER_CALL as u32,
            fm_reserved: 0,
        };
        let ptr = std::ptr::addr_of_mut!(*buf).cast::<FiemapHeader>();
        // SAFETY: `ptr` points to a live, exclusively borrowed, properly aligned `FiemapBuf`:
        // a `struct fiemap` header directly followed (repr(C), no padding: 32-byte header,
        // 8-byte aligned extents) by `EXTENTS_PER_CALL` extents, and `fm_extent_count` says
        // exactly that many, so the kernel writes only inside the buffer. The pointer is
        // derived from the whole buffer, not just the header, so the writes into the extent
        // array stay within its provenance. `fd` is open for the duration of the call.
        unsafe { fs_ioc_fiemap(fd, ptr) }.map_err(io::Error::from)?;
        let mapped = (buf.hdr.fm_mapped_extents as usize).min(EXTENTS_PER_CALL);
        if mapped == 0 {
            return Ok(out);
        }
        let mut last = false;
        for e in &buf.extents[..mapped] {
            out.push(Extent {
                logical: e.fe_logical,
                physical: e.fe_physical,
                length: e.fe_length,
                flags: e.fe_flags,
            });
            last |= e.fe_flags & FIEMAP_EXTENT_LAST != 0;
        }
        let tail = &buf.extents[mapped - 1];
        let next = tail.fe_logical.saturating_add(tail.fe_length);
        if last || next <= start {
            return Ok(out);
        }
        start = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn maps_a_regular_file_wherever_fiemap_is_supported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut f = File::create(&path).unwrap();
        f.write_all(&vec![7u8; 256 * 1024]).unwrap();
        f.sync_all().unwrap();
        let f = File::open(&path).unwrap();
        match file_extents(&f) {
            Ok(ext) => {
                // Every byte is mapped exactly once, in order.
                let total: u64 = ext.iter().map(|e| e.length).sum();
                assert!(total >= 256 * 1024, "{ext:?}");
                assert!(
                    ext.windows(2)
                        .all(|w| w[0].logical + w[0].length <= w[1].logical)
                );
                assert!(ext.last().unwrap().flags & FIEMAP_EXTENT_LAST != 0);
            }
            // tmpfs and some overlay filesystems do not implement FIEMAP; the btrfs backend
            // tests cover the real case.
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {}
            Err(e) => panic!("{e}"),
        }
    }
}
