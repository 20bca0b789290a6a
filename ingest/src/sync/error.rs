//! Errors of the sync engine. Each names the file and the byte offset where it happened, so a
//! failed ingest can be reported as "<file>: byte <n>: <what>".

use std::io;

/// A sync failed. Destination errors carry the image file and the device byte offset; source
/// errors are `vma::Error`s (archive name and archive byte offset) or source I/O errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// Reading or writing a file failed (`op` says which call: `read`, `write`, `punch`,
    /// `truncate`, `fsync`, `open`…).
    #[error("{file}: byte {offset}: {op}: {source}")]
    Io {
        file: String,
        offset: u64,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// The archive is invalid or ended early.
    #[error(transparent)]
    Vma(#[from] vma::Error),
    /// A cluster lies at or beyond the end of its image (the reader rejects this for
    /// archives; this guards the engine's own invariant).
    #[error("{file}: byte {offset}: cluster {cluster} lies beyond the image size {size}")]
    BeyondEnd {
        file: String,
        offset: u64,
        cluster: u64,
        size: u64,
    },
    /// A cluster's data is shorter than its mask or length says.
    #[error("{file}: byte {offset}: cluster {cluster} carries {got} bytes, {needed} needed")]
    ShortCluster {
        file: String,
        offset: u64,
        cluster: u64,
        got: usize,
        needed: usize,
    },
    /// The archive names a device the sync has no image for.
    #[error("{file}: byte {offset}: no target image for dev_id {dev_id}")]
    NoTarget {
        file: String,
        offset: u64,
        dev_id: u8,
    },
}

impl SyncError {
    pub(crate) fn io(file: &str, offset: u64, op: &'static str, source: io::Error) -> Self {
        SyncError::Io {
            file: file.to_owned(),
            offset,
            op,
            source,
        }
    }

    /// True if the destination ran out of space (ENOSPC or EDQUOT).
    pub fn is_no_space(&self) -> bool {
        matches!(self, SyncError::Io { source, .. }
            if matches!(source.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)))
    }
}
