//! The small JSON files the btrfs backend keeps next to its subvolumes (the btrfs equivalent of
//! ZFS user properties), and crash-safe reading/writing of them.

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::atomic::write_file_atomic;
use crate::error::StoreError;
use crate::names::{SnapshotName, VolumeName};

/// Version of every file below; bumped on incompatible change.
pub const FORMAT: u32 = 1;

/// `snapshots/<vol>/<snap>/meta.json`, written last when taking a snapshot: its presence is
/// what makes the snapshot exist ("commit marker"), its removal the first step of destroying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapMeta {
    pub format: u32,
    /// Unique per snapshot ever taken (keys the `stats.json` cache of the next snapshot).
    pub id: String,
    /// Creation order within the volume: one more than the highest existing `seq`.
    pub seq: u64,
    /// Seconds since the epoch.
    pub created: i64,
    /// The caller's metadata.
    pub meta: BTreeMap<String, String>,
}

/// `snapshots/<vol>/<snap>/stats.json`: cached space accounting. `written` depends on the
/// previous snapshot, so the cache is valid only while `prev_id` names the current previous
/// snapshot (destroying one in between invalidates it, as in ZFS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    pub format: u32,
    pub prev_id: Option<String>,
    pub referenced: u64,
    pub written: u64,
}

/// `clones/<clone>/origin.json`, written before the clone subvolume is created so a crash
/// leaves a findable, destroyable clone directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloneOrigin {
    pub format: u32,
    pub volume: VolumeName,
    pub snapshot: SnapshotName,
}

/// Reads a JSON file; `Ok(None)` if it does not exist, `Inconsistent` if it does not parse or
/// has another format version.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(path.display().to_string(), e)),
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        StoreError::inconsistent(path.display().to_string(), format!("not valid JSON: {e}"))
    })?;
    if value.get("format").and_then(serde_json::Value::as_u64) != Some(u64::from(FORMAT)) {
        return Err(StoreError::inconsistent(
            path.display().to_string(),
            format!("format is not {FORMAT}"),
        ));
    }
    serde_json::from_value(value).map(Some).map_err(|e| {
        StoreError::inconsistent(
            path.display().to_string(),
            format!("unexpected content: {e}"),
        )
    })
}

/// Writes a JSON file atomically (temp file, fsync, rename, fsync directory).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| {
        StoreError::inconsistent(path.display().to_string(), format!("cannot serialise: {e}"))
    })?;
    bytes.push(b'\n');
    write_file_atomic(path, &bytes).map_err(|e| StoreError::io(path.display().to_string(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_strictness() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("meta.json");
        assert_eq!(read_json::<SnapMeta>(&p).unwrap(), None);
        let m = SnapMeta {
            format: FORMAT,
            id: "x".into(),
            seq: 3,
            created: 1_700_000_000,
            meta: [("source".to_string(), "a.vma".to_string())].into(),
        };
        write_json(&p, &m).unwrap();
        assert_eq!(read_json::<SnapMeta>(&p).unwrap(), Some(m));
        std::fs::write(&p, b"{\"format\":2}").unwrap();
        assert!(matches!(
            read_json::<SnapMeta>(&p),
            Err(StoreError::Inconsistent { .. })
        ));
        std::fs::write(&p, b"{\"format\":1,\"id\":\"x\"}").unwrap();
        assert!(matches!(
            read_json::<SnapMeta>(&p),
            Err(StoreError::Inconsistent { .. })
        ));
        std::fs::write(&p, b"garbage").unwrap();
        assert!(matches!(
            read_json::<SnapMeta>(&p),
            Err(StoreError::Inconsistent { .. })
        ));
        std::fs::write(&p, b"{\"format\":1,\"volume\":\"../x\",\"snapshot\":\"s\"}").unwrap();
        assert!(matches!(
            read_json::<CloneOrigin>(&p),
            Err(StoreError::Inconsistent { .. })
        ));
    }
}
