//! Finding backups in vzdump dump directories.
//!
//! What is an archive is decided by name alone ([`classify`], pure), following vzdump's
//! conventions (vma-format.md §2.1): `<base>.vma[.zst|.gz|.lzo]` is an archive; the
//! in-progress `….dat` file and the `<base>.tmp/` scratch directory are vzdump at work;
//! `<base>.log`, `<archive>.notes` and `<archive>.protected` are companions of an archive,
//! never archives themselves. Which archives to consider then depends on the settle time (a
//! file modified moments ago may still be copied in by rsync/NFS) and the VMID filters.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use vma::vzdump::{ArchiveFormat, BackupName, GuestKind};

/// What a directory entry is, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A standard vzdump archive name.
    Archive(BackupName),
    /// `….dat` (vzdump writing an archive) or a `….tmp` directory (vzdump's scratch dir).
    InProgress,
    /// `.log`, `.notes` or `.protected` of some archive.
    Companion,
    /// Anything else (ignored).
    Other,
}

/// Pure: classifies a dump-directory entry by its file name.
pub fn classify(file_name: &str, is_dir: bool) -> EntryKind {
    if !file_name.starts_with("vzdump-") {
        return EntryKind::Other;
    }
    if file_name.ends_with(".dat") || (is_dir && file_name.ends_with(".tmp")) {
        return EntryKind::InProgress;
    }
    if [".log", ".notes", ".protected"]
        .iter()
        .any(|s| file_name.ends_with(s))
    {
        return EntryKind::Companion;
    }
    if is_dir {
        return EntryKind::Other;
    }
    match BackupName::parse(file_name) {
        Some(n) => EntryKind::Archive(n),
        None => EntryKind::Other,
    }
}

/// One archive found, with its companions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub path: PathBuf,
    pub file_name: String,
    pub name: BackupName,
    /// Bytes as stored (compressed).
    pub size: u64,
    pub modified: SystemTime,
    /// `<base>.log`, if present.
    pub log: Option<PathBuf>,
    /// `<archive>.notes`, if present.
    pub notes: Option<PathBuf>,
    /// `<archive>.protected` exists.
    pub protected: bool,
}

impl Archive {
    pub fn vmid(&self) -> u32 {
        self.name.vmid.get()
    }
}

/// Why a found archive is not considered at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum ScanSkip {
    /// An lxc/openvz backup (`.tar*`): not yet supported.
    Unsupported { kind: String },
    /// A `.bz2` archive (PVE reads it, nobody writes it; we cannot decompress it).
    UnreadableCompression { extension: String },
    /// Modified less than the settle time ago (seconds).
    Settling { age_seconds: u64 },
    /// The same backup (VMID and time) was already found in another dump directory.
    Duplicate { first: String },
}

impl ScanSkip {
    /// The stable kebab-case code used in the JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            ScanSkip::Unsupported { .. } => "unsupported",
            ScanSkip::UnreadableCompression { .. } => "unreadable-compression",
            ScanSkip::Settling { .. } => "settling",
            ScanSkip::Duplicate { .. } => "duplicate",
        }
    }

    /// One human sentence.
    pub fn message(&self) -> String {
        match self {
            ScanSkip::Unsupported { kind } => format!("{kind} backups are not yet supported"),
            ScanSkip::UnreadableCompression { extension } => {
                format!(".{extension} archives cannot be read; recompress with zstd")
            }
            ScanSkip::Settling { age_seconds } => {
                format!("modified {age_seconds} s ago, still within the settle time")
            }
            ScanSkip::Duplicate { first } => format!("same backup as {first}"),
        }
    }
}

/// Which archives to look at.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    pub dump_dirs: Vec<PathBuf>,
    /// Archives modified less than this long ago are left for the next run.
    pub settle: Duration,
    /// Only these VMIDs (empty = all).
    pub include: Vec<u32>,
    /// Never these VMIDs.
    pub exclude: Vec<u32>,
}

impl ScanOptions {
    /// Whether the VMID filters allow `vmid`.
    pub fn wants(&self, vmid: u32) -> bool {
        (self.include.is_empty() || self.include.contains(&vmid)) && !self.exclude.contains(&vmid)
    }
}

/// Result of [`scan`].
#[derive(Debug, Default)]
pub struct Scan {
    /// Qemu archives to plan, per VMID, oldest backup first.
    pub vms: BTreeMap<u32, Vec<Archive>>,
    /// Archives found but not considered, with the reason.
    pub skipped: Vec<(Archive, ScanSkip)>,
    /// Names of vzdump's in-progress files (`.dat`, `.tmp/`), for the plan output.
    pub in_progress: Vec<PathBuf>,
}

/// A dump directory could not be read.
#[derive(Debug, thiserror::Error)]
#[error("dump directory {path}: {source}")]
pub struct ScanError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Lists the dump directories (in the given order; a backup found twice is taken from the
/// first directory) and sorts what is there. `now` is injected for tests.
pub fn scan(opts: &ScanOptions, now: SystemTime) -> Result<Scan, ScanError> {
    let mut out = Scan::default();
    let mut seen: BTreeMap<(u32, String), PathBuf> = BTreeMap::new();
    for dir in &opts.dump_dirs {
        let err = |source| ScanError {
            path: dir.clone(),
            source,
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(err)? {
            let entry = entry.map_err(err)?;
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not UTF-8: never a vzdump name
            };
            let is_dir = entry.file_type().map_err(err)?.is_dir();
            names.push((name, is_dir));
        }
        names.sort();
        let present: std::collections::BTreeSet<&str> =
            names.iter().map(|(n, _)| n.as_str()).collect();
        for (name, is_dir) in &names {
            let bn = match classify(name, *is_dir) {
                EntryKind::Archive(bn) => bn,
                EntryKind::InProgress => {
                    out.in_progress.push(dir.join(name));
                    continue;
                }
                EntryKind::Companion | EntryKind::Other => continue,
            };
            if !opts.wants(bn.vmid.get()) {
                continue;
            }
            let path = dir.join(name);
            let md = match std::fs::metadata(&path) {
                Ok(md) => md,
                // Removed between listing and stat (another run deleting its input).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(err(e)),
            };
            let companion = |n: String| present.contains(n.as_str()).then(|| dir.join(n));
            let archive = Archive {
                file_name: name.clone(),
                size: md.len(),
                modified: md.modified().map_err(err)?,
                log: companion(bn.log_name()),
                notes: companion(bn.notes_name()),
                protected: present.contains(bn.protected_name().as_str()),
                name: bn,
                path,
            };
            if let Some(skip) = skip_reason(&archive, opts.settle, now) {
                out.skipped.push((archive, skip));
                continue;
            }
            let key = (bn.vmid.get(), bn.time.snapshot_name());
            if let Some(first) = seen.get(&key) {
                let first = first.display().to_string();
                out.skipped.push((archive, ScanSkip::Duplicate { first }));
                continue;
            }
            seen.insert(key, archive.path.clone());
            out.vms.entry(bn.vmid.get()).or_default().push(archive);
        }
    }
    for list in out.vms.values_mut() {
        list.sort_by_key(|a| a.name.time);
    }
    Ok(out)
}

/// Pure: why an archive found by name is not considered (kind, compression, settle time).
pub fn skip_reason(a: &Archive, settle: Duration, now: SystemTime) -> Option<ScanSkip> {
    if a.name.kind != GuestKind::Qemu || a.name.format != ArchiveFormat::Vma {
        return Some(ScanSkip::Unsupported {
            kind: a.name.kind.to_string(),
        });
    }
    if a.name.readable_compression().is_none() {
        return Some(ScanSkip::UnreadableCompression {
            extension: a.name.compression.map_or("", |c| c.extension()).to_owned(),
        });
    }
    // A modification time in the future (clock skew) counts as "just now".
    let age = now.duration_since(a.modified).unwrap_or(Duration::ZERO);
    if age < settle {
        return Some(ScanSkip::Settling {
            age_seconds: age.as_secs(),
        });
    }
    None
}

/// Whether `path` is inside one of `dirs` (used before deleting input files).
pub fn is_in_dump_dir(path: &Path, dirs: &[PathBuf]) -> bool {
    path.parent().is_some_and(|p| dirs.iter().any(|d| d == p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "vzdump-qemu-100-2026_11_01-02_00_03";

    #[test]
    fn classify_by_name() {
        assert!(matches!(
            classify(&format!("{B}.vma.zst"), false),
            EntryKind::Archive(_)
        ));
        assert!(matches!(
            classify(&format!("{B}.vma"), false),
            EntryKind::Archive(_)
        ));
        assert!(matches!(
            classify("vzdump-lxc-101-2026_11_01-02_00_03.tar.zst", false),
            EntryKind::Archive(_)
        ));
        assert_eq!(
            classify(&format!("{B}.vma.dat"), false),
            EntryKind::InProgress
        );
        assert_eq!(classify(&format!("{B}.dat"), false), EntryKind::InProgress);
        assert_eq!(classify(&format!("{B}.tmp"), true), EntryKind::InProgress);
        assert_eq!(classify(&format!("{B}.log"), false), EntryKind::Companion);
        assert_eq!(
            classify(&format!("{B}.vma.zst.notes"), false),
            EntryKind::Companion
        );
        assert_eq!(
            classify(&format!("{B}.vma.zst.protected"), false),
            EntryKind::Companion
        );
        assert_eq!(classify(&format!("{B}.vma.zst"), true), EntryKind::Other);
        assert_eq!(classify("vzdump-qemu-100-x.vma", false), EntryKind::Other);
        assert_eq!(classify("notes.txt", false), EntryKind::Other);
    }

    fn touch(dir: &Path, name: &str, age: Duration) {
        let p = dir.join(name);
        std::fs::write(&p, name).unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(SystemTime::now() - age).unwrap();
    }

    #[test]
    fn scans_filters_and_sorts() {
        let d1 = tempfile::tempdir().unwrap();
        let d2 = tempfile::tempdir().unwrap();
        let old = Duration::from_secs(3600);
        for n in [
            "vzdump-qemu-100-2026_11_02-02_00_00.vma.zst",
            "vzdump-qemu-100-2026_11_01-02_00_00.vma.gz",
            "vzdump-qemu-100-2026_11_01-02_00_00.log",
            "vzdump-qemu-100-2026_11_01-02_00_00.vma.gz.notes",
            "vzdump-qemu-100-2026_11_01-02_00_00.vma.gz.protected",
            "vzdump-qemu-101-2026_11_01-02_00_00.vma",
            "vzdump-qemu-102-2026_11_01-02_00_00.vma",
            "vzdump-lxc-103-2026_11_01-02_00_00.tar.zst",
            "vzdump-qemu-104-2026_11_01-02_00_00.vma.bz2",
            "vzdump-qemu-100-2026_11_03-02_00_00.vma.dat",
            "random.iso",
        ] {
            touch(d1.path(), n, old);
        }
        std::fs::create_dir(d1.path().join("vzdump-qemu-100-2026_11_03-02_00_00.tmp")).unwrap();
        touch(
            d1.path(),
            "vzdump-qemu-105-2026_11_01-02_00_00.vma",
            Duration::from_secs(10),
        );
        // Same backup in the second directory: a duplicate; another one only there.
        touch(
            d2.path(),
            "vzdump-qemu-100-2026_11_02-02_00_00.vma.lzo",
            old,
        );
        touch(
            d2.path(),
            "vzdump-qemu-100-2026_10_31-02_00_00.vma.lzo",
            old,
        );
        let opts = ScanOptions {
            dump_dirs: vec![d1.path().into(), d2.path().into()],
            settle: Duration::from_secs(60),
            include: vec![],
            exclude: vec![102],
        };
        let s = scan(&opts, SystemTime::now()).unwrap();
        assert_eq!(s.vms.keys().copied().collect::<Vec<_>>(), vec![100, 101]);
        let v100: Vec<_> = s.vms[&100].iter().map(|a| a.file_name.as_str()).collect();
        assert_eq!(
            v100,
            [
                "vzdump-qemu-100-2026_10_31-02_00_00.vma.lzo",
                "vzdump-qemu-100-2026_11_01-02_00_00.vma.gz",
                "vzdump-qemu-100-2026_11_02-02_00_00.vma.zst",
            ]
        );
        let first = &s.vms[&100][1];
        assert!(first.protected);
        assert!(
            first
                .log
                .as_ref()
                .unwrap()
                .ends_with("vzdump-qemu-100-2026_11_01-02_00_00.log")
        );
        assert!(first.notes.is_some());
        assert!(s.vms[&100][2].log.is_none() && !s.vms[&100][2].protected);
        let mut codes: Vec<_> = s
            .skipped
            .iter()
            .map(|(a, r)| (a.vmid(), r.code()))
            .collect();
        codes.sort();
        assert_eq!(
            codes,
            [
                (100, "duplicate"),
                (103, "unsupported"),
                (104, "unreadable-compression"),
                (105, "settling")
            ]
        );
        assert_eq!(s.in_progress.len(), 2);
        let only = ScanOptions {
            include: vec![101],
            ..opts.clone()
        };
        assert_eq!(scan(&only, SystemTime::now()).unwrap().vms.len(), 1);
        let missing = ScanOptions {
            dump_dirs: vec![d1.path().join("nope")],
            ..opts
        };
        let e = scan(&missing, SystemTime::now()).unwrap_err();
        assert!(e.to_string().starts_with("dump directory "), "{e}");
    }
}
