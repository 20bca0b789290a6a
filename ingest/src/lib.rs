//! Ingest: vzdump dump directories → one volume per VM, synced in one pass from each VMA
//! archive (only changed 4 KiB blocks are written), snapshotted with the backup's own time.
//!
//! - [`sync`]: the changed-block engine (also `vzsnap blocksync`).
//! - [`scan`] → [`plan`] → [`backup`] (one archive: [`volume`] prepare/undo, sync,
//!   snapshot) → [`run`] (a whole run, [`summary`]); [`lock`] keeps runs single;
//!   [`metrics`] writes the Prometheus textfile.
//! - [`synth`]: deterministic synthetic vzdump backups (demo and tests).
//! - [`retention`]: which snapshots a PBS-style `keep-*` policy keeps (pure).
//! - [`prune`]: applies it to a volume (`vzsnap prune`, and after each ingest).
//! - [`report`]: space used per snapshot vs the archives (`vzsnap report`).

pub mod backup;
pub mod crash;
pub mod error;
pub mod files;
pub mod lock;
pub mod metrics;
pub mod options;
pub mod plan;
pub mod prune;
pub mod report;
pub mod retention;
pub mod run;
pub mod scan;
pub mod summary;
pub mod sync;
pub mod synth;
pub mod volume;

pub use error::IngestError;
pub use options::IngestOptions;
