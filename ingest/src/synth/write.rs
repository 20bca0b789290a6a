//! Writes one synthetic day as vzdump would leave it in a dump directory: the archive
//! (written as `….dat`, then renamed), `<base>.log`, `<archive>.notes`, `<archive>.protected`,
//! with the archive's modification time at the backup time.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use vma::compress::{CompressOptions, compressed_writer};
use vma::vzdump::{BackupName, GuestKind, VmId};
use vma::{VmaWriter, WriterOptions};

use super::{Day, Rng};

/// The files written for one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub archive: PathBuf,
    pub log: PathBuf,
    pub notes: Option<PathBuf>,
    pub protected: Option<PathBuf>,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Writes `day` of VM `vmid` into `dir`. `live_order` writes clusters in a shuffled order
/// with devices interleaved (like a live backup); otherwise device by device, in order.
pub fn write_backup(
    dir: &Path,
    vmid: u32,
    seed: u64,
    day: &Day,
    live_order: bool,
) -> io::Result<Written> {
    let name = BackupName::new(
        GuestKind::Qemu,
        VmId::new(vmid).map_err(other)?,
        day.time,
        day.compression,
    );
    let tmp = dir.join(name.temp_archive_name());
    let archive = dir.join(name.archive_name());
    let epoch = day.time.to_epoch_local().map_err(other)?;
    let mut uuid = [0u8; 16];
    Rng::for_day(seed, day.number, 7).fill(&mut uuid);
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;

    let out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let cw = compressed_writer(out, day.compression, &CompressOptions::default())?;
    let devices = day
        .disks
        .iter()
        .map(|d| (d.name.clone(), d.data.len() as u64))
        .collect();
    let opts = WriterOptions {
        uuid: Some(uuid),
        ctime: Some(epoch),
    };
    let mut w = VmaWriter::new(cw, day.configs.clone(), devices, opts).map_err(other)?;
    let mut order: Vec<(u8, u32)> = Vec::new();
    for (i, d) in day.disks.iter().enumerate() {
        for c in 0..d.data.len().div_ceil(65536) {
            order.push((i as u8 + 1, c as u32));
        }
    }
    if live_order {
        let mut rng = Rng::for_day(seed, day.number, 8);
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
    }
    for (dev, c) in order {
        let data = &day.disks[usize::from(dev) - 1].data;
        let start = c as usize * 65536;
        let end = (start + 65536).min(data.len());
        w.write_cluster(dev, c, &data[start..end]).map_err(other)?;
    }
    let out = w.finish().map_err(other)?.finish()?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, &archive)?;
    let mtime = UNIX_EPOCH + Duration::from_secs(epoch.max(0) as u64 + 60);
    File::options()
        .write(true)
        .open(&archive)?
        .set_modified(mtime)?;

    let log = dir.join(name.log_name());
    std::fs::write(&log, &day.log)?;
    let notes = match &day.notes {
        Some(n) => {
            let p = dir.join(name.notes_name());
            std::fs::write(&p, n)?;
            Some(p)
        }
        None => None,
    };
    let protected = if day.protected {
        let p = dir.join(name.protected_name());
        std::fs::write(&p, b"")?;
        Some(p)
    } else {
        None
    };
    Ok(Written {
        archive,
        log,
        notes,
        protected,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Series, SeriesSpec};
    use super::*;
    use std::io::Read;
    use vma::VmaReader;
    use vma::compress::open_decompressed;

    #[test]
    fn archives_read_back_as_the_day_images() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Series::new(SeriesSpec::new(123, 5, 300 * 1024));
        for live in [false, true] {
            let w = write_backup(dir.path(), 123, 5, s.day(), live).unwrap();
            let name = w.archive.file_name().unwrap().to_str().unwrap().to_owned();
            assert!(BackupName::parse(&name).is_some(), "{name}");
            let (_, r) = open_decompressed(File::open(&w.archive).unwrap()).unwrap();
            let mut r = VmaReader::new(r).unwrap();
            let h = r.header().clone();
            assert_eq!(h.devices.len(), s.day().disks.len());
            let mut imgs: Vec<Vec<u8>> = h
                .devices
                .iter()
                .map(|d| vec![0u8; d.size as usize])
                .collect();
            let mut buf = vma::ExtentBuf::new();
            while r.read_extent(&mut buf).unwrap() {
                for c in buf.clusters() {
                    let img = &mut imgs[usize::from(c.dev_id) - 1];
                    for (i, b) in c.blocks() {
                        let at = c.device_offset() as usize + i * 4096;
                        if let Some(b) = b
                            && at < img.len()
                        {
                            let n = 4096.min(img.len() - at);
                            img[at..at + n].copy_from_slice(&b[..n]);
                        }
                    }
                }
            }
            r.check_complete(None).unwrap();
            for (img, d) in imgs.iter().zip(&s.day().disks) {
                assert!(img == &d.data, "{}", d.name);
            }
            let mut log = String::new();
            File::open(&w.log)
                .unwrap()
                .read_to_string(&mut log)
                .unwrap();
            assert!(log.contains("Starting Backup of VM 123"));
            s.advance();
        }
        // Day 2 is protected and has notes.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            names.iter().any(|n| n.ends_with(".vma.gz.protected")),
            "{names:?}"
        );
        assert!(!names.iter().any(|n| n.ends_with(".dat")));
    }
}
