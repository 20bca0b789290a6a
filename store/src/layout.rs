//! What is inside a per-VM volume: file names and the manifest `vzsnap.json`.
//!
//! Shared by ingest (writes it) and restore (reads it), so both agree on the layout without
//! depending on each other. See docs/architecture.md "Inside a per-VM volume".

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic::write_file_atomic;

/// The manifest file inside a volume.
pub const MANIFEST_FILE: &str = "vzsnap.json";
/// The backup's vzdump log (fixed name so snapshots do not churn on renames).
pub const LOG_FILE: &str = "vzdump.log";
/// The backup's notes (PVE `<archive>.notes`).
pub const NOTES_FILE: &str = "vzdump.notes";
/// The manifest format this crate writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;
/// Hold tag for snapshots whose backup was marked protected in PVE.
pub const PROTECTED_HOLD_TAG: &str = "vzsnap-protected";

/// Snapshot metadata keys (stored as `vzsnap:<key>` on ZFS).
pub mod meta_keys {
    /// The archive's file name, e.g. `vzdump-qemu-100-2026_11_01-02_00_03.vma.zst`.
    pub const SOURCE: &str = "source";
    /// The archive's size in bytes as found in the dump directory.
    pub const ARCHIVE_SIZE: &str = "archive-size";
    /// The VMA uuid (hyphenated lowercase hex).
    pub const UUID: &str = "uuid";
    /// The VMA header ctime (epoch seconds).
    pub const CTIME: &str = "ctime";
    /// The backup time from the file name, as epoch seconds.
    pub const BACKUP_TIME: &str = "backup-time";
    /// Bytes the ingest actually wrote into the volume for this backup.
    pub const BYTES_WRITTEN: &str = "bytes-written";
    /// `1` when PVE's `.protected` marker existed (the snapshot is then held with
    /// [`super::PROTECTED_HOLD_TAG`]).
    pub const PROTECTED: &str = "protected";
}

const RESERVED: [&str; 3] = [MANIFEST_FILE, LOG_FILE, NOTES_FILE];

/// A layout rule was broken or the manifest could not be read/written.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid vzsnap manifest: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what}: {detail}")]
    Invalid { what: String, detail: String },
}

fn invalid(what: impl Into<String>, detail: impl Into<String>) -> LayoutError {
    LayoutError::Invalid {
        what: what.into(),
        detail: detail.into(),
    }
}

/// Whether `s` is safe as one file name inside a volume: non-empty, ≤ 200 bytes, printable
/// ASCII without `/`, not starting with `.` (so never `.`/`..` or a hidden file).
fn check_file_component(what: &str, s: &str) -> Result<(), LayoutError> {
    if s.is_empty() || s.len() > 200 {
        return Err(invalid(format!("{what} {s:?}"), "must be 1..=200 bytes"));
    }
    if s.starts_with('.') {
        return Err(invalid(format!("{what} {s:?}"), "must not start with `.`"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'\\')
    {
        return Err(invalid(
            format!("{what} {s:?}"),
            "must be printable ASCII without `/`, `\\` or spaces",
        ));
    }
    Ok(())
}

/// `disk-<devname>.raw` for a VMA device name such as `drive-scsi0`.
pub fn disk_file_name(devname: &str) -> Result<String, LayoutError> {
    check_file_component("device name", devname)?;
    Ok(format!("disk-{devname}.raw"))
}

/// The device name of a `disk-<devname>.raw` file name.
pub fn parse_disk_file_name(file: &str) -> Option<&str> {
    let dev = file.strip_prefix("disk-")?.strip_suffix(".raw")?;
    check_file_component("device name", dev).ok()?;
    Some(dev)
}

/// Checks a config blob's name (e.g. `qemu-server.conf`) may be stored under that name: a
/// plain file name that collides with nothing the layout reserves.
pub fn check_config_file_name(name: &str) -> Result<(), LayoutError> {
    check_file_component("config name", name)?;
    if RESERVED.contains(&name) || parse_disk_file_name(name).is_some() {
        return Err(invalid(
            format!("config name {name:?}"),
            "collides with a file vzsnap reserves",
        ));
    }
    Ok(())
}

/// The archive file as found in the dump directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    /// File name, e.g. `vzdump-qemu-100-2026_11_01-02_00_03.vma.zst`.
    pub name: String,
    /// Size in bytes (compressed, as on disk).
    pub size: u64,
    /// `none`, `zstd`, `gzip` or `lzo` (detected by content).
    pub compression: String,
}

/// Identity of the VMA stream inside the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmaIdentity {
    /// Hyphenated lowercase hex ([`format_uuid`]).
    pub uuid: String,
    /// Header ctime, epoch seconds.
    pub ctime: i64,
}

/// One disk image in the volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestDevice {
    pub dev_id: u8,
    /// VMA device name, e.g. `drive-scsi0`.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// File name inside the volume, always [`disk_file_name`]`(name)`.
    pub file: String,
}

/// `vzsnap.json`: what the volume holds, enough to rebuild the VMA header on restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    pub vmid: u32,
    /// The backup time from the archive's name, epoch seconds.
    pub backup_time: i64,
    pub source: SourceFile,
    pub vma: VmaIdentity,
    /// In dev_id order (excluding nothing: a `vmstate` device is listed too).
    pub devices: Vec<ManifestDevice>,
    /// Config blob names in header slot order; each is a file in the volume.
    pub configs: Vec<String>,
}

/// Formats 16 uuid bytes as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn format_uuid(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Parses what [`format_uuid`] writes.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let bytes = s.as_bytes();
    if bytes.len() != 36 || [8, 13, 18, 23].iter().any(|&i| bytes[i] != b'-') {
        return None;
    }
    let hex: Vec<u8> = bytes.iter().copied().filter(|&c| c != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        if !s
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        {
            return None;
        }
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

impl Manifest {
    /// Checks every rule the layout relies on (names, order, uniqueness).
    pub fn validate(&self) -> Result<(), LayoutError> {
        if self.format != MANIFEST_FORMAT {
            return Err(invalid(
                "manifest",
                format!("format {} is not {MANIFEST_FORMAT}", self.format),
            ));
        }
        if !["none", "zstd", "gzip", "lzo"].contains(&self.source.compression.as_str()) {
            return Err(invalid(
                "manifest",
                format!("unknown compression {:?}", self.source.compression),
            ));
        }
        if parse_uuid(&self.vma.uuid).is_none() {
            return Err(invalid("manifest", format!("bad uuid {:?}", self.vma.uuid)));
        }
        let mut last: Option<u8> = None;
        for d in &self.devices {
            if d.dev_id == 0 || last.is_some_and(|l| d.dev_id <= l) {
                return Err(invalid(
                    "manifest",
                    format!("device ids must be 1..255, ascending (at {})", d.dev_id),
                ));
            }
            last = Some(d.dev_id);
            if d.file != disk_file_name(&d.name)? {
                return Err(invalid(
                    "manifest",
                    format!("device {} has file {:?}", d.name, d.file),
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.configs {
            check_config_file_name(c)?;
            if !seen.insert(c) {
                return Err(invalid("manifest", format!("config {c:?} listed twice")));
            }
        }
        Ok(())
    }

    /// Pure: parses and validates manifest bytes (`path` only names the source in errors).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Manifest, LayoutError> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|source| LayoutError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        m.validate()?;
        Ok(m)
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Reads `<dir>/vzsnap.json`.
    pub fn read_from(dir: &Path) -> Result<Manifest, LayoutError> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = std::fs::read(&path).map_err(|source| LayoutError::Io {
            path: path.clone(),
            source,
        })?;
        Manifest::parse(&bytes, &path)
    }

    /// Validates, then writes `<dir>/vzsnap.json` atomically (temp + fsync + rename).
    pub fn write_to(&self, dir: &Path) -> Result<(), LayoutError> {
        self.validate()?;
        let path = dir.join(MANIFEST_FILE);
        write_file_atomic(&path, &self.to_json()).map_err(|source| LayoutError::Io { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            vmid: 100,
            backup_time: 1_793_498_403,
            source: SourceFile {
                name: "vzdump-qemu-100-2026_11_01-02_00_03.vma.zst".into(),
                size: 12345,
                compression: "zstd".into(),
            },
            vma: VmaIdentity {
                uuid: format_uuid(&[0xab; 16]),
                ctime: 1_793_498_403,
            },
            devices: vec![ManifestDevice {
                dev_id: 1,
                name: "drive-scsi0".into(),
                size: 4 << 20,
                file: "disk-drive-scsi0.raw".into(),
            }],
            configs: vec!["qemu-server.conf".into(), "qemu-server.fw".into()],
        }
    }

    #[test]
    fn round_trip_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let m = sample();
        m.write_to(dir.path()).unwrap();
        assert_eq!(Manifest::read_from(dir.path()).unwrap(), m);
    }

    #[test]
    fn rejects_broken_manifests() {
        let mut m = sample();
        m.devices[0].file = "../etc/passwd".into();
        assert!(m.validate().is_err());
        let mut m = sample();
        m.configs.push("vzsnap.json".into());
        assert!(m.validate().is_err());
        let mut m = sample();
        m.configs.push("../x".into());
        assert!(m.validate().is_err());
        let mut m = sample();
        m.devices.push(m.devices[0].clone());
        assert!(m.validate().is_err());
        let mut m = sample();
        m.format = 2;
        assert!(m.validate().is_err());
        let text = String::from_utf8(sample().to_json())
            .unwrap()
            .replace("\"vmid\"", "\"extra\": 1, \"vmid\"");
        assert!(Manifest::parse(text.as_bytes(), Path::new("x")).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(
            disk_file_name("drive-scsi0").unwrap(),
            "disk-drive-scsi0.raw"
        );
        assert_eq!(
            parse_disk_file_name("disk-drive-virtio1.raw"),
            Some("drive-virtio1")
        );
        assert_eq!(parse_disk_file_name("disk-.raw"), None);
        assert!(disk_file_name("a/b").is_err());
        assert!(disk_file_name("..").is_err());
        assert!(check_config_file_name("qemu-server.conf").is_ok());
        assert!(check_config_file_name("disk-x.raw").is_err());
        assert!(check_config_file_name("vzdump.log").is_err());
    }

    #[test]
    fn uuids() {
        let b: [u8; 16] = core::array::from_fn(|i| i as u8 * 17);
        let s = format_uuid(&b);
        assert_eq!(s, "00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(parse_uuid(&s), Some(b));
        assert_eq!(parse_uuid("00112233-4455-6677-8899-aabbccddeefX"), None);
        assert_eq!(parse_uuid("00112233445566778899aabbccddeeff"), None);
    }
}
