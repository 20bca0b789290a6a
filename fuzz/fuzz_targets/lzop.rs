//! The lzop container reader and the LZO1X codec on arbitrary bytes.
//!
//! The first byte selects what the rest is:
//! - 0: a whole compressed stream for `open_decompressed` (magic, header, checksums, blocks);
//! - 1: the block stream behind a valid generated lzop header whose checksum flags come from
//!   the next byte (so the fuzzer gets past the header checksum to block lengths, block
//!   checksums, stored blocks, end markers and concatenated streams);
//! - 2: one raw LZO1X block, decoded into an output of `16 * u16` bytes from the next two;
//! - 3: compressor round trip: our LZO1X-1 output of the rest must decode to the rest.
//!
//! Any panic, hang or unbounded allocation is a bug.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use vma::compress::lzo1x;
use vma::compress::lzo1x_compress::Lzo1xCompressor;
use vma::compress::lzop_format::{
    F_ADLER32_C, F_ADLER32_D, F_CRC32_C, F_CRC32_D, F_H_CRC32, F_OS_UNIX, LzopHeader,
};
use vma::compress::open_decompressed;

/// Reads everything `open_decompressed` gives; errors are fine, panics are not.
fn drain(data: Vec<u8>) {
    let Ok((_, mut r)) = open_decompressed(std::io::Cursor::new(data)) else {
        return;
    };
    let mut buf = vec![0u8; 65536];
    let mut total = 0usize;
    while let Ok(n) = r.read(&mut buf) {
        if n == 0 {
            break;
        }
        total += n;
    }
    std::hint::black_box(total);
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    match mode % 4 {
        0 => drain(rest.to_vec()),
        1 => {
            let Some((&f, blocks)) = rest.split_first() else {
                return;
            };
            let flags = [F_ADLER32_D, F_ADLER32_C, F_CRC32_D, F_CRC32_C, F_H_CRC32]
                .iter()
                .enumerate()
                .filter(|(i, _)| f & (1 << i) != 0)
                .fold(F_OS_UNIX, |acc, (_, &fl)| acc | fl);
            let mut h = LzopHeader::for_stdin(0);
            h.flags = flags;
            let mut data = h.to_bytes();
            data.extend_from_slice(blocks);
            drain(data);
        }
        2 => {
            if rest.len() < 2 {
                return;
            }
            let n = usize::from(u16::from_le_bytes([rest[0], rest[1]])) * 16;
            let mut out = vec![0u8; n];
            let _ = lzo1x::decompress(&rest[2..], &mut out);
        }
        _ => {
            let mut c = Vec::new();
            Lzo1xCompressor::new().compress(rest, &mut c);
            let mut out = vec![0u8; rest.len()];
            if let Err(e) = lzo1x::decompress(&c, &mut out) {
                panic!("own LZO1X-1 output does not decode: {e}");
            }
            assert!(out == rest, "LZO1X-1 round trip differs");
        }
    }
});
