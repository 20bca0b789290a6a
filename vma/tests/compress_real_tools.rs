//! Decompression and compression against the real `zstd`, `gzip`, `pigz` and `lzop` programs
//! (installed by scripts/install-deps): what they write we read byte-identically, also from a
//! pipe; what we write they read byte-identically.

mod cli_util;

use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use cli_util::tool;

use vma::compress::{
    CompressOptions, Compression, DecompressError, LzopWriter, ThreadedReader, compressed_writer,
    lzop_format::{F_ADLER32_C, F_ADLER32_D, F_CRC32_C, F_CRC32_D, F_H_CRC32, LzopHeader},
    open_decompressed,
};

/// Deterministic test data resembling a disk: zero blocks, text, binary with structure, and
/// incompressible noise, in 4 KiB blocks.
fn disk_like(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let words: [&[u8]; 6] = [
        b"root ",
        b"/usr/lib ",
        b"vzdump ",
        b"qemu ",
        b"\n",
        b"0000 ",
    ];
    for (i, block) in out.chunks_mut(4096).enumerate() {
        match next() % 8 {
            0..=2 => {} // zero
            3 | 4 => {
                let mut p = 0;
                while p < block.len() {
                    let w = words[(next() % 6) as usize];
                    let n = w.len().min(block.len() - p);
                    block[p..p + n].copy_from_slice(&w[..n]);
                    p += n;
                }
            }
            5 => {
                for (j, b) in block.iter_mut().enumerate() {
                    *b = ((j / 16) as u8).wrapping_mul(i as u8);
                }
            }
            _ => {
                for b in block.iter_mut() {
                    *b = next() as u8;
                }
            }
        }
    }
    out
}

fn decode_all(bytes: Vec<u8>) -> (Compression, Vec<u8>) {
    let (c, mut r) = open_decompressed(io::Cursor::new(bytes)).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    (c, out)
}

/// Decodes from a real pipe (the stdout of `cat FILE`), through the read-ahead thread, so any
/// seek would fail.
fn decode_via_pipe(path: &Path) -> (Compression, Vec<u8>) {
    let mut child = Command::new("cat")
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = child.stdout.take().unwrap();
    let (c, r) = open_decompressed(pipe).unwrap();
    let mut r = ThreadedReader::with_options(r, 256 * 1024, 2).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert!(child.wait().unwrap().success());
    (c, out)
}

fn check(name: &str, want_c: Compression, compressed: Vec<u8>, data: &[u8], dir: &Path) {
    let path = dir.join(name);
    std::fs::write(&path, &compressed).unwrap();
    let (c, out) = decode_all(compressed);
    assert_eq!(c, want_c, "{name}: detected");
    assert!(
        out == data,
        "{name}: decoded bytes differ ({} vs {})",
        out.len(),
        data.len()
    );
    let (c, out) = decode_via_pipe(&path);
    assert_eq!(c, want_c, "{name} via pipe: detected");
    assert!(out == data, "{name} via pipe: decoded bytes differ");
}

#[test]
fn reads_what_the_real_tools_write() {
    let data = disk_like(6 * 1024 * 1024 + 12345);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    for args in [
        &["-1", "-c"][..],
        &["-19", "-c"],
        &["--threads=2", "-c"],
        &["-3", "--no-check", "-c"],
    ] {
        check(
            &format!("zstd{args:?}"),
            Compression::Zstd,
            tool("zstd", args, &data),
            &data,
            d,
        );
    }
    let (a, b) = data.split_at(1_000_003);
    let mut two = tool("zstd", &["-1", "-c"], a);
    two.extend(tool("zstd", &["-9", "-c"], b));
    check("zstd-concatenated", Compression::Zstd, two, &data, d);

    for args in [&["-1", "-c"][..], &["-9", "-c"]] {
        check(
            &format!("gzip{args:?}"),
            Compression::Gzip,
            tool("gzip", args, &data),
            &data,
            d,
        );
    }
    let mut two = tool("gzip", &["-1", "-c"], a);
    two.extend(tool("gzip", &["-9", "-c"], b));
    check("gzip-two-members", Compression::Gzip, two, &data, d);

    for args in [
        &["-1", "-c"][..],
        &["-9", "-c"],
        &["--rsyncable", "-p", "2", "-c"],
    ] {
        check(
            &format!("pigz{args:?}"),
            Compression::Gzip,
            tool("pigz", args, &data),
            &data,
            d,
        );
    }

    // lzop from stdin, as vzdump runs it (flags F_STDIN|F_STDOUT), and from a named file.
    for args in [
        &["-c"][..],
        &["-1", "-c"],
        &["-9", "-c"],
        &["--crc32", "-c"],
        &["-F", "-c"],
    ] {
        check(
            &format!("lzop{args:?}"),
            Compression::Lzo,
            tool("lzop", args, &data),
            &data,
            d,
        );
    }
    let named = d.join("disk.raw");
    std::fs::write(&named, &data).unwrap();
    let out = Command::new("lzop")
        .args(["-c", "-3"])
        .arg(&named)
        .output()
        .unwrap();
    assert!(out.status.success());
    check("lzop-named-file", Compression::Lzo, out.stdout, &data, d);

    let mut two = tool("lzop", &["-c"], a);
    two.extend(tool("lzop", &["-9", "-c"], b));
    check("lzop-concatenated", Compression::Lzo, two, &data, d);
}

#[test]
fn empty_and_tiny_inputs_from_the_real_tools() {
    let dir = tempfile::tempdir().unwrap();
    for data in [&b""[..], b"x", b"VMA\0"] {
        check(
            "z",
            Compression::Zstd,
            tool("zstd", &["-c"], data),
            data,
            dir.path(),
        );
        check(
            "g",
            Compression::Gzip,
            tool("gzip", &["-c"], data),
            data,
            dir.path(),
        );
        check(
            "l",
            Compression::Lzo,
            tool("lzop", &["-c"], data),
            data,
            dir.path(),
        );
    }
}

fn write_ours(c: Compression, o: &CompressOptions, data: &[u8]) -> Vec<u8> {
    let mut w = compressed_writer(Vec::new(), c, o).unwrap();
    for chunk in data.chunks(65536 + 7) {
        w.write_all(chunk).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn the_real_tools_read_what_we_write() {
    let data = disk_like(5 * 1024 * 1024 + 999);
    let zstd_opts = [
        CompressOptions::default(),
        CompressOptions {
            level: Some(1),
            threads: 2,
        },
        CompressOptions {
            level: Some(19),
            threads: 1,
        },
    ];
    for o in &zstd_opts {
        let z = write_ours(Compression::Zstd, o, &data);
        tool("zstd", &["-t", "-q"], &z);
        assert!(
            tool("zstd", &["-dc"], &z) == data,
            "zstd -dc of ours ({o:?})"
        );
    }
    for level in [None, Some(1), Some(9)] {
        let o = CompressOptions { level, threads: 0 };
        let g = write_ours(Compression::Gzip, &o, &data);
        tool("gzip", &["-t"], &g);
        assert!(
            tool("gzip", &["-dc"], &g) == data,
            "gzip -dc of ours ({o:?})"
        );
    }
    let l = write_ours(Compression::Lzo, &CompressOptions::default(), &data);
    tool("lzop", &["-t"], &l);
    assert!(tool("lzop", &["-dc"], &l) == data, "lzop -dc of ours");
    // Header as `… | lzop` writes it (apart from mtime): version 1.04, LZO 2.10, LZO1X-1,
    // level 5, F_ADLER32_D | F_STDIN | F_STDOUT, Unix.
    let real = tool("lzop", &["-c"], b"hello");
    assert_eq!(&l[..25], &real[..25], "lzop header fields before mtime");
    // Incompressible blocks must be stored and still pass lzop -t.
    let noise: Vec<u8> = disk_like(1 << 20)
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes()[0])
        .collect();
    let l = write_ours(Compression::Lzo, &CompressOptions::default(), &noise);
    assert!(tool("lzop", &["-dc"], &l) == noise);
}

/// Every checksum combination our container writer can emit passes `lzop -t`, which checks
/// them all; so our readers' and writers' view of the C/D checksum fields matches lzop's.
#[test]
fn lzop_checksum_variants_pass_lzop_test() {
    let data = disk_like(3 * 256 * 1024 + 100);
    for flags in [
        F_ADLER32_D | F_ADLER32_C,
        F_CRC32_D | F_CRC32_C | F_H_CRC32,
        F_ADLER32_D | F_CRC32_D | F_ADLER32_C | F_CRC32_C,
        0,
    ] {
        let mut h = LzopHeader::for_stdin(1_700_000_000);
        h.flags = (h.flags & !(F_ADLER32_D)) | flags;
        let mut w = LzopWriter::with_header(Vec::new(), &h).unwrap();
        w.write_all(&data).unwrap();
        let bytes = w.finish().unwrap();
        tool("lzop", &["-t"], &bytes);
        let (_, out) = decode_all(bytes);
        assert!(out == data, "flags 0x{flags:x}");
    }
}

/// Finds the first lzop block (after the 38-byte stdin header) and returns its offset.
fn first_block(bytes: &[u8]) -> usize {
    let h = vma::compress::lzop_format::parse_header(bytes).unwrap();
    h.1
}

fn decode_err(bytes: Vec<u8>) -> io::Error {
    match open_decompressed(io::Cursor::new(bytes)) {
        Err(e) => e,
        Ok((_, mut r)) => {
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap_err()
        }
    }
}

#[test]
fn corrupt_lzop_block_checksum_names_the_block_offset() {
    let data = disk_like(1 << 20);
    let mut z = tool("lzop", &["-c"], &data);
    // Second block: skip the first one (dst_len, src_len, adler32, data).
    let b0 = first_block(&z);
    let src0 = u32::from_be_bytes(z[b0 + 4..b0 + 8].try_into().unwrap()) as usize;
    let b1 = b0 + 12 + src0;
    // Flip the stored adler32 of the uncompressed data of block 1.
    z[b1 + 8] ^= 0x40;
    let e = decode_err(z);
    let d = DecompressError::find(&e).expect("typed error inside io::Error");
    assert_eq!(d.offset, b1 as u64);
    assert_eq!(
        e.to_string(),
        format!(
            "lzop block at byte {b1}: adler32 mismatch of uncompressed data (stored 0x{:08x}, computed 0x{:08x})",
            u32::from_be_bytes(e_sum(&data, 1)) ^ 0x4000_0000,
            u32::from_be_bytes(e_sum(&data, 1)),
        )
    );
}

fn e_sum(data: &[u8], block: usize) -> [u8; 4] {
    adler2::adler32_slice(&data[block * 256 * 1024..(block + 1) * 256 * 1024]).to_be_bytes()
}

#[test]
fn corrupt_and_truncated_lzop_streams() {
    let data = disk_like(700_000);
    let z = tool("lzop", &["-c"], &data);
    let b0 = first_block(&z);

    // A flipped byte inside compressed data: LZO1X error or checksum mismatch, at block 0.
    let mut bad = z.clone();
    bad[b0 + 40] ^= 0xff;
    let e = decode_err(bad);
    assert_eq!(DecompressError::find(&e).unwrap().offset, b0 as u64, "{e}");

    // Truncations: inside the header, inside block data, right before the end marker.
    for cut in [20, b0 + 6, b0 + 100, z.len() - 4, z.len() - 1] {
        let e = decode_err(z[..cut].to_vec());
        assert!(DecompressError::find(&e).is_some(), "cut {cut}: {e}");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "cut {cut}: {e}");
    }

    // Trailing garbage after the end marker.
    let mut trailing = z.clone();
    trailing.extend_from_slice(b"garbage!!");
    let e = decode_err(trailing);
    assert_eq!(
        e.to_string(),
        format!(
            "lzop stream at byte {}: trailing data after the lzop end marker (neither EOF nor another lzop stream)",
            z.len()
        )
    );

    // Oversized and inconsistent block lengths.
    let mut huge = z.clone();
    huge[b0..b0 + 4].copy_from_slice(&(64 * 1024 * 1024 + 1u32).to_be_bytes());
    assert!(
        decode_err(huge)
            .to_string()
            .contains("exceeds lzop's limit")
    );
    let mut inverted = z.clone();
    inverted[b0 + 4..b0 + 8].copy_from_slice(&(300_000u32).to_be_bytes());
    assert!(decode_err(inverted).to_string().starts_with(&format!(
        "lzop block at byte {b0}: compressed length 300000"
    )));

    // Header checksum.
    let mut hdr = z.clone();
    hdr[30] ^= 1;
    assert!(
        decode_err(hdr)
            .to_string()
            .starts_with("lzop header at byte 34: header adler32 mismatch")
    );
}

#[test]
fn corrupt_zstd_and_gzip_name_an_offset() {
    let data = disk_like(2 << 20);
    for (prog, ctx) in [("zstd", "zstd stream"), ("gzip", "gzip stream")] {
        let mut z = tool(prog, &["-c"], &data);
        let mid = z.len() / 2;
        for b in &mut z[mid..mid + 64] {
            *b ^= 0x5a;
        }
        let e = decode_err(z.clone());
        let d = DecompressError::find(&e).unwrap_or_else(|| panic!("{prog}: untyped error {e}"));
        assert_eq!(d.context, ctx);
        assert!(d.offset > 0 && d.offset <= z.len() as u64, "{prog}: {e}");

        let e = decode_err(z[..mid].to_vec());
        assert!(DecompressError::find(&e).is_some(), "{prog} truncated: {e}");
    }
}
