//! Ingest: vzdump dump directories → one volume per VM, synced in one pass from each VMA
//! archive (only changed 4 KiB blocks are written), snapshotted with the backup's own time.
//!
//! - [`sync`]: the changed-block engine (also `vzsnap blocksync`).
//! - [`retention`]: which snapshots a PBS-style `keep-*` policy keeps (pure).
//! - [`prune`]: applies it to a volume (`vzsnap prune`, and after each ingest).
//! - [`report`]: space used per snapshot vs the archives (`vzsnap report`).

pub mod sync;
pub mod prune;
pub mod report;
pub mod retention;
