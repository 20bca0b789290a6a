//! Helpers shared by the ingest backend tests: options, running an ingest, corrupting
//! archives by class, ZFS record arithmetic.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ingest::IngestOptions;
use ingest::run::run;
use ingest::scan::ScanOptions;
use ingest::summary::{BackupResult, RunSummary};
use ingest::synth::{Day, write_backup};
use store::{SnapshotName, Store, VolumeName};
use vma::progress::NoProgress;

pub fn opts(dump: &Path) -> IngestOptions {
    IngestOptions {
        scan: ScanOptions {
            dump_dirs: vec![dump.to_path_buf()],
            settle: Duration::ZERO,
            include: vec![],
            exclude: vec![],
        },
        volume_properties: vec![
            ("recordsize".into(), "64K".into()),
            ("compression".into(), "lz4".into()),
        ],
        ..Default::default()
    }
}

pub fn ingest(store: &dyn Store, o: &IngestOptions) -> RunSummary {
    run(store, o, &NoProgress, SystemTime::now()).expect("scan")
}

pub fn result<'a>(s: &'a RunSummary, vmid: u32, day: &Day) -> &'a BackupResult {
    let t = day.time.snapshot_name();
    s.backups
        .iter()
        .find(|b| b.vmid == vmid && b.backup_time == t)
        .unwrap_or_else(|| panic!("no result for {vmid} {t}: {s:#?}"))
}

pub fn vol(vmid: u32) -> VolumeName {
    VolumeName::new(vmid.to_string()).unwrap()
}

pub fn snap_names(store: &dyn Store, vmid: u32) -> Vec<String> {
    store
        .list_snapshots(&vol(vmid))
        .unwrap()
        .into_iter()
        .map(|s| s.name.to_string())
        .collect()
}

pub fn snap_path(store: &dyn Store, vmid: u32, day: &Day) -> PathBuf {
    store
        .snapshot_path(
            &vol(vmid),
            &SnapshotName::new(day.time.snapshot_name()).unwrap(),
        )
        .unwrap()
}

/// Writes `day` with the given compression (tests override the series' own).
pub fn write_as(
    dir: &Path,
    vmid: u32,
    seed: u64,
    day: &Day,
    c: vma::compress::Compression,
) -> PathBuf {
    let mut d = day.clone();
    d.compression = c;
    write_backup(dir, vmid, seed, &d, false).unwrap().archive
}

/// An extent's position in a plain VMA file.
#[derive(Debug, Clone, Copy)]
pub struct Extent {
    pub at: usize,
    pub len: usize,
}

pub fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

pub fn header_size(b: &[u8]) -> usize {
    be_u32(b, 56) as usize
}

pub fn extents(b: &[u8]) -> Vec<Extent> {
    let mut out = Vec::new();
    let mut at = header_size(b);
    while at + 512 <= b.len() {
        let blocks = u16::from_be_bytes([b[at + 6], b[at + 7]]) as usize;
        let len = 512 + blocks * 4096;
        out.push(Extent { at, len });
        at += len;
    }
    out
}

/// (mask, dev_id, cluster) of blockinfo `slot` of the extent at `at`.
pub fn blockinfo(b: &[u8], at: usize, slot: usize) -> (u16, u8, u32) {
    let p = at + 40 + 8 * slot;
    let v = u64::from_be_bytes(b[p..p + 8].try_into().unwrap());
    ((v >> 48) as u16, (v >> 32) as u8, v as u32)
}

pub fn set_blockinfo(b: &mut [u8], at: usize, slot: usize, (mask, dev, cluster): (u16, u8, u32)) {
    let v = (u64::from(mask) << 48) | (u64::from(dev) << 32) | u64::from(cluster);
    let p = at + 40 + 8 * slot;
    b[p..p + 8].copy_from_slice(&v.to_be_bytes());
}

/// Recomputes the extent header MD5 after an edit, so the edit itself is what the reader
/// must catch.
pub fn fix_extent_md5(b: &mut [u8], at: usize) {
    let sum = vma::format::md5_with_zeroed_field(&b[at..at + 512], 24);
    b[at + 24..at + 40].copy_from_slice(&sum);
}

/// The corrupt-archive classes of the vma issue, applied to a plain archive's bytes.
pub const CORRUPTIONS: [&str; 11] = [
    "flipped-header-byte",
    "flipped-extent-header-byte",
    "truncated-mid-header",
    "truncated-mid-extent",
    "truncated-at-extent-boundary",
    "trailing-garbage",
    "wrong-uuid",
    "duplicate-cluster",
    "block-past-end",
    "unknown-dev-id",
    "oversized-block-count",
];

/// First slot of the extent at `at` whose mask stores blocks.
fn data_slot(b: &[u8], at: usize) -> usize {
    (0..59)
        .find(|&s| {
            let (m, d, _) = blockinfo(b, at, s);
            d != 0 && m != 0
        })
        .expect("an extent with data")
}

pub fn corrupt(plain: &[u8], class: &str) -> Vec<u8> {
    let mut b = plain.to_vec();
    let hs = header_size(&b);
    let ex = extents(&b);
    assert!(ex.len() >= 3, "need a few extents");
    let (e0, e1) = (ex[0], ex[1]);
    match class {
        "flipped-header-byte" => b[100] ^= 0x01,
        "flipped-extent-header-byte" => b[e1.at + 100] ^= 0x10,
        "truncated-mid-header" => b.truncate(hs / 2),
        "truncated-mid-extent" => b.truncate(e1.at + 512 + 4096 + 7),
        "truncated-at-extent-boundary" => b.truncate(e1.at + e1.len),
        "trailing-garbage" => b.extend(std::iter::repeat_n(0xab, 777)),
        "wrong-uuid" => {
            b[e1.at + 8] ^= 0xff;
            fix_extent_md5(&mut b, e1.at);
        }
        "duplicate-cluster" => {
            let (_, d0, c0) = blockinfo(&b, e0.at, 0);
            let (m1, _, _) = blockinfo(&b, e1.at, 0);
            set_blockinfo(&mut b, e1.at, 0, (m1, d0, c0));
            fix_extent_md5(&mut b, e1.at);
        }
        "block-past-end" => {
            let s = data_slot(&b, e1.at);
            let (m, d, _) = blockinfo(&b, e1.at, s);
            set_blockinfo(&mut b, e1.at, s, (m, d, 0x00ff_ffff));
            fix_extent_md5(&mut b, e1.at);
        }
        "unknown-dev-id" => {
            let (m, _, c) = blockinfo(&b, e1.at, 0);
            set_blockinfo(&mut b, e1.at, 0, (m, 9, c));
            fix_extent_md5(&mut b, e1.at);
        }
        "oversized-block-count" => {
            b[e1.at + 6..e1.at + 8].copy_from_slice(&0xffffu16.to_be_bytes());
            fix_extent_md5(&mut b, e1.at);
        }
        other => panic!("unknown corruption {other}"),
    }
    b
}

/// The distinct records of size `rs` that contain a changed 4 KiB block, summed over disks
/// (new disks: records with non-zero data).
pub fn touched_records(prev: Option<&Day>, day: &Day, rs: usize) -> u64 {
    let mut n = 0;
    for d in &day.disks {
        let old = prev
            .and_then(|p| p.disk(&d.name))
            .map(|x| x.data.as_slice())
            .unwrap_or(&[]);
        for (r, rec) in d.data.chunks(rs).enumerate() {
            let start = r * rs;
            let changed = rec.chunks(4096).enumerate().any(|(i, nb)| {
                let s = start + i * 4096;
                (0..nb.len()).any(|k| old.get(s + k).copied().unwrap_or(0) != nb[k])
            });
            if changed {
                n += 1;
            }
        }
    }
    n
}
