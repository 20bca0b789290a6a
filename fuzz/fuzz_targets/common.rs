//! Shared by the fuzz targets: drive a reader to the end and touch every byte it hands out,
//! and optionally repair MD5 sums so the fuzzer gets past them to the checks behind them.

use vma::format::{EXTENT_HEADER_SIZE, MAX_EXTENT_BLOCKS, md5_with_zeroed_field};
use vma::{ExtentBuf, VmaReader};

/// Reads every extent, walks every block, then asks for completeness; any panic is a bug.
pub fn drain(data: &[u8]) {
    let Ok(mut r) = VmaReader::new_named(data, "fuzz") else {
        return;
    };
    let _ = r.header().uuid_string();
    let mut buf = ExtentBuf::new();
    let mut sum = 0u64;
    while let Ok(true) = r.read_extent(&mut buf) {
        for c in buf.clusters() {
            for (i, b) in c.blocks() {
                if let Some(b) = b {
                    assert_eq!(b.len(), 4096);
                    sum = sum.wrapping_add(u64::from(b[0]) + i as u64);
                }
            }
            assert_eq!(c.data().len(), c.mask.count_ones() as usize * 4096);
        }
    }
    std::hint::black_box(sum);
    let _ = r.missing();
    if let Err(e) = r.check_complete(None) {
        let _ = e.to_string();
    }
}

/// Rewrites the md5sum (and, if `uuid` is given, the uuid) of every extent header found by
/// walking `data` from `at` with the block counts it contains.
pub fn fix_extents(data: &mut [u8], mut at: usize, uuid: Option<&[u8; 16]>) {
    while at + EXTENT_HEADER_SIZE <= data.len() {
        let h = &mut data[at..at + EXTENT_HEADER_SIZE];
        if let Some(u) = uuid {
            h[8..24].copy_from_slice(u);
        }
        let md5 = md5_with_zeroed_field(h, 24);
        h[24..40].copy_from_slice(&md5);
        let bc = usize::from(u16::from_be_bytes([h[6], h[7]]));
        if bc > MAX_EXTENT_BLOCKS {
            return;
        }
        at += EXTENT_HEADER_SIZE + bc * 4096;
    }
}
