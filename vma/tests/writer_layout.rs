//! Byte-exact checks of the writer's layout against the C writer's rules (vma-format.md §1.9),
//! including a byte-for-byte reproduction of the real PVE sample archive.

use std::io::Read;

use vma::format::{BlockInfo, CLUSTER_SIZE, EXTENT_HEADER_SIZE, ExtentHeader, VmaHeader};
use vma::{Config, Error, ExtentBuf, VmaReader, VmaWriter, WriterOptions};

const UUID: [u8; 16] = [0xab; 16];

fn opts() -> WriterOptions {
    WriterOptions {
        uuid: Some(UUID),
        ctime: Some(1_700_000_000),
    }
}

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

/// Extent headers of a complete archive, with their offsets.
fn extents(archive: &[u8]) -> Vec<(usize, ExtentHeader)> {
    let header_size = u32::from_be_bytes(archive[56..60].try_into().unwrap()) as usize;
    VmaHeader::parse(&archive[..header_size]).unwrap();
    let mut at = header_size;
    let mut out = Vec::new();
    while at < archive.len() {
        let hdr: &[u8; 512] = archive[at..at + 512].try_into().unwrap();
        let eh = ExtentHeader::parse_checked(hdr, &UUID, at as u64).unwrap();
        let next = at + EXTENT_HEADER_SIZE + usize::from(eh.block_count) * 4096;
        out.push((at, eh));
        at = next;
    }
    assert_eq!(at, archive.len(), "extents tile the file");
    out
}

#[test]
fn reproduces_the_real_pve_sample_byte_for_byte() {
    let s = sample();
    let mut r = VmaReader::new(&s[..]).unwrap();
    let h = r.header().clone();
    let mut clusters: Vec<(u8, u32, Vec<u8>)> = Vec::new();
    let mut buf = ExtentBuf::new();
    while r.read_extent(&mut buf).unwrap() {
        for c in buf.clusters() {
            let mut data = vec![0u8; CLUSTER_SIZE];
            for (i, b) in c.blocks() {
                if let Some(b) = b {
                    data[i * 4096..(i + 1) * 4096].copy_from_slice(b);
                }
            }
            clusters.push((c.dev_id, c.cluster, data));
        }
    }
    let mut out = Vec::new();
    let mut w = VmaWriter::new(
        &mut out,
        h.configs.clone(),
        h.devices.iter().map(|d| (d.name.clone(), d.size)).collect(),
        WriterOptions {
            uuid: Some(h.uuid),
            ctime: Some(h.ctime),
        },
    )
    .unwrap();
    for (dev, cl, data) in &clusters {
        w.write_cluster(*dev, *cl, data).unwrap();
    }
    // One more cluster makes the writer flush the second extent of 58 entries.
    w.write_cluster(1, 1000, &[0u8; CLUSTER_SIZE]).unwrap();
    drop(w);
    assert_eq!(out.len(), s.len());
    assert!(out[..12800] == s[..12800], "header differs");
    assert!(out == s, "extents differ");
}

#[test]
fn header_geometry_of_sample() {
    let mut out = Vec::new();
    let cfg = Config {
        name: "qemu-server.conf".into(),
        data: vec![b'x'; 417],
    };
    let w = VmaWriter::new(
        &mut out,
        vec![cfg],
        vec![("drive-scsi0".into(), 65536)],
        opts(),
    )
    .unwrap();
    // nothing is written before the first extent
    assert_eq!(w.offset(), 0);
    let mut w = w;
    w.write_cluster(1, 0, &[0u8; CLUSTER_SIZE]).unwrap();
    w.finish().unwrap();
    let h = VmaHeader::parse(&out[..12800]).unwrap();
    assert_eq!(h.blob_buffer_offset, 12288);
    assert_eq!(h.blob_buffer_size, 453);
    assert_eq!(h.header_size, 12800);
    assert_eq!((h.config_names[0], h.config_data[0]), (1, 20));
    assert_eq!(h.dev_info[1].devname_ptr, 439);
    assert_eq!(&out[12288..12291], &[0, 17, 0], "pad byte, LE16 length");
    assert_eq!(&out[12288 + 20..12288 + 22], &417u16.to_le_bytes());
    assert!(out[12288 + 453..12800].iter().all(|&b| b == 0));
    assert_eq!(h.ctime, 1_700_000_000);
    assert_eq!(h.uuid, UUID);
    // header + one empty-data extent with one mask-0 entry
    assert_eq!(out.len(), 12800 + 512);
    let ex = extents(&out);
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].1.block_count, 0);
    assert_eq!(
        ex[0].1.blockinfo[0],
        BlockInfo {
            mask: 0,
            dev_id: 1,
            cluster: 0
        }
    );
}

#[test]
fn blob_table_grows_in_512_steps() {
    let mut out = Vec::new();
    let configs = vec![
        Config {
            name: "a".into(),
            data: vec![1; 600],
        },
        Config {
            name: "b".into(),
            data: vec![],
        },
    ];
    let mut w = VmaWriter::new(&mut out, configs, vec![("d".into(), 1)], opts()).unwrap();
    w.write_cluster(1, 0, &[0]).unwrap();
    w.finish().unwrap();
    let h = VmaHeader::parse(&out[..out.len() - 512]).unwrap();
    // "a\0" at 1 (size 512); 600 bytes at 5: 5+602 > 512 grows by 1024 to 1536;
    // "b\0" at 607; empty data at 611; "d\0" at 613; used 617
    assert_eq!(h.blob_buffer_size, 617);
    assert_eq!(h.header_size, 12288 + 1536);
    assert_eq!(h.config_names[..3], [1, 607, 0]);
    assert_eq!(h.config_data[..3], [5, 611, 0]);
    assert_eq!(h.dev_info[1].devname_ptr, 613);
}

#[test]
fn at_most_58_clusters_per_extent_and_zero_clusters_get_entries() {
    let mut out = Vec::new();
    let n = 200u32;
    let mut w = VmaWriter::new(
        &mut out,
        vec![],
        vec![("d".into(), u64::from(n) * 65536)],
        opts(),
    )
    .unwrap();
    let mut data = vec![0u8; CLUSTER_SIZE];
    for c in 0..n {
        // cluster 7: blocks 0 and 15 non-zero
        data.fill(0);
        if c == 7 {
            data[0] = 1;
            data[65535] = 2;
        }
        w.write_cluster(1, c, &data).unwrap();
    }
    w.finish().unwrap();
    let ex = extents(&out);
    let used: Vec<usize> = ex
        .iter()
        .map(|(_, e)| e.blockinfo.iter().filter(|b| b.dev_id != 0).count())
        .collect();
    assert_eq!(used, vec![58, 58, 58, 26]);
    for (_, e) in &ex {
        assert_eq!(e.blockinfo[58], BlockInfo::default());
    }
    let (at0, e0) = &ex[0];
    assert_eq!(e0.block_count, 2);
    assert_eq!(e0.blockinfo[7].mask, 0x8001);
    assert_eq!(e0.blockinfo[6].mask, 0);
    // the two stored blocks follow the header in block order
    assert_eq!(out[at0 + 512], 1);
    assert_eq!(out[at0 + 512 + 4096 + 4095], 2);
    assert_eq!(ex[1].0, at0 + 512 + 2 * 4096);
    let clusters: Vec<u32> = ex
        .iter()
        .flat_map(|(_, e)| {
            e.blockinfo
                .iter()
                .filter(|b| b.dev_id != 0)
                .map(|b| b.cluster)
        })
        .collect();
    assert_eq!(clusters, (0..n).collect::<Vec<_>>());
}

#[test]
fn device_less_archive_is_header_plus_one_empty_extent() {
    let mut out = Vec::new();
    let cfg = Config {
        name: "qemu-server.conf".into(),
        data: b"name: diskless\n".to_vec(),
    };
    let w = VmaWriter::new(&mut out, vec![cfg.clone()], vec![], opts()).unwrap();
    w.finish().unwrap();
    assert_eq!(out.len(), 12800 + 512);
    let ex = extents(&out);
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].1.block_count, 0);
    assert!(ex[0].1.blockinfo.iter().all(|b| *b == BlockInfo::default()));
    assert_eq!(&out[12800..12804], b"VMAE");
    let mut r = VmaReader::new(&out[..]).unwrap();
    assert_eq!(r.header().configs, vec![cfg]);
    let mut buf = ExtentBuf::new();
    assert!(r.read_extent(&mut buf).unwrap());
    assert_eq!(buf.cluster_count(), 0);
    assert!(!r.read_extent(&mut buf).unwrap());
    r.check_complete(None).unwrap();

    // even with nothing at all, the header stays readable (header_size > 12288)
    let mut out = Vec::new();
    VmaWriter::new(&mut out, vec![], vec![], opts())
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(out.len(), 12800 + 512);
    let r = VmaReader::new(&out[..]).unwrap();
    assert!(r.header().devices.is_empty() && r.header().configs.is_empty());
}

fn single_cluster_archive(size: u64, data: &[u8]) -> (Vec<u8>, ExtentHeader, usize) {
    let mut out = Vec::new();
    let clusters = size.div_ceil(65536) as u32;
    let mut w = VmaWriter::new(&mut out, vec![], vec![("d".into(), size)], opts()).unwrap();
    for c in 0..clusters - 1 {
        w.write_cluster(1, c, &[0u8; CLUSTER_SIZE]).unwrap();
    }
    w.write_cluster(1, clusters - 1, data).unwrap();
    w.finish().unwrap();
    let ex = extents(&out);
    assert_eq!(ex.len(), 1);
    let (at, eh) = ex.into_iter().next().unwrap();
    (out, eh, at)
}

#[test]
fn tail_past_device_end_is_zeroed_and_masked() {
    // 65536 + 4097 bytes: cluster 1 has block 0 full and block 1 with one valid byte.
    let ones = vec![0xffu8; CLUSTER_SIZE];
    let (out, eh, at) = single_cluster_archive(65536 + 4097, &ones);
    assert_eq!(eh.blockinfo[1].mask, 0b11);
    assert_eq!(eh.block_count, 2);
    let data = &out[at + 512..];
    assert!(data[..4097].iter().all(|&b| b == 0xff));
    assert!(
        data[4097..8192].iter().all(|&b| b == 0),
        "straddling block tail zeroed"
    );

    // the same with only the tail passed
    let (out2, _, _) = single_cluster_archive(65536 + 4097, &ones[..4097]);
    assert_eq!(out, out2);

    // a block that is non-zero only past the end is not stored at all
    let mut past = vec![0u8; CLUSTER_SIZE];
    past[4097] = 1;
    past[60000] = 1;
    let (_, eh, _) = single_cluster_archive(65536 + 4097, &past);
    assert_eq!(eh.blockinfo[1].mask, 0);
    assert_eq!(eh.block_count, 0);

    for size in [1u64, 4095, 4096, 4097, 65535, 65537] {
        let (out, eh, at) = single_cluster_archive(size, &ones);
        let last = ((size - 1) % 65536) / 4096;
        let expect_mask = ((1u32 << (last + 1)) - 1) as u16;
        let slot = eh.blockinfo.iter().rposition(|b| b.dev_id != 0).unwrap();
        assert_eq!(eh.blockinfo[slot].mask, expect_mask, "size {size}");
        let valid = ((size - 1) % 65536 + 1) as usize;
        let data = &out[at + 512..];
        assert_eq!(data.len(), (last as usize + 1) * 4096);
        assert!(data[..valid].iter().all(|&b| b == 0xff), "size {size}");
        assert!(data[valid..].iter().all(|&b| b == 0), "size {size}");
    }
}

#[test]
fn writer_rejects_bad_use() {
    let mk = |configs: Vec<Config>, devices: Vec<(String, u64)>| {
        VmaWriter::new(Vec::new(), configs, devices, opts())
    };
    let cfg = |name: &str, len: usize| Config {
        name: name.into(),
        data: vec![b'x'; len],
    };
    for name in ["", "a/b", "/etc/passwd", "a\0b", ".", ".."] {
        assert!(
            matches!(
                mk(vec![cfg(name, 1)], vec![]),
                Err(Error::InvalidConfig { .. })
            ),
            "{name:?}"
        );
    }
    assert!(matches!(
        mk(vec![cfg("big", 65536)], vec![]),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(mk(vec![cfg("max", 65535)], vec![]).is_ok());
    // 8 configs of 65535 bytes do not fit a 512 KiB header
    let many: Vec<Config> = (0..8).map(|i| cfg(&format!("c{i}"), 65535)).collect();
    assert!(matches!(
        mk(many, vec![]),
        Err(Error::HeaderTooLarge { .. })
    ));
    assert!(matches!(
        mk(vec![], vec![("d".into(), 0)]),
        Err(Error::InvalidDevice { .. })
    ));
    assert!(matches!(
        mk(vec![], vec![("d".into(), 1), ("d".into(), 1)]),
        Err(Error::InvalidDevice { .. })
    ));
    assert!(matches!(
        mk(vec![], vec![("".into(), 1)]),
        Err(Error::InvalidDevice { .. })
    ));
    assert!(matches!(
        mk(vec![], vec![("d".into(), (1u64 << 48) + 1)]),
        Err(Error::InvalidDevice { .. })
    ));
    assert!(mk(vec![], vec![("d".into(), 1u64 << 48)]).is_ok());
    let devs: Vec<(String, u64)> = (0..255).map(|i| (format!("d{i}"), 1)).collect();
    assert!(matches!(mk(vec![], devs), Err(Error::InvalidDevice { .. })));
    let devs: Vec<(String, u64)> = (0..254).map(|i| (format!("d{i}"), 1)).collect();
    assert!(mk(vec![], devs).is_ok());

    let mut w = mk(vec![], vec![("d".into(), 65536 * 2 + 10)])
        .unwrap()
        .with_target_name("out.vma");
    let z = vec![0u8; CLUSTER_SIZE];
    assert!(matches!(
        w.write_cluster(2, 0, &z),
        Err(Error::UnknownDevice { dev_id: 2, .. })
    ));
    assert!(matches!(
        w.write_cluster(0, 0, &z),
        Err(Error::UnknownDevice { dev_id: 0, .. })
    ));
    assert!(matches!(
        w.write_cluster(1, 3, &z),
        Err(Error::BeyondDeviceEnd { cluster: 3, .. })
    ));
    assert!(matches!(
        w.write_cluster(1, 0, &z[..100]),
        Err(Error::ClusterLength { len: 100, .. })
    ));
    assert!(matches!(
        w.write_cluster(1, 2, &z[..11]),
        Err(Error::ClusterLength { len: 11, .. })
    ));
    w.write_cluster(1, 2, &z[..10]).unwrap();
    w.write_cluster(1, 0, &z).unwrap();
    match w.write_cluster(1, 0, &z) {
        Err(e @ Error::DuplicateCluster { cluster: 0, .. }) => {
            assert!(e.to_string().starts_with("out.vma: "), "{e}")
        }
        other => panic!("{other:?}"),
    }
    match w.finish() {
        Err(Error::IncompleteStream {
            written: 2,
            total: 3,
            name,
            ..
        }) => assert_eq!(name, "d"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn defaults_random_v4_uuid_and_current_ctime() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let a = VmaWriter::new(Vec::new(), vec![], vec![], WriterOptions::default()).unwrap();
    let b = VmaWriter::new(Vec::new(), vec![], vec![], WriterOptions::default()).unwrap();
    assert_ne!(a.uuid(), b.uuid());
    assert_eq!(a.uuid()[6] >> 4, 4, "version 4");
    assert_eq!(a.uuid()[8] & 0xc0, 0x80, "RFC 4122 variant");
    assert!((a.ctime() - now).abs() < 60);
}

#[test]
fn vmstate_stream_is_sequential_and_unbounded() {
    let mut out = Vec::new();
    let mut w = VmaWriter::new(
        &mut out,
        vec![],
        vec![("drive-a".into(), 100), ("vmstate".into(), 1000)],
        opts(),
    )
    .unwrap();
    assert!(matches!(
        w.write_cluster(2, 1, &[1; 10]),
        Err(Error::VmstateOrder {
            cluster: 1,
            expected: 0,
            ..
        })
    ));
    w.write_cluster(2, 0, &[1; 65536]).unwrap();
    w.write_cluster(1, 0, &[2; 100]).unwrap();
    w.write_cluster(2, 1, &[3; 10]).unwrap(); // past the stated size: vmstate has no end
    w.finish().unwrap();
    let mut r = VmaReader::new(&out[..]).unwrap();
    let mut buf = ExtentBuf::new();
    assert!(r.read_extent(&mut buf).unwrap());
    let got: Vec<(u8, u32, u16)> = buf
        .clusters()
        .map(|c| (c.dev_id, c.cluster, c.mask))
        .collect();
    assert_eq!(got, vec![(2, 0, 0xffff), (1, 0, 1), (2, 1, 1)]);
    assert!(!r.read_extent(&mut buf).unwrap());
    r.check_complete(None).unwrap();
    assert_eq!(r.clusters_seen(2), 2);
}

#[test]
fn zero_clusters_written_as_such_equal_zero_data() {
    // A device whose size is not a multiple of 64 KiB, clusters out of order, devices
    // interleaved, some clusters given as known zeros: the same bytes as passing zeros.
    let sizes = [5 * 65536 + 1000, 3 * 65536];
    let devices: Vec<(String, u64)> = vec![("a".into(), sizes[0]), ("b".into(), sizes[1])];
    let zero_clusters = [(1u8, 0u32), (1, 3), (1, 5), (2, 1)];
    let write = |known_zero: bool| {
        let mut w = VmaWriter::new(Vec::new(), vec![], devices.clone(), opts()).unwrap();
        for (dev, c) in [
            (1u8, 3u32),
            (2, 0),
            (1, 0),
            (1, 1),
            (2, 1),
            (1, 5),
            (1, 2),
            (2, 2),
            (1, 4),
        ] {
            let len = (sizes[usize::from(dev) - 1] - u64::from(c) * 65536).min(65536) as usize;
            if zero_clusters.contains(&(dev, c)) {
                if known_zero {
                    w.write_zero_cluster(dev, c).unwrap();
                } else {
                    w.write_cluster(dev, c, &vec![0u8; len]).unwrap();
                }
            } else {
                let data: Vec<u8> = (0..len)
                    .map(|i| (i / 4096 + usize::from(dev) + c as usize) as u8 | 1)
                    .collect();
                w.write_cluster(dev, c, &data).unwrap();
            }
        }
        w.finish().unwrap()
    };
    let a = write(false);
    assert_eq!(a, write(true));
    assert_eq!(extents(&a).len(), 1);

    // The same rules as write_cluster.
    let mut w = VmaWriter::new(Vec::new(), vec![], devices.clone(), opts()).unwrap();
    w.write_zero_cluster(1, 0).unwrap();
    assert!(matches!(
        w.write_zero_cluster(1, 0),
        Err(Error::DuplicateCluster { .. })
    ));
    assert!(matches!(
        w.write_cluster(1, 0, &[0u8; 65536]),
        Err(Error::DuplicateCluster { .. })
    ));
    assert!(matches!(
        w.write_zero_cluster(1, 6),
        Err(Error::BeyondDeviceEnd { .. })
    ));
    assert!(matches!(
        w.write_zero_cluster(3, 0),
        Err(Error::UnknownDevice { .. })
    ));
    assert!(matches!(w.finish(), Err(Error::IncompleteStream { .. })));
}
