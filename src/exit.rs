//! Process exit codes, documented in the README ("Exit codes").

/// What `vzsnap` returns to cron, systemd and scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ExitCode {
    /// Everything asked for was done.
    Ok = 0,
    /// Some items (backups, VMs, snapshots) failed; the others were processed.
    Partial = 1,
    /// Nothing was done: bad configuration, usage error, store unreachable.
    Fatal = 2,
    /// Another instance holds the lock (and `--wait` was not given).
    Locked = 3,
}
