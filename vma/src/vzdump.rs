//! vzdump conventions: guest ids, backup times and the file names around a backup archive.
//!
//! Why here: ingest recognises backups in a dump directory and restore writes them back; both
//! must agree with Proxmox VE exactly, or PVE will not list a restored file (or we would ingest
//! a half-written one). The rules come from pve-manager `PVE/VZDump.pm` and pve-storage
//! `PVE/Storage.pm::archive_info` (vma-format.md §2.1):
//!
//! - archive: `vzdump-<qemu|lxc|openvz>-<VMID>-YYYY_MM_DD-HH_MM_SS.<ext>`, ext one of `vma`,
//!   `tar`, each optionally `.gz|.lzo|.zst|.bz2`, or the legacy `tgz`; the time is the backup
//!   start in the PVE host's **local** time;
//! - log `<base>.log`, notes `<archive>.notes`, protection marker `<archive>.protected`;
//! - while vzdump writes, the archive is `<archive minus its last extension>.dat` and the
//!   scratch directory `<base>.tmp`: neither is an archive.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use crate::compress::Compression;

/// Errors of the validated vzdump types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VzdumpError {
    /// Not a PVE guest id (`[1-9][0-9]{2,8}`, i.e. 100..=999999999).
    #[error("invalid VMID '{0}': PVE guest ids are 100..999999999 without leading zeros")]
    InvalidVmId(String),
    /// Not a real calendar date/time.
    #[error("invalid backup time {0}")]
    InvalidTime(String),
    /// Not representable in the requested time zone.
    #[error("backup time {time} cannot be converted: {reason}")]
    TimeZone {
        /// The time.
        time: String,
        /// Why.
        reason: String,
    },
}

/// A PVE guest id, validated as PVE's `pve-vmid` format: `[1-9][0-9]{2,8}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VmId(u32);

impl VmId {
    /// Smallest id PVE accepts.
    pub const MIN: u32 = 100;
    /// Largest id PVE accepts.
    pub const MAX: u32 = 999_999_999;

    /// Validates a numeric id.
    pub fn new(id: u32) -> Result<Self, VzdumpError> {
        if (Self::MIN..=Self::MAX).contains(&id) {
            Ok(Self(id))
        } else {
            Err(VzdumpError::InvalidVmId(id.to_string()))
        }
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl FromStr for VmId {
    type Err = VzdumpError;

    /// Parses the textual form exactly as PVE's regex: 3 to 9 ASCII digits, no leading zero.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let ok = (3..=9).contains(&b.len()) && b[0] != b'0' && b.iter().all(u8::is_ascii_digit);
        if !ok {
            return Err(VzdumpError::InvalidVmId(s.to_owned()));
        }
        s.parse::<u32>()
            .map(Self)
            .map_err(|_| VzdumpError::InvalidVmId(s.to_owned()))
    }
}

impl fmt::Display for VmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Guest type in the name: `qemu` (VMA archives), `lxc` and legacy `openvz` (tar archives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GuestKind {
    /// A QEMU VM; its archive is a VMA.
    Qemu,
    /// An LXC container; its archive is a tar.
    Lxc,
    /// A pre-PVE-4 OpenVZ container; its archive is a tar.
    Openvz,
}

impl GuestKind {
    /// The word in file names.
    pub fn as_str(self) -> &'static str {
        match self {
            GuestKind::Qemu => "qemu",
            GuestKind::Lxc => "lxc",
            GuestKind::Openvz => "openvz",
        }
    }

    fn from_word(s: &str) -> Option<Self> {
        match s {
            "qemu" => Some(GuestKind::Qemu),
            "lxc" => Some(GuestKind::Lxc),
            "openvz" => Some(GuestKind::Openvz),
            _ => None,
        }
    }
}

impl fmt::Display for GuestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The backup time as written in the file name: local wall-clock time of the PVE host,
/// validated as a real date and time. Ordering is chronological within one time zone (except
/// inside a DST fall-back hour, which the name cannot disambiguate either).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BackupTime(DateTime);

impl PartialOrd for BackupTime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BackupTime {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}

/// Parses exactly `n` ASCII digits.
fn digits(s: &str, n: usize) -> Option<i32> {
    if s.len() != n || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl BackupTime {
    /// Validates the fields (year 0..=9999, a real day of that month, 00:00:00..23:59:59).
    pub fn new(
        year: i32,
        month: i32,
        day: i32,
        hour: i32,
        minute: i32,
        second: i32,
    ) -> Result<Self, VzdumpError> {
        let show = || format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}");
        if !(0..=9999).contains(&year) {
            return Err(VzdumpError::InvalidTime(show()));
        }
        let narrow = |v: i32| i8::try_from(v).map_err(|_| VzdumpError::InvalidTime(show()));
        DateTime::new(
            year as i16,
            narrow(month)?,
            narrow(day)?,
            narrow(hour)?,
            narrow(minute)?,
            narrow(second)?,
            0,
        )
        .map(Self)
        .map_err(|_| VzdumpError::InvalidTime(show()))
    }

    /// Year.
    pub fn year(&self) -> i32 {
        i32::from(self.0.year())
    }
    /// Month 1..=12.
    pub fn month(&self) -> u32 {
        self.0.month() as u32
    }
    /// Day of month 1..=31.
    pub fn day(&self) -> u32 {
        self.0.day() as u32
    }
    /// Hour 0..=23.
    pub fn hour(&self) -> u32 {
        self.0.hour() as u32
    }
    /// Minute 0..=59.
    pub fn minute(&self) -> u32 {
        self.0.minute() as u32
    }
    /// Second 0..=59.
    pub fn second(&self) -> u32 {
        self.0.second() as u32
    }

    /// The civil date-time.
    pub fn to_civil(&self) -> DateTime {
        self.0
    }

    /// `YYYY_MM_DD-HH_MM_SS`, the form in vzdump names and our snapshot names.
    pub fn snapshot_name(&self) -> String {
        format!(
            "{:04}_{:02}_{:02}-{:02}_{:02}_{:02}",
            self.year(),
            self.month(),
            self.day(),
            self.hour(),
            self.minute(),
            self.second()
        )
    }

    /// Parses `YYYY_MM_DD-HH_MM_SS` (exact digit counts, a real date and time).
    pub fn parse_snapshot_name(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 19 || b[4] != b'_' || b[7] != b'_' || b[10] != b'-' || b[13] != b'_' {
            return None;
        }
        if b[16] != b'_' {
            return None;
        }
        let f = |r: std::ops::Range<usize>| digits(&s[r.clone()], r.len());
        Self::new(
            f(0..4)?,
            f(5..7)?,
            f(8..10)?,
            f(11..13)?,
            f(14..16)?,
            f(17..19)?,
        )
        .ok()
    }

    /// Seconds since the epoch, interpreting the name's wall-clock time in `tz` (PVE's
    /// `timelocal`). A time that occurs twice (DST fall-back) maps to the earlier instant, one
    /// that does not exist (spring-forward gap) to the later one: jiff's "compatible" rule.
    pub fn to_epoch(&self, tz: &TimeZone) -> Result<i64, VzdumpError> {
        tz.to_timestamp(self.0)
            .map(|t| t.as_second())
            .map_err(|e| VzdumpError::TimeZone {
                time: self.snapshot_name(),
                reason: e.to_string(),
            })
    }

    /// [`BackupTime::to_epoch`] in the system time zone (`TZ` or `/etc/localtime`), as PVE
    /// computes an archive's ctime.
    pub fn to_epoch_local(&self) -> Result<i64, VzdumpError> {
        self.to_epoch(&TimeZone::system())
    }

    /// The name time vzdump would write for a backup started at `epoch` in `tz`
    /// (`strftime("%Y_%m_%d-%H_%M_%S", localtime(epoch))`).
    pub fn from_epoch(epoch: i64, tz: &TimeZone) -> Result<Self, VzdumpError> {
        let ts = jiff::Timestamp::from_second(epoch).map_err(|e| VzdumpError::TimeZone {
            time: epoch.to_string(),
            reason: e.to_string(),
        })?;
        let dt = tz.to_datetime(ts);
        Self::new(
            i32::from(dt.year()),
            i32::from(dt.month()),
            i32::from(dt.day()),
            i32::from(dt.hour()),
            i32::from(dt.minute()),
            i32::from(dt.second()),
        )
    }
}

impl fmt::Display for BackupTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.snapshot_name())
    }
}

/// Archive container by name: `vma`, `tar`, or the legacy single extension `tgz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArchiveFormat {
    /// `.vma[.<comp>]`
    Vma,
    /// `.tar[.<comp>]`
    Tar,
    /// `.tgz` (tar + gzip, written by very old vzdump; PVE reports it as format tar, gz).
    Tgz,
}

/// Compression by file name. PVE knows `gz`, `lzo`, `zst` and (reading only) `bz2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArchiveCompression {
    /// `.gz`
    Gzip,
    /// `.lzo`
    Lzo,
    /// `.zst`
    Zstd,
    /// `.bz2`: a valid name, but no vzdump writes it and [`crate::compress`] cannot read it.
    Bzip2,
}

impl ArchiveCompression {
    /// The extension without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ArchiveCompression::Gzip => "gz",
            ArchiveCompression::Lzo => "lzo",
            ArchiveCompression::Zstd => "zst",
            ArchiveCompression::Bzip2 => "bz2",
        }
    }

    /// The matching readable [`Compression`], if we can read it.
    pub fn readable(self) -> Option<Compression> {
        match self {
            ArchiveCompression::Gzip => Some(Compression::Gzip),
            ArchiveCompression::Lzo => Some(Compression::Lzo),
            ArchiveCompression::Zstd => Some(Compression::Zstd),
            ArchiveCompression::Bzip2 => None,
        }
    }

    fn from_extension(s: &str) -> Option<Self> {
        match s {
            "gz" => Some(ArchiveCompression::Gzip),
            "lzo" => Some(ArchiveCompression::Lzo),
            "zst" => Some(ArchiveCompression::Zstd),
            "bz2" => Some(ArchiveCompression::Bzip2),
            _ => None,
        }
    }
}

/// A standard vzdump archive name, parsed. Field-wise equal names are the same file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BackupName {
    /// Guest type.
    pub kind: GuestKind,
    /// Guest id.
    pub vmid: VmId,
    /// Backup start, local time.
    pub time: BackupTime,
    /// Container format.
    pub format: ArchiveFormat,
    /// Compression by extension (`None` = uncompressed; `Some(Gzip)` for `.tgz`).
    pub compression: Option<ArchiveCompression>,
}

impl BackupName {
    /// The name vzdump gives a new backup: qemu → `.vma`, lxc/openvz → `.tar`, plus the
    /// compression's extension.
    pub fn new(kind: GuestKind, vmid: VmId, time: BackupTime, compression: Compression) -> Self {
        let format = match kind {
            GuestKind::Qemu => ArchiveFormat::Vma,
            GuestKind::Lxc | GuestKind::Openvz => ArchiveFormat::Tar,
        };
        let compression = match compression {
            Compression::None => None,
            Compression::Zstd => Some(ArchiveCompression::Zstd),
            Compression::Gzip => Some(ArchiveCompression::Gzip),
            Compression::Lzo => Some(ArchiveCompression::Lzo),
        };
        Self {
            kind,
            vmid,
            time,
            format,
            compression,
        }
    }

    /// Parses a file name exactly as PVE's standard-name regex
    /// `^vzdump-(qemu|lxc|openvz)-([1-9][0-9]{2,8})-(\d{4})_(\d{2})_(\d{2})-(\d{2})_(\d{2})_(\d{2})\.(tgz|(?:tar|vma)(?:\.(gz|lzo|zst|bz2))?)$`
    /// plus a real-date check. Like `archive_info`, a directory part (up to the last `/`) is
    /// ignored. Returns `None` for anything else, including vzdump's in-progress `.dat` file,
    /// its `.tmp` directory, logs and notes, and non-standard `vzdump-*` names.
    pub fn parse(file_name: &str) -> Option<Self> {
        let name = file_name.rsplit('/').next().unwrap_or(file_name);
        let rest = name.strip_prefix("vzdump-")?;
        let (kind, rest) = rest.split_once('-')?;
        let kind = GuestKind::from_word(kind)?;
        let (vmid, rest) = rest.split_once('-')?;
        let vmid = vmid.parse::<VmId>().ok()?;
        // "YYYY_MM_DD-HH_MM_SS" is 19 bytes, then ".<ext>".
        let time = BackupTime::parse_snapshot_name(rest.get(..19)?)?;
        let ext = rest.get(19..)?.strip_prefix('.')?;
        let (format, compression) = match ext {
            "tgz" => (ArchiveFormat::Tgz, Some(ArchiveCompression::Gzip)),
            _ => {
                let (fmt, comp) = match ext.split_once('.') {
                    Some((f, c)) => (f, Some(ArchiveCompression::from_extension(c)?)),
                    None => (ext, None),
                };
                let format = match fmt {
                    "vma" => ArchiveFormat::Vma,
                    "tar" => ArchiveFormat::Tar,
                    _ => return None,
                };
                (format, comp)
            }
        };
        Some(Self {
            kind,
            vmid,
            time,
            format,
            compression,
        })
    }

    /// The compression the name promises, as something [`crate::compress`] reads
    /// (`Some(Compression::None)` for an uncompressed archive, `None` for `.bz2`).
    pub fn readable_compression(&self) -> Option<Compression> {
        match self.compression {
            None => Some(Compression::None),
            Some(c) => c.readable(),
        }
    }

    /// `vzdump-qemu-100-2026_11_01-02_00_03`
    pub fn base(&self) -> String {
        format!(
            "vzdump-{}-{}-{}",
            self.kind,
            self.vmid,
            self.time.snapshot_name()
        )
    }

    /// The archive's extension after the first dot: `vma`, `vma.zst`, `tar.gz`, `tgz`, …
    pub fn extension(&self) -> String {
        let fmt = match self.format {
            ArchiveFormat::Tgz => return "tgz".to_owned(),
            ArchiveFormat::Vma => "vma",
            ArchiveFormat::Tar => "tar",
        };
        match self.compression {
            Some(c) => format!("{fmt}.{}", c.extension()),
            None => fmt.to_owned(),
        }
    }

    /// `<base>.<ext>`, e.g. `vzdump-qemu-100-2026_11_01-02_00_03.vma.zst`
    pub fn archive_name(&self) -> String {
        format!("{}.{}", self.base(), self.extension())
    }

    /// `<base>.log` (no archive extension).
    pub fn log_name(&self) -> String {
        format!("{}.log", self.base())
    }

    /// `<archive>.notes`
    pub fn notes_name(&self) -> String {
        format!("{}.notes", self.archive_name())
    }

    /// `<archive>.protected`
    pub fn protected_name(&self) -> String {
        format!("{}.protected", self.archive_name())
    }

    /// vzdump's name while writing: the archive name with its last extension replaced by
    /// `.dat` (`….vma.zst` → `….vma.dat`, `….vma` → `….dat`).
    pub fn temp_archive_name(&self) -> String {
        let a = self.archive_name();
        match a.rfind('.') {
            Some(i) => format!("{}.dat", &a[..i]),
            None => format!("{a}.dat"),
        }
    }

    /// vzdump's scratch directory next to the archive: `<base>.tmp`.
    pub fn temp_dir_name(&self) -> String {
        format!("{}.tmp", self.base())
    }
}

impl fmt::Display for BackupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.archive_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmid_bounds_and_text() {
        assert!(VmId::new(99).is_err());
        assert_eq!(VmId::new(100).unwrap().get(), 100);
        assert_eq!(VmId::new(999_999_999).unwrap().get(), 999_999_999);
        assert!(VmId::new(1_000_000_000).is_err());
        for bad in ["", "99", "0100", "1000000000", "+100", "10a", " 100", "١٢٣"] {
            assert!(bad.parse::<VmId>().is_err(), "{bad:?}");
        }
        for good in ["100", "16110", "999999999"] {
            assert_eq!(good.parse::<VmId>().unwrap().to_string(), good);
        }
    }

    #[test]
    fn snapshot_names() {
        let t = BackupTime::new(2026, 11, 1, 2, 0, 3).unwrap();
        assert_eq!(t.snapshot_name(), "2026_11_01-02_00_03");
        assert_eq!(
            BackupTime::parse_snapshot_name("2026_11_01-02_00_03"),
            Some(t)
        );
        for bad in [
            "2026_11_01-02_00_0",
            "2026_11_01-02_00_030",
            "2026-11-01-02_00_03",
            "2026_13_01-02_00_03",
            "2026_02_29-02_00_03",
            "2026_11_01-24_00_00",
            "2026_11_01-23_60_00",
            "2026_11_01-23_59_60",
            "2026_11_00-23_59_59",
            "+026_11_01-02_00_03",
            "2026_11_01-02_00_+3",
        ] {
            assert_eq!(BackupTime::parse_snapshot_name(bad), None, "{bad}");
        }
        assert!(BackupTime::parse_snapshot_name("2024_02_29-23_59_59").is_some());
    }

    #[test]
    fn ordering_is_chronological() {
        let a = BackupTime::new(2025, 12, 31, 23, 59, 59).unwrap();
        let b = BackupTime::new(2026, 1, 1, 0, 0, 0).unwrap();
        let c = BackupTime::new(2026, 1, 1, 0, 0, 1).unwrap();
        assert!(a < b && b < c);
        let mut v = vec![c, a, b];
        v.sort();
        assert_eq!(v, vec![a, b, c]);
    }

    #[test]
    fn epoch_in_time_zones() {
        let utc = TimeZone::UTC;
        let t = BackupTime::new(2020, 3, 30, 21, 39, 30).unwrap();
        assert_eq!(t.to_epoch(&utc).unwrap(), 1_585_604_370);
        assert_eq!(BackupTime::from_epoch(1_585_604_370, &utc).unwrap(), t);
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(t.to_epoch(&berlin).unwrap(), 1_585_604_370 - 2 * 3600);
        // Fall-back hour: 2025-10-26 02:30 happens twice in Berlin; the earlier is taken.
        let amb = BackupTime::new(2025, 10, 26, 2, 30, 0).unwrap();
        assert_eq!(amb.to_epoch(&berlin).unwrap(), 1_761_438_600);
        assert_eq!(
            BackupTime::from_epoch(1_761_438_600 + 3600, &berlin).unwrap(),
            amb
        );
    }
}
