//! Test fixtures shared by the restore crate's backend tests: volumes laid out exactly as
//! ingest lays them out (store::layout), written directly, one snapshot per "day".
#![allow(dead_code)]

pub mod images;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use store::layout::{self, Manifest, ManifestDevice, SourceFile, VmaIdentity, meta_keys};
use store::{MetaKey, SnapshotName, Store, VolumeName};
use vma::vzdump::{BackupName, BackupTime, GuestKind, VmId};

/// One backup as ingest would have stored it.
#[derive(Debug, Clone)]
pub struct Day {
    pub time: BackupTime,
    /// (devname, image bytes) in dev_id order.
    pub disks: Vec<(String, Vec<u8>)>,
    /// (name, bytes) in slot order.
    pub configs: Vec<(String, Vec<u8>)>,
    pub log: Option<Vec<u8>>,
    pub notes: Option<Vec<u8>>,
    pub uuid: [u8; 16],
    pub ctime: i64,
    /// Compression of the archive it came from (`none`, `zstd`…).
    pub compression: &'static str,
    pub protected: bool,
}

impl Day {
    pub fn snapshot(&self) -> SnapshotName {
        SnapshotName::new(self.time.snapshot_name()).unwrap()
    }
}

pub use store::testutil::noise;

pub fn time(s: &str) -> BackupTime {
    BackupTime::parse_snapshot_name(s).unwrap()
}

/// Three days of a VM with two disks (an unaligned 4 MiB-ish scsi0 and a 528 KiB efidisk),
/// configs with `#qmdump#map` lines, a firewall config from day 2, notes on days 1 and 3.
/// Each day changes blocks of both disks; day 3 zeroes a region that held data.
pub fn three_days(vmid: u32) -> Vec<Day> {
    const SCSI: usize = (4 << 20) + 3 * 4096 + 512;
    const EFI: usize = 528 * 1024;
    let mut scsi = vec![0u8; SCSI];
    let mut efi = vec![0u8; EFI];
    let mut days = Vec::new();
    let names = [
        "2026_11_01-02_00_03",
        "2026_11_02-02_00_05",
        "2026_11_03-02_00_01",
    ];
    for (i, name) in names.iter().enumerate() {
        let seed = i as u64 + 1;
        // Scattered data: a few 4 KiB blocks, a 200 KiB run, the unaligned tail.
        for (k, off) in [0usize, 70_000, 1 << 20, (2 << 20) + 4096 * 7]
            .iter()
            .enumerate()
        {
            let n = 4096usize;
            scsi[*off..off + n].copy_from_slice(&noise(seed * 100 + k as u64, n));
        }
        let run = 3 << 20;
        scsi[run..run + 200 * 1024].copy_from_slice(&noise(seed * 1000, 200 * 1024));
        let tail = SCSI - 700;
        scsi[tail..].copy_from_slice(&noise(seed * 7, 700));
        efi[i * 4096..i * 4096 + 100].copy_from_slice(&noise(seed * 3, 100));
        if i == 2 {
            scsi[run..run + 64 * 1024].fill(0);
        }
        let conf = format!(
            "boot: order=scsi0\ncores: 2\nmemory: 2048\nname: vm{vmid}-day{}\nscsi0: local-lvm:vm-{vmid}-disk-0,size=4M\n\
             efidisk0: local-lvm:vm-{vmid}-disk-1,size=528K\n#qmdump#map:efidisk0:drive-efidisk0:local-lvm:raw:\n\
             #qmdump#map:scsi0:drive-scsi0:local-lvm:raw:\n",
            i + 1
        )
        .into_bytes();
        let mut configs = vec![("qemu-server.conf".to_string(), conf)];
        if i >= 1 {
            configs.push((
                "qemu-server.fw".to_string(),
                format!("[OPTIONS]\nenable: {}\n", i % 2).into_bytes(),
            ));
        }
        days.push(Day {
            time: time(name),
            disks: vec![
                ("drive-efidisk0".into(), efi.clone()),
                ("drive-scsi0".into(), scsi.clone()),
            ],
            configs,
            log: Some(
                format!(
                    "INFO: starting new backup job: vzdump {vmid} day {}\n",
                    i + 1
                )
                .into_bytes(),
            ),
            notes: (i != 1).then(|| format!("notes of day {}\nsecond line\n", i + 1).into_bytes()),
            uuid: std::array::from_fn(|b| (b as u8).wrapping_mul(17).wrapping_add(i as u8)),
            ctime: 1_793_498_400 + 86_400 * i as i64,
            compression: ["zstd", "none", "gzip"][i],
            protected: i == 0,
        });
    }
    days
}

/// Writes an image sparsely: only non-zero 4 KiB blocks are written, zero blocks that held
/// data become holes (as ingest's punch-hole does), so SEEK_DATA sees real holes.
fn write_sparse(path: &Path, data: &[u8]) {
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)
        .unwrap();
    f.set_len(data.len() as u64).unwrap();
    for (i, block) in data.chunks(4096).enumerate() {
        let off = (i * 4096) as u64;
        if block.iter().all(|&b| b == 0) {
            punch_hole(&f, off, block.len() as u64);
        } else {
            f.write_all_at(block, off).unwrap();
        }
    }
    f.sync_all().unwrap();
}

fn punch_hole(f: &File, off: u64, len: u64) {
    use nix::fcntl::{FallocateFlags, fallocate};
    fallocate(
        f,
        FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE,
        off as i64,
        len as i64,
    )
    .unwrap();
}

fn write_or_remove(path: &Path, data: Option<&[u8]>) {
    match data {
        Some(d) => std::fs::write(path, d).unwrap(),
        None => {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Stores one day in the VM's volume and snapshots it, like ingest does.
pub fn store_day(store: &dyn Store, vmid: u32, day: &Day) {
    let vol = VolumeName::new(vmid.to_string()).unwrap();
    let dir = store.ensure_volume(&vol, &[]).unwrap();
    for (name, data) in &day.disks {
        write_sparse(&dir.join(layout::disk_file_name(name).unwrap()), data);
    }
    for stale in ["qemu-server.conf", "qemu-server.fw"] {
        if !day.configs.iter().any(|(n, _)| n == stale) {
            let _ = std::fs::remove_file(dir.join(stale));
        }
    }
    for (name, data) in &day.configs {
        std::fs::write(dir.join(name), data).unwrap();
    }
    write_or_remove(&dir.join(layout::LOG_FILE), day.log.as_deref());
    write_or_remove(&dir.join(layout::NOTES_FILE), day.notes.as_deref());
    let comp: vma::compress::Compression = day.compression.parse().unwrap();
    let source =
        BackupName::new(GuestKind::Qemu, VmId::new(vmid).unwrap(), day.time, comp).archive_name();
    let manifest = Manifest {
        format: layout::MANIFEST_FORMAT,
        vmid,
        backup_time: day.ctime,
        source: SourceFile {
            name: source.clone(),
            size: 123_456,
            compression: day.compression.into(),
        },
        vma: VmaIdentity {
            uuid: layout::format_uuid(&day.uuid),
            ctime: day.ctime,
        },
        devices: day
            .disks
            .iter()
            .enumerate()
            .map(|(i, (n, d))| ManifestDevice {
                dev_id: i as u8 + 1,
                name: n.clone(),
                size: d.len() as u64,
                file: layout::disk_file_name(n).unwrap(),
            })
            .collect(),
        configs: day.configs.iter().map(|(n, _)| n.clone()).collect(),
    };
    manifest.write_to(&dir).unwrap();
    let mut meta = BTreeMap::new();
    let key = |k: &str| MetaKey::new(k).unwrap();
    meta.insert(key(meta_keys::SOURCE), source);
    meta.insert(key(meta_keys::ARCHIVE_SIZE), "123456".into());
    meta.insert(key(meta_keys::UUID), layout::format_uuid(&day.uuid));
    meta.insert(key(meta_keys::CTIME), day.ctime.to_string());
    meta.insert(key(meta_keys::BACKUP_TIME), day.ctime.to_string());
    if day.protected {
        meta.insert(key(meta_keys::PROTECTED), "1".into());
    }
    store.snapshot(&vol, &day.snapshot(), &meta).unwrap();
    if day.protected {
        store
            .hold(&vol, &day.snapshot(), layout::PROTECTED_HOLD_TAG)
            .unwrap();
    }
}

/// Reads a (possibly compressed) VMA file back with the vma library: header and full images.
pub fn extract(path: &Path) -> (vma::Header, Vec<Vec<u8>>) {
    let file = File::open(path).unwrap();
    let (_, input) = vma::compress::open_decompressed(file).unwrap();
    let mut reader = vma::VmaReader::new_named(input, path.display().to_string()).unwrap();
    let header = reader.header().clone();
    let mut images: Vec<Vec<u8>> = header
        .devices
        .iter()
        .map(|d| vec![0u8; d.size as usize])
        .collect();
    let mut buf = vma::ExtentBuf::new();
    while reader.read_extent(&mut buf).unwrap() {
        for c in buf.clusters() {
            let idx = header
                .devices
                .iter()
                .position(|d| d.id == c.dev_id)
                .unwrap();
            let img = &mut images[idx];
            for (b, data) in c.blocks() {
                let off = c.device_offset() as usize + b * 4096;
                if let Some(data) = data
                    && off < img.len()
                {
                    let n = (img.len() - off).min(4096);
                    img[off..off + n].copy_from_slice(&data[..n]);
                }
            }
        }
    }
    reader.check_complete(None).unwrap();
    (header, images)
}

/// Every entry of a directory, sorted (to prove nothing was left behind).
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

pub fn read_all(path: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    File::open(path).unwrap().read_to_end(&mut v).unwrap();
    v
}
