//! The error type of the restore crate: every variant names what a person needs to act on it
//! (the VM, the snapshot, the file, the dataset's error text).

use std::path::PathBuf;

use store::StoreError;
use store::layout::LayoutError;

use crate::partition::PartitionError;

/// Why a list, restore, mount or umount did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The store has no volume for this VM.
    #[error("VM {vmid}: no backups in the store")]
    VmMissing { vmid: u32 },
    /// The VM's volume has no snapshot in vzsnap's naming.
    #[error("VM {vmid}: the volume has no snapshots")]
    NoSnapshots { vmid: u32 },
    /// No snapshot matches the requested date.
    #[error("VM {vmid}: no backup {wanted}; available: {}", list(available))]
    DateNotFound {
        vmid: u32,
        wanted: String,
        available: Vec<String>,
    },
    /// `YYYY-MM-DD` matched more than one backup of that day.
    #[error("VM {vmid}: {day} matches {} backups, name one: {}", candidates.len(), candidates.join(", "))]
    AmbiguousDate {
        vmid: u32,
        day: String,
        candidates: Vec<String>,
    },
    /// A DATE argument that is neither `YYYY_MM_DD-HH_MM_SS`, `YYYY-MM-DD` nor `latest`.
    #[error("invalid date {0:?}: expected YYYY_MM_DD-HH_MM_SS, YYYY-MM-DD or latest")]
    BadDate(String),
    /// A VMID outside what PVE allows.
    #[error("invalid VMID {0}: {1}")]
    BadVmid(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The snapshot's content does not agree with its manifest.
    #[error("{path}: {reason}")]
    Inconsistent { path: PathBuf, reason: String },
    /// A file we would create already exists; nothing is overwritten.
    #[error("{path}: already exists; refusing to overwrite it")]
    Exists { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Building the VMA stream failed (cannot normally happen with a valid manifest).
    #[error("{path}: {source}")]
    Vma {
        path: PathBuf,
        #[source]
        source: vma::Error,
    },
    #[error("{image}: partition table: {source}")]
    Partition {
        image: PathBuf,
        #[source]
        source: PartitionError,
    },
    /// An external program (losetup, mount, umount) failed.
    #[error(transparent)]
    Cmd(#[from] store::cmd::CmdError),
    /// A mountpoint, device name or state file that vzsnap refuses to use.
    #[error("{what}: {reason}")]
    Refused { what: String, reason: String },
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    // Keep the message readable for VMs with months of backups.
    const SHOW: usize = 10;
    if v.len() > SHOW {
        format!(
            "{} … {} ({} in all)",
            v[..3].join(", "),
            v[v.len() - 5..].join(", "),
            v.len()
        )
    } else {
        v.join(", ")
    }
}

/// Shorthand for an [`RestoreError::Io`] with its path.
pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RestoreError {
    let path = path.into();
    move |source| RestoreError::Io { path, source }
}

impl RestoreError {
    /// Whether the error means "what you asked for does not exist" (unknown VM or date), as
    /// opposed to a failure while doing it. The CLI maps this to a usage-type exit code.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            RestoreError::VmMissing { .. }
                | RestoreError::NoSnapshots { .. }
                | RestoreError::DateNotFound { .. }
                | RestoreError::AmbiguousDate { .. }
                | RestoreError::BadDate(_)
                | RestoreError::BadVmid(..)
        )
    }
}
