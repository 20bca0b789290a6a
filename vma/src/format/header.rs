//! `VmaHeader`: the main header at the start of every archive.

use super::{
    BlobTable, DevInfo, HEADER_STRUCT_SIZE, MAX_CONFIGS, MAX_HEADER_SIZE, VMA_MAGIC, VMA_VERSION,
    array16, be_u32, be_u64, md5_with_zeroed_field,
};
use crate::Error;

/// Byte offsets of the main header fields.
pub mod offset {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 4;
    pub const UUID: usize = 8;
    pub const CTIME: usize = 24;
    pub const MD5SUM: usize = 32;
    pub const BLOB_BUFFER_OFFSET: usize = 48;
    pub const BLOB_BUFFER_SIZE: usize = 52;
    pub const HEADER_SIZE: usize = 56;
    pub const CONFIG_NAMES: usize = 2044;
    pub const CONFIG_DATA: usize = 3068;
    pub const DEV_INFO: usize = 4096;
}

/// The main header as stored (all integers big-endian except blob lengths).
///
/// | offset | size | field | rule |
/// | --- | --- | --- | --- |
/// | 0 | 4 | `magic` | `VMA\0` |
/// | 4 | 4 | `version` | must be 1 |
/// | 8 | 16 | `uuid` | repeated in every extent header |
/// | 24 | 8 | `ctime` | seconds since the epoch |
/// | 32 | 16 | `md5sum` | MD5 of `[0, header_size)` with this field zeroed |
/// | 48 | 4 | `blob_buffer_offset` | ≥ 12288 (writer: 12288) |
/// | 52 | 4 | `blob_buffer_size` | used length incl. pad byte; `offset + size <= header_size` |
/// | 56 | 4 | `header_size` | 12288 < size ≤ 524288 (writer: 12288 + table size, multiple of 512) |
/// | 60 | 1984 | reserved | zero, ignored |
/// | 2044 | 1024 | `config_names[256]` | blob pointers, 0 = unused |
/// | 3068 | 1024 | `config_data[256]` | blob pointers, 0 = unused |
/// | 4092 | 4 | reserved | zero, ignored |
/// | 4096 | 8192 | `dev_info[256]` | [`DevInfo`] indexed by dev_id; slot 0 unused |
/// | 12288 | … | blob buffer | see [`BlobTable`] |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmaHeader {
    pub version: u32,
    pub uuid: [u8; 16],
    pub ctime: i64,
    pub md5sum: [u8; 16],
    pub blob_buffer_offset: u32,
    pub blob_buffer_size: u32,
    pub header_size: u32,
    pub config_names: [u32; MAX_CONFIGS],
    pub config_data: [u32; MAX_CONFIGS],
    pub dev_info: [DevInfo; 256],
    pub blobs: BlobTable,
}

/// Checks the magic of the first bytes of a stream (C: "not a vma file - wrong magic number").
pub fn check_magic(first: &[u8]) -> Result<(), Error> {
    if first.len() >= 4 && first[..4] == VMA_MAGIC {
        return Ok(());
    }
    Err(Error::BadMagic {
        file: "-".into(),
        offset: offset::MAGIC as u64,
        found: first[..first.len().min(4)].to_vec(),
    })
}

/// Reads and range-checks `header_size` from the fixed part (`fixed` ≥ 60 bytes), so the
/// reader knows how much more to read without trusting an unbounded length.
pub fn parse_header_size(fixed: &[u8]) -> Result<u32, Error> {
    let size = be_u32(fixed, offset::HEADER_SIZE);
    if size as usize <= HEADER_STRUCT_SIZE || size as usize > MAX_HEADER_SIZE {
        return Err(Error::HeaderSize {
            file: "-".into(),
            offset: offset::HEADER_SIZE as u64,
            size,
            min: HEADER_STRUCT_SIZE as u32,
            max: MAX_HEADER_SIZE as u32,
        });
    }
    Ok(size)
}

impl VmaHeader {
    /// Parses and validates a complete header (`buf` = exactly the `header_size` bytes) in the
    /// C reader's order: magic, header size, MD5, version, blob buffer bounds, blob walk.
    /// Config and device pointers are resolved later by [`crate::Header::from_vma_header`].
    pub fn parse(buf: &[u8]) -> Result<VmaHeader, Error> {
        check_magic(buf)?;
        if buf.len() < HEADER_STRUCT_SIZE {
            return Err(Error::ShortHeader {
                file: "-".into(),
                offset: 0,
                got: buf.len() as u64,
                expected: HEADER_STRUCT_SIZE as u64,
            });
        }
        let header_size = parse_header_size(buf)?;
        if buf.len() != header_size as usize {
            return Err(Error::ShortHeader {
                file: "-".into(),
                offset: 0,
                got: buf.len() as u64,
                expected: u64::from(header_size),
            });
        }
        let md5sum = array16(buf, offset::MD5SUM);
        let computed = md5_with_zeroed_field(buf, offset::MD5SUM);
        if computed != md5sum {
            return Err(Error::HeaderChecksum {
                file: "-".into(),
                offset: offset::MD5SUM as u64,
                stored: md5sum,
                computed,
            });
        }
        let version = be_u32(buf, offset::VERSION);
        if version != VMA_VERSION {
            return Err(Error::Version {
                file: "-".into(),
                offset: offset::VERSION as u64,
                version,
            });
        }
        let blob_buffer_offset = be_u32(buf, offset::BLOB_BUFFER_OFFSET);
        if (blob_buffer_offset as usize) < HEADER_STRUCT_SIZE {
            return Err(Error::BlobTable {
                file: "-".into(),
                offset: offset::BLOB_BUFFER_OFFSET as u64,
                what: format!(
                    "wrong vma blob buffer offset {blob_buffer_offset} (expected at least {HEADER_STRUCT_SIZE})"
                ),
            });
        }
        let blob_buffer_size = be_u32(buf, offset::BLOB_BUFFER_SIZE);
        let blob_end = u64::from(blob_buffer_offset) + u64::from(blob_buffer_size);
        if blob_end > u64::from(header_size) {
            return Err(Error::BlobTable {
                file: "-".into(),
                offset: offset::BLOB_BUFFER_SIZE as u64,
                what: format!(
                    "wrong vma blob buffer size {blob_buffer_size}/{header_size} (offset {blob_buffer_offset} + size must not pass header_size)"
                ),
            });
        }
        let blobs = BlobTable::parse(&buf[blob_buffer_offset as usize..blob_end as usize]);

        let mut config_names = [0u32; MAX_CONFIGS];
        let mut config_data = [0u32; MAX_CONFIGS];
        for i in 0..MAX_CONFIGS {
            config_names[i] = be_u32(buf, offset::CONFIG_NAMES + 4 * i);
            config_data[i] = be_u32(buf, offset::CONFIG_DATA + 4 * i);
        }
        let mut dev_info = [DevInfo::default(); 256];
        for (i, d) in dev_info.iter_mut().enumerate() {
            *d = DevInfo::parse(&buf[offset::DEV_INFO + DevInfo::SIZE * i..]);
        }
        Ok(VmaHeader {
            version,
            uuid: array16(buf, offset::UUID),
            ctime: be_u64(buf, offset::CTIME) as i64,
            md5sum,
            blob_buffer_offset,
            blob_buffer_size,
            header_size,
            config_names,
            config_data,
            dev_info,
            blobs,
        })
    }

    /// Serialises the header (`header_size` bytes) and fills in its MD5; `self.md5sum` is
    /// ignored. The blob buffer bytes go to `blob_buffer_offset`; everything else is zero.
    /// Returns `None` if the fields are inconsistent (blob buffer outside `header_size`, or
    /// `header_size` below the fixed part).
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        let size = self.header_size as usize;
        let boff = self.blob_buffer_offset as usize;
        let blob = self.blobs.as_bytes();
        if size < HEADER_STRUCT_SIZE || boff < HEADER_STRUCT_SIZE || boff + blob.len() > size {
            return None;
        }
        let mut b = vec![0u8; size];
        b[offset::MAGIC..4].copy_from_slice(&VMA_MAGIC);
        b[offset::VERSION..8].copy_from_slice(&self.version.to_be_bytes());
        b[offset::UUID..24].copy_from_slice(&self.uuid);
        b[offset::CTIME..32].copy_from_slice(&self.ctime.to_be_bytes());
        b[offset::BLOB_BUFFER_OFFSET..52].copy_from_slice(&self.blob_buffer_offset.to_be_bytes());
        b[offset::BLOB_BUFFER_SIZE..56].copy_from_slice(&self.blob_buffer_size.to_be_bytes());
        b[offset::HEADER_SIZE..60].copy_from_slice(&self.header_size.to_be_bytes());
        for i in 0..MAX_CONFIGS {
            let n = offset::CONFIG_NAMES + 4 * i;
            b[n..n + 4].copy_from_slice(&self.config_names[i].to_be_bytes());
            let d = offset::CONFIG_DATA + 4 * i;
            b[d..d + 4].copy_from_slice(&self.config_data[i].to_be_bytes());
        }
        for (i, d) in self.dev_info.iter().enumerate() {
            d.write_to(&mut b[offset::DEV_INFO + DevInfo::SIZE * i..]);
        }
        b[boff..boff + blob.len()].copy_from_slice(blob);
        let md5 = md5_with_zeroed_field(&b, offset::MD5SUM);
        b[offset::MD5SUM..offset::MD5SUM + 16].copy_from_slice(&md5);
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::BlobTableBuilder;

    /// A hand-built header: one config, one device, like SAMPLE's geometry.
    fn hand_built() -> Vec<u8> {
        let mut b = vec![0u8; 12800];
        b[0..4].copy_from_slice(b"VMA\0");
        b[4..8].copy_from_slice(&1u32.to_be_bytes());
        b[8..24].copy_from_slice(&[0x11; 16]);
        b[24..32].copy_from_slice(&1_635_680_622u64.to_be_bytes());
        b[48..52].copy_from_slice(&12288u32.to_be_bytes());
        b[52..56].copy_from_slice(&453u32.to_be_bytes());
        b[56..60].copy_from_slice(&12800u32.to_be_bytes());
        b[2044..2048].copy_from_slice(&1u32.to_be_bytes());
        b[3068..3072].copy_from_slice(&20u32.to_be_bytes());
        b[4096 + 32..4096 + 36].copy_from_slice(&439u32.to_be_bytes());
        b[4096 + 40..4096 + 48].copy_from_slice(&10_737_418_240u64.to_be_bytes());
        let blob = 12288;
        b[blob + 1..blob + 3].copy_from_slice(&[17, 0]);
        b[blob + 3..blob + 20].copy_from_slice(b"qemu-server.conf\0");
        b[blob + 20..blob + 22].copy_from_slice(&417u16.to_le_bytes());
        b[blob + 22..blob + 439].fill(b'c');
        b[blob + 439..blob + 441].copy_from_slice(&[12, 0]);
        b[blob + 441..blob + 453].copy_from_slice(b"drive-scsi0\0");
        let md5 = md5_with_zeroed_field(&b, 32);
        b[32..48].copy_from_slice(&md5);
        b
    }

    #[test]
    fn parses_hand_built_header() {
        let b = hand_built();
        let h = VmaHeader::parse(&b).unwrap();
        assert_eq!(h.version, 1);
        assert_eq!(h.uuid, [0x11; 16]);
        assert_eq!(h.ctime, 1_635_680_622);
        assert_eq!(
            (h.blob_buffer_offset, h.blob_buffer_size, h.header_size),
            (12288, 453, 12800)
        );
        assert_eq!((h.config_names[0], h.config_data[0]), (1, 20));
        assert_eq!(h.config_names[1], 0);
        assert_eq!(h.dev_info[1].devname_ptr, 439);
        assert_eq!(h.dev_info[1].size, 10_737_418_240);
        assert_eq!(h.blobs.offsets(), &[1, 20, 439]);
        assert_eq!(h.blobs.get_str(439), Ok("drive-scsi0"));
        // serialising gives the same bytes back
        assert_eq!(h.to_bytes().unwrap(), b);
    }

    #[test]
    fn serialise_from_builder_round_trips() {
        let mut t = BlobTableBuilder::new();
        let n = t.add_str("a.conf").unwrap();
        let d = t.add_blob(b"data").unwrap();
        let mut h = VmaHeader::parse(&hand_built()).unwrap();
        h.blobs = BlobTable::parse(&t.as_bytes()[..t.used()]);
        h.blob_buffer_size = t.used() as u32;
        h.header_size = (HEADER_STRUCT_SIZE + t.size()) as u32;
        h.config_names[0] = n;
        h.config_data[0] = d;
        h.dev_info[1] = DevInfo::default();
        let b = h.to_bytes().unwrap();
        let back = VmaHeader::parse(&b).unwrap();
        assert_eq!(back.blobs.get(d), Some(&b"data"[..]));
        assert_eq!(back.header_size, 12800);
        assert_eq!(back.md5sum, array16(&b, 32));
    }

    fn fix_md5(b: &mut [u8]) {
        let md5 = md5_with_zeroed_field(b, 32);
        b[32..48].copy_from_slice(&md5);
    }

    #[test]
    fn rejects_in_c_order() {
        let good = hand_built();

        let mut b = good.clone();
        b[3] = 1;
        assert!(matches!(
            VmaHeader::parse(&b),
            Err(Error::BadMagic { offset: 0, .. })
        ));

        let mut b = good.clone();
        b[56..60].copy_from_slice(&12288u32.to_be_bytes());
        assert!(matches!(
            VmaHeader::parse(&b),
            Err(Error::HeaderSize {
                offset: 56,
                size: 12288,
                ..
            })
        ));

        let mut b = good.clone();
        b[100] ^= 1;
        assert!(matches!(
            VmaHeader::parse(&b),
            Err(Error::HeaderChecksum { offset: 32, .. })
        ));

        // version is checked only after the checksum
        let mut b = good.clone();
        b[7] = 2;
        assert!(matches!(
            VmaHeader::parse(&b),
            Err(Error::HeaderChecksum { .. })
        ));
        fix_md5(&mut b);
        assert!(matches!(
            VmaHeader::parse(&b),
            Err(Error::Version {
                offset: 4,
                version: 2,
                ..
            })
        ));

        let mut b = good.clone();
        b[48..52].copy_from_slice(&12287u32.to_be_bytes());
        fix_md5(&mut b);
        assert!(matches!(
            VmaHeader::parse(&b),
            Err(Error::BlobTable { offset: 48, .. })
        ));

        let mut b = good.clone();
        b[52..56].copy_from_slice(&513u32.to_be_bytes());
        fix_md5(&mut b);
        assert!(matches!(
            VmaHeader::parse(&b),
            Err(Error::BlobTable { offset: 52, .. })
        ));

        // blob size 512 is still fine (ends exactly at header_size)
        let mut b = good.clone();
        b[52..56].copy_from_slice(&512u32.to_be_bytes());
        fix_md5(&mut b);
        assert!(VmaHeader::parse(&b).is_ok());

        assert!(matches!(
            VmaHeader::parse(&good[..12799]),
            Err(Error::ShortHeader {
                got: 12799,
                expected: 12800,
                ..
            })
        ));
        assert!(matches!(
            VmaHeader::parse(&good[..100]),
            Err(Error::ShortHeader { got: 100, .. })
        ));
        assert!(matches!(
            VmaHeader::parse(&good[..2]),
            Err(Error::BadMagic { .. })
        ));
    }

    #[test]
    fn header_size_limits() {
        let mut f = vec![0u8; 60];
        for (size, ok) in [
            (0u32, false),
            (12288, false),
            (12289, true),
            (524_288, true),
            (524_289, false),
            (u32::MAX, false),
        ] {
            f[56..60].copy_from_slice(&size.to_be_bytes());
            assert_eq!(parse_header_size(&f).is_ok(), ok, "{size}");
        }
    }
}
