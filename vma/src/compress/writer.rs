//! Compressed writers for `vma create --compress` and the restore path.
//!
//! Each produces exactly what the matching vzdump pipeline produces, so PVE's restore (`zstd
//! -q -d -c`, `zcat`, `lzop -d -c`) reads our files:
//!
//! - zstd: one zstd stream; `threads` ≥ 1 uses libzstd's worker threads (`zstd --threads=N`,
//!   vzdump's default is 1 worker, which overlaps compression with reading). Default level 3,
//!   because vzdump runs `zstd` without a level and 3 is the zstd CLI default: same speed and
//!   ratio trade-off as the backups this tool stores.
//! - gzip: one gzip member via flate2's zlib-rs backend, default level 6 (gzip's default and
//!   what vzdump's `gzip --rsyncable`/`pigz` use). `threads` is ignored.
//! - lzo: an lzop 1.04-style container with LZO1X-1 blocks (see `lzop_write`). lzop has no
//!   tunable level for LZO1X-1, so a level is refused rather than ignored. `threads` is ignored.

use std::io::{self, Write};

use super::Compression;
use super::lzop_write::LzopWriter;

/// Options for [`compressed_writer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompressOptions {
    /// Compression level; `None` = the default of the format (zstd 3, gzip 6).
    pub level: Option<i32>,
    /// zstd worker threads (0 = compress on the calling thread).
    pub threads: u32,
}

/// A streaming writer whose `finish` writes the trailer and returns the inner writer.
pub trait FinishWrite<W>: Write + Send {
    /// Writes trailers (zstd epilogue, gzip CRC, lzop end marker), flushes, and returns the
    /// inner writer. Dropping without `finish` leaves a truncated stream.
    fn finish(self: Box<Self>) -> io::Result<W>;
}

/// Default zstd level (the zstd CLI default, which vzdump uses).
pub const ZSTD_DEFAULT_LEVEL: i32 = 3;
/// Input bytes per zstd worker job when compressing with threads.
///
/// libzstd's default at level 3 is 8 MiB (4 × the window), and every worker holds a job's
/// input and output plus one job being filled: a 2-thread restore peaked at 104 MB RSS.
/// Measured on a 2 GiB restore (2 threads): 1 MiB jobs 39 MB (+0.43 % output size), 2 MiB
/// 49 MB (+0.18 %), 4 MiB 62 MB (+0.06 %). Jobs overlap by part of the window, so the ratio
/// barely changes; 2 MiB keeps restore well under 64 MiB.
pub const ZSTD_JOB_SIZE: u32 = 2 << 20;

/// Default gzip level (gzip's own default).
pub const GZIP_DEFAULT_LEVEL: i32 = 6;

#[derive(Debug)]
struct Plain<W>(W);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write + Send> FinishWrite<W> for Plain<W> {
    fn finish(mut self: Box<Self>) -> io::Result<W> {
        self.0.flush()?;
        Ok(self.0)
    }
}

struct Zstd<W: Write>(zstd::stream::write::Encoder<'static, W>);

impl<W: Write> Write for Zstd<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write + Send> FinishWrite<W> for Zstd<W> {
    fn finish(self: Box<Self>) -> io::Result<W> {
        let mut w = self.0.finish()?;
        w.flush()?;
        Ok(w)
    }
}

struct Gzip<W: Write>(flate2::write::GzEncoder<W>);

impl<W: Write> Write for Gzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write + Send> FinishWrite<W> for Gzip<W> {
    fn finish(self: Box<Self>) -> io::Result<W> {
        let mut w = self.0.finish()?;
        w.flush()?;
        Ok(w)
    }
}

impl<W: Write + Send> FinishWrite<W> for LzopWriter<W> {
    fn finish(self: Box<Self>) -> io::Result<W> {
        LzopWriter::finish(*self)
    }
}

fn bad_level(c: Compression, level: i32, range: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("invalid {c} compression level {level} (valid: {range})"),
    )
}

/// Wraps `w` in a compressor for `c` (`Compression::None` passes bytes through).
pub fn compressed_writer<W: Write + Send + 'static>(
    w: W,
    c: Compression,
    o: &CompressOptions,
) -> io::Result<Box<dyn FinishWrite<W>>> {
    match c {
        Compression::None => Ok(Box::new(Plain(w))),
        Compression::Zstd => {
            let level = o.level.unwrap_or(ZSTD_DEFAULT_LEVEL);
            let range = zstd::compression_level_range();
            if !range.contains(&level) || level == 0 {
                return Err(bad_level(
                    c,
                    level,
                    &format!("{}..=-1 or 1..={}", range.start(), range.end()),
                ));
            }
            let mut enc = zstd::stream::write::Encoder::new(w, level)?;
            if o.threads > 0 {
                enc.multithread(o.threads)?;
                enc.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE))?;
            }
            // Like the zstd CLI: a content checksum per frame, so `zstd -t` can verify.
            enc.include_checksum(true)?;
            Ok(Box::new(Zstd(enc)))
        }
        Compression::Gzip => {
            let level = o.level.unwrap_or(GZIP_DEFAULT_LEVEL);
            if !(1..=9).contains(&level) {
                return Err(bad_level(c, level, "1..=9"));
            }
            Ok(Box::new(Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::new(level as u32),
            ))))
        }
        Compression::Lzo => {
            if let Some(level) = o.level {
                return Err(bad_level(c, level, "none; lzo is always LZO1X-1"));
            }
            Ok(Box::new(LzopWriter::new(w)?))
        }
    }
}
