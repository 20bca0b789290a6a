//! Independent checks for tests and the demo: what a volume must hold after a day was
//! ingested, and how many bytes the sync had to change — computed from the generator's
//! images alone, never from the engine.

use std::collections::BTreeSet;
use std::path::Path;

use store::layout::{LOG_FILE, NOTES_FILE, disk_file_name, meta_keys, parse_disk_file_name};
use store::{Store, VolumeName};

use crate::retention::{Backup, KeepPolicy, TimeZone, compute_prune_info};

use super::Day;

const BLOCK: usize = 4096;

/// Bytes one disk had to change from the previous day: `(written, zeroed)` where `written`
/// counts 4 KiB blocks (the last may be shorter) that differ and are non-zero in the new
/// image, and `zeroed` those that differ and are zero. The old image is first cut or
/// zero-extended to the new size, as the sync does; a new disk compares against zeros.
pub fn expected_changes(old: Option<&[u8]>, new: &[u8]) -> (u64, u64) {
    let (mut written, mut zeroed) = (0u64, 0u64);
    let empty: &[u8] = &[];
    let old = old.unwrap_or(empty);
    for (i, nb) in new.chunks(BLOCK).enumerate() {
        let start = i * BLOCK;
        let ob: Vec<u8> = (start..start + nb.len())
            .map(|k| old.get(k).copied().unwrap_or(0))
            .collect();
        if ob != nb {
            if nb.iter().all(|&b| b == 0) {
                zeroed += nb.len() as u64;
            } else {
                written += nb.len() as u64;
            }
        }
    }
    (written, zeroed)
}

/// Per disk of `day`: `(device name, written, zeroed)` relative to `prev`.
pub fn expected_day_changes(prev: Option<&Day>, day: &Day) -> Vec<(String, u64, u64)> {
    day.disks
        .iter()
        .map(|d| {
            let old = prev
                .and_then(|p| p.disk(&d.name))
                .map(|x| x.data.as_slice());
            let (w, z) = expected_changes(old, &d.data);
            (d.name.clone(), w, z)
        })
        .collect()
}

/// Checks that `dir` (a volume or one of its snapshots) holds exactly `day`: each disk
/// image byte for byte, no other disk image, each config, the log, the notes (or none).
pub fn compare_volume(dir: &Path, day: &Day) -> Result<(), String> {
    for d in &day.disks {
        let name = disk_file_name(&d.name).map_err(|e| e.to_string())?;
        let p = dir.join(&name);
        let got = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        if got.len() != d.data.len() {
            return Err(format!(
                "{name}: {} bytes, expected {}",
                got.len(),
                d.data.len()
            ));
        }
        if let Some(i) = got.iter().zip(&d.data).position(|(a, b)| a != b) {
            return Err(format!("{name}: differs at byte {i}"));
        }
    }
    for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let n = e
            .map_err(|e| e.to_string())?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if let Some(dev) = parse_disk_file_name(&n)
            && day.disk(dev).is_none()
        {
            return Err(format!(
                "{n}: left over (device {dev} is not in day {})",
                day.number
            ));
        }
        if n.starts_with("qemu-server.") && !day.configs.iter().any(|c| c.name == n) {
            return Err(format!("{n}: left over (not in day {})", day.number));
        }
    }
    for c in &day.configs {
        let p = dir.join(&c.name);
        let got = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        if got != c.data {
            return Err(format!("{}: differs", c.name));
        }
    }
    let log =
        std::fs::read_to_string(dir.join(LOG_FILE)).map_err(|e| format!("{LOG_FILE}: {e}"))?;
    if log != day.log {
        return Err(format!("{LOG_FILE}: differs"));
    }
    match (&day.notes, std::fs::read_to_string(dir.join(NOTES_FILE))) {
        (Some(n), Ok(got)) if &got == n => {}
        (None, Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
        (want, got) => return Err(format!("{NOTES_FILE}: expected {want:?}, found {got:?}")),
    }
    Ok(())
}

/// The snapshots of `vol` that retention keeps under `policy`: the store's own listing
/// (vzsnap's `backup-time` metadata; held = protected) put through the pure
/// [`compute_prune_info`] — what a prune must leave. An error if a snapshot lacks
/// `backup-time`, which the callers' volumes never have.
pub fn retained(
    store: &dyn Store,
    vol: &VolumeName,
    policy: &KeepPolicy,
    tz: &TimeZone,
) -> Result<BTreeSet<String>, String> {
    let mut backups = Vec::new();
    for s in store.list_snapshots(vol).map_err(|e| e.to_string())? {
        let time = s
            .meta
            .get(meta_keys::BACKUP_TIME)
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| format!("{vol}@{}: no backup-time", s.name))?;
        backups.push(Backup {
            name: s.name.to_string(),
            time,
            protected: s.held,
        });
    }
    Ok(compute_prune_info(&backups, policy, tz)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|d| d.verdict.is_keep())
        .map(|d| d.backup.name)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_blocks_by_kind() {
        let mut old = vec![1u8; 3 * BLOCK];
        old[BLOCK..2 * BLOCK].fill(0);
        let mut new = old.clone();
        new[0] = 9; // block 0 changed (data)
        new[2 * BLOCK..].fill(0); // block 2 zeroed
        new.extend(vec![0u8; 100]); // grown: zero tail is no change
        new.extend(vec![5u8; 10]); // … a non-zero partial block is
        assert_eq!(
            expected_changes(Some(&old), &new),
            (BLOCK as u64 + 110, BLOCK as u64)
        );
        assert_eq!(expected_changes(None, &new), (BLOCK as u64 + 110, 0));
        assert_eq!(
            expected_changes(Some(&new), &old[..BLOCK]),
            (BLOCK as u64, 0)
        );
    }
}
