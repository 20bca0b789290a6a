//! Corrupt and hostile inputs: each must fail with its specific error variant at the right
//! absolute offset, in the C reader's order, without panicking. Archives are made by our
//! writer, then patched; MD5 sums are recomputed where a test needs to get past them.

use std::io::{self, Read};

use vma::format::blob::reason;
use vma::format::md5_with_zeroed_field;
use vma::{Config, Error, ExtentBuf, VmaReader, VmaWriter, WriterOptions};

const UUID: [u8; 16] = [0x42; 16];
const HEADER: usize = 12800;
/// 70 full clusters + 1000 bytes: 71 clusters, so two extents (58 + 13).
const DEV_SIZE: u64 = 70 * 65536 + 1000;

struct Archive {
    bytes: Vec<u8>,
    /// Offsets of the two extents.
    ext: [usize; 2],
}

/// Cluster c has block 0 non-zero; every third cluster also block 5 (except the last one,
/// whose block 5 is past the device end).
fn archive() -> Archive {
    let mut w = VmaWriter::new(
        Vec::new(),
        vec![Config {
            name: "qemu-server.conf".into(),
            data: b"memory: 512\n".to_vec(),
        }],
        vec![("drive-scsi0".into(), DEV_SIZE)],
        WriterOptions {
            uuid: Some(UUID),
            ctime: Some(1),
        },
    )
    .unwrap();
    let mut data = vec![0u8; 65536];
    for c in 0..71u32 {
        data.fill(0);
        data[0] = c as u8 | 1;
        if c % 3 == 0 {
            data[5 * 4096 + 7] = 9;
        }
        w.write_cluster(1, c, &data).unwrap();
    }
    let bytes = w.finish().unwrap();
    let bc0 = u16::from_be_bytes([bytes[HEADER + 6], bytes[HEADER + 7]]) as usize;
    let ext1 = HEADER + 512 + bc0 * 4096;
    assert_eq!(&bytes[ext1..ext1 + 4], b"VMAE");
    Archive {
        bytes,
        ext: [HEADER, ext1],
    }
}

fn fix_header_md5(b: &mut [u8]) {
    let md5 = md5_with_zeroed_field(&b[..HEADER], 32);
    b[32..48].copy_from_slice(&md5);
}

fn fix_extent_md5(b: &mut [u8], at: usize) {
    let md5 = md5_with_zeroed_field(&b[at..at + 512], 24);
    b[at + 24..at + 40].copy_from_slice(&md5);
}

fn slot(at: usize, i: usize) -> usize {
    at + 40 + 8 * i
}

/// Opens and reads everything; returns the first error, or Ok(extents read).
fn read_all(b: &[u8]) -> Result<usize, Error> {
    let mut r = VmaReader::new_named(b, "bad.vma")?;
    let mut buf = ExtentBuf::new();
    let mut n = 0;
    while r.read_extent(&mut buf)? {
        n += 1;
    }
    Ok(n)
}

macro_rules! assert_err {
    ($res:expr, $pat:pat $(if $guard:expr)?) => {{
        let res = $res;
        match res {
            Err(ref e @ $pat) $(if $guard)? => {
                let msg = e.to_string();
                assert!(msg.starts_with("bad.vma: byte "), "{msg}");
                assert_eq!(e.file(), Some("bad.vma"));
            }
            other => panic!("expected {}, got {:?}", stringify!($pat), other),
        }
    }};
}

#[test]
fn the_base_archive_is_valid() {
    let a = archive();
    assert_eq!(read_all(&a.bytes).unwrap(), 2);
}

#[test]
fn bad_magic() {
    let mut b = archive().bytes;
    b[2] = b'X';
    assert_err!(read_all(&b), Error::BadMagic { offset: 0, .. });
    assert_err!(
        read_all(b"hello world, not a vma"),
        Error::BadMagic { offset: 0, .. }
    );
}

#[test]
fn flipped_byte_in_header() {
    for at in [1000usize, 2044, 4096 + 40, 12288 + 5, HEADER - 1] {
        let mut b = archive().bytes;
        b[at] ^= 0x10;
        assert_err!(read_all(&b), Error::HeaderChecksum { offset: 32, .. });
    }
}

#[test]
fn header_size_out_of_range_is_checked_before_the_checksum() {
    for size in [0u32, 12288, 524_289, u32::MAX] {
        let mut b = archive().bytes;
        b[56..60].copy_from_slice(&size.to_be_bytes());
        assert_err!(read_all(&b), Error::HeaderSize { offset: 56, size: s, .. } if s == size);
    }
}

#[test]
fn version_2() {
    let mut b = archive().bytes;
    b[4..8].copy_from_slice(&2u32.to_be_bytes());
    assert_err!(read_all(&b), Error::HeaderChecksum { .. });
    fix_header_md5(&mut b);
    assert_err!(
        read_all(&b),
        Error::Version {
            offset: 4,
            version: 2,
            ..
        }
    );
}

#[test]
fn blob_buffer_bounds() {
    let mut b = archive().bytes;
    b[48..52].copy_from_slice(&100u32.to_be_bytes());
    fix_header_md5(&mut b);
    assert_err!(read_all(&b), Error::BlobTable { offset: 48, .. });

    let mut b = archive().bytes;
    b[52..56].copy_from_slice(&513u32.to_be_bytes());
    fix_header_md5(&mut b);
    assert_err!(read_all(&b), Error::BlobTable { offset: 52, .. });
}

#[test]
fn blob_pointer_out_of_range() {
    let mut b = archive().bytes;
    b[2044..2048].copy_from_slice(&99_999u32.to_be_bytes());
    fix_header_md5(&mut b);
    assert_err!(
        read_all(&b),
        Error::InvalidBlobPointer { offset: 2044, pointer: 99_999, reason: r, .. } if r == reason::NO_BLOB
    );

    // config data pointer into the middle of a blob
    let mut b = archive().bytes;
    b[3068..3072].copy_from_slice(&2u32.to_be_bytes());
    fix_header_md5(&mut b);
    assert_err!(
        read_all(&b),
        Error::InvalidBlobPointer {
            offset: 3068,
            pointer: 2,
            ..
        }
    );

    // device name pointer
    let mut b = archive().bytes;
    b[4096 + 32..4096 + 36].copy_from_slice(&7777u32.to_be_bytes());
    fix_header_md5(&mut b);
    assert_err!(
        read_all(&b),
        Error::InvalidBlobPointer {
            offset: 4128,
            pointer: 7777,
            ..
        }
    );
}

#[test]
fn name_without_nul() {
    // "qemu-server.conf\0" is the blob at 1: length at 12289, NUL at 12288 + 3 + 16
    let mut b = archive().bytes;
    assert_eq!(b[12288 + 3 + 16], 0);
    b[12288 + 3 + 16] = b'x';
    fix_header_md5(&mut b);
    assert_err!(
        read_all(&b),
        Error::InvalidBlobPointer { offset: 2044, pointer: 1, reason: r, .. } if r == reason::NOT_NUL_TERMINATED
    );
}

#[test]
fn truncated_mid_header() {
    let a = archive();
    assert_err!(
        read_all(&a.bytes[..6000]),
        Error::ShortHeader {
            offset: 0,
            got: 6000,
            expected: 12288,
            ..
        }
    );
    assert_err!(
        read_all(&a.bytes[..12500]),
        Error::ShortHeader {
            offset: 0,
            got: 12500,
            expected: 12800,
            ..
        }
    );
    assert_err!(read_all(&[]), Error::ShortHeader { got: 0, .. });
    assert_err!(read_all(&a.bytes[..3]), Error::ShortHeader { got: 3, .. });
}

#[test]
fn flipped_byte_in_extent_header() {
    let a = archive();
    for (e, field) in [(0usize, 45usize), (0, 6), (1, 0), (1, 511)] {
        let mut b = a.bytes.clone();
        b[a.ext[e] + field] ^= 1;
        let want = (a.ext[e] + 24) as u64;
        assert_err!(read_all(&b), Error::ExtentChecksum { offset, .. } if offset == want);
    }
}

#[test]
fn truncated_mid_extent() {
    let a = archive();
    let e0 = a.ext[0] as u64;
    assert_err!(
        read_all(&a.bytes[..a.ext[0] + 100]),
        Error::ShortExtent { offset, got: 100, expected: 512, .. } if offset == e0
    );
    let full0 = (a.ext[1] - a.ext[0]) as u64;
    assert_err!(
        read_all(&a.bytes[..a.ext[0] + 5000]),
        Error::ShortExtent { offset, got: 5000, expected, .. } if offset == e0 && expected == full0
    );
    let e1 = a.ext[1] as u64;
    let len = a.bytes.len();
    assert_err!(
        read_all(&a.bytes[..len - 1]),
        Error::ShortExtent { offset, expected, .. } if offset == e1 && expected == len as u64 - e1
    );
    let msg = read_all(&a.bytes[..a.ext[0] + 100])
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        format!("bad.vma: byte {e0}: read short extent (100 bytes, expected 512)")
    );
}

#[test]
fn truncated_at_extent_boundary_reads_ok_then_is_incomplete() {
    let a = archive();
    let b = &a.bytes[..a.ext[1]];
    let mut r = VmaReader::new_named(b, "bad.vma").unwrap();
    let mut buf = ExtentBuf::new();
    assert!(r.read_extent(&mut buf).unwrap());
    assert_eq!(buf.cluster_count(), 58);
    assert!(!r.read_extent(&mut buf).unwrap(), "clean end of file");
    assert!(!r.read_extent(&mut buf).unwrap(), "stays at end of file");
    assert_eq!(
        r.missing(),
        vec![(1u8, vec![std::ops::Range { start: 58, end: 71 }])]
    );
    match r.check_complete(None) {
        Err(e @ Error::MissingClusters { .. }) => {
            assert_eq!(e.offset(), Some(a.ext[1] as u64));
            assert_eq!(
                e.to_string(),
                format!(
                    "bad.vma: byte {}: detected missing clusters: stream drive-scsi0 (dev_id 1): 13 clusters missing: 58-70",
                    a.ext[1]
                )
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(r.check_complete(Some(&[])).is_ok());
    // header only: every cluster missing
    let mut r = VmaReader::new(&a.bytes[..HEADER]).unwrap();
    assert!(!r.read_extent(&mut buf).unwrap());
    assert_eq!(
        r.missing(),
        vec![(1u8, vec![std::ops::Range { start: 0, end: 71 }])]
    );
}

#[test]
fn trailing_garbage() {
    let a = archive();
    let end = a.bytes.len() as u64;
    let mut b = a.bytes.clone();
    b.extend_from_slice(&[0x55; 100]);
    assert_err!(
        read_all(&b),
        Error::ShortExtent { offset, got: 100, expected: 512, .. } if offset == end
    );
    for garbage in [vec![0u8; 512], vec![0xa5; 5000]] {
        let mut b = a.bytes.clone();
        b.extend_from_slice(&garbage);
        assert_err!(
            read_all(&b),
            Error::ExtentChecksum { offset, .. } if offset == end + 24
        );
    }
}

#[test]
fn wrong_extent_uuid() {
    let a = archive();
    let mut b = a.bytes.clone();
    b[a.ext[1] + 8] ^= 0xff;
    fix_extent_md5(&mut b, a.ext[1]);
    let want = (a.ext[1] + 8) as u64;
    assert_err!(read_all(&b), Error::ExtentUuid { offset, .. } if offset == want);
}

#[test]
fn wrong_extent_magic_or_reserved() {
    let a = archive();
    let mut b = a.bytes.clone();
    b[a.ext[0] + 3] = b'F';
    fix_extent_md5(&mut b, a.ext[0]);
    assert_err!(
        read_all(&b),
        Error::ExtentMagic {
            offset: 12800,
            reserved: 0,
            ..
        }
    );
    let mut b = a.bytes.clone();
    b[a.ext[0] + 5] = 1;
    fix_extent_md5(&mut b, a.ext[0]);
    assert_err!(
        read_all(&b),
        Error::ExtentMagic {
            offset: 12800,
            reserved: 1,
            ..
        }
    );
}

#[test]
fn duplicate_cluster_within_and_across_extents() {
    let a = archive();
    // slot 1 (cluster 1) renamed to cluster 2: duplicate found at slot 2 of extent 0
    let mut b = a.bytes.clone();
    b[slot(a.ext[0], 1) + 7] = 2;
    fix_extent_md5(&mut b, a.ext[0]);
    let want = slot(a.ext[0], 2) as u64;
    assert_err!(
        read_all(&b),
        Error::DuplicateCluster { offset, cluster: 2, dev_id: 1, .. } if offset == want
    );
    // extent 1's first slot repeats cluster 5 of extent 0
    let mut b = a.bytes.clone();
    b[slot(a.ext[1], 0) + 7] = 5;
    fix_extent_md5(&mut b, a.ext[1]);
    let want = slot(a.ext[1], 0) as u64;
    assert_err!(
        read_all(&b),
        Error::DuplicateCluster { offset, cluster: 5, .. } if offset == want
    );
}

#[test]
fn block_past_device_end() {
    let a = archive();
    // a cluster number far past the end
    let mut b = a.bytes.clone();
    b[slot(a.ext[1], 3) + 4..slot(a.ext[1], 3) + 8].copy_from_slice(&1000u32.to_be_bytes());
    fix_extent_md5(&mut b, a.ext[1]);
    let want = slot(a.ext[1], 3) as u64;
    assert_err!(
        read_all(&b),
        Error::BeyondDeviceEnd { offset, cluster: 1000, block: 0, size: DEV_SIZE, .. } if offset == want
    );
    // the last cluster (70, slot 12 of extent 1) stores block 0; move it to block 1, which
    // starts past the 1000-byte tail
    let mut b = a.bytes.clone();
    let s = slot(a.ext[1], 12);
    assert_eq!(u32::from_be_bytes(b[s + 4..s + 8].try_into().unwrap()), 70);
    assert_eq!(&b[s..s + 2], &[0, 1]);
    b[s + 1] = 2;
    fix_extent_md5(&mut b, a.ext[1]);
    assert_err!(
        read_all(&b),
        Error::BeyondDeviceEnd { offset, cluster: 70, block: 1, .. } if offset == s as u64
    );
    // a full mask on the straddling cluster is accepted like C (checked by its start)
    let mut b = a.bytes.clone();
    b[s..s + 2].copy_from_slice(&[0xff, 0xff]);
    let bc = u16::from_be_bytes([b[a.ext[1] + 6], b[a.ext[1] + 7]]) + 15;
    b[a.ext[1] + 6..a.ext[1] + 8].copy_from_slice(&bc.to_be_bytes());
    b.extend_from_slice(&vec![0u8; 15 * 4096]);
    fix_extent_md5(&mut b, a.ext[1]);
    assert_eq!(read_all(&b).unwrap(), 2);
}

#[test]
fn unknown_dev_id() {
    let a = archive();
    let mut b = a.bytes.clone();
    b[slot(a.ext[0], 4) + 3] = 7;
    fix_extent_md5(&mut b, a.ext[0]);
    let want = slot(a.ext[0], 4) as u64;
    assert_err!(read_all(&b), Error::UnknownDevice { offset, dev_id: 7, .. } if offset == want);
}

#[test]
fn block_count_mismatch() {
    let a = archive();
    let e = a.ext[0];
    let bc = u16::from_be_bytes([a.bytes[e + 6], a.bytes[e + 7]]);
    let set_bc = |v: u16| {
        let mut b = a.bytes.clone();
        b[e + 6..e + 8].copy_from_slice(&v.to_be_bytes());
        fix_extent_md5(&mut b, e);
        b
    };
    let want = (e + 6) as u64;
    // oversized: more than an extent can hold; refused before reading any data
    for v in [945u16, 60_000, u16::MAX] {
        assert_err!(
            read_all(&set_bc(v)),
            Error::ExtentMissingBlocks { offset, block_count, used, .. }
                if offset == want && block_count == v && used == u64::from(bc)
        );
    }
    // fewer blocks than the masks need
    assert_err!(
        read_all(&set_bc(bc - 1)),
        Error::ExtentTooManyBlocks { offset, block_count, needed, .. }
            if offset == want && block_count == bc - 1 && needed == u64::from(bc)
    );
    // more blocks than the masks use (the extra bytes exist: they are extent 1's)
    assert_err!(
        read_all(&set_bc(bc + 1)),
        Error::ExtentMissingBlocks { offset, used, .. } if offset == want && used == u64::from(bc)
    );
}

#[test]
fn vmstate_out_of_order() {
    let mut w = VmaWriter::new(
        Vec::new(),
        vec![],
        vec![("vmstate".into(), 3 * 65536)],
        WriterOptions {
            uuid: Some(UUID),
            ctime: Some(1),
        },
    )
    .unwrap();
    for c in 0..3 {
        w.write_cluster(1, c, &[1; 100]).unwrap();
    }
    let mut b = w.finish().unwrap();
    assert_eq!(read_all(&b).unwrap(), 1);
    // clusters 0, 1, 2 -> 0, 2, 1
    b[slot(HEADER, 1) + 7] = 2;
    b[slot(HEADER, 2) + 7] = 1;
    fix_extent_md5(&mut b, HEADER);
    let want = slot(HEADER, 1) as u64;
    assert_err!(
        read_all(&b),
        Error::VmstateOrder { offset, cluster: 2, expected: 1, .. } if offset == want
    );
}

#[test]
fn state_is_untouched_by_a_failed_extent() {
    // A duplicate inside extent 1 must not mark extent 1's earlier clusters as seen.
    let a = archive();
    let mut b = a.bytes.clone();
    b[slot(a.ext[1], 5) + 7] = 58; // cluster 63 -> 58, a duplicate of slot 0
    fix_extent_md5(&mut b, a.ext[1]);
    let mut r = VmaReader::new(&b[..]).unwrap();
    let mut buf = ExtentBuf::new();
    assert!(r.read_extent(&mut buf).unwrap());
    assert!(matches!(
        r.read_extent(&mut buf),
        Err(Error::DuplicateCluster { cluster: 58, .. })
    ));
    assert_eq!(buf.cluster_count(), 0, "buffer emptied on error");
    assert_eq!(r.clusters_seen(1), 58);
}

#[test]
fn io_errors_carry_the_offset() {
    struct Failing<'a>(&'a [u8], usize);
    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.1 >= self.0.len() {
                return Err(io::Error::other("disk on fire"));
            }
            let k = buf.len().min(self.0.len() - self.1);
            buf[..k].copy_from_slice(&self.0[self.1..self.1 + k]);
            self.1 += k;
            Ok(k)
        }
    }
    let a = archive();
    let src = Failing(&a.bytes[..a.ext[1] + 1000], 0);
    let mut r = VmaReader::new_named(src, "bad.vma").unwrap();
    let mut buf = ExtentBuf::new();
    assert!(r.read_extent(&mut buf).unwrap());
    match r.read_extent(&mut buf) {
        Err(e @ Error::Io { .. }) => {
            assert_eq!(e.offset(), Some(a.ext[1] as u64 + 1000), "the failing byte");
            assert!(e.to_string().contains("disk on fire"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let src = Failing(&a.bytes[..5], 0);
    assert_err!(
        VmaReader::new_named(src, "bad.vma"),
        Error::Io { offset: 5, .. }
    );
}

#[test]
fn huge_device_in_header_costs_little() {
    // A 256 TiB device (2^32 clusters) of which a few far-apart clusters are present: the
    // reader's per-device bitmap is sparse, so this neither allocates 512 MiB nor takes long.
    let size = 1u64 << 48;
    let mut out = Vec::new();
    let mut w = VmaWriter::new(
        &mut out,
        vec![],
        vec![("huge".into(), size)],
        WriterOptions {
            uuid: Some(UUID),
            ctime: Some(1),
        },
    )
    .unwrap();
    let mut clusters: Vec<u32> = vec![0, 7, 1 << 20, u32::MAX];
    clusters.extend(100..154u32);
    for &c in &clusters {
        w.write_cluster(1, c, &[3; 65536]).unwrap();
    }
    // the 59th cluster makes the writer flush the first 58; the rest is never finished
    w.write_cluster(1, 200, &[0; 65536]).unwrap();
    drop(w);
    let mut r = VmaReader::new(&out[..]).unwrap();
    let mut buf = ExtentBuf::new();
    assert!(r.read_extent(&mut buf).unwrap());
    assert_eq!(buf.cluster_count(), 58);
    assert!(!r.read_extent(&mut buf).unwrap());
    assert_eq!(r.clusters_seen(1), 58);
    let missing = r.missing();
    assert_eq!(
        missing,
        vec![(
            1u8,
            vec![
                1..7,
                8..100,
                154..1 << 20,
                (1 << 20) + 1..u64::from(u32::MAX)
            ]
        )]
    );
}
