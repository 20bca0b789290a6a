//! The one-pass changed-block sync engine shared by `vzsnap ingest` and `vzsnap blocksync`.
//!
//! - [`compare`]: pure 64 KiB-then-4 KiB comparison.
//! - [`ImageSync`]: one destination file; reads old contents in large windows, writes only
//!   changed blocks (coalesced), punches or writes zeros.
//! - [`pipeline`]: three threads joined by bounded channels of recycled buffers, so
//!   decompressing the source, reading the destination and comparing/writing overlap
//!   (perf.md §3.5).
//! - [`vma_stream`]: a VMA archive onto a set of images (the ingest path).
//! - [`raw`]: a raw file onto another (the `blocksync` path).

pub mod compare;
mod error;
pub mod image;
mod old;
pub mod pipeline;
#[cfg(test)]
mod proptests;
pub mod raw;
mod stats;
pub mod vma_stream;

pub use error::SyncError;
pub use image::ImageSync;
pub use stats::SyncStats;

use serde::{Deserialize, Serialize};

/// How a block that held data and must now read as zeros is made zero.
///
/// Measured on real btrfs and OpenZFS (docs/ingest.md, "Zeroed blocks"): punching costs no
/// more snapshot space than writing zeros on either, and less on btrfs, where written zeros
/// are allocated like any other data; so [`ZeroMode::Punch`] is the default.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZeroMode {
    /// `fallocate(PUNCH_HOLE | KEEP_SIZE)` (falls back to writing zeros where unsupported).
    #[default]
    Punch,
    /// `pwrite` of zeros (ZFS with compression turns whole zero records into holes itself).
    Write,
}

impl ZeroMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ZeroMode::Punch => "punch",
            ZeroMode::Write => "write",
        }
    }
}

impl std::fmt::Display for ZeroMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ZeroMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "punch" => Ok(ZeroMode::Punch),
            "write" => Ok(ZeroMode::Write),
            _ => Err(format!("unknown zero mode {s:?} (expected punch or write)")),
        }
    }
}
