//! Recognising the compression of a stream from its first bytes.
//!
//! Why by content: vzdump files get renamed, piped (`vma extract -`), and `.dat` temp names
//! have no compression extension at all. The magic numbers are unambiguous and a VMA archive
//! itself starts with `VMA\0`, which collides with none of them.

/// How many bytes [`detect`] wants to see (the longest magic, lzop's).
pub const PEEK_LEN: usize = 9;

/// What the first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// zstd frame (`28 B5 2F FD`) or zstd skippable frame (`5? 2A 4D 18`, as pzstd writes
    /// first).
    Zstd,
    /// gzip member (`1F 8B`).
    Gzip,
    /// lzop container (`89 4C 5A 4F 00 0D 0A 1A 0A`).
    Lzop,
    /// bzip2 (`BZh` + level digit): recognised only to refuse it clearly.
    Bzip2,
    /// xz (`FD 37 7A 58 5A 00`): recognised only to refuse it clearly.
    Xz,
    /// Anything else: passed through unchanged (a plain VMA, or garbage the VMA reader
    /// reports as a bad magic).
    Plain,
}

/// Classifies a stream by its first bytes (`prefix` may be shorter than [`PEEK_LEN`] when the
/// input is that short).
pub fn detect(prefix: &[u8]) -> Detected {
    const LZOP: [u8; 9] = [0x89, 0x4c, 0x5a, 0x4f, 0x00, 0x0d, 0x0a, 0x1a, 0x0a];
    match prefix {
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Detected::Zstd,
        [m, 0x2a, 0x4d, 0x18, ..] if m & 0xf0 == 0x50 => Detected::Zstd,
        [0x1f, 0x8b, ..] => Detected::Gzip,
        p if p.starts_with(&LZOP) => Detected::Lzop,
        [b'B', b'Z', b'h', b'1'..=b'9', ..] => Detected::Bzip2,
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Detected::Xz,
        _ => Detected::Plain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics() {
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd, 0x04]), Detected::Zstd);
        assert_eq!(detect(&[0x50, 0x2a, 0x4d, 0x18]), Detected::Zstd);
        assert_eq!(detect(&[0x5f, 0x2a, 0x4d, 0x18]), Detected::Zstd);
        assert_eq!(detect(&[0x60, 0x2a, 0x4d, 0x18]), Detected::Plain);
        assert_eq!(detect(&[0x1f, 0x8b, 8]), Detected::Gzip);
        assert_eq!(
            detect(&[0x89, 0x4c, 0x5a, 0x4f, 0x00, 0x0d, 0x0a, 0x1a, 0x0a]),
            Detected::Lzop
        );
        // A truncated lzop magic is not lzop.
        assert_eq!(detect(&[0x89, 0x4c, 0x5a, 0x4f]), Detected::Plain);
        assert_eq!(detect(b"BZh91AY&SY"), Detected::Bzip2);
        assert_eq!(detect(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0]), Detected::Xz);
        assert_eq!(detect(b"VMA\0\0\0\0\x01"), Detected::Plain);
        assert_eq!(detect(b""), Detected::Plain);
        assert_eq!(detect(&[0x1f]), Detected::Plain);
    }
}
