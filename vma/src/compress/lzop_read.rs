//! Streaming lzop decoder: container (`lzop_format`) + LZO1X blocks (`lzo1x`), no seeking.
//!
//! Every check `lzop -d` makes is made here too, with the compressed-stream offset in the
//! error: header checksum, block length limits, compressed and uncompressed checksums when
//! the header asks for them, exact decoded length, the end marker. Concatenated lzop streams
//! (`cat a.lzo b.lzo`) decode as one, like `lzop -dc` does; anything else after an end marker
//! is an error rather than silently ignored, because a VMA archive must not have trailing
//! bytes.

use std::io::{self, Read};

use super::error::DecompressError;
use super::lzo1x;
use super::lzop_format::{
    F_ADLER32_C, F_ADLER32_D, F_CRC32_C, F_CRC32_D, HeaderParseError, LZOP_MAGIC, MAX_BLOCK_SIZE,
    block_checksum_fields, parse_header,
};

const BLOCK: &str = "lzop block";
const HEADER: &str = "lzop header";
const STREAM: &str = "lzop stream";

/// Reads `buf.len()` bytes unless EOF comes first; returns how many were read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Decodes an lzop container from any `Read`.
#[derive(Debug)]
pub struct LzopReader<R> {
    inner: R,
    /// Compressed bytes consumed so far.
    pos: u64,
    /// Flags of the current lzop stream (which checksums each block carries).
    flags: u32,
    /// All streams ended cleanly at EOF.
    finished: bool,
    /// Once a format error is reported, it is reported again on every later read.
    failed: Option<(io::ErrorKind, DecompressError)>,
    /// Compressed block scratch.
    cbuf: Vec<u8>,
    /// Current decoded block and how much of it was handed out.
    out: Vec<u8>,
    out_pos: usize,
    /// Number of lzop streams seen (for tests and diagnostics).
    streams: u32,
}

impl<R: Read> LzopReader<R> {
    /// Reads and validates the first lzop header.
    pub fn new(inner: R) -> io::Result<Self> {
        let mut r = Self {
            inner,
            pos: 0,
            flags: 0,
            finished: false,
            failed: None,
            cbuf: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            streams: 0,
        };
        if !r.read_header(true)? {
            return Err(DecompressError::new(HEADER, 0, "empty input").into_io_eof());
        }
        Ok(r)
    }

    /// Compressed bytes consumed so far.
    pub fn compressed_offset(&self) -> u64 {
        self.pos
    }

    /// How many concatenated lzop streams were started so far.
    pub fn streams(&self) -> u32 {
        self.streams
    }

    fn read_counted(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = read_full(&mut self.inner, buf)?;
        self.pos += n as u64;
        Ok(n)
    }

    /// Reads the next header. Returns Ok(false) on a clean EOF where a next stream could
    /// start (never for the first one).
    fn read_header(&mut self, first: bool) -> io::Result<bool> {
        let start = self.pos;
        let mut buf = vec![0u8; LZOP_MAGIC.len()];
        let n = self.read_counted(&mut buf)?;
        if n == 0 && !first {
            return Ok(false);
        }
        if buf[..n] != LZOP_MAGIC[..n] || n < LZOP_MAGIC.len() {
            let what = if first {
                "not an lzop file (bad magic)"
            } else {
                "trailing data after the lzop end marker (neither EOF nor another lzop stream)"
            };
            return Err(DecompressError::new(STREAM, start, what).into_io());
        }
        loop {
            match parse_header(&buf) {
                Ok((header, len)) => {
                    debug_assert_eq!(len, buf.len());
                    self.flags = header.flags;
                    self.streams += 1;
                    return Ok(true);
                }
                Err(HeaderParseError::NeedMore(need)) => {
                    let have = buf.len();
                    buf.resize(need, 0);
                    let got = self.read_counted(&mut buf[have..])?;
                    if got < need - have {
                        return Err(DecompressError::new(
                            HEADER,
                            start,
                            format!("truncated (file ends at byte {})", self.pos),
                        )
                        .into_io_eof());
                    }
                }
                Err(HeaderParseError::Invalid { at, detail }) => {
                    return Err(DecompressError::new(HEADER, start + at as u64, detail).into_io());
                }
            }
        }
    }

    fn read_u32s(&mut self, block_start: u64, vals: &mut [u32]) -> io::Result<()> {
        let mut b = [0u8; 16];
        let bytes = &mut b[..vals.len() * 4];
        let got = self.read_counted(bytes)?;
        if got < bytes.len() {
            return Err(DecompressError::new(
                BLOCK,
                block_start,
                format!("truncated block header (file ends at byte {})", self.pos),
            )
            .into_io_eof());
        }
        for (v, c) in vals.iter_mut().zip(bytes.chunks_exact(4)) {
            *v = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        Ok(())
    }

    /// Decodes the next block into `self.out`. Returns Ok(false) at the clean end of input.
    fn next_block(&mut self) -> io::Result<bool> {
        loop {
            let block_start = self.pos;
            let mut len = [0u8; 4];
            let got = self.read_counted(&mut len)?;
            if got < 4 {
                return Err(DecompressError::new(
                    STREAM,
                    block_start,
                    "truncated: input ends without the lzop end marker",
                )
                .into_io_eof());
            }
            let dst_len = u32::from_be_bytes(len);
            if dst_len == 0 {
                if self.read_header(false)? {
                    continue;
                }
                return Ok(false);
            }
            return self.read_block(block_start, dst_len).map(|()| true);
        }
    }

    fn read_block(&mut self, block_start: u64, dst_len: u32) -> io::Result<()> {
        let err = |detail: String| DecompressError::new(BLOCK, block_start, detail).into_io();
        if dst_len == u32::MAX {
            return Err(err("split lzop files are not supported".into()));
        }
        if dst_len > MAX_BLOCK_SIZE {
            return Err(err(format!(
                "uncompressed length {dst_len} exceeds lzop's limit of {MAX_BLOCK_SIZE}"
            )));
        }
        let mut src_len = [0u32; 1];
        self.read_u32s(block_start, &mut src_len)?;
        let src_len = src_len[0];
        if src_len == 0 || src_len > dst_len {
            return Err(err(format!(
                "compressed length {src_len} is invalid for uncompressed length {dst_len}"
            )));
        }
        let compressed = src_len < dst_len;
        let flags = self.flags;
        let mut sums = [0u32; 4];
        let nsums = block_checksum_fields(flags, compressed);
        self.read_u32s(block_start, &mut sums[..nsums])?;
        let mut it = sums[..nsums].iter().copied();
        let mut next_if = |flag: u32, present: bool| {
            if present && flags & flag != 0 {
                it.next()
            } else {
                None
            }
        };
        let d_adler = next_if(F_ADLER32_D, true);
        let d_crc = next_if(F_CRC32_D, true);
        let c_adler = next_if(F_ADLER32_C, compressed);
        let c_crc = next_if(F_CRC32_C, compressed);

        let data_start = self.pos;
        let mut cbuf = std::mem::take(&mut self.cbuf);
        // Grow with the data actually present, so a truncated file claiming a 64 MiB block
        // costs no 64 MiB allocation.
        cbuf.clear();
        let got = (&mut self.inner)
            .take(u64::from(src_len))
            .read_to_end(&mut cbuf)?;
        self.pos += got as u64;
        if got < src_len as usize {
            self.cbuf = cbuf;
            return Err(DecompressError::new(
                BLOCK,
                block_start,
                format!(
                    "truncated block data ({got} of {src_len} bytes; file ends at byte {})",
                    self.pos
                ),
            )
            .into_io_eof());
        }
        let checked = if compressed {
            let r = check_sums(&cbuf, c_adler, c_crc, "compressed").and_then(|()| {
                self.out.resize(dst_len as usize, 0);
                lzo1x::decompress(&cbuf, &mut self.out)
                    .map_err(|e| format!("{e} (block data starts at byte {data_start})"))
            });
            self.cbuf = cbuf;
            r
        } else {
            // Stored block: the data is the output; swap instead of copying.
            self.cbuf = std::mem::replace(&mut self.out, cbuf);
            Ok(())
        };
        checked
            .and_then(|()| check_sums(&self.out, d_adler, d_crc, "uncompressed"))
            .map_err(err)?;
        self.out_pos = 0;
        Ok(())
    }
}

fn check_sums(data: &[u8], adler: Option<u32>, crc: Option<u32>, what: &str) -> Result<(), String> {
    if let Some(want) = adler {
        let got = adler2::adler32_slice(data);
        if got != want {
            return Err(format!(
                "adler32 mismatch of {what} data (stored 0x{want:08x}, computed 0x{got:08x})"
            ));
        }
    }
    if let Some(want) = crc {
        let got = crc32fast::hash(data);
        if got != want {
            return Err(format!(
                "crc32 mismatch of {what} data (stored 0x{want:08x}, computed 0x{got:08x})"
            ));
        }
    }
    Ok(())
}

impl<R: Read> Read for LzopReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some((kind, e)) = &self.failed {
            return Err(io::Error::new(*kind, e.clone()));
        }
        while self.out_pos == self.out.len() {
            if self.finished {
                return Ok(0);
            }
            match self.next_block() {
                Ok(true) => {}
                Ok(false) => {
                    self.finished = true;
                    self.out.clear();
                    self.out_pos = 0;
                }
                Err(e) => {
                    if let Some(d) = DecompressError::find(&e) {
                        self.failed = Some((e.kind(), d.clone()));
                    }
                    return Err(e);
                }
            }
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}
