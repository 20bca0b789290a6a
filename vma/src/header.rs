//! [`Header`]: the validated, owned view of an archive's main header that the rest of vzsnap
//! works with (configs by name, devices by dev_id), apart from the on-disk [`VmaHeader`].

use crate::Error;
use crate::format::header::offset;
use crate::format::{CLUSTER_SIZE, DevInfo, MAX_CONFIGS, VMSTATE_NAME, VmaHeader};

/// A config file stored in the archive (e.g. `qemu-server.conf`, `qemu-server.fw`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub name: String,
    pub data: Vec<u8>,
}

/// A device (disk image, or the legacy `vmstate` RAM stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: u8,
    pub name: String,
    /// Bytes; not necessarily a multiple of 512 or 64 KiB.
    pub size: u64,
}

impl Device {
    /// The legacy RAM-state stream: sequential clusters, no end, not a disk.
    pub fn is_vmstate(&self) -> bool {
        self.name == VMSTATE_NAME
    }

    /// Clusters covering the device: `ceil(size / 64 KiB)`.
    pub fn clusters(&self) -> u64 {
        self.size.div_ceil(CLUSTER_SIZE as u64)
    }
}

/// The validated main header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub uuid: [u8; 16],
    /// Seconds since the epoch.
    pub ctime: i64,
    /// In config slot order.
    pub configs: Vec<Config>,
    /// Ascending dev_id; includes a `vmstate` device if there is one.
    pub devices: Vec<Device>,
}

impl Header {
    /// Parses and validates a complete header (exactly `header_size` bytes) — the pure part of
    /// [`crate::VmaReader::new`].
    pub fn parse(buf: &[u8]) -> Result<Header, Error> {
        Self::from_vma_header(&VmaHeader::parse(buf)?)
    }

    /// Resolves the config and device tables like `vma_reader_read_head`:
    /// - a config slot is used when both its name and data pointers are non-zero; then the name
    ///   must be a NUL-terminated string blob and the data a blob, else "invalid data pointers";
    /// - a device slot (dev_id 1..=255) is used when its size is non-zero; then its name must
    ///   resolve. C silently skips a sized slot whose name does not resolve; we reject it,
    ///   since dropping a disk from a backup unnoticed is worse than refusing a file no PVE
    ///   writer can produce. A slot with a name but size 0 is skipped as in C.
    pub fn from_vma_header(h: &VmaHeader) -> Result<Header, Error> {
        let bad = |at: usize, what: String, pointer: u32, reason: &'static str| {
            Error::InvalidBlobPointer {
                file: "-".into(),
                offset: at as u64,
                what,
                pointer,
                reason,
            }
        };
        let mut configs = Vec::new();
        for i in 0..MAX_CONFIGS {
            let (np, dp) = (h.config_names[i], h.config_data[i]);
            if np == 0 || dp == 0 {
                continue;
            }
            let name = h.blobs.get_str(np).map_err(|r| {
                bad(
                    offset::CONFIG_NAMES + 4 * i,
                    format!("config name {i}"),
                    np,
                    r,
                )
            })?;
            let data = h.blobs.get(dp).ok_or_else(|| {
                bad(
                    offset::CONFIG_DATA + 4 * i,
                    format!("config data {i}"),
                    dp,
                    crate::format::blob::reason::NO_BLOB,
                )
            })?;
            configs.push(Config {
                name: name.to_owned(),
                data: data.to_vec(),
            });
        }
        let mut devices = Vec::new();
        for (id, d) in h.dev_info.iter().enumerate().skip(1) {
            let DevInfo { devname_ptr, size } = *d;
            if size == 0 {
                continue;
            }
            let name = h.blobs.get_str(devname_ptr).map_err(|r| {
                bad(
                    offset::DEV_INFO + DevInfo::SIZE * id,
                    format!("device {id} name"),
                    devname_ptr,
                    r,
                )
            })?;
            devices.push(Device {
                id: id as u8,
                name: name.to_owned(),
                size,
            });
        }
        Ok(Header {
            uuid: h.uuid,
            ctime: h.ctime,
            configs,
            devices,
        })
    }

    /// The device with this dev_id.
    pub fn device(&self, id: u8) -> Option<&Device> {
        self.devices
            .binary_search_by_key(&id, |d| d.id)
            .ok()
            .map(|i| &self.devices[i])
    }

    /// The first config with this name.
    pub fn config(&self, name: &str) -> Option<&Config> {
        self.configs.iter().find(|c| c.name == name)
    }

    /// The uuid in its usual text form, e.g. `04fc12eb-0fed-4322-9aaa-f4e412f68096`.
    pub fn uuid_string(&self) -> String {
        uuid::Uuid::from_bytes(self.uuid).hyphenated().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{BlobTable, BlobTableBuilder};

    fn base(t: &BlobTableBuilder) -> VmaHeader {
        VmaHeader {
            version: 1,
            uuid: [1; 16],
            ctime: 5,
            md5sum: [0; 16],
            blob_buffer_offset: 12288,
            blob_buffer_size: t.used() as u32,
            header_size: 12288 + t.size() as u32,
            config_names: [0; 256],
            config_data: [0; 256],
            dev_info: [DevInfo::default(); 256],
            blobs: BlobTable::parse(&t.as_bytes()[..t.used()]),
        }
    }

    #[test]
    fn resolves_configs_and_devices() {
        let mut t = BlobTableBuilder::new();
        let n0 = t.add_str("qemu-server.conf").unwrap();
        let d0 = t.add_blob(b"memory: 512\n").unwrap();
        let n1 = t.add_str("qemu-server.fw").unwrap();
        let d1 = t.add_blob(b"").unwrap();
        let dev = t.add_str("drive-scsi0").unwrap();
        let vms = t.add_str("vmstate").unwrap();
        let mut h = base(&t);
        h.config_names[0] = n0;
        h.config_data[0] = d0;
        h.config_names[3] = n1;
        h.config_data[3] = d1;
        h.config_names[4] = n1; // data pointer 0: skipped like C
        h.dev_info[2] = DevInfo {
            devname_ptr: dev,
            size: 65537,
        };
        h.dev_info[255] = DevInfo {
            devname_ptr: vms,
            size: 1 << 30,
        };
        h.dev_info[7] = DevInfo {
            devname_ptr: dev,
            size: 0,
        }; // size 0: skipped like C
        let hd = Header::from_vma_header(&h).unwrap();
        assert_eq!(hd.configs.len(), 2);
        assert_eq!(
            hd.config("qemu-server.conf").unwrap().data,
            b"memory: 512\n"
        );
        assert_eq!(hd.configs[1].name, "qemu-server.fw");
        assert!(hd.configs[1].data.is_empty());
        assert_eq!(hd.devices.len(), 2);
        let d = hd.device(2).unwrap();
        assert_eq!(
            (d.name.as_str(), d.size, d.clusters()),
            ("drive-scsi0", 65537, 2)
        );
        assert!(!d.is_vmstate());
        assert!(hd.device(255).unwrap().is_vmstate());
        assert!(hd.device(7).is_none());
        assert_eq!(hd.uuid_string(), "01010101-0101-0101-0101-010101010101");
    }

    #[test]
    fn rejects_bad_pointers_with_field_offset() {
        let mut t = BlobTableBuilder::new();
        let n = t.add_str("a").unwrap();
        let raw = t.add_blob(b"no-nul").unwrap();
        let mut h = base(&t);
        h.config_names[2] = raw;
        h.config_data[2] = n;
        match Header::from_vma_header(&h) {
            Err(Error::InvalidBlobPointer {
                offset,
                pointer,
                reason,
                ..
            }) => {
                assert_eq!(offset, 2044 + 8);
                assert_eq!(pointer, raw);
                assert_eq!(reason, crate::format::blob::reason::NOT_NUL_TERMINATED);
            }
            other => panic!("{other:?}"),
        }
        let mut h = base(&t);
        h.config_names[0] = n;
        h.config_data[0] = 9999;
        assert!(matches!(
            Header::from_vma_header(&h),
            Err(Error::InvalidBlobPointer {
                offset: 3068,
                pointer: 9999,
                ..
            })
        ));
        let mut h = base(&t);
        h.dev_info[3] = DevInfo {
            devname_ptr: 0,
            size: 10,
        };
        assert!(matches!(
            Header::from_vma_header(&h),
            Err(Error::InvalidBlobPointer { offset: 4192, .. })
        ));
    }
}
