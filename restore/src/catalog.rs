//! What `vzsnap list` shows: the VMs in the store, and per VM its backups (snapshots) with
//! their disks, sizes, space and protection.
//!
//! JSON field names (kebab-case) are part of the CLI's interface and documented in
//! restore/README.md; add fields, never rename them.

use serde::Serialize;
use store::layout::{Manifest, meta_keys};
use store::{SnapshotInfo, Store, StoreError};
use vma::vzdump::VmId;

use crate::error::RestoreError;
use crate::select::{backups, vm_volume};

/// One disk of a backup (from the snapshot's manifest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DiskEntry {
    pub dev_id: u8,
    /// VMA device name, e.g. `drive-scsi0`.
    pub name: String,
    pub size: u64,
}

/// One backup of a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct BackupEntry {
    /// Snapshot name = the backup's local time `YYYY_MM_DD-HH_MM_SS` (what `restore` takes).
    pub snapshot: String,
    /// Backup time, epoch seconds (from the snapshot metadata, else the manifest).
    pub backup_time: Option<i64>,
    /// When the snapshot was taken (epoch seconds).
    pub created: i64,
    /// The archive file it was ingested from.
    pub source: Option<String>,
    /// That archive's size in bytes.
    pub archive_size: Option<u64>,
    /// That archive's compression (`none`, `zstd`, `gzip`, `lzo`).
    pub compression: Option<String>,
    pub disks: Vec<DiskEntry>,
    /// Sum of the disk sizes (a `vmstate` RAM device is listed in `disks` but not counted).
    pub disk_bytes: u64,
    /// Bytes written by this snapshot relative to the previous one (ZFS `written`).
    pub written: u64,
    /// Bytes the snapshot references.
    pub referenced: u64,
    /// Held (cannot be destroyed, e.g. by pruning).
    pub held: bool,
    /// The backup was protected in PVE (`.protected`).
    pub protected: bool,
    /// Why `disks`/`compression` are missing, if the manifest could not be read.
    pub manifest_error: Option<String>,
}

/// A VM and its backups, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct VmEntry {
    pub vmid: u32,
    pub backups: Vec<BackupEntry>,
}

fn backup_entry(store: &dyn Store, vmid: VmId, s: &SnapshotInfo) -> BackupEntry {
    let meta_num = |k: &str| s.meta.get(k).and_then(|v| v.parse::<i64>().ok());
    let mut e = BackupEntry {
        snapshot: s.name.to_string(),
        backup_time: meta_num(meta_keys::BACKUP_TIME),
        created: s.created,
        source: s.meta.get(meta_keys::SOURCE).cloned(),
        archive_size: meta_num(meta_keys::ARCHIVE_SIZE).and_then(|v| u64::try_from(v).ok()),
        compression: None,
        disks: Vec::new(),
        disk_bytes: 0,
        written: s.written,
        referenced: s.referenced,
        held: s.held,
        protected: s.meta.get(meta_keys::PROTECTED).is_some_and(|v| v == "1"),
        manifest_error: None,
    };
    let manifest = store
        .snapshot_path(&vm_volume(vmid), &s.name)
        .map_err(|e| e.to_string())
        .and_then(|p| Manifest::read_from(&p).map_err(|e| e.to_string()));
    match manifest {
        Ok(m) => {
            e.backup_time = e.backup_time.or(Some(m.backup_time));
            e.source = e.source.or(Some(m.source.name.clone()));
            e.archive_size = e.archive_size.or(Some(m.source.size));
            e.compression = Some(m.source.compression.clone());
            e.disk_bytes = m
                .devices
                .iter()
                .filter(|d| d.name != "vmstate")
                .map(|d| d.size)
                .sum();
            e.disks = m
                .devices
                .into_iter()
                .map(|d| DiskEntry {
                    dev_id: d.dev_id,
                    name: d.name,
                    size: d.size,
                })
                .collect();
        }
        Err(err) => e.manifest_error = Some(err),
    }
    e
}

/// The backups of one VM ([`RestoreError::VmMissing`] if it has no volume).
pub fn list_vm(store: &dyn Store, vmid: VmId) -> Result<VmEntry, RestoreError> {
    let snaps = match store.list_snapshots(&vm_volume(vmid)) {
        Ok(s) => s,
        Err(StoreError::VolumeMissing { .. }) => {
            return Err(RestoreError::VmMissing { vmid: vmid.get() });
        }
        Err(e) => return Err(e.into()),
    };
    let backups = backups(&snaps)
        .into_iter()
        .map(|(_, s)| backup_entry(store, vmid, s))
        .collect();
    Ok(VmEntry {
        vmid: vmid.get(),
        backups,
    })
}

/// Every VM in the store (volumes named by a VMID), ascending by VMID.
pub fn list_vms(store: &dyn Store) -> Result<Vec<VmEntry>, RestoreError> {
    let mut ids: Vec<VmId> = store
        .list_volumes()?
        .iter()
        .filter_map(|v| v.as_str().parse().ok())
        .collect();
    ids.sort();
    ids.into_iter().map(|id| list_vm(store, id)).collect()
}
