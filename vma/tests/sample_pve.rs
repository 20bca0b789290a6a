//! The real PVE sample from fox-it/dissect.hypervisor (see shared/fixtures/third_party/README.md):
//! the first two extents of a live backup of a 10 GiB disk, truncated after extent 1.

use std::io::Read;

use sha2::{Digest, Sha256};
use vma::format::{BlockInfo, EXTENT_HEADER_SIZE, ExtentHeader, VmaHeader};
use vma::{Error, ExtentBuf, VmaReader};

fn sample() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/third_party/dissect-hypervisor_test.vma.gz"
    );
    let gz = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn sample_file_hashes() {
    let s = sample();
    assert_eq!(s.len(), 538_112);
    assert_eq!(
        hex(&Sha256::digest(&s)),
        "9c649a8f6ddd65034b6e24f76f104b2ab213f43015fd36a6d49477b9b8841ad4"
    );
}

#[test]
fn sample_header() {
    let s = sample();
    let r = VmaReader::new_named(&s[..], "test.vma").unwrap();
    let h = r.header();
    assert_eq!(h.uuid_string(), "04fc12eb-0fed-4322-9aaa-f4e412f68096");
    assert_eq!(h.ctime, 1_635_680_622);
    assert_eq!(h.configs.len(), 1);
    assert_eq!(h.configs[0].name, "qemu-server.conf");
    assert_eq!(h.configs[0].data.len(), 417);
    assert!(
        h.configs[0]
            .data
            .ends_with(b"#qmdump#map:scsi0:drive-scsi0:local-lvm:raw:\n")
    );
    assert_eq!(h.devices.len(), 1);
    let d = &h.devices[0];
    assert_eq!(
        (d.id, d.name.as_str(), d.size),
        (1, "drive-scsi0", 10_737_418_240)
    );
    assert!(!d.is_vmstate());
    assert_eq!(d.clusters(), 163_840);
    assert_eq!(r.offset(), 12800);

    let raw: &VmaHeader = r.raw_header();
    assert_eq!(raw.version, 1);
    assert_eq!(raw.blob_buffer_offset, 12288);
    assert_eq!(raw.blob_buffer_size, 453);
    assert_eq!(raw.header_size, 12800);
    assert_eq!((raw.config_names[0], raw.config_data[0]), (1, 20));
    assert_eq!(raw.dev_info[1].devname_ptr, 439);
    assert_eq!(raw.blobs.offsets(), &[1, 20, 439]);
    assert_eq!(raw.blobs.get(1).unwrap(), b"qemu-server.conf\0");
    assert_eq!(raw.blobs.get(439).unwrap(), b"drive-scsi0\0");
    // bytes after blob_buffer_size up to header_size are zero padding
    assert!(s[12288 + 453..12800].iter().all(|&b| b == 0));
}

#[test]
fn sample_extent_headers() {
    let s = sample();
    let uuid = VmaReader::new(&s[..]).unwrap().header().uuid;
    let mut at = 12800usize;
    let mut counts = Vec::new();
    while at < s.len() {
        let hdr: &[u8; 512] = s[at..at + 512].try_into().unwrap();
        let eh = ExtentHeader::parse_checked(hdr, &uuid, at as u64).unwrap();
        let used = eh.blockinfo.iter().filter(|b| b.dev_id != 0).count();
        assert_eq!(eh.blockinfo[58], BlockInfo::default(), "slot 58 unused");
        counts.push((at, eh.block_count, used));
        at += EXTENT_HEADER_SIZE + usize::from(eh.block_count) * 4096;
    }
    assert_eq!(counts, vec![(12800, 16, 58), (78848, 112, 58)]);
    assert_eq!(at, s.len());
}

#[test]
fn sample_clusters_stream_out_of_order() {
    let s = sample();
    let mut r = VmaReader::new_named(&s[..], "test.vma").unwrap();
    let mut buf = ExtentBuf::new();
    let mut order = Vec::new();
    let mut image: std::collections::BTreeMap<u32, Vec<u8>> = Default::default();
    let mut extents = Vec::new();
    while r.read_extent(&mut buf).unwrap() {
        extents.push((buf.offset(), buf.block_count(), buf.cluster_count()));
        for c in buf.clusters() {
            assert_eq!(c.dev_id, 1);
            assert_eq!(c.data().len(), c.mask.count_ones() as usize * 4096);
            order.push(c.cluster);
            let mut cl = vec![0u8; 65536];
            for (i, b) in c.blocks() {
                if let Some(b) = b {
                    cl[i * 4096..(i + 1) * 4096].copy_from_slice(b);
                }
            }
            assert!(image.insert(c.cluster, cl).is_none());
        }
    }
    assert_eq!(r.offset(), 538_112);
    assert_eq!(extents, vec![(12800, 16, 58), (78848, 112, 58)]);
    assert_eq!(order.len(), 116);
    assert!(order.iter().all(|&c| c <= 166));
    let expected_first: Vec<u32> = (0..16).chain(32..48).chain(64..90).collect();
    assert_eq!(&order[..58], &expected_first[..]);
    assert_eq!(&order[58..67], &[90, 96, 112, 128, 144, 48, 160, 16, 91]);
    assert_eq!(r.clusters_seen(1), 116);

    let nonzero: Vec<u32> = image
        .iter()
        .filter(|(_, d)| d.iter().any(|&b| b != 0))
        .map(|(&c, _)| c)
        .collect();
    assert_eq!(nonzero, vec![0, 16, 17, 18, 19, 20, 21, 22]);
    for c in 1..16 {
        assert!(image[&c].iter().all(|&b| b == 0), "cluster {c}");
    }
    assert_eq!(
        hex(&Sha256::digest(&image[&0])),
        "cf4adcf1933a8c9a0a3ff5588e1400e6beea8a32212b3a35ba08c7b08e4e6b1f"
    );
    let mut h = Sha256::new();
    for c in 16..=22 {
        h.update(&image[&c]);
    }
    assert_eq!(
        hex(&h.finalize()),
        "8c989a3aa590795fa919ccb7d1f28651c85f8a0d9ba00ab22cdd9fb760fa7955"
    );

    // Like `vma extract`, completeness fails: the 10 GiB device is mostly absent.
    let missing = r.missing();
    assert_eq!(missing.len(), 1);
    let (dev, ranges) = &missing[0];
    assert_eq!(*dev, 1);
    let total_missing: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    assert_eq!(total_missing, 163_840 - 116);
    // recompute the expected ranges from the seen set
    let mut expected: Vec<std::ops::Range<u64>> = Vec::new();
    for c in 0..163_840u64 {
        if !image.contains_key(&(c as u32)) {
            match expected.last_mut() {
                Some(r) if r.end == c => r.end += 1,
                _ => expected.push(c..c + 1),
            }
        }
    }
    assert_eq!(ranges, &expected);
    assert_eq!(expected.last().unwrap().end, 163_840);
    match r.check_complete(None) {
        Err(e @ Error::MissingClusters { .. }) => {
            let msg = e.to_string();
            assert!(msg.starts_with("test.vma: byte 538112: detected missing clusters: stream drive-scsi0 (dev_id 1): 163724 clusters missing: "), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        r.check_complete(Some(&[2])).is_ok(),
        "no device 2: nothing to check"
    );
}
