//! `/proc/self/mountinfo` (proc(5)): which paths are mount points, and what is mounted where.
//!
//! Why not `mountpoint(1)` or comparing `st_dev` with the parent: mountinfo is the kernel's
//! own list, sees bind mounts and mounts of the same file system, and is one read for all
//! checks.

use std::path::{Path, PathBuf};

/// One line of mountinfo (the fields vzsnap needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it is mounted (unescaped).
    pub target: PathBuf,
    pub fstype: String,
    /// The mount source (device path for block file systems; unescaped).
    pub source: String,
    /// Per-mount options (`ro,nosuid,…`).
    pub options: String,
}

impl MountEntry {
    pub fn is_read_only(&self) -> bool {
        self.options.split(',').any(|o| o == "ro")
    }
}

/// Undoes the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134`
/// backslash) in a mountinfo field.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Pure: parses mountinfo text; malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        // id parent maj:min root target options [optional…] - fstype source superopts
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if sep < 6 || fields.len() < sep + 3 {
            continue;
        }
        out.push(MountEntry {
            target: PathBuf::from(unescape(fields[4])),
            options: fields[5].to_string(),
            fstype: fields[sep + 1].to_string(),
            source: unescape(fields[sep + 2]),
        });
    }
    out
}

/// Reads the current process's mount table.
pub fn read_mountinfo() -> std::io::Result<Vec<MountEntry>> {
    Ok(parse_mountinfo(&std::fs::read_to_string(
        "/proc/self/mountinfo",
    )?))
}

/// The mounts at `path` or below it, deepest first (the order to unmount them in).
pub fn mounts_at_or_below<'a>(mounts: &'a [MountEntry], path: &Path) -> Vec<&'a MountEntry> {
    let mut v: Vec<&MountEntry> = mounts
        .iter()
        .filter(|m| m.target.starts_with(path))
        .collect();
    v.sort_by_key(|m| std::cmp::Reverse(m.target.components().count()));
    v
}

/// Whether `path` is itself a mount point.
pub fn is_mount_point(mounts: &[MountEntry], path: &Path) -> bool {
    mounts.iter().any(|m| m.target == path)
}

/// Pure: whether `/proc/filesystems` text lists `fstype`.
pub fn filesystems_lists(text: &str, fstype: &str) -> bool {
    text.lines()
        .any(|l| l.split_whitespace().last() == Some(fstype))
}

/// Whether the running kernel currently supports `fstype` (after a failed mount attempt, the
/// module would have been loaded if it existed).
pub fn kernel_supports(fstype: &str) -> Option<bool> {
    std::fs::read_to_string("/proc/filesystems")
        .ok()
        .map(|t| filesystems_lists(&t, fstype))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
1 0 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
95 1 7:3 / /run/vzsnap/mounts/100-2026_11_01-02_00_03/drive-scsi0/part1 ro,nosuid,nodev,noexec,relatime shared:50 - ext4 /dev/loop3 ro,norecovery
96 95 7:4 / /run/vzsnap/mounts/100-2026_11_01-02_00_03/drive-scsi0/part1/with\\040space ro,relatime - vfat /dev/loop4 ro
97 1 7:5 / /mnt/other rw - xfs /dev/loop5 rw
bogus line
";

    #[test]
    fn parses_and_unescapes() {
        let m = parse_mountinfo(SAMPLE);
        assert_eq!(m.len(), 5);
        assert_eq!(m[2].source, "/dev/loop3");
        assert_eq!(m[2].fstype, "ext4");
        assert!(m[2].is_read_only());
        assert!(!m[4].is_read_only());
        assert_eq!(
            m[3].target,
            Path::new("/run/vzsnap/mounts/100-2026_11_01-02_00_03/drive-scsi0/part1/with space")
        );
        assert_eq!(unescape("a\\134b\\011c\\012"), "a\\b\tc\n");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }

    #[test]
    fn below_is_deepest_first() {
        let m = parse_mountinfo(SAMPLE);
        let root = Path::new("/run/vzsnap/mounts/100-2026_11_01-02_00_03");
        let below: Vec<&str> = mounts_at_or_below(&m, root)
            .iter()
            .map(|e| e.source.as_str())
            .collect();
        assert_eq!(below, vec!["/dev/loop4", "/dev/loop3"]);
        // A sibling with a common string prefix is not "below".
        assert!(
            mounts_at_or_below(&m, Path::new("/run/vzsnap/mounts/100-2026_11_01-02_00_0"))
                .is_empty()
        );
        assert!(is_mount_point(&m, Path::new("/mnt/other")));
        assert!(!is_mount_point(&m, Path::new("/mnt")));
    }

    #[test]
    fn proc_filesystems() {
        let t = "nodev\tsysfs\nnodev\ttmpfs\n\text4\n\txfs\nnodev\tfuse\n";
        assert!(filesystems_lists(t, "ext4"));
        assert!(filesystems_lists(t, "xfs"));
        assert!(!filesystems_lists(t, "vfat"));
        assert!(!filesystems_lists(t, "nodev"));
    }
}
