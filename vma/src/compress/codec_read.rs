//! zstd and gzip decoders with compressed-stream offsets in their errors.
//!
//! The crates report "corrupt deflate stream" or "Unknown frame descriptor" without a
//! position. We count the bytes the decoder has taken from the source (minus what is still
//! buffered) so the error says where the damage is, and we pass errors that came from the
//! source itself (EIO, a broken pipe upstream) through unchanged.

use std::io::{self, BufReader, Read};

use super::error::DecompressError;

/// Input buffer for the decoders; big reads keep syscalls rare on pipes.
const INPUT_BUF: usize = 256 * 1024;

/// Counts bytes read and remembers whether the last failure was the source's own.
#[derive(Debug)]
pub(crate) struct Counting<R> {
    inner: R,
    count: u64,
    source_failed: bool,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.count += n as u64;
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.source_failed = true;
                }
                Err(e)
            }
        }
    }
}

fn buffered<R: Read>(r: R) -> BufReader<Counting<R>> {
    BufReader::with_capacity(
        INPUT_BUF,
        Counting {
            inner: r,
            count: 0,
            source_failed: false,
        },
    )
}

/// Turns a decoder error into one with the compressed offset, unless the source failed.
fn locate<R>(e: io::Error, src: &mut BufReader<Counting<R>>, context: &'static str) -> io::Error {
    if e.kind() == io::ErrorKind::Interrupted {
        return e;
    }
    if std::mem::take(&mut src.get_mut().source_failed) {
        return e;
    }
    let offset = src.get_ref().count - src.buffer().len() as u64;
    let d = DecompressError::new(context, offset, e.to_string());
    if e.kind() == io::ErrorKind::UnexpectedEof {
        d.into_io_eof()
    } else {
        d.into_io()
    }
}

/// zstd decoder over concatenated frames (and skippable frames), as `zstd -dc` reads them.
pub struct ZstdReader<R: Read> {
    dec: zstd::stream::read::Decoder<'static, BufReader<Counting<R>>>,
}

impl<R: Read> std::fmt::Debug for ZstdReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZstdReader").finish_non_exhaustive()
    }
}

impl<R: Read> ZstdReader<R> {
    /// Wraps `r`, which must start at a zstd frame.
    pub fn new(r: R) -> io::Result<Self> {
        Ok(Self {
            dec: zstd::stream::read::Decoder::with_buffer(buffered(r))?,
        })
    }
}

impl<R: Read> Read for ZstdReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.dec
            .read(buf)
            .map_err(|e| locate(e, self.dec.get_mut(), "zstd stream"))
    }
}

/// Multi-member gzip decoder (pigz and `gzip --rsyncable` output, `cat a.gz b.gz`), as
/// `zcat` reads it.
pub struct GzipReader<R: Read> {
    dec: flate2::bufread::MultiGzDecoder<BufReader<Counting<R>>>,
}

impl<R: Read> std::fmt::Debug for GzipReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GzipReader").finish_non_exhaustive()
    }
}

impl<R: Read> GzipReader<R> {
    /// Wraps `r`, which must start at a gzip member.
    pub fn new(r: R) -> Self {
        Self {
            dec: flate2::bufread::MultiGzDecoder::new(buffered(r)),
        }
    }
}

impl<R: Read> Read for GzipReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.dec
            .read(buf)
            .map_err(|e| locate(e, self.dec.get_mut(), "gzip stream"))
    }
}
