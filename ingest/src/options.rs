//! Everything an ingest run is told (the CLI builds it from the config file and flags).

use crate::crash::CrashHook;
use crate::retention::PruneConfig;
use crate::scan::ScanOptions;
use crate::sync::ZeroMode;

/// Options of [`crate::run::run`].
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// Dump directories, settle time, VMID filters.
    pub scan: ScanOptions,
    /// Properties for a newly created volume (`zfs create -o k=v`; ignored on btrfs).
    pub volume_properties: Vec<(String, String)>,
    /// How blocks that became zero are zeroed.
    pub zero_mode: ZeroMode,
    /// Delete the archive and its `.log`/`.notes` once its snapshot exists (never for a
    /// protected backup).
    pub delete_input: bool,
    /// Ingest backups older than the volume's newest snapshot, too.
    pub force: bool,
    /// Plan only: change nothing.
    pub dry_run: bool,
    /// Prune each volume after ingesting into it with this configuration, if set.
    pub prune: Option<PruneConfig>,
    /// Test facility: crash at a chosen point (docs/ingest.md).
    pub crash: CrashHook,
}
