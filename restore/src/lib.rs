//! Restore: turn a snapshot back into what Proxmox VE restores from, or look inside it.
//!
//! - [`partition`], [`fsdetect`], [`disk`]: pure parsing of partition tables and filesystem
//!   superblocks inside raw disk images (no kernel partition scanning needed).
#![forbid(unsafe_code)]

pub mod disk;
pub mod fsdetect;
pub mod partition;
