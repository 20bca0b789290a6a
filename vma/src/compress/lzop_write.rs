//! Streaming lzop writer: the container `… | lzop > x.vma.lzo` produces (lzop 1.04, stdin to
//! stdout, LZO1X-1, adler32 of uncompressed data, 256 KiB blocks, incompressible blocks
//! stored), so what we write is what vzdump would have written, byte-for-byte in structure.

use std::io::{self, Write};

use super::lzo1x_compress::Lzo1xCompressor;
use super::lzop_format::{F_ADLER32_C, F_ADLER32_D, F_CRC32_C, F_CRC32_D, LzopHeader};

/// lzop's default block size.
pub const LZOP_BLOCK_SIZE: usize = 256 * 1024;

/// Writes an lzop container. Call [`LzopWriter::finish`] to write the end marker; dropping
/// without it leaves a truncated stream (which every reader rejects).
#[derive(Debug)]
pub struct LzopWriter<W: Write> {
    inner: W,
    /// Uncompressed bytes waiting for a full block.
    pending: Vec<u8>,
    compressor: Lzo1xCompressor,
    /// Block header + data, written with one `write_all`.
    frame: Vec<u8>,
    scratch: Vec<u8>,
    /// Header flags: which checksums each block carries.
    flags: u32,
}

impl<W: Write> LzopWriter<W> {
    /// Writes the file header (mtime = now, as lzop does for stdin).
    pub fn new(inner: W) -> io::Result<Self> {
        let mtime = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self::with_header(inner, &LzopHeader::for_stdin(mtime))
    }

    /// Writes the given header. Only its flags' checksum choice (`F_ADLER32_*`, `F_CRC32_*`)
    /// affects the blocks; the method must be an LZO1X one (the data is LZO1X-1 either way,
    /// which every LZO1X method decodes).
    pub fn with_header(mut inner: W, header: &LzopHeader) -> io::Result<Self> {
        inner.write_all(&header.to_bytes())?;
        Ok(Self {
            inner,
            pending: Vec::with_capacity(LZOP_BLOCK_SIZE),
            compressor: Lzo1xCompressor::new(),
            frame: Vec::new(),
            scratch: Vec::new(),
            flags: header.flags,
        })
    }

    fn write_block(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.scratch.clear();
        self.compressor.compress(&self.pending, &mut self.scratch);
        self.frame.clear();
        let dst_len = self.pending.len() as u32;
        let compressed = self.scratch.len() < self.pending.len();
        let data: &[u8] = if compressed {
            &self.scratch
        } else {
            &self.pending
        };
        self.frame.extend_from_slice(&dst_len.to_be_bytes());
        self.frame
            .extend_from_slice(&(data.len() as u32).to_be_bytes());
        let flags = self.flags;
        let mut sum = |flag: u32, f: fn(&[u8]) -> u32, bytes: &[u8]| {
            if flags & flag != 0 {
                self.frame.extend_from_slice(&f(bytes).to_be_bytes());
            }
        };
        // Order as lzop writes them: D adler32, D crc32, then (only for compressed blocks)
        // C adler32, C crc32.
        sum(F_ADLER32_D, adler2::adler32_slice, &self.pending);
        sum(F_CRC32_D, crc32fast::hash, &self.pending);
        if compressed {
            sum(F_ADLER32_C, adler2::adler32_slice, &self.scratch);
            sum(F_CRC32_C, crc32fast::hash, &self.scratch);
        }
        self.frame.extend_from_slice(data);
        self.inner.write_all(&self.frame)?;
        self.pending.clear();
        Ok(())
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Writes the last block and the end marker, flushes, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_block()?;
        self.inner.write_all(&[0, 0, 0, 0])?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for LzopWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = LZOP_BLOCK_SIZE - self.pending.len();
        let n = buf.len().min(room);
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() == LZOP_BLOCK_SIZE {
            self.write_block()?;
        }
        Ok(n)
    }

    /// Flushes the inner writer only: a partial block is not cut short, so flushing does not
    /// change the compressed output (blocks stay 256 KiB, as lzop writes them).
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
