//! Byte counters of one sync, reported in the summary, the JSON output and the snapshot
//! metadata.

use std::ops::AddAssign;

use serde::Serialize;

/// What a sync did. Every field is in bytes except the call counters. The JSON field names
/// are part of the documented output (docs/ingest.md, "JSON output"); do not rename them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SyncStats {
    /// Input bytes consumed as stored (compressed archive bytes; for `blocksync`, the source
    /// file's bytes).
    pub read: u64,
    /// Destination bytes compared (every byte of every device, including ranges known to be
    /// zero without reading them).
    pub compared: u64,
    /// Bytes of new non-zero data written (whole changed 4 KiB blocks).
    pub written: u64,
    /// Bytes that held data and became zero (hole punched or zeros written, per zero mode).
    pub zeroed: u64,
    /// Bytes found equal and left alone.
    pub unchanged: u64,
    /// `pwrite` calls (adjacent changed blocks are coalesced into one).
    pub write_calls: u64,
    /// `fallocate(PUNCH_HOLE)` calls.
    pub punch_calls: u64,
}

impl SyncStats {
    /// Changed bytes in all: written + zeroed.
    pub fn changed(&self) -> u64 {
        self.written + self.zeroed
    }
}

impl AddAssign for SyncStats {
    fn add_assign(&mut self, o: Self) {
        self.read += o.read;
        self.compared += o.compared;
        self.written += o.written;
        self.zeroed += o.zeroed;
        self.unchanged += o.unchanged;
        self.write_calls += o.write_calls;
        self.punch_calls += o.punch_calls;
    }
}
