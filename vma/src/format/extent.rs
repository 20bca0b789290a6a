//! `VmaExtentHeader` and its blockinfo entries.

use super::{
    BLOCKINFO_SLOTS, EXTENT_HEADER_SIZE, EXTENT_MAGIC, array16, be_u16, be_u64,
    md5_with_zeroed_field,
};
use crate::Error;

/// Byte offsets of the extent header fields.
pub mod offset {
    pub const MAGIC: usize = 0;
    pub const RESERVED1: usize = 4;
    pub const BLOCK_COUNT: usize = 6;
    pub const UUID: usize = 8;
    pub const MD5SUM: usize = 24;
    pub const BLOCKINFO: usize = 40;
}

/// One blockinfo: which cluster of which device this slot carries, and which of its 16
/// blocks are stored.
///
/// Stored as one big-endian u64 `mask << 48 | dev_id << 32 | cluster`:
///
/// | byte | field | rule |
/// | --- | --- | --- |
/// | 0..2 | `mask` | bit *i* (LSB = 0) set: block *i* is stored; clear: it is all zeros |
/// | 2 | reserved | written 0, not checked |
/// | 3 | `dev_id` | 0 = unused slot |
/// | 4..8 | `cluster` | cluster number (64 KiB units) |
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockInfo {
    pub mask: u16,
    pub dev_id: u8,
    pub cluster: u32,
}

impl BlockInfo {
    /// Decodes like the C reader: `cluster = v & 0xffffffff`, `dev_id = (v >> 32) & 0xff`,
    /// `mask = v >> 48`.
    pub fn from_u64(v: u64) -> BlockInfo {
        BlockInfo {
            mask: (v >> 48) as u16,
            dev_id: (v >> 32) as u8,
            cluster: v as u32,
        }
    }

    /// Encodes like the C writer.
    pub fn to_u64(self) -> u64 {
        (u64::from(self.mask) << 48) | (u64::from(self.dev_id) << 32) | u64::from(self.cluster)
    }

    /// Number of stored blocks.
    pub fn blocks(self) -> u32 {
        self.mask.count_ones()
    }
}

/// The 512-byte header in front of each extent's data.
///
/// | offset | size | field | rule |
/// | --- | --- | --- | --- |
/// | 0 | 4 | `magic` | `VMAE` |
/// | 4 | 2 | `reserved1` | must be 0 |
/// | 6 | 2 | `block_count` | u16 BE: number of 4 KiB **blocks** after the header |
/// | 8 | 16 | `uuid` | the archive's uuid |
/// | 24 | 16 | `md5sum` | MD5 of these 512 bytes with this field zeroed |
/// | 40 | 472 | `blockinfo[59]` | [`BlockInfo`], u64 BE each |
///
/// The data that follows is the stored blocks in slot order, within a slot in block order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtentHeader {
    pub magic: [u8; 4],
    pub reserved1: u16,
    pub block_count: u16,
    pub uuid: [u8; 16],
    pub md5sum: [u8; 16],
    pub blockinfo: [BlockInfo; BLOCKINFO_SLOTS],
}

impl ExtentHeader {
    /// Decodes the fields without checking anything.
    pub fn parse(b: &[u8; EXTENT_HEADER_SIZE]) -> ExtentHeader {
        let mut blockinfo = [BlockInfo::default(); BLOCKINFO_SLOTS];
        for (i, bi) in blockinfo.iter_mut().enumerate() {
            *bi = BlockInfo::from_u64(be_u64(b, offset::BLOCKINFO + 8 * i));
        }
        ExtentHeader {
            magic: [b[0], b[1], b[2], b[3]],
            reserved1: be_u16(b, offset::RESERVED1),
            block_count: be_u16(b, offset::BLOCK_COUNT),
            uuid: array16(b, offset::UUID),
            md5sum: array16(b, offset::MD5SUM),
            blockinfo,
        }
    }

    /// Decodes and checks in the C reader's order: MD5, uuid, magic + reserved1. `at` is the
    /// archive offset of the extent, for the error. Block accounting needs the device table
    /// and is done by the reader.
    pub fn parse_checked(
        b: &[u8; EXTENT_HEADER_SIZE],
        uuid: &[u8; 16],
        at: u64,
    ) -> Result<ExtentHeader, Error> {
        let h = Self::parse(b);
        let computed = md5_with_zeroed_field(b, offset::MD5SUM);
        if computed != h.md5sum {
            return Err(Error::ExtentChecksum {
                file: "-".into(),
                offset: at + offset::MD5SUM as u64,
                stored: h.md5sum,
                computed,
            });
        }
        if h.uuid != *uuid {
            return Err(Error::ExtentUuid {
                file: "-".into(),
                offset: at + offset::UUID as u64,
                expected: *uuid,
                found: h.uuid,
            });
        }
        if h.magic != EXTENT_MAGIC || h.reserved1 != 0 {
            return Err(Error::ExtentMagic {
                file: "-".into(),
                offset: at + offset::MAGIC as u64,
                found: h.magic,
                reserved: h.reserved1,
            });
        }
        Ok(h)
    }

    /// Serialises with magic `VMAE`, `reserved1` 0, and a freshly computed MD5
    /// (`self.magic`, `self.reserved1` and `self.md5sum` are ignored).
    pub fn to_bytes(&self) -> [u8; EXTENT_HEADER_SIZE] {
        let mut b = [0u8; EXTENT_HEADER_SIZE];
        b[0..4].copy_from_slice(&EXTENT_MAGIC);
        b[6..8].copy_from_slice(&self.block_count.to_be_bytes());
        b[8..24].copy_from_slice(&self.uuid);
        for (i, bi) in self.blockinfo.iter().enumerate() {
            let at = offset::BLOCKINFO + 8 * i;
            b[at..at + 8].copy_from_slice(&bi.to_u64().to_be_bytes());
        }
        let md5 = md5_with_zeroed_field(&b, offset::MD5SUM);
        b[24..40].copy_from_slice(&md5);
        b
    }

    /// Sum of the mask popcounts of all slots (what `block_count` must equal).
    pub fn mask_blocks(&self) -> u64 {
        self.blockinfo
            .iter()
            .filter(|bi| bi.dev_id != 0)
            .map(|bi| u64::from(bi.blocks()))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blockinfo_bytes_follow_the_code_not_the_spec_intro() {
        let v = u64::from_be_bytes([0x80, 0x01, 0x00, 0x02, 0x00, 0x00, 0x01, 0x2c]);
        let bi = BlockInfo::from_u64(v);
        assert_eq!(
            bi,
            BlockInfo {
                mask: 0x8001,
                dev_id: 2,
                cluster: 300
            }
        );
        assert_eq!(bi.blocks(), 2);
        assert_eq!(bi.to_u64(), v);
        // the reserved byte is ignored on read
        let with_reserved = v | (0xab << 40);
        assert_eq!(BlockInfo::from_u64(with_reserved), bi);
    }

    fn hand_built(uuid: [u8; 16]) -> [u8; 512] {
        let mut b = [0u8; 512];
        b[0..4].copy_from_slice(b"VMAE");
        b[6..8].copy_from_slice(&3u16.to_be_bytes());
        b[8..24].copy_from_slice(&uuid);
        // slot 0: dev 1 cluster 5 blocks {0, 15}; slot 2: dev 1 cluster 7 block {3}
        b[40..48].copy_from_slice(&[0x80, 0x01, 0, 1, 0, 0, 0, 5]);
        b[56..64].copy_from_slice(&[0x00, 0x08, 0, 1, 0, 0, 0, 7]);
        let md5 = md5_with_zeroed_field(&b, 24);
        b[24..40].copy_from_slice(&md5);
        b
    }

    #[test]
    fn parse_hand_built_extent() {
        let uuid = [7u8; 16];
        let b = hand_built(uuid);
        let h = ExtentHeader::parse_checked(&b, &uuid, 12800).unwrap();
        assert_eq!(h.block_count, 3);
        assert_eq!(h.mask_blocks(), 3);
        assert_eq!(h.blockinfo[0].cluster, 5);
        assert_eq!(h.blockinfo[1], BlockInfo::default());
        assert_eq!(h.blockinfo[2].mask, 8);
        assert_eq!(h.to_bytes(), b);
    }

    fn fix_md5(b: &mut [u8; 512]) {
        let md5 = md5_with_zeroed_field(b, 24);
        b[24..40].copy_from_slice(&md5);
    }

    #[test]
    fn checks_in_c_order() {
        let uuid = [7u8; 16];
        let good = hand_built(uuid);

        let mut b = good;
        b[100] ^= 1;
        assert!(matches!(
            ExtentHeader::parse_checked(&b, &uuid, 1000),
            Err(Error::ExtentChecksum { offset: 1024, .. })
        ));

        // uuid is checked before magic
        let mut b = good;
        b[8] = 0;
        b[0] = b'X';
        fix_md5(&mut b);
        assert!(matches!(
            ExtentHeader::parse_checked(&b, &uuid, 1000),
            Err(Error::ExtentUuid { offset: 1008, .. })
        ));

        let mut b = good;
        b[3] = b'F';
        fix_md5(&mut b);
        assert!(matches!(
            ExtentHeader::parse_checked(&b, &uuid, 1000),
            Err(Error::ExtentMagic {
                offset: 1000,
                reserved: 0,
                ..
            })
        ));

        let mut b = good;
        b[5] = 1;
        fix_md5(&mut b);
        assert!(matches!(
            ExtentHeader::parse_checked(&b, &uuid, 1000),
            Err(Error::ExtentMagic { reserved: 1, .. })
        ));
    }
}
