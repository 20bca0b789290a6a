//! `vma extract <file> [-v] [-d <drive-list>] [-r <fifo>] <targetdir>`
//!
//! As C `vma` (vma-format.md §1.12): the target directory must not exist; configs are written
//! by name; without `-r`, each disk goes to a sparse `tmp-disk-<dev>.raw` of exactly the
//! device size (announced with a `DEVINFO` line) that is renamed to `disk-<dev>.raw` only after
//! the whole archive was read, every cluster was present and the data was flushed. With `-r`,
//! the header listing is printed and flushed *before* the fifo is opened (qemu-server waits
//! for `CTIME:` before it writes the map), and disks go to the mapped existing images or block
//! devices. `-d a,b` restores only those devices; the others are read and discarded.
//!
//! On failure nothing is renamed, so no `disk-*.raw` ever looks complete; the `tmp-disk-*`
//! files are left in place (as C does) for inspection or salvage.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::PathBuf;
use std::rc::Rc;

use anyhow::{Context, Result, anyhow, bail};
use vma::{Device, ExtentBuf};

use crate::content::print_content;
use crate::getopt::{Opt, OptKey, Spec};
use crate::restore_map::{MapEntry, read_map, valid_cache_mode};
use crate::sink::{DiskSink, VmstateSink};
use crate::stats::Stats;
use crate::throttle::Throttle;
use crate::{Status, input, names, stdout};

/// getopt string of C `vma extract`.
pub const SPEC: Spec = Spec {
    short: "hvd:r:",
    long: &[],
};

/// qemu-server allows a restore target up to this much larger than the device.
const MAX_SIZE_DIFF: u64 = 4 * 1024 * 1024;

/// `<dir>/<name>` built like C's `g_strdup_printf("%s/%s")`, so printed paths match.
fn join(dir: &OsStr, name: &str) -> PathBuf {
    let mut p = OsString::from(dir);
    p.push("/");
    p.push(name);
    PathBuf::from(p)
}

/// Runs the subcommand.
pub fn run(opts: &[Opt], pos: &[OsString]) -> Result<Status> {
    let mut verbose = false;
    let mut drives: Option<Vec<String>> = None;
    let mut fifo: Option<OsString> = None;
    for o in opts {
        match (o.key, &o.value) {
            (OptKey::Short('v'), _) => verbose = true,
            (OptKey::Short('d'), Some(v)) => {
                // Only the last -d counts, as in C.
                drives = Some(v.to_string_lossy().split(',').map(str::to_owned).collect());
            }
            (OptKey::Short('r'), Some(v)) => fifo = Some(v.clone()),
            _ => return Ok(Status::Help),
        }
    }
    let [file, dir] = pos else {
        return Ok(Status::Help);
    };
    extract(verbose, drives.as_deref(), fifo.as_deref(), file, dir)?;
    Ok(Status::Ok)
}

/// Opens a mapped target like C's `blk_new_open` + `vma_reader_register_bs` checks.
fn open_mapped(
    m: &MapEntry,
    d: &Device,
    groups: &mut HashMap<String, Rc<RefCell<Throttle>>>,
) -> Result<DiskSink> {
    let path = &m.path;
    match m.format.as_deref() {
        Some("raw") => {}
        Some(f) => bail!(
            "can't open file {path} - format '{f}' is not supported: this vma writes raw images only"
        ),
        None if path.ends_with(".raw") || path.starts_with("/dev/") => {}
        None => bail!(
            "can't open file {path} - no format given and not a .raw file or /dev/ device; map it with format=raw:"
        ),
    }
    if let Some(c) = &m.cache
        && !valid_cache_mode(c)
    {
        bail!("invalid cache option: {c}");
    }
    let mut f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("can't open file {path}"))?;
    let ft = f
        .metadata()
        .with_context(|| format!("can't open file {path}"))?
        .file_type();
    if !(ft.is_file() || ft.is_block_device()) {
        bail!("can't open file {path} - not a regular file or block device");
    }
    let size = f
        .seek(SeekFrom::End(0))
        .with_context(|| format!("can't determine the size of {path}"))?;
    if size < d.size || size - d.size > MAX_SIZE_DIFF {
        bail!(
            "vma_reader_register_bs for stream {} failed - unexpected size {} != {}",
            d.name,
            size,
            d.size
        );
    }
    let throttle = match (&m.throttling_group, m.throttling_bps) {
        (Some(g), bps) => {
            let t = groups
                .entry(g.clone())
                .or_insert_with(|| Rc::new(RefCell::new(Throttle::new(bps))));
            if bps > 0 {
                t.borrow_mut().set_bps(bps);
            }
            Some(t.clone())
        }
        (None, 0) => None,
        (None, bps) => Some(Rc::new(RefCell::new(Throttle::new(bps)))),
    };
    Ok(DiskSink::new(
        PathBuf::from(path),
        f,
        d.size,
        m.write_zero,
        throttle,
    ))
}

fn extract(
    verbose: bool,
    drives: Option<&[String]>,
    fifo: Option<&OsStr>,
    file: &OsStr,
    dir: &OsStr,
) -> Result<()> {
    let mut input = input::open(file, true)?;
    let header = input.reader.header().clone();
    names::check_header(&input.name, &header).map_err(|e| anyhow!(e))?;

    DirBuilder::new().mode(0o777).create(dir).map_err(|e| {
        anyhow!(
            "unable to create target directory {} - {e}",
            dir.to_string_lossy()
        )
    })?;
    for c in &header.configs {
        let p = join(dir, &c.name);
        std::fs::write(&p, &c.data)
            .map_err(|e| anyhow!("unable to write file: {}: {e}", p.display()))?;
    }

    let mut out = stdout();
    let map = match fifo {
        Some(fifo) => {
            print_content(&mut out, &header)?;
            let f = File::open(fifo)
                .map_err(|e| anyhow!("unable to open fifo {} - {e}", fifo.to_string_lossy()))?;
            Some(read_map(&mut BufReader::new(f)).map_err(|e| anyhow!(e))?)
        }
        None => None,
    };

    let mut stats = Stats::new(verbose);
    let mut disks: Vec<Option<DiskSink>> = (0..256).map(|_| None).collect();
    let mut vmstate: Option<(u8, VmstateSink)> = None;
    let mut to_rename: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut check: Vec<u8> = Vec::new();
    let mut groups = HashMap::new();
    for d in &header.devices {
        if d.is_vmstate() {
            let p = join(dir, "vmstate.bin");
            let f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&p)
                .map_err(|e| anyhow!("create vmstate file '{}' failed - {e}", p.display()))?;
            vmstate = Some((d.id, VmstateSink::new(p, f)));
            continue;
        }
        // Devices filtered out by -d, or mapped with skip=, are read and discarded.
        let filtered = drives.is_some_and(|l| !l.contains(&d.name));
        let mut sink = None;
        if !filtered {
            if let Some(map) = &map {
                let Some(m) = map.get(&d.name) else {
                    bail!("no device name mapping for {}", d.name);
                };
                if !m.skip {
                    sink = Some(open_mapped(m, d, &mut groups)?);
                }
            } else {
                let tmp = join(dir, &format!("tmp-disk-{}.raw", d.name));
                writeln!(out, "DEVINFO {} {}", tmp.display(), d.size)?;
                out.flush()?;
                let f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(&tmp)
                    .and_then(|f| f.set_len(d.size).map(|()| f))
                    .map_err(|e| anyhow!("can't create file {}: {e}", tmp.display()))?;
                let fin = join(dir, &format!("disk-{}.raw", d.name));
                to_rename.push((tmp.clone(), fin));
                sink = Some(DiskSink::new(tmp, f, d.size, false, None));
            }
        }
        stats.register(d.size);
        if let Some(s) = sink {
            check.push(d.id);
            disks[usize::from(d.id)] = Some(s);
        }
    }

    restore(
        &mut input,
        &header,
        &mut stats,
        &disks,
        &mut vmstate,
        &mut out,
    )
    .map_err(|e| anyhow!("restore failed - {e:#}"))?;
    input
        .reader
        .check_complete(Some(&check))
        .map_err(|e| anyhow!("restore failed - {e}"))?;
    for s in disks.iter().flatten() {
        s.sync()
            .map_err(|e| anyhow!("flush of {} failed - {e}", s.path.display()))?;
    }
    if let Some((_, v)) = &vmstate {
        v.finish()
            .map_err(|e| anyhow!("write of {} failed - {e}", v.path.display()))?;
    }
    stats.print_totals(&mut out)?;
    for (tmp, fin) in to_rename {
        std::fs::rename(&tmp, &fin)
            .map_err(|e| anyhow!("rename {} to {} failed - {e}", tmp.display(), fin.display()))?;
    }
    // The renames are what makes the result visible; make them durable too.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads every extent and writes each cluster to its device's sink.
fn restore(
    input: &mut input::Input,
    header: &vma::Header,
    stats: &mut Stats,
    disks: &[Option<DiskSink>],
    vmstate: &mut Option<(u8, VmstateSink)>,
    out: &mut impl Write,
) -> Result<()> {
    let mut limits = [None::<u64>; 256];
    for d in &header.devices {
        if !d.is_vmstate() {
            limits[usize::from(d.id)] = Some(d.size);
        }
    }
    stats.restart_clock();
    let mut buf = ExtentBuf::new();
    while input.reader.read_extent(&mut buf)? {
        for c in buf.clusters() {
            let id = usize::from(c.dev_id);
            stats.cluster(out, &c, limits[id])?;
            if let Some(s) = &disks[id] {
                s.write_cluster(&c).with_context(|| {
                    format!(
                        "write to {} at byte {} failed",
                        s.path.display(),
                        c.device_offset()
                    )
                })?;
            } else if let Some((vid, v)) = vmstate.as_mut()
                && *vid == c.dev_id
            {
                v.write_cluster(&c)
                    .with_context(|| format!("write vmstate to {} failed", v.path.display()))?;
            }
        }
    }
    Ok(())
}
