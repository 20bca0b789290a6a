//! `VmaDeviceInfoHeader`: one 32-byte device slot of the main header.

use super::{be_u32, be_u64};

/// One `dev_info` slot (32 bytes, at header offset `4096 + 32 * dev_id`).
///
/// | offset | size | field | rule |
/// | --- | --- | --- | --- |
/// | 0 | 4 | `devname_ptr` | u32 BE blob offset of the NUL-terminated name; 0 = unused slot |
/// | 4 | 4 | `reserved0` | written 0, ignored |
/// | 8 | 8 | `size` | u64 BE device size in bytes; 0 = unused slot |
/// | 16 | 16 | `reserved1`, `reserved2` | written 0, ignored |
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DevInfo {
    pub devname_ptr: u32,
    pub size: u64,
}

impl DevInfo {
    /// Size of the on-disk slot.
    pub const SIZE: usize = 32;

    /// Parses one slot; `b` must hold at least 32 bytes. Reserved fields are ignored like C.
    pub fn parse(b: &[u8]) -> DevInfo {
        DevInfo {
            devname_ptr: be_u32(b, 0),
            size: be_u64(b, 8),
        }
    }

    /// Serialises into `out[..32]`, reserved fields zero.
    pub fn write_to(&self, out: &mut [u8]) {
        out[..Self::SIZE].fill(0);
        out[0..4].copy_from_slice(&self.devname_ptr.to_be_bytes());
        out[8..16].copy_from_slice(&self.size.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_hand_built_slot() {
        let mut b = [0u8; 32];
        b[0..4].copy_from_slice(&[0, 0, 1, 0xb7]);
        b[4] = 0xff; // reserved0 is ignored
        b[8..16].copy_from_slice(&10_737_418_240u64.to_be_bytes());
        b[20] = 1; // reserved1 is ignored
        let d = DevInfo::parse(&b);
        assert_eq!(
            d,
            DevInfo {
                devname_ptr: 439,
                size: 10_737_418_240
            }
        );
        let mut out = [0xaau8; 32];
        d.write_to(&mut out);
        assert_eq!(&out[0..4], &[0, 0, 1, 0xb7]);
        assert_eq!(&out[4..8], &[0; 4]);
        assert_eq!(&out[16..], &[0; 16]);
        assert_eq!(DevInfo::parse(&out), d);
    }
}
