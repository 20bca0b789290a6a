//! Arbitrary bytes as a whole archive: header parsing, then every extent.
//!
//! The first input byte selects a mode, so both the checksum checks and what lies behind them
//! get fuzzed: bit 0 set = repair the header MD5 (when a plausible header_size is present),
//! bit 1 set = also repair the extent MD5s and uuids.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vma::format::{HEADER_STRUCT_SIZE, MAX_HEADER_SIZE, md5_with_zeroed_field};

#[path = "common.rs"]
mod common;

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let mut data = rest.to_vec();
    if mode & 1 != 0 && data.len() >= 60 {
        let size = u32::from_be_bytes([data[56], data[57], data[58], data[59]]) as usize;
        if size > HEADER_STRUCT_SIZE && size <= MAX_HEADER_SIZE && size <= data.len() {
            let md5 = md5_with_zeroed_field(&data[..size], 32);
            data[32..48].copy_from_slice(&md5);
            if mode & 2 != 0 {
                let uuid: [u8; 16] = data[8..24].try_into().unwrap_or_default();
                common::fix_extents(&mut data, size, Some(&uuid));
            }
        }
    }
    common::drain(&data);
});
