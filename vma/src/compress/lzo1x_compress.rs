//! LZO1X-1 block compressor in safe Rust (the algorithm `lzop` uses by default).
//!
//! Why our own: `lzokay-native` (MIT) compresses LZO1X-999-style at about 10–15 MB/s here,
//! which would make `vma create --compress lzo` of a 32 GiB disk take most of an hour; `lzop`
//! itself does ~300 MB/s with LZO1X-1. The fast Rust crates are GPL. LZO1X-1 is a greedy
//! single-probe hash matcher and short enough to write safely.
//!
//! Structure follows the Linux kernel's `lib/lzo/lzo1x_compress.c` (classic bitstream, no
//! RLE): hash the 4 bytes at `ip`, probe one earlier position, on a 4-byte match extend it and
//! emit the pending literals and the match as M2/M3/M4 tokens, otherwise skip ahead faster the
//! longer the current literal run is. Differences, all format-neutral: the hash table holds
//! positions within the whole block (`u32`) instead of restarting every 48 KiB, and a candidate
//! farther back than M4's reach (0xbfff) is simply not used.

const D_BITS: u32 = 14;
const D_SIZE: usize = 1 << D_BITS;
const M2_MAX_LEN: usize = 8;
const M2_MAX_OFFSET: usize = 0x0800;
const M3_MAX_LEN: usize = 33;
const M3_MAX_OFFSET: usize = 0x4000;
const M4_MAX_LEN: usize = 9;
const M4_MAX_OFFSET: usize = 0xbfff;
const M3_MARKER: u8 = 32;
const M4_MARKER: u8 = 16;

/// Reusable hash table, so compressing many blocks does not reallocate.
#[derive(Debug, Clone)]
pub struct Lzo1xCompressor {
    dict: Vec<u32>,
}

impl Default for Lzo1xCompressor {
    fn default() -> Self {
        Self::new()
    }
}

/// Upper bound of the compressed size of `n` input bytes (liblzo's documented bound).
pub fn worst_case_len(n: usize) -> usize {
    n + n / 16 + 64 + 3
}

#[inline]
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Appends the encoding of a literal run of `ii.len()` bytes. `after_match` says whether the
/// previous token was a match (then runs of 1..3 ride in its low distance bits).
fn emit_literals(out: &mut Vec<u8>, lit: &[u8], first_token: bool) {
    let t = lit.len();
    if t == 0 {
        return;
    }
    if first_token && t <= 238 {
        out.push((17 + t) as u8);
    } else if t <= 3 {
        // The previous token is a match; its second-to-last byte has two free low bits that
        // count 0..3 trailing literals.
        let at = out.len() - 2;
        out[at] |= t as u8;
    } else if t <= 18 {
        out.push((t - 3) as u8);
    } else {
        let mut tt = t - 18;
        out.push(0);
        while tt > 255 {
            tt -= 255;
            out.push(0);
        }
        out.push(tt as u8);
    }
    out.extend_from_slice(lit);
}

/// Appends the encoding of a match of `m_len` (≥ 3; ≥ 4 from this compressor) bytes at
/// distance `m_off` (1..=0xbfff).
fn emit_match(out: &mut Vec<u8>, mut m_len: usize, mut m_off: usize) {
    if m_len <= M2_MAX_LEN && m_off <= M2_MAX_OFFSET {
        m_off -= 1;
        out.push((((m_len - 1) << 5) | ((m_off & 7) << 2)) as u8);
        out.push((m_off >> 3) as u8);
        return;
    }
    if m_off <= M3_MAX_OFFSET {
        m_off -= 1;
        if m_len <= M3_MAX_LEN {
            out.push(M3_MARKER | (m_len - 2) as u8);
        } else {
            m_len -= M3_MAX_LEN;
            out.push(M3_MARKER);
            while m_len > 255 {
                m_len -= 255;
                out.push(0);
            }
            out.push(m_len as u8);
        }
    } else {
        m_off -= 0x4000;
        let high = ((m_off >> 11) & 8) as u8;
        if m_len <= M4_MAX_LEN {
            out.push(M4_MARKER | high | (m_len - 2) as u8);
        } else {
            m_len -= M4_MAX_LEN;
            out.push(M4_MARKER | high);
            while m_len > 255 {
                m_len -= 255;
                out.push(0);
            }
            out.push(m_len as u8);
        }
    }
    out.push((m_off << 2) as u8);
    out.push((m_off >> 6) as u8);
}

/// Length of the common prefix of `a[i..]` and `a[j..]` (j < i), compared up to `end`.
#[inline]
fn common_len(a: &[u8], j: usize, i: usize, end: usize) -> usize {
    let mut n = 0;
    while i + n + 8 <= end {
        let x = u64::from_le_bytes(a[i + n..i + n + 8].try_into().unwrap_or([0; 8]));
        let y = u64::from_le_bytes(a[j + n..j + n + 8].try_into().unwrap_or([0; 8]));
        let d = x ^ y;
        if d != 0 {
            return n + (d.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    while i + n < end && a[i + n] == a[j + n] {
        n += 1;
    }
    n
}

impl Lzo1xCompressor {
    /// A compressor with its 64 KiB hash table.
    pub fn new() -> Self {
        Self {
            dict: vec![0; D_SIZE],
        }
    }

    /// Compresses `src` as one LZO1X block (ending with the end marker), appending to `out`.
    pub fn compress(&mut self, src: &[u8], out: &mut Vec<u8>) {
        out.reserve(worst_case_len(src.len()));
        let start_len = out.len();
        self.dict.fill(0);
        let len = src.len();
        // Literals start here (`ii` in the C code).
        let mut ii = 0usize;
        if len > 20 {
            let ip_end = len - 20;
            let mut ip = 4usize;
            'outer: loop {
                // Skip faster through incompressible data.
                ip += 1 + ((ip - ii) >> 5);
                loop {
                    if ip >= ip_end {
                        break 'outer;
                    }
                    let dv = le32(src, ip);
                    let h = (dv.wrapping_mul(0x1824_429d) >> (32 - D_BITS)) as usize & (D_SIZE - 1);
                    let cand = self.dict[h] as usize;
                    self.dict[h] = ip as u32;
                    let m_off = ip - cand;
                    if m_off == 0 || m_off > M4_MAX_OFFSET || le32(src, cand) != dv {
                        continue 'outer;
                    }
                    emit_literals(out, &src[ii..ip], out.len() == start_len);
                    let m_len = 4 + common_len(src, cand + 4, ip + 4, ip_end);
                    ip += m_len;
                    ii = ip;
                    emit_match(out, m_len, m_off);
                }
            }
        }
        emit_literals(out, &src[ii..], out.len() == start_len);
        out.extend_from_slice(&[M4_MARKER | 1, 0, 0]);
    }
}
