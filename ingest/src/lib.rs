//! Ingest: vzdump dump directories → one volume per VM, synced in one pass from each VMA
//! archive (only changed 4 KiB blocks are written), snapshotted with the backup's own time.
//!
//! - [`sync`]: the changed-block engine (also `vzsnap blocksync`).

pub mod sync;
