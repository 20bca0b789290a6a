//! The lzop container: constants and pure (de)serialisation of its file header.
//!
//! vzdump `compress=lzo` pipes the archive through `lzop`, so a `.vma.lzo` is an lzop
//! container around LZO1X blocks. No crate parses it, so we do, from bytes only (the streaming
//! I/O lives in `lzop_read`/`lzop_write`). Field layout (all integers big-endian), as read by
//! lzop 1.04's `p_header`/`read_header` and libarchive's `archive_read_support_filter_lzop.c`:
//!
//! | offset | size | field | notes |
//! | --- | --- | --- | --- |
//! | 0 | 9 | magic | `89 4C 5A 4F 00 0D 0A 1A 0A` |
//! | 9 | 2 | version | lzop version, e.g. 0x1040 (1.04); < 0x0900 is rejected |
//! | 11 | 2 | lib_version | LZO library version, e.g. 0x20a0 |
//! | 13 | 2 | version_needed | only if version >= 0x0940 |
//! | – | 1 | method | 1 LZO1X-1, 2 LZO1X-1(15), 3 LZO1X-999 |
//! | – | 1 | level | only if version >= 0x0940 |
//! | – | 4 | flags | `F_*` below; top byte = OS |
//! | – | 4 | filter | only if `F_H_FILTER` |
//! | – | 4 | mode | st_mode of the input (0 for stdin) |
//! | – | 4 | mtime_low | |
//! | – | 4 | mtime_high | only if version >= 0x0940 |
//! | – | 1 | name_len | |
//! | – | n | name | |
//! | – | 4 | header checksum | adler32 (init 1), or CRC32 if `F_H_CRC32`, over bytes 9.. up to here |
//! | – | 4+n+4 | extra field | only if `F_H_EXTRA_FIELD`: length, data, checksum over both |
//!
//! Blocks follow: `u32 dst_len` (uncompressed; 0 = end of stream), `u32 src_len`, the
//! checksums selected by the flags, then `src_len` bytes (stored raw when equal to dst_len).

/// File magic.
pub const LZOP_MAGIC: [u8; 9] = [0x89, b'L', b'Z', b'O', 0x00, 0x0d, 0x0a, 0x1a, 0x0a];

/// Adler32 of each block's uncompressed data follows the block lengths.
pub const F_ADLER32_D: u32 = 0x0000_0001;
/// Adler32 of each block's compressed data (only for blocks actually compressed).
pub const F_ADLER32_C: u32 = 0x0000_0002;
/// Input was stdin.
pub const F_STDIN: u32 = 0x0000_0004;
/// Output was stdout.
pub const F_STDOUT: u32 = 0x0000_0008;
/// An extra field follows the header checksum.
pub const F_H_EXTRA_FIELD: u32 = 0x0000_0040;
/// CRC32 of each block's uncompressed data.
pub const F_CRC32_D: u32 = 0x0000_0100;
/// CRC32 of each block's compressed data (only for blocks actually compressed).
pub const F_CRC32_C: u32 = 0x0000_0200;
/// A filter id follows the flags (lzop's delta filters); we do not implement filters.
pub const F_H_FILTER: u32 = 0x0000_0800;
/// The header checksum is CRC32 instead of adler32.
pub const F_H_CRC32: u32 = 0x0000_1000;
/// OS byte "Unix" in the top byte of the flags.
pub const F_OS_UNIX: u32 = 0x0300_0000;
/// Flag bits lzop defines (everything else but the OS and charset bytes is reserved).
const F_MASK: u32 = 0x0000_3fff;
const F_OS_MASK: u32 = 0xff00_0000;
const F_CS_MASK: u32 = 0x00f0_0000;
/// Bits lzop refuses as "reserved".
pub const F_RESERVED: u32 = !(F_MASK | F_OS_MASK | F_CS_MASK);

/// lzop's `MAX_BLOCK_SIZE`: no block may claim more uncompressed bytes than this.
pub const MAX_BLOCK_SIZE: u32 = 64 * 1024 * 1024;
/// Extra fields are never written by lzop; we accept small ones and refuse the rest rather
/// than buffer an attacker-chosen amount.
pub const MAX_EXTRA_FIELD: u32 = 1024 * 1024;
/// The version we behave as for `version_needed` (lzop 1.04).
pub const LZOP_VERSION: u16 = 0x1040;

/// LZO1X-1, `lzop -2..-6` (the default).
pub const M_LZO1X_1: u8 = 1;
/// LZO1X-1(15), `lzop -1`.
pub const M_LZO1X_1_15: u8 = 2;
/// LZO1X-999, `lzop -7..-9`.
pub const M_LZO1X_999: u8 = 3;

/// A parsed lzop file header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LzopHeader {
    /// Version of the lzop that wrote it.
    pub version: u16,
    /// LZO library version of that lzop.
    pub lib_version: u16,
    /// Minimum lzop version needed (present from version 0x0940).
    pub version_needed: Option<u16>,
    /// Compression method (`M_*`).
    pub method: u8,
    /// Compression level (present from version 0x0940).
    pub level: Option<u8>,
    /// `F_*` flags.
    pub flags: u32,
    /// Filter id (present if `F_H_FILTER`).
    pub filter: Option<u32>,
    /// st_mode of the input file.
    pub mode: u32,
    /// Modification time, seconds (high half present from version 0x0940).
    pub mtime: u64,
    /// Original file name (empty for stdin).
    pub name: Vec<u8>,
    /// Extra field contents (if `F_H_EXTRA_FIELD`).
    pub extra: Option<Vec<u8>>,
}

/// Outcome of a failed header parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderParseError {
    /// The buffer is too short; at least this many bytes (from the magic on) are needed.
    NeedMore(usize),
    /// The header is invalid or unsupported; `at` is relative to the magic.
    Invalid {
        /// Offset from the start of the magic.
        at: usize,
        /// What is wrong.
        detail: String,
    },
}

fn invalid(at: usize, detail: impl Into<String>) -> HeaderParseError {
    HeaderParseError::Invalid {
        at,
        detail: detail.into(),
    }
}

/// Checksum lzop uses for the header (and the extra field).
fn header_checksum(flags: u32, bytes: &[u8]) -> u32 {
    if flags & F_H_CRC32 != 0 {
        crc32fast::hash(bytes)
    } else {
        adler2::adler32_slice(bytes)
    }
}

/// Big-endian field reader that reports how much input it needs.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Fields<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], HeaderParseError> {
        let end = self.pos + n;
        match self.buf.get(self.pos..end) {
            Some(s) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(HeaderParseError::NeedMore(end)),
        }
    }
    fn u8(&mut self) -> Result<u8, HeaderParseError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, HeaderParseError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, HeaderParseError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Parses an lzop header from `buf` (which starts at the magic). Returns the header and its
/// length in bytes (including the magic, checksum and extra field).
///
/// Checks in lzop's order: magic, version, version_needed, header checksum, method, reserved
/// flags, extra-field checksum; then what we do not support (filters).
pub fn parse_header(buf: &[u8]) -> Result<(LzopHeader, usize), HeaderParseError> {
    let mut f = Fields { buf, pos: 0 };
    if f.take(LZOP_MAGIC.len())? != LZOP_MAGIC {
        return Err(invalid(0, "not an lzop file (bad magic)"));
    }
    let version = f.u16()?;
    if version < 0x0900 {
        return Err(invalid(
            9,
            format!("unsupported lzop version 0x{version:04x}"),
        ));
    }
    let lib_version = f.u16()?;
    let version_needed = if version >= 0x0940 {
        let at = f.pos;
        let v = f.u16()?;
        if v > LZOP_VERSION {
            return Err(invalid(
                at,
                format!("file needs lzop version 0x{v:04x}, newer than 0x{LZOP_VERSION:04x}"),
            ));
        }
        if v < 0x0900 {
            return Err(invalid(at, format!("invalid version_needed 0x{v:04x}")));
        }
        Some(v)
    } else {
        None
    };
    let method_at = f.pos;
    let method = f.u8()?;
    let level = if version >= 0x0940 {
        Some(f.u8()?)
    } else {
        None
    };
    let flags_at = f.pos;
    let flags = f.u32()?;
    let filter = if flags & F_H_FILTER != 0 {
        Some(f.u32()?)
    } else {
        None
    };
    let mut mode = f.u32()?;
    if flags & F_STDIN != 0 {
        mode = 0;
    }
    let mtime_low = f.u32()?;
    let mtime_high = if version >= 0x0940 { f.u32()? } else { 0 };
    let name_len = usize::from(f.u8()?);
    let name = f.take(name_len)?.to_vec();
    let sum_at = f.pos;
    let stored_sum = f.u32()?;
    let computed = header_checksum(flags, &buf[LZOP_MAGIC.len()..sum_at]);
    if stored_sum != computed {
        let algo = if flags & F_H_CRC32 != 0 {
            "crc32"
        } else {
            "adler32"
        };
        return Err(invalid(
            sum_at,
            format!(
                "header {algo} mismatch (stored 0x{stored_sum:08x}, computed 0x{computed:08x})"
            ),
        ));
    }
    if !matches!(method, M_LZO1X_1 | M_LZO1X_1_15 | M_LZO1X_999) {
        return Err(invalid(
            method_at,
            format!(
                "unsupported lzop method {method} (only the LZO1X methods 1, 2, 3 exist in lzop)"
            ),
        ));
    }
    if flags & F_RESERVED != 0 {
        return Err(invalid(
            flags_at,
            format!("reserved lzop header flags set (0x{flags:08x})"),
        ));
    }
    let extra = if flags & F_H_EXTRA_FIELD != 0 {
        let len_at = f.pos;
        let len = f.u32()?;
        if len > MAX_EXTRA_FIELD {
            return Err(invalid(
                len_at,
                format!("lzop extra field of {len} bytes is larger than {MAX_EXTRA_FIELD}"),
            ));
        }
        let data = f.take(len as usize)?.to_vec();
        let sum_at = f.pos;
        let stored = f.u32()?;
        let computed = header_checksum(flags, &buf[len_at..sum_at]);
        if stored != computed {
            return Err(invalid(
                sum_at,
                format!(
                    "extra field checksum mismatch (stored 0x{stored:08x}, computed 0x{computed:08x})"
                ),
            ));
        }
        Some(data)
    } else {
        None
    };
    if let Some(id) = filter {
        return Err(invalid(
            flags_at,
            format!(
                "lzop filter {id} (lzop --filter) is not supported; decompress with lzop -dc first"
            ),
        ));
    }
    let header = LzopHeader {
        version,
        lib_version,
        version_needed,
        method,
        level,
        flags,
        filter,
        mode,
        mtime: u64::from(mtime_high) << 32 | u64::from(mtime_low),
        name,
        extra,
    };
    Ok((header, f.pos))
}

impl LzopHeader {
    /// The header lzop 1.04 writes when compressing stdin to stdout (`… | lzop > x.lzo`, the
    /// vzdump case), method LZO1X-1 at its default level, adler32 of uncompressed data.
    pub fn for_stdin(mtime: u64) -> Self {
        Self {
            version: 0x1040,
            lib_version: 0x20a0,
            version_needed: Some(0x0940),
            method: M_LZO1X_1,
            level: Some(5),
            flags: F_OS_UNIX | F_ADLER32_D | F_STDIN | F_STDOUT,
            filter: None,
            mode: 0,
            mtime,
            name: Vec::new(),
            extra: None,
        }
    }

    /// Serialises the header including magic and checksum(s). `name` longer than 255 bytes is
    /// truncated (lzop's own limit).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = LZOP_MAGIC.to_vec();
        b.extend_from_slice(&self.version.to_be_bytes());
        b.extend_from_slice(&self.lib_version.to_be_bytes());
        if self.version >= 0x0940 {
            b.extend_from_slice(&self.version_needed.unwrap_or(0x0940).to_be_bytes());
        }
        b.push(self.method);
        if self.version >= 0x0940 {
            b.push(self.level.unwrap_or(0));
        }
        let mut flags = self.flags & !(F_H_FILTER | F_H_EXTRA_FIELD);
        if self.filter.is_some() {
            flags |= F_H_FILTER;
        }
        if self.extra.is_some() {
            flags |= F_H_EXTRA_FIELD;
        }
        b.extend_from_slice(&flags.to_be_bytes());
        if let Some(id) = self.filter {
            b.extend_from_slice(&id.to_be_bytes());
        }
        b.extend_from_slice(&self.mode.to_be_bytes());
        b.extend_from_slice(&(self.mtime as u32).to_be_bytes());
        if self.version >= 0x0940 {
            b.extend_from_slice(&((self.mtime >> 32) as u32).to_be_bytes());
        }
        let name = &self.name[..self.name.len().min(255)];
        b.push(name.len() as u8);
        b.extend_from_slice(name);
        let sum = header_checksum(flags, &b[LZOP_MAGIC.len()..]);
        b.extend_from_slice(&sum.to_be_bytes());
        if let Some(extra) = &self.extra {
            let start = b.len();
            b.extend_from_slice(&(extra.len() as u32).to_be_bytes());
            b.extend_from_slice(extra);
            let sum = header_checksum(flags, &b[start..]);
            b.extend_from_slice(&sum.to_be_bytes());
        }
        b
    }
}

/// Number of 4-byte checksum fields between a block's lengths and its data. Compressed-data
/// checksums are present only for blocks that are actually compressed (`src_len < dst_len`).
pub fn block_checksum_fields(flags: u32, compressed: bool) -> usize {
    let mut n = 0;
    if flags & F_ADLER32_D != 0 {
        n += 1;
    }
    if flags & F_CRC32_D != 0 {
        n += 1;
    }
    if compressed {
        if flags & F_ADLER32_C != 0 {
            n += 1;
        }
        if flags & F_CRC32_C != 0 {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_header_round_trips_and_has_lzop_layout() {
        let h = LzopHeader::for_stdin(0x1234_5678);
        let b = h.to_bytes();
        // magic 9 + version 2 + lib 2 + needed 2 + method 1 + level 1 + flags 4 + mode 4
        // + mtime 8 + name_len 1 + checksum 4
        assert_eq!(b.len(), 38);
        assert_eq!(&b[..9], &LZOP_MAGIC);
        assert_eq!(&b[15..17], &[M_LZO1X_1, 5]);
        assert_eq!(&b[17..21], &0x0300_000du32.to_be_bytes());
        assert_eq!(parse_header(&b), Ok((h, 38)));
    }

    #[test]
    fn every_prefix_asks_for_more() {
        let mut h = LzopHeader::for_stdin(7);
        h.name = b"disk.raw".to_vec();
        h.extra = Some(vec![1, 2, 3]);
        h.flags |= F_H_EXTRA_FIELD;
        let b = h.to_bytes();
        for n in 0..b.len() {
            match parse_header(&b[..n]) {
                Err(HeaderParseError::NeedMore(need)) => assert!(need > n && need <= b.len()),
                other => panic!("prefix {n}: {other:?}"),
            }
        }
        assert_eq!(parse_header(&b), Ok((h, b.len())));
    }

    #[test]
    fn crc32_header_checksum() {
        let mut h = LzopHeader::for_stdin(0);
        h.flags |= F_H_CRC32 | F_CRC32_D;
        let b = h.to_bytes();
        assert_eq!(parse_header(&b).map(|r| r.0), Ok(h));
    }

    #[test]
    fn corrupt_checksum_names_its_offset() {
        let mut b = LzopHeader::for_stdin(0).to_bytes();
        b[30] ^= 1; // mtime
        match parse_header(&b) {
            Err(HeaderParseError::Invalid { at, detail }) => {
                assert_eq!(at, 34);
                assert!(detail.contains("adler32 mismatch"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_filter_method_reserved_and_new_versions() {
        let mut h = LzopHeader::for_stdin(0);
        h.filter = Some(1);
        let e = parse_header(&h.to_bytes()).unwrap_err();
        assert!(format!("{e:?}").contains("filter 1"), "{e:?}");

        let mut h = LzopHeader::for_stdin(0);
        h.method = 128; // M_ZLIB in some lzop builds
        assert!(format!("{:?}", parse_header(&h.to_bytes())).contains("method 128"));

        let mut h = LzopHeader::for_stdin(0);
        h.flags |= 0x0001_0000;
        assert!(format!("{:?}", parse_header(&h.to_bytes())).contains("reserved"));

        let mut h = LzopHeader::for_stdin(0);
        h.version_needed = Some(0x2000);
        assert!(format!("{:?}", parse_header(&h.to_bytes())).contains("newer"));

        let mut h = LzopHeader::for_stdin(0);
        h.version = 0x0800;
        assert!(format!("{:?}", parse_header(&h.to_bytes())).contains("unsupported lzop version"));
    }

    #[test]
    fn old_versions_have_no_needed_level_or_mtime_high() {
        let mut h = LzopHeader::for_stdin(42);
        h.version = 0x0930;
        h.version_needed = None;
        h.level = None;
        let b = h.to_bytes();
        assert_eq!(b.len(), 38 - 2 - 1 - 4);
        assert_eq!(parse_header(&b), Ok((h, b.len())));
    }

    #[test]
    fn checksum_field_count() {
        assert_eq!(block_checksum_fields(F_ADLER32_D, true), 1);
        assert_eq!(block_checksum_fields(F_ADLER32_D | F_ADLER32_C, false), 1);
        assert_eq!(block_checksum_fields(F_ADLER32_D | F_ADLER32_C, true), 2);
        assert_eq!(
            block_checksum_fields(F_ADLER32_D | F_CRC32_D | F_ADLER32_C | F_CRC32_C, true),
            4
        );
        assert_eq!(block_checksum_fields(0, true), 0);
    }
}
