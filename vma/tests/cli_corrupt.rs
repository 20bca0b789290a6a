//! Corrupt and hostile inputs through the CLI: each fails with a non-zero status, one stderr
//! line naming the file, the byte offset and the specific problem, and never leaves a
//! `disk-*.raw` behind (extract) or writes outside the target directory.

mod cli_util;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use cli_util::*;

const CLUSTERS: usize = 100; // 58 + 42: two extents

fn base() -> (Vec<u8>, Vec<u8>) {
    let d = disk(77, CLUSTERS * 65536);
    let a = lib_archive(
        &[("qemu-server.conf", b"memory: 1024\n")],
        &[("drive-scsi0", &d)],
        false,
        0,
    );
    (a, d)
}

/// Slot `i` of the extent at `ext`: (offset of the 8-byte blockinfo).
fn slot(ext: usize, i: usize) -> usize {
    ext + 40 + 8 * i
}

/// First slot of the extent whose mask stores data.
fn data_slot(a: &[u8], ext: usize) -> usize {
    (0..58)
        .map(|i| slot(ext, i))
        .find(|&s| a[s] != 0 || a[s + 1] != 0)
        .expect("a slot with stored blocks")
}

fn os(p: &Path) -> OsString {
    p.as_os_str().to_owned()
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    /// Expected substrings of the one stderr line (the file name is checked too).
    want: Vec<String>,
}

fn check_case(dir: &Path, c: &Case, verify_too: bool) {
    let p = put(dir, &format!("{}.vma", c.name), &c.bytes);
    let target = dir.join(format!("out-{}", c.name));
    let mut want: Vec<&str> = c.want.iter().map(String::as_str).collect();
    let shown = p.display().to_string();
    want.push(&shown);
    run(&["extract".into(), os(&p), os(&target)]).fails_with(&want);
    assert_no_complete_disks(&target);
    if verify_too {
        run(&["verify".into(), os(&p)]).fails_with(&want);
    }
}

#[test]
fn corrupt_archives_fail_with_specific_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = base();
    let ext = extent_offsets(&a);
    assert_eq!(ext.len(), 2);
    let mut cases = Vec::new();

    let mut b = a.clone();
    b[100] ^= 0x01;
    cases.push(Case {
        name: "header-flip",
        bytes: b,
        want: vec!["byte 32: wrong vma header checksum".into()],
    });

    let mut b = a.clone();
    b[slot(ext[0], 3) + 6] ^= 0x10;
    cases.push(Case {
        name: "extent-header-flip",
        bytes: b,
        want: vec![format!(
            "byte {}: wrong vma extent header checksum",
            ext[0] + 24
        )],
    });

    cases.push(Case {
        name: "truncated-mid-header",
        bytes: a[..6000].to_vec(),
        want: vec!["read short vma header (6000 bytes, expected 12288)".into()],
    });

    cases.push(Case {
        name: "truncated-mid-extent-header",
        bytes: a[..ext[1] + 100].to_vec(),
        want: vec![format!(
            "byte {}: read short extent (100 bytes, expected 512)",
            ext[1]
        )],
    });

    cases.push(Case {
        name: "truncated-mid-extent-data",
        bytes: a[..ext[1] + 5000].to_vec(),
        want: vec![format!("byte {}: read short extent (5000 bytes", ext[1])],
    });

    cases.push(Case {
        name: "truncated-at-extent-boundary",
        bytes: a[..ext[1]].to_vec(),
        want: vec![
            format!("byte {}: detected missing clusters", ext[1]),
            "42 clusters missing: 58-99".into(),
        ],
    });

    let mut b = a.clone();
    b.extend_from_slice(&[0x5a; 100]);
    cases.push(Case {
        name: "trailing-garbage",
        bytes: b,
        want: vec![format!(
            "byte {}: read short extent (100 bytes, expected 512)",
            a.len()
        )],
    });

    let mut b = a.clone();
    b[ext[1] + 8] ^= 0xff;
    fix_extent_md5(&mut b, ext[1]);
    cases.push(Case {
        name: "wrong-uuid",
        bytes: b,
        want: vec![format!("byte {}: wrong vma extent uuid", ext[1] + 8)],
    });

    let mut b = a.clone();
    b[ext[1]..ext[1] + 4].copy_from_slice(b"VMAX");
    fix_extent_md5(&mut b, ext[1]);
    cases.push(Case {
        name: "extent-magic",
        bytes: b,
        want: vec!["wrong vma extent header magic".into()],
    });

    let mut b = a.clone();
    b.extend_from_slice(&a[ext[0]..ext[1]]);
    cases.push(Case {
        name: "duplicate-cluster",
        bytes: b,
        want: vec!["found duplicated cluster 0 for stream drive-scsi0".into()],
    });

    let mut b = a.clone();
    let s = data_slot(&a, ext[1]);
    b[s + 4..s + 8].copy_from_slice(&(CLUSTERS as u32 + 5).to_be_bytes());
    fix_extent_md5(&mut b, ext[1]);
    cases.push(Case {
        name: "block-past-end",
        bytes: b,
        want: vec![
            format!("byte {s}: got wrong block address - write beyond end"),
            format!("cluster {}", CLUSTERS + 5),
        ],
    });

    let mut b = a.clone();
    let s = slot(ext[0], 10);
    b[s + 3] = 9;
    fix_extent_md5(&mut b, ext[0]);
    cases.push(Case {
        name: "unknown-dev-id",
        bytes: b,
        want: vec![format!("byte {s}: got wrong dev id 9")],
    });

    let mut b = a.clone();
    b[ext[0] + 6..ext[0] + 8].copy_from_slice(&u16::MAX.to_be_bytes());
    fix_extent_md5(&mut b, ext[0]);
    cases.push(Case {
        name: "oversized-block-count",
        bytes: b,
        want: vec![
            format!("byte {}: vma extent error - missing blocks", ext[0] + 6),
            "block_count 65535".into(),
        ],
    });

    let mut b = a.clone();
    let bc = u16::from_be_bytes([a[ext[0] + 6], a[ext[0] + 7]]);
    b[ext[0] + 6..ext[0] + 8].copy_from_slice(&(bc - 1).to_be_bytes());
    fix_extent_md5(&mut b, ext[0]);
    cases.push(Case {
        name: "block-count-one-short",
        bytes: b,
        want: vec!["short vma extent - too many blocks".into()],
    });

    let mut b = a.clone();
    b[4..8].copy_from_slice(&2u32.to_be_bytes());
    fix_header_md5(&mut b);
    cases.push(Case {
        name: "version-2",
        bytes: b,
        want: vec!["byte 4: wrong vma version 2".into()],
    });

    let mut b = a.clone();
    b[0] = b'X';
    cases.push(Case {
        name: "bad-magic",
        bytes: b,
        want: vec!["byte 0: not a vma file - wrong magic number".into()],
    });

    assert!(cases.len() >= 16);
    for c in &cases {
        check_case(dir.path(), c, true);
    }
}

/// Replaces `from` by `to` (same length) inside the header's blob area and repairs the MD5.
fn patch_name(a: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut b = a.to_vec();
    let hs = header_size(&b);
    let at = b[12288..hs]
        .windows(from.len())
        .position(|w| w == from)
        .expect("name in blob area")
        + 12288;
    b[at..at + to.len()].copy_from_slice(to);
    fix_header_md5(&mut b);
    b
}

#[test]
fn hostile_names_never_write_outside_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(3, 65536);
    let a = lib_archive(
        &[("QQQQQQevil.conf", b"pwned\n")],
        &[("drive-scsi0", &d)],
        false,
        0,
    );
    let work = dir.path().join("a/b");
    std::fs::create_dir_all(&work).unwrap();
    for (name, to, why) in [
        ("config-slash", &b"../../evil.conf"[..], "contains '/'"),
        ("config-dotdot", b"....evil...conf", "contains '..'"),
        (
            "config-newline",
            b"evil\nDEV:x.conf",
            "contains control characters",
        ),
    ] {
        let b = patch_name(&a, b"QQQQQQevil.conf", to);
        let p = put(&work, &format!("{name}.vma"), &b);
        let target: PathBuf = work.join(format!("t-{name}"));
        run(&["extract".into(), os(&p), os(&target)]).fails_with(&[
            "config name",
            why,
            "refusing to extract",
        ]);
        assert!(!target.exists(), "nothing is created for a hostile archive");
    }
    let a = lib_archive(&[], &[("QQQQQQQQ", &d)], false, 0);
    for (to, why) in [
        (&b"../../xx"[..], "contains '/'"),
        (b"..abcdef", "contains '..'"),
    ] {
        let b = patch_name(&a, b"QQQQQQQQ", to);
        let p = put(&work, "dev.vma", &b);
        let target = work.join("t-dev");
        let r = run(&["extract".into(), os(&p), os(&target)]);
        assert_eq!(r.code(), 255, "{}", r.stderr);
        assert!(r.stderr.contains(why), "{}", r.stderr);
        assert!(!target.exists());
    }
    for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
        assert_eq!(e.file_name(), "a", "nothing written next to the work dir");
    }
    assert!(!dir.path().join("a/evil.conf").exists());
}

#[test]
fn corrupt_compressed_streams_name_the_compressed_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = base();
    // lzop, as vzdump writes it: flip the stored adler32 of block 1's uncompressed data.
    let mut z = tool("lzop", &["-c"], &a);
    let (_, hdr) = vma::compress::lzop_format::parse_header(&z).unwrap();
    let src0 = u32::from_be_bytes(z[hdr + 4..hdr + 8].try_into().unwrap()) as usize;
    let b1 = hdr + 12 + src0;
    z[b1 + 8] ^= 0x01;
    check_case(
        dir.path(),
        &Case {
            name: "lzop-block-checksum",
            bytes: z,
            want: vec![format!(
                "lzop block at byte {b1}: adler32 mismatch of uncompressed data"
            )],
        },
        true,
    );
    // zstd with garbage in the middle.
    let mut z = tool("zstd", &["-c", "-3"], &a);
    let mid = z.len() / 2;
    for x in &mut z[mid..mid + 32] {
        *x ^= 0xa5;
    }
    check_case(
        dir.path(),
        &Case {
            name: "zstd-garbage",
            bytes: z,
            want: vec!["zstd stream at byte".into()],
        },
        false,
    );
    // gzip cut short.
    let z = tool("gzip", &["-c"], &a);
    check_case(
        dir.path(),
        &Case {
            name: "gzip-truncated",
            bytes: z[..z.len() / 2].to_vec(),
            want: vec!["gzip stream at byte".into()],
        },
        false,
    );
}
