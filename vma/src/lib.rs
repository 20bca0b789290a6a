//! Proxmox VE VMA archives: a streaming reader, a writer with the C writer's exact layout,
//! and the format's structures.
//!
//! - [`format`](mod@format): constants and pure (de)serialisation of the on-disk structures.
//! - [`VmaReader`]: reads from any `Read` without seeking, in bounded memory, validating like
//!   Proxmox's C reader; clusters come out zero-copy through [`ExtentBuf`] / [`ClusterRef`].
//! - [`VmaWriter`]: writes archives byte-compatible with `vma create` / live vzdump backups.
//!
//! The format itself is described in the shared `vma-format.md`; where `vma_spec.txt` and the
//! C code disagree, this crate follows the code.
#![forbid(unsafe_code)]

mod bitmap;
pub mod compress;
mod error;
pub mod format;
mod header;
pub mod progress;
pub mod reader;
pub mod vzdump;
pub mod writeback;
pub mod writer;

pub use error::{Error, MissingRanges};
pub use header::{Config, Device, Header};
pub use reader::{ClusterBlocks, ClusterRef, ExtentBuf, VmaReader};
pub use writer::{VmaWriter, WriterOptions};
