//! Progress reporting as a trait, so libraries stay free of terminal code.
//!
//! Long operations (extract, create, ingest, restore) report byte positions here; the binaries
//! decide how to show them: a bar on a terminal, periodic log lines under cron, nothing in
//! tests. Implementations must be cheap to call often (every cluster or extent).

/// Receives progress of one operation at a time.
pub trait Progress: Send + Sync {
    /// A new phase begins. `total` is in bytes when known (compressed input size, image size).
    fn start(&self, label: &str, total: Option<u64>);
    /// Absolute position in the same unit as `total`.
    fn set_position(&self, pos: u64);
    /// The phase ended; `summary` is one human line (may be empty).
    fn finish(&self, summary: &str);
}

/// Discards all progress (tests, `--quiet`, JSON output).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _label: &str, _total: Option<u64>) {}
    fn set_position(&self, _pos: u64) {}
    fn finish(&self, _summary: &str) {}
}
