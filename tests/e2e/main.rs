//! End-to-end tests of the `vzsnap` binary on real backends (btrfs on a loop device, OpenZFS
//! in the test VM). One test binary (`autotests = false`); each file is a module. Backend
//! tests carry `btrfs` or `zfs` in their path so the VM run can filter with `zfs`.

#[macro_use]
mod support;

mod bench;
mod demo;
mod ingest_blocksync;
mod ingest_cli;
mod ingest_crash;
mod prune_cli;
mod report_cli;
mod restore_cli;
mod restore_delete_input;
mod restore_mount_cli;
