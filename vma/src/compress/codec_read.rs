//! zstd and gzip decoders with compressed-stream offsets in their errors.
//!
//! The crates report "corrupt deflate stream" or "Unknown frame descriptor" without a
//! position. We count the bytes the decoder has consumed from its buffered source, so the
//! error says where the damage is, and we pass errors that came from the
//! source itself (EIO, a broken pipe upstream) through unchanged.

use std::io::{self, BufRead, BufReader, Read};

use super::error::DecompressError;

/// Input buffer for the decoders; big reads keep syscalls rare on pipes.
const INPUT_BUF: usize = 256 * 1024;

/// The decoders' input: counts the bytes the decoder consumed (the offset of an error in the
/// compressed stream) and remembers whether the last failure was the source's own.
///
/// Over a [`BufRead`], so a source that already holds its bytes in buffers (a read-ahead
/// thread, see [`super::open_decompressed_threaded`]) hands them to the decoder without
/// another copy; a plain [`Read`] gets a [`BufReader`] of [`INPUT_BUF`] bytes.
#[derive(Debug)]
pub(crate) struct Counting<B> {
    inner: B,
    consumed: u64,
    source_failed: bool,
}

impl<B: BufRead> Counting<B> {
    fn new(inner: B) -> Self {
        Counting {
            inner,
            consumed: 0,
            source_failed: false,
        }
    }
}

impl<B: BufRead> Read for Counting<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = {
            let avail = self.fill_buf()?;
            let n = avail.len().min(buf.len());
            buf[..n].copy_from_slice(&avail[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<B: BufRead> BufRead for Counting<B> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self.inner.fill_buf() {
            Ok(b) => Ok(b),
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.source_failed = true;
                }
                Err(e)
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.consumed += n as u64;
        self.inner.consume(n);
    }
}

/// Turns a decoder error into one with the compressed offset, unless the source failed.
fn locate<B>(e: io::Error, src: &mut Counting<B>, context: &'static str) -> io::Error {
    if e.kind() == io::ErrorKind::Interrupted {
        return e;
    }
    if std::mem::take(&mut src.source_failed) {
        return e;
    }
    let offset = src.consumed;
    let d = DecompressError::new(context, offset, e.to_string());
    if e.kind() == io::ErrorKind::UnexpectedEof {
        d.into_io_eof()
    } else {
        d.into_io()
    }
}

/// zstd decoder over concatenated frames (and skippable frames), as `zstd -dc` reads them.
/// `B` is the buffered source: `BufReader<R>` from [`ZstdReader::new`], or any [`BufRead`]
/// from [`ZstdReader::with_bufread`].
pub struct ZstdReader<B: BufRead> {
    dec: zstd::stream::read::Decoder<'static, Counting<B>>,
}

impl<B: BufRead> std::fmt::Debug for ZstdReader<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZstdReader").finish_non_exhaustive()
    }
}

impl<R: Read> ZstdReader<BufReader<R>> {
    /// Wraps `r`, which must start at a zstd frame.
    pub fn new(r: R) -> io::Result<Self> {
        ZstdReader::with_bufread(BufReader::with_capacity(INPUT_BUF, r))
    }
}

impl<B: BufRead> ZstdReader<B> {
    /// Decodes straight from `b`'s buffers (no copy into a buffer of our own).
    pub fn with_bufread(b: B) -> io::Result<Self> {
        Ok(Self {
            dec: zstd::stream::read::Decoder::with_buffer(Counting::new(b))?,
        })
    }
}

impl<B: BufRead> Read for ZstdReader<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.dec
            .read(buf)
            .map_err(|e| locate(e, self.dec.get_mut(), "zstd stream"))
    }
}

/// Multi-member gzip decoder (pigz and `gzip --rsyncable` output, `cat a.gz b.gz`), as
/// `zcat` reads it.
pub struct GzipReader<B: BufRead> {
    dec: flate2::bufread::MultiGzDecoder<Counting<B>>,
}

impl<B: BufRead> std::fmt::Debug for GzipReader<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GzipReader").finish_non_exhaustive()
    }
}

impl<R: Read> GzipReader<BufReader<R>> {
    /// Wraps `r`, which must start at a gzip member.
    pub fn new(r: R) -> Self {
        GzipReader::with_bufread(BufReader::with_capacity(INPUT_BUF, r))
    }
}

impl<B: BufRead> GzipReader<B> {
    /// Inflates straight from `b`'s buffers.
    pub fn with_bufread(b: B) -> Self {
        Self {
            dec: flate2::bufread::MultiGzDecoder::new(Counting::new(b)),
        }
    }
}

impl<B: BufRead> Read for GzipReader<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.dec
            .read(buf)
            .map_err(|e| locate(e, self.dec.get_mut(), "gzip stream"))
    }
}
