//! Which backup a `DATE` argument means (pure).
//!
//! Accepted: the exact snapshot name `YYYY_MM_DD-HH_MM_SS`, a day `YYYY-MM-DD` (must match
//! exactly one backup that day, else the candidates are listed), or `latest`. Only snapshots
//! named in vzsnap's scheme count; anything else on the volume (an admin's manual snapshot)
//! is ignored.

use std::fmt;
use std::str::FromStr;

use store::{SnapshotInfo, Store, StoreError, VolumeName};
use vma::vzdump::{BackupTime, VmId};

use crate::error::RestoreError;

/// A parsed `DATE` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateSpec {
    Exact(BackupTime),
    /// `YYYY_MM_DD` prefix of the snapshot names of that day.
    Day {
        y: i32,
        m: u32,
        d: u32,
    },
    Latest,
}

impl FromStr for DateSpec {
    type Err = RestoreError;

    fn from_str(s: &str) -> Result<Self, RestoreError> {
        if s == "latest" {
            return Ok(DateSpec::Latest);
        }
        if let Some(t) = BackupTime::parse_snapshot_name(s) {
            return Ok(DateSpec::Exact(t));
        }
        let b = s.as_bytes();
        if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
            let num = |r: std::ops::Range<usize>| -> Option<u32> {
                let part = &s[r];
                part.bytes()
                    .all(|c| c.is_ascii_digit())
                    .then(|| part.parse().ok())
                    .flatten()
            };
            if let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) {
                // Validate as a real date through the same type the names use.
                if BackupTime::new(y as i32, m as i32, d as i32, 0, 0, 0).is_ok() {
                    return Ok(DateSpec::Day { y: y as i32, m, d });
                }
            }
        }
        Err(RestoreError::BadDate(s.to_string()))
    }
}

impl fmt::Display for DateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DateSpec::Exact(t) => write!(f, "{t}"),
            DateSpec::Day { y, m, d } => write!(f, "{y:04}-{m:02}-{d:02}"),
            DateSpec::Latest => f.write_str("latest"),
        }
    }
}

/// The snapshots of a volume that carry a backup time in their name, oldest first.
pub fn backups(snaps: &[SnapshotInfo]) -> Vec<(BackupTime, &SnapshotInfo)> {
    let mut v: Vec<(BackupTime, &SnapshotInfo)> = snaps
        .iter()
        .filter_map(|s| BackupTime::parse_snapshot_name(s.name.as_str()).map(|t| (t, s)))
        .collect();
    v.sort_by_key(|(t, _)| *t);
    v
}

/// Picks the snapshot `spec` means among `snaps` (pure).
pub fn select<'a>(
    vmid: u32,
    snaps: &'a [SnapshotInfo],
    spec: &DateSpec,
) -> Result<&'a SnapshotInfo, RestoreError> {
    let all = backups(snaps);
    if all.is_empty() {
        return Err(RestoreError::NoSnapshots { vmid });
    }
    let names = || {
        all.iter()
            .map(|(t, _)| t.snapshot_name())
            .collect::<Vec<_>>()
    };
    match spec {
        DateSpec::Latest => Ok(all.last().map(|(_, s)| *s).expect("not empty")),
        DateSpec::Exact(t) => all
            .iter()
            .find(|(bt, _)| bt == t)
            .map(|(_, s)| *s)
            .ok_or_else(|| RestoreError::DateNotFound {
                vmid,
                wanted: t.to_string(),
                available: names(),
            }),
        DateSpec::Day { y, m, d } => {
            let day: Vec<&(BackupTime, &SnapshotInfo)> = all
                .iter()
                .filter(|(t, _)| t.year() == *y && t.month() == *m && t.day() == *d)
                .collect();
            match day.as_slice() {
                [(_, s)] => Ok(*s),
                [] => Err(RestoreError::DateNotFound {
                    vmid,
                    wanted: spec.to_string(),
                    available: names(),
                }),
                many => Err(RestoreError::AmbiguousDate {
                    vmid,
                    day: spec.to_string(),
                    candidates: many.iter().map(|(t, _)| t.snapshot_name()).collect(),
                }),
            }
        }
    }
}

/// The volume of a VM (named by its VMID, as ingest creates it).
pub fn vm_volume(vmid: VmId) -> VolumeName {
    VolumeName::new(vmid.to_string()).expect("a VMID is a valid volume name")
}

/// Looks up the VM's volume and the snapshot `spec` means (the I/O around [`select`]).
pub fn find_snapshot(
    store: &dyn Store,
    vmid: VmId,
    spec: &DateSpec,
) -> Result<(VolumeName, SnapshotInfo), RestoreError> {
    let vol = vm_volume(vmid);
    let snaps = match store.list_snapshots(&vol) {
        Ok(s) => s,
        Err(StoreError::VolumeMissing { .. }) => {
            return Err(RestoreError::VmMissing { vmid: vmid.get() });
        }
        Err(e) => return Err(e.into()),
    };
    let chosen = select(vmid.get(), &snaps, spec)?.clone();
    Ok((vol, chosen))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use store::SnapshotName;

    fn snap(name: &str) -> SnapshotInfo {
        SnapshotInfo {
            name: SnapshotName::new(name).unwrap(),
            created: 0,
            meta: BTreeMap::new(),
            referenced: 0,
            written: 0,
            held: false,
        }
    }

    fn snaps() -> Vec<SnapshotInfo> {
        // Creation order differs from name order on purpose: selection goes by backup time.
        [
            "2026_11_02-02_00_00",
            "2026_11_01-02_00_03",
            "manual-before-upgrade",
            "2026_11_02-14_30_00",
            "2026_11_03-02_00_00",
        ]
        .into_iter()
        .map(snap)
        .collect()
    }

    #[test]
    fn parses_the_three_forms() {
        assert_eq!("latest".parse::<DateSpec>().unwrap(), DateSpec::Latest);
        assert_eq!(
            "2026-11-02".parse::<DateSpec>().unwrap(),
            DateSpec::Day {
                y: 2026,
                m: 11,
                d: 2
            }
        );
        assert!(matches!(
            "2026_11_02-02_00_00".parse::<DateSpec>().unwrap(),
            DateSpec::Exact(_)
        ));
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2026-1-01",
            "26-11-01",
            "2026_11_02",
            "2026_11_02-25_00_00",
            "+026-11-01",
        ] {
            assert!(
                matches!(bad.parse::<DateSpec>(), Err(RestoreError::BadDate(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn selects_by_backup_time() {
        let s = snaps();
        let pick = |spec: &str| select(100, &s, &spec.parse().unwrap()).map(|i| i.name.to_string());
        assert_eq!(pick("latest").unwrap(), "2026_11_03-02_00_00");
        assert_eq!(pick("2026-11-01").unwrap(), "2026_11_01-02_00_03");
        assert_eq!(pick("2026_11_02-14_30_00").unwrap(), "2026_11_02-14_30_00");
        let err = pick("2026-11-02").unwrap_err();
        assert!(
            matches!(&err, RestoreError::AmbiguousDate { candidates, .. } if candidates.len() == 2)
        );
        assert_eq!(
            err.to_string(),
            "VM 100: 2026-11-02 matches 2 backups, name one: 2026_11_02-02_00_00, 2026_11_02-14_30_00"
        );
        let err = pick("2026-10-31").unwrap_err().to_string();
        assert_eq!(
            err,
            "VM 100: no backup 2026-10-31; available: 2026_11_01-02_00_03, 2026_11_02-02_00_00, \
             2026_11_02-14_30_00, 2026_11_03-02_00_00"
        );
        assert!(pick("2026_11_01-02_00_04").is_err());
    }

    #[test]
    fn no_backups() {
        let only_manual = vec![snap("manual")];
        assert!(matches!(
            select(100, &only_manual, &DateSpec::Latest),
            Err(RestoreError::NoSnapshots { vmid: 100 })
        ));
    }
}
