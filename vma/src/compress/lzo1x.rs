//! LZO1X block decompressor in safe Rust.
//!
//! Why our own: `lzop` files (vzdump `compress=lzo`) are LZO1X blocks of up to 256 KiB inside a
//! small container. The only MIT-licensed pure-Rust decoder (`lzokay-native`) reads through a
//! `Read + Seek` cursor one byte at a time and decodes at about half the speed of `lzop -dc`;
//! the fast crates are GPL. LZO1X decoding is small enough to write with every bounds check
//! explicit, which also gives us precise error positions for corrupt input.
//!
//! The instruction set follows the Linux kernel's `lib/lzo/lzo1x_decompress_safe.c` (the
//! classic, non-RLE bitstream) and LZO 2.10's `lzo1x_d.ch`, which `lzop` uses for every
//! LZO1X method (1 = LZO1X-1, 2 = LZO1X-1(15), 3 = LZO1X-999): one decoder serves all three.
//!
//! Token summary (`t` = instruction byte, `state` = literals copied after the last match, or 4
//! after a literal run):
//!
//! | t | meaning |
//! | --- | --- |
//! | first byte > 17 | copy `t - 17` literals (state = that count if < 4, else 4) |
//! | 0..15, state 0 | literal run of `t + 3` (t = 0: `18 + 255*zeros + next byte`) |
//! | 0..15, state 1..3 | M1: 2-byte match, distance `1 + (t >> 2) + (b << 2)` |
//! | 0..15, state 4 | 3-byte match, distance `0x801 + (t >> 2) + (b << 2)` |
//! | 16..31 | M4: distance `0x4000 + ((t & 8) << 11) + (le16 >> 2)`; distance 0x4000 = end |
//! | 32..63 | M3: length `(t & 31) + 2` (extended when 0), distance `1 + (le16 >> 2)` |
//! | 64..255 | M2: length `(t >> 5) + 1`, distance `1 + ((t >> 2) & 7) + (b << 3)` |
//!
//! After every match, the low two bits of its last distance byte (`next`) say how many literals
//! (0..3) follow directly.

use std::fmt;

/// Why a block could not be decoded; `at` is the position in the compressed block where the
/// decoder noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lzo1xError {
    /// Offset within the compressed block.
    pub at: usize,
    /// What went wrong.
    pub kind: Lzo1xErrorKind,
}

/// The failure classes of `lzo1x_decompress_safe`, plus a length mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lzo1xErrorKind {
    /// The instruction stream ended before the end marker.
    InputOverrun,
    /// The data would be longer than the declared uncompressed length.
    OutputOverrun,
    /// A match points before the start of the output.
    LookBehindOverrun,
    /// Bytes follow the end marker.
    InputNotConsumed,
    /// The end marker has a length field other than 3 (not a valid LZO1X end marker).
    BadEndMarker,
    /// The block decoded cleanly but to fewer bytes than declared.
    OutputTooShort {
        /// Bytes produced.
        got: usize,
    },
}

impl fmt::Display for Lzo1xError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            Lzo1xErrorKind::InputOverrun => "compressed data ends before the end marker".to_owned(),
            Lzo1xErrorKind::OutputOverrun => "data longer than the declared length".to_owned(),
            Lzo1xErrorKind::LookBehindOverrun => {
                "match refers to data before the block start".to_owned()
            }
            Lzo1xErrorKind::InputNotConsumed => "bytes after the end marker".to_owned(),
            Lzo1xErrorKind::BadEndMarker => "invalid end marker".to_owned(),
            Lzo1xErrorKind::OutputTooShort { got } => {
                format!("data shorter than the declared length ({got} bytes)")
            }
        };
        write!(f, "corrupt LZO1X data at block offset {}: {what}", self.at)
    }
}

impl std::error::Error for Lzo1xError {}

/// Cursor over the compressed block with checked reads.
struct Input<'a> {
    src: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn err(&self, kind: Lzo1xErrorKind) -> Lzo1xError {
        Lzo1xError { at: self.pos, kind }
    }

    #[inline]
    fn byte(&mut self) -> Result<usize, Lzo1xError> {
        match self.src.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(usize::from(b))
            }
            None => Err(self.err(Lzo1xErrorKind::InputOverrun)),
        }
    }

    #[inline]
    fn le16(&mut self) -> Result<usize, Lzo1xError> {
        match self.src.get(self.pos..self.pos + 2) {
            Some(b) => {
                self.pos += 2;
                Ok(usize::from(u16::from_le_bytes([b[0], b[1]])))
            }
            None => Err(self.err(Lzo1xErrorKind::InputOverrun)),
        }
    }

    /// Length extension: each zero byte adds 255, the first non-zero byte adds itself.
    /// `limit` bounds the result (anything longer cannot fit the output anyway), which keeps
    /// the arithmetic far from overflow on 32-bit targets too.
    fn extended_len(&mut self, base: usize, limit: usize) -> Result<usize, Lzo1xError> {
        let mut len = base;
        loop {
            let b = self.byte()?;
            if b != 0 {
                return Ok(len + b);
            }
            len += 255;
            if len > limit {
                return Err(self.err(Lzo1xErrorKind::OutputOverrun));
            }
        }
    }
}

/// Copies `n` literal bytes from the input to `dst[*op..]`.
#[inline]
fn copy_literals(
    input: &mut Input<'_>,
    dst: &mut [u8],
    op: &mut usize,
    n: usize,
) -> Result<(), Lzo1xError> {
    // Fast path: a fixed 16-byte copy compiles to two loads and stores. Bytes written past
    // `n` are scratch: output is produced strictly in order, so later tokens overwrite them.
    if n <= 16 && *op + 16 <= dst.len() && input.pos + 16 <= input.src.len() {
        dst[*op..*op + 16].copy_from_slice(&input.src[input.pos..input.pos + 16]);
        input.pos += n;
        *op += n;
        return Ok(());
    }
    if n == 0 {
        return Ok(());
    }
    let Some(out) = dst.get_mut(*op..*op + n) else {
        return Err(input.err(Lzo1xErrorKind::OutputOverrun));
    };
    let Some(lit) = input.src.get(input.pos..input.pos + n) else {
        return Err(input.err(Lzo1xErrorKind::InputOverrun));
    };
    out.copy_from_slice(lit);
    input.pos += n;
    *op += n;
    Ok(())
}

/// Copies a match of `len` bytes from `dist` bytes back. Overlapping matches (dist < len)
/// repeat the pattern, as LZ77 requires; the pattern is doubled each step so a long run of a
/// short pattern costs O(log len) slice copies.
#[inline]
fn copy_match(
    input: &Input<'_>,
    dst: &mut [u8],
    op: &mut usize,
    dist: usize,
    len: usize,
) -> Result<(), Lzo1xError> {
    if dist > *op {
        return Err(input.err(Lzo1xErrorKind::LookBehindOverrun));
    }
    if len > dst.len() - *op {
        return Err(input.err(Lzo1xErrorKind::OutputOverrun));
    }
    let from = *op - dist;
    if dist >= 8 && len <= 16 && *op + 16 <= dst.len() {
        // Fast path for the common short match: two fixed 8-byte copies, each
        // non-overlapping because dist >= 8; the second may read what the first wrote, which
        // is exactly the LZ77 semantics. Bytes past `len` are scratch (see copy_literals).
        dst.copy_within(from..from + 8, *op);
        dst.copy_within(from + 8..from + 16, *op + 8);
    } else if dist >= len {
        dst.copy_within(from..from + len, *op);
    } else if dist == 1 {
        let b = dst[from];
        dst[*op..*op + len].fill(b);
    } else {
        let mut done = 0;
        while done < len {
            let n = (len - done).min(dist + done);
            dst.copy_within(from..from + n, *op + done);
            done += n;
        }
    }
    *op += len;
    Ok(())
}

/// Decodes one LZO1X block into `dst`, which must be exactly the declared uncompressed length
/// (lzop stores it in the block header). Succeeds only if the block ends with a valid end
/// marker, consumes all of `src`, and fills all of `dst`.
pub fn decompress(src: &[u8], dst: &mut [u8]) -> Result<(), Lzo1xError> {
    let mut input = Input { src, pos: 0 };
    let out_len = dst.len();
    let mut op = 0usize;
    // Literals copied right after the previous instruction: 0..3 after a match, 4 after a run.
    let mut state: usize;

    if src.len() < 3 {
        return Err(input.err(Lzo1xErrorKind::InputOverrun));
    }
    if src[0] > 17 {
        input.pos = 1;
        let t = usize::from(src[0]) - 17;
        copy_literals(&mut input, dst, &mut op, t)?;
        state = if t < 4 { t } else { 4 };
    } else {
        state = 0;
    }

    loop {
        let t = input.byte()?;
        let (dist, len, next);
        if t < 16 {
            if state == 0 {
                let run = if t == 0 {
                    input.extended_len(15, out_len)?
                } else {
                    t
                } + 3;
                copy_literals(&mut input, dst, &mut op, run)?;
                state = 4;
                continue;
            }
            let b = input.byte()?;
            next = t & 3;
            if state == 4 {
                dist = 1 + 0x800 + (t >> 2) + (b << 2);
                len = 3;
            } else {
                dist = 1 + (t >> 2) + (b << 2);
                len = 2;
            }
        } else if t >= 64 {
            let b = input.byte()?;
            next = t & 3;
            dist = 1 + ((t >> 2) & 7) + (b << 3);
            len = (t >> 5) + 1;
        } else if t >= 32 {
            len = if t & 31 == 0 {
                input.extended_len(31, out_len)?
            } else {
                t & 31
            } + 2;
            let v = input.le16()?;
            dist = 1 + (v >> 2);
            next = v & 3;
        } else {
            len = if t & 7 == 0 {
                input.extended_len(7, out_len)?
            } else {
                t & 7
            } + 2;
            let v = input.le16()?;
            let d = ((t & 8) << 11) + (v >> 2);
            if d == 0 {
                if len != 3 {
                    return Err(input.err(Lzo1xErrorKind::BadEndMarker));
                }
                break;
            }
            dist = d + 0x4000;
            next = v & 3;
        }
        copy_match(&input, dst, &mut op, dist, len)?;
        copy_literals(&mut input, dst, &mut op, next)?;
        state = next;
    }

    if input.pos != src.len() {
        return Err(input.err(Lzo1xErrorKind::InputNotConsumed));
    }
    if op != out_len {
        return Err(input.err(Lzo1xErrorKind::OutputTooShort { got: op }));
    }
    Ok(())
}
