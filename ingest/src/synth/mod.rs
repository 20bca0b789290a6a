//! Deterministic synthetic vzdump backups of one VM over several days, for the demo
//! (`vzsnap dev gen-backups`) and the tests.
//!
//! Realistic where it matters to ingest: disks of mixed content (compressible text-like
//! blocks, incompressible random blocks, zero runs), daily churn of about 1 % of the 4 KiB
//! blocks (scattered and clustered, some blocks becoming zero), a trimmed (zeroed) region, a
//! disk that grows, a disk added, a disk removed, a disk that shrinks, config edits, a
//! firewall config that comes and goes, notes on some days, one protected backup, and every
//! vzdump compression in turn. Everything derives from one seed, so a test can rebuild any
//! day's exact images and compare them with what ingest stored.
//!
//! The day-by-day events (day 1 is the first backup):
//!
//! | day | event |
//! | --- | --- |
//! | 1 | `drive-scsi0` (size S) and `drive-scsi1` (S/2 + 2.5 KiB, not a multiple of 4 KiB) |
//! | ≥ 2 | ~1 % of each disk's blocks rewritten (a fifth of them become zero) + one run of up to 64 blocks |
//! | 2 | a 2 % region of `drive-scsi0` zeroed (fstrim); memory edited; firewall config appears; protected |
//! | 3 | `drive-scsi0` grows by S/4 + 1.5 KiB (half of the new space written) |
//! | 4 | `drive-scsi2` (S/4) added; memory edited |
//! | 5 | `drive-scsi1` removed; firewall config removed |
//! | 6 | `drive-scsi2` shrinks to half |
//! | 7k | another zeroed region |
//!
//! Compression cycles zstd, gzip, lzo, none (day 1 zstd). Notes exist unless the day is a
//! multiple of 3.

pub mod check;
mod rng;
mod write;

pub use rng::Rng;
pub use write::{Written, write_backup};

use vma::Config;
use vma::compress::Compression;
use vma::vzdump::BackupTime;

/// 4 KiB.
const BLOCK: usize = 4096;

/// What series to generate.
#[derive(Debug, Clone)]
pub struct SeriesSpec {
    pub vmid: u32,
    pub seed: u64,
    /// Size S of the first disk on day 1 (bytes; a multiple of 4 KiB is typical).
    pub disk_size: u64,
    /// Time of day 1's backup (local time, as vzdump names it).
    pub start: BackupTime,
    /// Write clusters like a live backup does (any order, devices interleaved) instead of
    /// device by device in order.
    pub live_order: bool,
}

impl SeriesSpec {
    /// A series starting 2026-11-01 02:00:03 with clusters in order.
    pub fn new(vmid: u32, seed: u64, disk_size: u64) -> Self {
        SeriesSpec {
            vmid,
            seed,
            disk_size,
            start: BackupTime::new(2026, 11, 1, 2, 0, 3).unwrap_or_else(|_| unreachable_time()),
            live_order: false,
        }
    }
}

fn unreachable_time() -> BackupTime {
    // BackupTime::new only fails for invalid dates; 2026-11-01 is valid. Fall back to the
    // parsed form to stay panic-free.
    BackupTime::parse_snapshot_name("2026_11_01-02_00_03").unwrap_or_else(|| {
        BackupTime::parse_snapshot_name("2000_01_01-00_00_00").expect("static valid time")
    })
}

/// One disk of the VM on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// VMA device name, e.g. `drive-scsi0`.
    pub name: String,
    pub data: Vec<u8>,
}

/// Everything one day's backup contains.
#[derive(Debug, Clone)]
pub struct Day {
    pub number: u32,
    pub time: BackupTime,
    pub compression: Compression,
    /// In dev_id order.
    pub disks: Vec<Disk>,
    pub configs: Vec<Config>,
    pub log: String,
    pub notes: Option<String>,
    pub protected: bool,
}

impl Day {
    pub fn disk(&self, name: &str) -> Option<&Disk> {
        self.disks.iter().find(|d| d.name == name)
    }
}

/// A series, advanced one day at a time (each day derives from the one before).
#[derive(Debug, Clone)]
pub struct Series {
    spec: SeriesSpec,
    day: Day,
}

/// Sixteen 4 KiB text-like templates (compressible, like file-system contents).
fn templates() -> Vec<Vec<u8>> {
    const WORDS: [&str; 24] = [
        "backup",
        "snapshot",
        "proxmox",
        "cluster",
        "volume",
        "kernel",
        "journal",
        "inode",
        "extent",
        "record",
        "daily",
        "retention",
        "restore",
        "archive",
        "storage",
        "pool",
        "dataset",
        "device",
        "config",
        "network",
        "memory",
        "guest",
        "qemu",
        "vzdump",
    ];
    let mut rng = Rng::new(0x7e47);
    (0..16)
        .map(|_| {
            let mut t = Vec::with_capacity(BLOCK);
            while t.len() < BLOCK {
                let w = WORDS[rng.below(WORDS.len() as u64) as usize];
                t.extend_from_slice(w.as_bytes());
                t.push(if rng.chance(0.1) { b'\n' } else { b' ' });
            }
            t.truncate(BLOCK);
            t
        })
        .collect()
}

/// Block contents generator shared by all days.
struct Painter {
    templates: Vec<Vec<u8>>,
}

impl Painter {
    fn text(&self, rng: &mut Rng, block: &mut [u8], stamp: u64) {
        let t = &self.templates[rng.below(16) as usize];
        block.copy_from_slice(&t[..block.len()]);
        let s = format!("{stamp:016x}");
        let n = s.len().min(block.len());
        block[..n].copy_from_slice(&s.as_bytes()[..n]);
    }

    /// New contents for a changed block: zero (1 in 5), text or random.
    fn churn(&self, rng: &mut Rng, block: &mut [u8], stamp: u64) {
        match rng.below(5) {
            0 => block.fill(0),
            1 | 2 => self.text(rng, block, stamp),
            _ => rng.fill(block),
        }
    }

    /// Base contents: runs of 1–64 blocks, 55 % text, 15 % random, 30 % zero.
    fn base(&self, rng: &mut Rng, data: &mut [u8], salt: u64) {
        let mut blocks = data.chunks_mut(BLOCK).enumerate().peekable();
        while blocks.peek().is_some() {
            let run = 1 + rng.below(64);
            let kind = rng.below(100);
            for _ in 0..run {
                let Some((i, b)) = blocks.next() else { break };
                match kind {
                    0..55 => self.text(rng, b, salt << 40 | i as u64),
                    55..70 => rng.fill(b),
                    _ => b.fill(0),
                }
            }
        }
    }
}

fn round_down(v: u64, to: u64) -> u64 {
    v / to * to
}

impl Series {
    /// Day 1 of the series.
    pub fn new(spec: SeriesSpec) -> Series {
        let p = Painter {
            templates: templates(),
        };
        let s = spec.disk_size.max(BLOCK as u64);
        let mut disks = Vec::new();
        for (k, (name, size)) in [("drive-scsi0", s), ("drive-scsi1", s / 2 + 2560)]
            .into_iter()
            .enumerate()
        {
            let mut data = vec![0u8; size as usize];
            p.base(&mut Rng::for_day(spec.seed, 1, 10 + k as u64), &mut data, 1);
            disks.push(Disk {
                name: name.into(),
                data,
            });
        }
        let mut day = Day {
            number: 1,
            time: spec.start,
            compression: Compression::Zstd,
            disks,
            configs: Vec::new(),
            log: String::new(),
            notes: None,
            protected: false,
        };
        finish_day(&spec, &mut day);
        Series { spec, day }
    }

    pub fn spec(&self) -> &SeriesSpec {
        &self.spec
    }

    /// The current day.
    pub fn day(&self) -> &Day {
        &self.day
    }

    /// Moves to the next day, applying its events.
    pub fn advance(&mut self) {
        let p = Painter {
            templates: templates(),
        };
        let spec = &self.spec;
        let d = self.day.number + 1;
        let day = &mut self.day;
        day.number = d;
        day.time = add_days(spec.start, d - 1);
        let s = spec.disk_size.max(BLOCK as u64);
        // Churn on every disk that existed yesterday.
        for (k, disk) in day.disks.iter_mut().enumerate() {
            let mut rng = Rng::for_day(spec.seed, d, 100 + k as u64);
            let nblocks = disk.data.len().div_ceil(BLOCK) as u64;
            let stamp = |i: u64| u64::from(d) << 40 | i;
            for _ in 0..(nblocks / 100).max(1) {
                let i = rng.below(nblocks);
                let b = block_mut(&mut disk.data, i);
                p.churn(&mut rng, b, stamp(i));
            }
            let start = rng.below(nblocks);
            for i in start..(start + 1 + rng.below(64)).min(nblocks) {
                let b = block_mut(&mut disk.data, i);
                p.text(&mut rng, b, stamp(i));
            }
        }
        let mut rng = Rng::for_day(spec.seed, d, 1);
        if d == 2 || d.is_multiple_of(7) {
            // fstrim / zero-fill: a 64 KiB-aligned region whose end is not aligned.
            let disk = &mut day.disks[0].data;
            let len = (disk.len() / 50).max(BLOCK) + 3 * BLOCK;
            let start = round_down(
                rng.below(disk.len().saturating_sub(len).max(1) as u64),
                65536,
            ) as usize;
            let end = (start + len).min(disk.len());
            disk[start..end].fill(0);
        }
        if d == 3 {
            let disk = &mut day.disks[0].data;
            let old = disk.len();
            let grow = round_down(s / 4, 512) as usize + 1536;
            disk.resize(old + grow, 0);
            let written = grow / 2;
            p.base(&mut rng, &mut disk[old..old + written], u64::from(d));
        }
        if d == 4 {
            let mut data = vec![0u8; (s / 4).max(BLOCK as u64) as usize];
            p.base(&mut Rng::for_day(spec.seed, d, 12), &mut data, u64::from(d));
            day.disks.push(Disk {
                name: "drive-scsi2".into(),
                data,
            });
        }
        if d == 5 {
            day.disks.retain(|x| x.name != "drive-scsi1");
        }
        if d == 6
            && let Some(x) = day.disks.iter_mut().find(|x| x.name == "drive-scsi2")
        {
            let half = round_down(x.data.len() as u64 / 2, 65536).max(65536) as usize;
            x.data.truncate(half.min(x.data.len()));
        }
        finish_day(spec, day);
    }

    /// Short descriptions of what day `d` changes (for the demo's output).
    pub fn events(d: u32) -> Vec<&'static str> {
        let mut e = Vec::new();
        if d == 1 {
            e.push("two disks: drive-scsi0, drive-scsi1");
        } else {
            e.push("~1% of blocks changed");
        }
        if d == 2 || (d > 2 && d.is_multiple_of(7)) {
            e.push("a 2% region zeroed (fstrim)");
        }
        match d {
            2 => e.extend(["memory edited", "firewall config added", "marked protected"]),
            3 => e.push("drive-scsi0 grown by 25%"),
            4 => e.extend(["drive-scsi2 added", "memory edited"]),
            5 => e.extend(["drive-scsi1 removed", "firewall config removed"]),
            6 => e.push("drive-scsi2 shrunk to half"),
            _ => {}
        }
        e
    }
}

fn block_mut(data: &mut [u8], i: u64) -> &mut [u8] {
    let start = i as usize * BLOCK;
    let end = (start + BLOCK).min(data.len());
    &mut data[start..end]
}

/// `start + n` days (local calendar days, as vzdump's nightly job would run).
pub fn add_days(start: BackupTime, n: u32) -> BackupTime {
    let dt = start.to_civil();
    dt.checked_add(jiff::Span::new().days(i64::from(n)))
        .ok()
        .and_then(|t| {
            BackupTime::new(
                i32::from(t.year()),
                i32::from(t.month()),
                i32::from(t.day()),
                i32::from(t.hour()),
                i32::from(t.minute()),
                i32::from(t.second()),
            )
            .ok()
        })
        .unwrap_or(start)
}

/// Sets the day's configs, compression, log, notes and protection from its number.
fn finish_day(spec: &SeriesSpec, day: &mut Day) {
    let d = day.number;
    day.compression = [
        Compression::Zstd,
        Compression::Gzip,
        Compression::Lzo,
        Compression::None,
    ][((d - 1) % 4) as usize];
    let memory = match d {
        1 => 2048,
        2 | 3 => 4096,
        _ => 8192,
    };
    let mut conf = format!(
        "boot: order=scsi0\ncores: 2\nmemory: {memory}\nname: demo-vm-{}\nnet0: virtio=BC:24:11:00:00:01,bridge=vmbr0\nostype: l26\nscsihw: virtio-scsi-single\n",
        spec.vmid
    );
    for x in &day.disks {
        let bus = x.name.trim_start_matches("drive-");
        conf.push_str(&format!(
            "{bus}: local-zfs:vm-{}-disk-{},iothread=1,size={}K\n",
            spec.vmid,
            &bus[bus.len() - 1..],
            x.data.len().div_ceil(1024)
        ));
    }
    for x in &day.disks {
        let bus = x.name.trim_start_matches("drive-");
        conf.push_str(&format!("#qmdump#map:{bus}:{}:local-zfs:raw:\n", x.name));
    }
    day.configs = vec![Config {
        name: "qemu-server.conf".into(),
        data: conf.into_bytes(),
    }];
    if (2..=4).contains(&d) {
        day.configs.push(Config {
            name: "qemu-server.fw".into(),
            data: b"[OPTIONS]\nenable: 1\n\n[RULES]\nIN ACCEPT -p tcp -dport 22\n".to_vec(),
        });
    }
    day.notes = (!d.is_multiple_of(3))
        .then(|| format!("nightly backup of demo-vm-{}, day {d}\n", spec.vmid));
    day.protected = d == 2;
    let total: usize = day.disks.iter().map(|x| x.data.len()).sum();
    day.log = format!(
        "{t}: INFO: Starting Backup of VM {id} (qemu)\n{t}: INFO: Backup started at {t}\n\
         {t}: INFO: status = running\n{t}: INFO: VM Name: demo-vm-{id}\n\
         {t}: INFO: creating vzdump archive (compress={c}, {n} disks, {total} bytes)\n\
         {t}: INFO: Finished Backup of VM {id}\n",
        t = day.time,
        id = spec.vmid,
        c = day.compression,
        n = day.disks.len(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_follow_the_table_and_are_deterministic() {
        let spec = SeriesSpec::new(100, 42, 1 << 20);
        let mut a = Series::new(spec.clone());
        let mut b = Series::new(spec);
        assert_eq!(a.day().disks.len(), 2);
        assert_eq!(a.day().disks[1].data.len(), (1 << 19) + 2560);
        let mut prev = a.day().disks[0].data.clone();
        for d in 2..=7 {
            a.advance();
            b.advance();
            assert_eq!(a.day().disks, b.day().disks, "day {d} deterministic");
            let day = a.day();
            assert_eq!(day.number, d);
            let names: Vec<&str> = day.disks.iter().map(|x| x.name.as_str()).collect();
            match d {
                2 | 3 => assert_eq!(names, ["drive-scsi0", "drive-scsi1"]),
                4 => assert_eq!(names, ["drive-scsi0", "drive-scsi1", "drive-scsi2"]),
                _ => assert_eq!(names, ["drive-scsi0", "drive-scsi2"]),
            }
            let cur = &day.disks[0].data;
            let changed = cur
                .chunks(BLOCK)
                .zip(prev.chunks(BLOCK))
                .filter(|(x, y)| x != y)
                .count();
            assert!(changed >= 2, "day {d}: some blocks change ({changed})");
            prev = cur.clone();
        }
        let day = a.day();
        assert_eq!(day.time.snapshot_name(), "2026_11_07-02_00_03");
        assert_eq!(day.disk("drive-scsi2").unwrap().data.len(), 65536 * 2);
        assert!(a.day().disks[0].data.len() > 1 << 20, "grown on day 3");
    }

    #[test]
    fn base_content_is_mixed() {
        let s = Series::new(SeriesSpec::new(100, 1, 8 << 20));
        let data = &s.day().disks[0].data;
        let blocks = data.len() / BLOCK;
        let zero = data
            .chunks(BLOCK)
            .filter(|b| b.iter().all(|&x| x == 0))
            .count();
        assert!(
            zero > blocks / 10 && zero < blocks / 2,
            "{zero} of {blocks} zero"
        );
    }
}
