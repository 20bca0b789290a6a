//! `vma create <archive> [-v] [-c <config>]... -d format=raw:[<devname>=]<path>...`
//! (or the deprecated positional `[<devname>=]<path>...`).
//!
//! As C `vma` (vma-format.md §1.12): configs are stored under their basename; devices get
//! dev_ids 1..n in argument order and the name `disk<index>` when none is given; `-d` without
//! `format=` is an error, positional devices print PVE's deprecation warning, mixing both is
//! an error; every cluster of every device is stored (mask 0 when all zero); `-v` prints
//! `progress <pct>% <done>/<total> <zero bytes>` and per-image totals to stderr; the archive
//! is deleted on any failure. Sources must be raw (files or block devices), read sequentially
//! in 4 MiB reads.
//!
//! Extensions: `--compress zstd|gzip|lzo` writes the archive through that compressor (what
//! vzdump's pipeline produces), `--threads N` (zstd workers, default 1 like vzdump) and
//! `--level N`.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use vma::compress::{CompressOptions, Compression, compressed_writer};
use vma::{Config, VmaWriter, WriterOptions};

use crate::Status;
use crate::create_target;
use crate::getopt::{Opt, OptKey, Spec};

/// getopt string of C `vma create`, plus our long options.
pub const SPEC: Spec = Spec {
    short: "hvc:d:",
    long: &[("compress", true), ("threads", true), ("level", true)],
};

/// Read size for sources: 64 clusters.
const READ_SIZE: usize = 64 * 65536;

/// One `-d`/positional device argument, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceArg {
    /// `format=` value, if given.
    pub format: Option<String>,
    /// Device name (given, or `disk<index>`).
    pub name: String,
    /// Source path.
    pub path: OsString,
}

/// Parses `[format=<fmt>:][<devname>=]<path>` like C (`try_parse_option` +
/// `extract_devname`: the devname ends at the first `=`).
pub fn parse_device_arg(arg: &OsStr, index: usize) -> Result<DeviceArg> {
    let mut b = arg.as_bytes();
    let mut format = None;
    if let Some(rest) = b.strip_prefix(b"format=") {
        let Some(colon) = rest.iter().position(|&c| c == b':') else {
            bail!(
                "option 'format' not terminated ('{}')",
                arg.to_string_lossy()
            );
        };
        format = Some(String::from_utf8_lossy(&rest[..colon]).into_owned());
        b = &rest[colon + 1..];
    }
    let (name, path) = match b.iter().position(|&c| c == b'=') {
        Some(eq) => (
            String::from_utf8_lossy(&b[..eq]).into_owned(),
            OsStr::from_bytes(&b[eq + 1..]).to_owned(),
        ),
        None => (format!("disk{index}"), OsStr::from_bytes(b).to_owned()),
    };
    Ok(DeviceArg { format, name, path })
}

struct Args {
    verbose: bool,
    archive: OsString,
    configs: Vec<OsString>,
    devices: Vec<DeviceArg>,
    compression: Compression,
    copts: CompressOptions,
}

fn parse_args(opts: &[Opt], pos: &[OsString]) -> Result<Option<Args>> {
    let mut verbose = false;
    let mut configs = Vec::new();
    let mut dashd = Vec::new();
    let mut compression = Compression::None;
    // vzdump's default for zstd is one worker thread.
    let mut copts = CompressOptions {
        level: None,
        threads: 1,
    };
    for o in opts {
        let val = || {
            o.value
                .as_deref()
                .map(OsStr::to_string_lossy)
                .unwrap_or_default()
        };
        match o.key {
            OptKey::Short('v') => verbose = true,
            OptKey::Short('c') => configs.extend(o.value.clone()),
            OptKey::Short('d') => dashd.extend(o.value.clone()),
            OptKey::Long("compress") => {
                compression = val().parse().map_err(|e| anyhow!("--compress: {e}"))?;
            }
            OptKey::Long("threads") => {
                copts.threads = val()
                    .parse()
                    .map_err(|_| anyhow!("--threads: not a number: {}", val()))?;
            }
            OptKey::Long("level") => {
                copts.level = Some(
                    val()
                        .parse()
                        .map_err(|_| anyhow!("--level: not a number: {}", val()))?,
                );
            }
            _ => return Ok(None),
        }
    }
    let Some((archive, positional)) = pos.split_first() else {
        return Ok(None);
    };
    if !positional.is_empty() && !dashd.is_empty() {
        bail!("Unexpected extra argument - specify all devices via '-d'");
    }
    let expect_format = positional.is_empty();
    let infos = if expect_format {
        &dashd[..]
    } else {
        positional
    };
    let mut devices = Vec::new();
    for (i, info) in infos.iter().enumerate() {
        let d = parse_device_arg(info, i)?;
        if d.format.is_none() {
            if expect_format {
                bail!(
                    "No format specified for device: '{}'",
                    info.to_string_lossy()
                );
            }
            eprintln!(
                "vma: WARNING: Specifying a device without a format is deprecated - use '-d format=<format>:{}'",
                info.to_string_lossy()
            );
        }
        if let Some(f) = d.format.as_deref()
            && f != "raw"
        {
            bail!(
                "bdrv_open '{}' failed - format '{f}' is not supported: this vma reads raw images only (convert with qemu-img convert -O raw)",
                d.path.to_string_lossy()
            );
        }
        devices.push(d);
    }
    Ok(Some(Args {
        verbose,
        archive: archive.clone(),
        configs,
        devices,
        compression,
        copts,
    }))
}

/// Runs the subcommand.
pub fn run(opts: &[Opt], pos: &[OsString]) -> Result<Status> {
    let Some(args) = parse_args(opts, pos)? else {
        return Ok(Status::Help);
    };
    let (target, guard) = create_target::open(&args.archive)?;
    // On any error below, `guard` deletes the archive file when dropped.
    create(&args, target)?;
    guard.disarm();
    Ok(Status::Ok)
}

struct Source {
    file: File,
    path: String,
    size: u64,
}

fn open_source(d: &DeviceArg) -> Result<Source> {
    let path = d.path.to_string_lossy().into_owned();
    let mut file = File::open(&d.path).map_err(|e| anyhow!("bdrv_open '{path}' failed - {e}"))?;
    let ft = file
        .metadata()
        .map_err(|e| anyhow!("bdrv_open '{path}' failed - {e}"))?
        .file_type();
    if !(ft.is_file() || ft.is_block_device()) {
        bail!("bdrv_open '{path}' failed - not a regular file or block device");
    }
    let size = file
        .seek(SeekFrom::End(0))
        .and_then(|s| file.seek(SeekFrom::Start(0)).map(|_| s))
        .map_err(|e| anyhow!("bdrv_open '{path}' failed - {e}"))?;
    Ok(Source { file, path, size })
}

/// Reads until `buf` is full or EOF.
fn fill(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Bytes of all-zero 4 KiB blocks in `chunk` (the last block may be short).
fn zero_bytes(chunk: &[u8]) -> u64 {
    chunk
        .chunks(4096)
        .filter(|b| b.iter().all(|&x| x == 0))
        .map(|b| b.len() as u64)
        .sum()
}

/// `-v` progress on stderr, in C's format.
struct Progress {
    verbose: bool,
    total: u64,
    done: u64,
    zeros: u64,
    last: i64,
}

impl Progress {
    fn add(&mut self, chunk: &[u8]) -> u64 {
        if !self.verbose {
            return 0;
        }
        let z = zero_bytes(chunk);
        self.done += chunk.len() as u64;
        self.zeros += z;
        let pct = (self.done * 100 / self.total.max(1)) as i64;
        if pct != self.last {
            eprintln!(
                "progress {pct}% {}/{} {}",
                self.done, self.total, self.zeros
            );
            self.last = pct;
        }
        z
    }
}

/// An error of writing the archive, as `vma create` reports it: a failed `exec:` command is
/// named as such (the write only saw the broken pipe it left).
fn write_error(
    e: &(dyn std::error::Error + 'static),
    context: impl FnOnce() -> String,
) -> anyhow::Error {
    match create_target::command_failure(e) {
        Some(cf) => anyhow!("{cf}"),
        None => anyhow!("{}", context()),
    }
}

fn create(args: &Args, target: create_target::Target) -> Result<()> {
    let name = target.name().to_owned();
    let mut configs = Vec::new();
    for c in &args.configs {
        let data = std::fs::read(c)
            .map_err(|e| anyhow!("Unable to read file: {}: {e}", c.to_string_lossy()))?;
        let base = Path::new(c)
            .file_name()
            .map(|b| b.to_string_lossy().into_owned())
            .unwrap_or_else(|| c.to_string_lossy().into_owned());
        configs.push(Config { name: base, data });
    }
    let mut sources = Vec::new();
    for d in &args.devices {
        sources.push(open_source(d)?);
    }
    let devices: Vec<(String, u64)> = args
        .devices
        .iter()
        .zip(&sources)
        .map(|(d, s)| (d.name.clone(), s.size))
        .collect();
    let out = compressed_writer(target, args.compression, &args.copts)
        .with_context(|| format!("{name}: can't start the {} compressor", args.compression))?;
    let mut w = VmaWriter::new(out, configs, devices.clone(), WriterOptions::default())
        .map_err(|e| anyhow!("{e}"))?
        .with_target_name(name.clone());

    let mut progress = Progress {
        verbose: args.verbose,
        total: devices.iter().map(|d| d.1).sum(),
        done: 0,
        zeros: 0,
        last: -1,
    };
    let mut image_zeros = vec![0u64; sources.len()];
    let mut buf = vec![0u8; READ_SIZE];
    for (i, src) in sources.iter_mut().enumerate() {
        let dev_id = (i + 1) as u8;
        let mut off = 0u64;
        while off < src.size {
            let want = (READ_SIZE as u64).min(src.size - off) as usize;
            let got = fill(&mut src.file, &mut buf[..want])
                .map_err(|e| anyhow!("read error: {} at byte {off}: {e}", src.path))?;
            if got < want {
                bail!(
                    "read error: {} ended at byte {} (expected {} bytes)",
                    src.path,
                    off + got as u64,
                    src.size
                );
            }
            for (k, chunk) in buf[..want].chunks(65536).enumerate() {
                let cluster = (off / 65536) as u32 + k as u32;
                w.write_cluster(dev_id, cluster, chunk)
                    .map_err(|e| write_error(&e, || e.to_string()))?;
                image_zeros[i] += progress.add(chunk);
            }
            off += want as u64;
        }
    }
    let out = w.finish().map_err(|e| write_error(&e, || e.to_string()))?;
    let target = out
        .finish()
        .map_err(|e| write_error(&e, || format!("{name}: finishing the archive failed - {e}")))?;
    target.close()?;
    if args.verbose {
        for ((n, size), z) in devices.iter().zip(&image_zeros) {
            eprintln!("image {n}: size={size} zeros={z} saved={}", size - z);
        }
    }
    let _ = std::io::stderr().flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_args_like_c() {
        let d = parse_device_arg(OsStr::new("format=raw:drive-scsi0=/dev/x=y"), 3).unwrap();
        assert_eq!(d.format.as_deref(), Some("raw"));
        assert_eq!(d.name, "drive-scsi0");
        assert_eq!(d.path, "/dev/x=y");
        let d = parse_device_arg(OsStr::new("format=raw:/tmp/a.raw"), 2).unwrap();
        assert_eq!(d.name, "disk2");
        assert_eq!(d.path, "/tmp/a.raw");
        let d = parse_device_arg(OsStr::new("/tmp/a.raw"), 0).unwrap();
        assert_eq!((d.format, d.name.as_str()), (None, "disk0"));
        assert!(
            parse_device_arg(OsStr::new("format=raw"), 0)
                .unwrap_err()
                .to_string()
                .contains("not terminated")
        );
    }
}
