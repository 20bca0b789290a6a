//! Why ingesting one backup failed. Every variant says where: the archive and byte offset
//! (`vma`), the image file and byte offset (sync), the dataset and tool output (store), or
//! the path (files).

use std::path::PathBuf;

use store::StoreError;
use store::layout::LayoutError;

use crate::sync::SyncError;

/// One backup could not be ingested.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The archive (or a companion) could not be opened or read before the VMA reader.
    #[error("{path}: {source}")]
    Input {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The archive is invalid, truncated or incomplete.
    #[error(transparent)]
    Vma(#[from] vma::Error),
    /// Syncing into the images failed (or the archive failed mid-stream).
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The store refused (snapshot, rollback, hold…).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A device or config name cannot be stored, or the manifest could not be written.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// Writing a small file (config, log, notes) in the volume failed.
    #[error("{path}: {source}")]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The archive's header describes something we cannot store as is.
    #[error("{archive}: {detail}")]
    Unsupported { archive: String, detail: String },
}

impl IngestError {
    /// The file and byte offset the error is about, when it has both.
    pub fn location(&self) -> Option<(String, u64)> {
        match self {
            IngestError::Vma(e) | IngestError::Sync(SyncError::Vma(e)) => {
                Some((e.file()?.to_owned(), e.offset()?))
            }
            IngestError::Sync(SyncError::Io { file, offset, .. })
            | IngestError::Sync(SyncError::BeyondEnd { file, offset, .. })
            | IngestError::Sync(SyncError::ShortCluster { file, offset, .. })
            | IngestError::Sync(SyncError::NoTarget { file, offset, .. }) => {
                Some((file.clone(), *offset))
            }
            _ => None,
        }
    }

    /// True if the store or the destination ran out of space.
    pub fn is_no_space(&self) -> bool {
        match self {
            IngestError::Sync(e) => e.is_no_space(),
            IngestError::Store(StoreError::NoSpace { .. }) => true,
            IngestError::Output { source, .. } => {
                matches!(
                    source.raw_os_error(),
                    Some(libc::ENOSPC) | Some(libc::EDQUOT)
                )
            }
            _ => false,
        }
    }
}
