//! Restore: turn a snapshot back into what Proxmox VE restores from, or look inside it.
//!
//! - [`archive`]: snapshot → `vzdump-qemu-<VMID>-<DATE>.vma[.zst|.gz|.lzo]` plus `.log` and
//!   `.notes`, streamed from the read-only snapshot, for PVE's own restore.
//! - [`catalog`]: what `vzsnap list` shows (VMs, backups, disks, space).
//! - [`select`]: which backup a `DATE` argument (`YYYY_MM_DD-HH_MM_SS`, `YYYY-MM-DD`,
//!   `latest`) means.
//! - [`mount`]: clone a snapshot, map its partitions to read-only loop devices, mount them
//!   read-only; `umount` undoes it from a state file written before every step.
//! - [`partition`], [`fsdetect`], [`disk`]: pure parsing of partition tables and filesystem
//!   superblocks inside raw disk images (no kernel partition scanning needed).
#![forbid(unsafe_code)]

pub mod archive;
pub mod catalog;
pub mod disk;
mod error;
pub mod fsdetect;
pub mod mount;
pub mod partition;
pub mod select;

pub use error::RestoreError;
