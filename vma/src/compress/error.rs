//! The error carried inside `io::Error` when compressed input is corrupt.
//!
//! Why an `io::Error` wrapper: decompressors sit behind `Read`, and the VMA reader wraps any
//! `io::Error` with its own (uncompressed) archive offset. The compressed-stream offset is the
//! one a person needs to locate the damage in the file they have, so it travels inside the
//! `io::Error` as a typed inner error that callers can downcast with [`DecompressError::find`].

use std::io;

/// Corrupt or unsupported compressed data at a known position of the compressed stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{context} at byte {offset}: {detail}")]
pub struct DecompressError {
    /// What was being decoded, e.g. `"lzop block"`, `"lzop header"`, `"zstd stream"`.
    pub context: &'static str,
    /// Byte offset in the compressed input (for zstd/gzip: how far the decoder had read,
    /// which may be up to one input buffer past the damage).
    pub offset: u64,
    /// What is wrong, e.g. `"adler32 mismatch of uncompressed data"`.
    pub detail: String,
}

impl DecompressError {
    /// Builds the error.
    pub fn new(context: &'static str, offset: u64, detail: impl Into<String>) -> Self {
        Self {
            context,
            offset,
            detail: detail.into(),
        }
    }

    /// Wraps it as `io::ErrorKind::InvalidData`.
    pub fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }

    /// Wraps it as `io::ErrorKind::UnexpectedEof` (the compressed stream is truncated).
    pub fn into_io_eof(self) -> io::Error {
        io::Error::new(io::ErrorKind::UnexpectedEof, self)
    }

    /// The `DecompressError` inside an `io::Error`, if that is what it carries.
    pub fn find(e: &io::Error) -> Option<&DecompressError> {
        e.get_ref()?.downcast_ref::<DecompressError>()
    }
}

impl From<DecompressError> for io::Error {
    fn from(e: DecompressError) -> Self {
        e.into_io()
    }
}
