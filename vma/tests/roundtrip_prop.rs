//! Property tests: whatever the writer writes, the reader reads back identically — per device
//! bytes and configs — in archive order or shuffled and interleaved across devices like a live
//! backup, through a reader that hands out bytes in small, uneven pieces like a pipe.

use std::io::Read;

use proptest::prelude::*;
use vma::format::{BLOCK_SIZE, CLUSTER_SIZE};
use vma::{Config, ExtentBuf, VmaReader, VmaWriter, WriterOptions};

/// Device sizes that stress the tail handling, plus random small ones.
fn size_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(1u64),
        Just(4095),
        Just(4096),
        Just(4097),
        Just(65535),
        Just(65536),
        Just(65537),
        Just(3 * 65536 + 12345),
        1u64..400_000,
    ]
}

#[derive(Debug, Clone)]
struct Disk {
    size: u64,
    /// Per 4 KiB block: 0 = zero, 1 = filled with a pattern, 2 = one non-zero byte at the end.
    kinds: Vec<u8>,
    seed: u8,
}

impl Disk {
    fn image(&self) -> Vec<u8> {
        let mut img = vec![0u8; self.size as usize];
        for (i, k) in self.kinds.iter().enumerate() {
            let start = i * BLOCK_SIZE;
            if start >= img.len() {
                break;
            }
            let end = (start + BLOCK_SIZE).min(img.len());
            match k {
                1 => {
                    for (j, b) in img[start..end].iter_mut().enumerate() {
                        *b = (j as u8).wrapping_mul(31) ^ self.seed ^ (i as u8) | 1;
                    }
                }
                2 => img[end - 1] = self.seed | 0x80,
                _ => {}
            }
        }
        img
    }
}

fn disk_strategy() -> impl Strategy<Value = Disk> {
    size_strategy().prop_flat_map(|size| {
        let blocks = size.div_ceil(BLOCK_SIZE as u64) as usize;
        (
            proptest::collection::vec(
                prop_oneof![3 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8)],
                blocks,
            ),
            any::<u8>(),
        )
            .prop_map(move |(kinds, seed)| Disk { size, kinds, seed })
    })
}

fn config_strategy() -> impl Strategy<Value = Vec<Config>> {
    proptest::collection::vec(
        (
            "[a-z][a-z0-9._-]{0,20}",
            proptest::collection::vec(any::<u8>(), 0..3000),
        ),
        0..4,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (name, data))| Config {
                name: format!("{i}-{name}"),
                data,
            })
            .collect()
    })
}

/// A `Read` that returns at most `step` bytes per call, cycling through uneven sizes.
struct Trickle<'a> {
    data: &'a [u8],
    pos: usize,
    steps: &'a [usize],
    n: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let step = self.steps[self.n % self.steps.len()];
        self.n += 1;
        let k = step.min(buf.len()).min(self.data.len() - self.pos);
        buf[..k].copy_from_slice(&self.data[self.pos..self.pos + k]);
        self.pos += k;
        Ok(k)
    }
}

fn cluster_of(img: &[u8], c: u64) -> &[u8] {
    let start = (c as usize) * CLUSTER_SIZE;
    &img[start..(start + CLUSTER_SIZE).min(img.len())]
}

fn write_archive(configs: &[Config], disks: &[Disk], order: &[(u8, u64)]) -> Vec<u8> {
    let images: Vec<Vec<u8>> = disks.iter().map(Disk::image).collect();
    let devices = disks
        .iter()
        .enumerate()
        .map(|(i, d)| (format!("drive-scsi{i}"), d.size))
        .collect();
    let mut w = VmaWriter::new(
        Vec::new(),
        configs.to_vec(),
        devices,
        WriterOptions {
            uuid: Some([9; 16]),
            ctime: Some(1),
        },
    )
    .unwrap();
    let mut full = vec![0u8; CLUSTER_SIZE];
    for &(dev, c) in order {
        let part = cluster_of(&images[usize::from(dev) - 1], c);
        // alternate between passing exact tails and zero-padded whole clusters
        if c % 2 == 0 {
            w.write_cluster(dev, c as u32, part).unwrap();
        } else {
            full.fill(0);
            full[..part.len()].copy_from_slice(part);
            w.write_cluster(dev, c as u32, &full).unwrap();
        }
    }
    w.finish().unwrap()
}

/// What the reader saw: configs, device images, and the (dev_id, cluster) archive order.
type ReadBack = (Vec<Config>, Vec<Vec<u8>>, Vec<(u8, u64)>);

/// Reads an archive and reconstructs every device image from its clusters.
fn read_back(archive: &[u8], steps: &[usize]) -> ReadBack {
    let src = Trickle {
        data: archive,
        pos: 0,
        steps,
        n: 0,
    };
    let mut r = VmaReader::new_named(src, "prop.vma").unwrap();
    let h = r.header().clone();
    let mut images: Vec<Vec<u8>> = h
        .devices
        .iter()
        .map(|d| vec![0u8; d.size as usize])
        .collect();
    let mut order = Vec::new();
    let mut buf = ExtentBuf::new();
    while r.read_extent(&mut buf).unwrap() {
        assert!(buf.cluster_count() <= 58);
        for c in buf.clusters() {
            order.push((c.dev_id, u64::from(c.cluster)));
            let img = &mut images[usize::from(c.dev_id) - 1];
            for (i, b) in c.blocks() {
                let start = c.device_offset() as usize + i * BLOCK_SIZE;
                if let Some(b) = b {
                    assert!(start < img.len(), "block past the end was stored");
                    let end = (start + BLOCK_SIZE).min(img.len());
                    img[start..end].copy_from_slice(&b[..end - start]);
                    assert!(b[end - start..].iter().all(|&x| x == 0), "tail not zeroed");
                    assert!(b.iter().any(|&x| x != 0), "zero block stored");
                }
            }
        }
    }
    assert_eq!(r.offset(), archive.len() as u64);
    r.check_complete(None).unwrap();
    assert!(r.missing().is_empty());
    (h.configs, images, order)
}

fn sequential_order(disks: &[Disk]) -> Vec<(u8, u64)> {
    disks
        .iter()
        .enumerate()
        .flat_map(|(i, d)| (0..d.size.div_ceil(CLUSTER_SIZE as u64)).map(move |c| (i as u8 + 1, c)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn write_then_read_is_identity(
        configs in config_strategy(),
        disks in proptest::collection::vec(disk_strategy(), 1..=4),
        steps in proptest::collection::vec(1usize..70_000, 1..5),
    ) {
        let order = sequential_order(&disks);
        let archive = write_archive(&configs, &disks, &order);
        let (cfg_back, images, order_back) = read_back(&archive, &steps);
        prop_assert_eq!(cfg_back, configs);
        prop_assert_eq!(order_back, order);
        for (d, img) in disks.iter().zip(&images) {
            prop_assert!(d.image() == *img, "device image differs (size {})", d.size);
        }
    }

    #[test]
    fn shuffled_interleaved_clusters_read_back(
        configs in config_strategy(),
        (disks, order) in proptest::collection::vec(disk_strategy(), 1..=4)
            .prop_flat_map(|disks| {
                let order = sequential_order(&disks);
                (Just(disks), Just(order).prop_shuffle())
            }),
        steps in proptest::collection::vec(1usize..70_000, 1..5),
    ) {
        let archive = write_archive(&configs, &disks, &order);
        let (cfg_back, images, order_back) = read_back(&archive, &steps);
        prop_assert_eq!(cfg_back, configs);
        // the writer keeps the caller's order, the reader reports archive order
        prop_assert_eq!(order_back, order);
        for (d, img) in disks.iter().zip(&images) {
            prop_assert!(d.image() == *img, "device image differs (size {})", d.size);
        }
    }
}
