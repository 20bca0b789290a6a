//! The store's error type: one enum, every variant names its subject (dataset, snapshot or
//! path) and, where a tool failed, keeps what the tool said.

use crate::cmd::CmdError;
use crate::names::NameError;

/// What went wrong, typed so callers can act (skip a held snapshot, report a full pool…).
///
/// Classification of tool output is conservative: only well-known messages map to a specific
/// variant; everything else is [`StoreError::Unknown`] with the full text.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The volume (dataset / subvolume) does not exist.
    #[error("volume {subject} does not exist")]
    VolumeMissing { subject: String },
    /// The snapshot (or clone) does not exist.
    #[error("{subject} does not exist")]
    SnapshotMissing { subject: String },
    /// Creating something that is already there.
    #[error("{subject} already exists")]
    Exists { subject: String },
    /// In use: mounted and open, has dependent clones, a rollback is needed first…
    #[error("{subject} is busy: {detail}")]
    Busy { subject: String, detail: String },
    /// A held snapshot cannot be destroyed until every tag is released.
    #[error("snapshot {subject} is held (tags: {})", tags.join(", "))]
    Held { subject: String, tags: Vec<String> },
    #[error("permission denied on {subject}: {detail}")]
    Permission { subject: String, detail: String },
    #[error("out of space on {subject}: {detail}")]
    NoSpace { subject: String, detail: String },
    /// A name failed validation; nothing was run.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// A tool failed in a way we do not classify; `stderr` is what it said.
    #[error("{subject}: {command} failed: {stderr}")]
    Unknown {
        subject: String,
        command: String,
        stderr: String,
    },
    /// A file-system call failed.
    #[error("{subject}: {source}")]
    Io {
        subject: String,
        #[source]
        source: std::io::Error,
    },
    /// The on-disk state is not what the store expects (not mounted, not a btrfs subvolume,
    /// unreadable metadata file, property not applied…). Never fixed silently.
    #[error("{subject}: {detail}")]
    Inconsistent { subject: String, detail: String },
    /// A tool could not be started or its pipes failed (not a classified tool error).
    #[error(transparent)]
    Command(CmdError),
    /// `store::open` got a spec it does not understand.
    #[error("invalid store spec {spec:?}: {reason}")]
    Spec { spec: String, reason: String },
}

impl StoreError {
    /// Maps an I/O error, keeping the two kinds callers act on (space, permission) typed.
    pub fn io(subject: impl Into<String>, source: std::io::Error) -> StoreError {
        let subject = subject.into();
        match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => StoreError::NoSpace {
                subject,
                detail: source.to_string(),
            },
            Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => StoreError::Permission {
                subject,
                detail: source.to_string(),
            },
            _ => StoreError::Io { subject, source },
        }
    }

    pub(crate) fn inconsistent(
        subject: impl Into<String>,
        detail: impl Into<String>,
    ) -> StoreError {
        StoreError::Inconsistent {
            subject: subject.into(),
            detail: detail.into(),
        }
    }

    /// A failed command that no classifier recognised.
    pub(crate) fn unknown(subject: impl Into<String>, err: CmdError) -> StoreError {
        match err {
            CmdError::Failed {
                program,
                args,
                status,
                stderr,
            } => {
                let mut command = program;
                for a in &args {
                    command.push(' ');
                    command.push_str(a);
                }
                if let Some(code) = status {
                    command.push_str(&format!(" (exit {code})"));
                }
                StoreError::Unknown {
                    subject: subject.into(),
                    command,
                    stderr: stderr.trim_end().to_string(),
                }
            }
            other => StoreError::Command(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_keep_space_and_permission_typed() {
        let e = StoreError::io("/x", std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(matches!(e, StoreError::NoSpace { .. }));
        let e = StoreError::io("/x", std::io::Error::from_raw_os_error(libc::EACCES));
        assert!(matches!(e, StoreError::Permission { .. }));
        let e = StoreError::io("/x", std::io::Error::from_raw_os_error(libc::ENOENT));
        assert!(matches!(e, StoreError::Io { .. }));
        assert!(e.to_string().starts_with("/x: "));
    }

    #[test]
    fn unknown_keeps_command_and_stderr() {
        let e = StoreError::unknown(
            "tank/a",
            CmdError::Failed {
                program: "zfs".into(),
                args: vec!["destroy".into(), "tank/a".into()],
                status: Some(1),
                stderr: "cannot destroy 'tank/a': something new\n".into(),
            },
        );
        assert_eq!(
            e.to_string(),
            "tank/a: zfs destroy tank/a (exit 1) failed: cannot destroy 'tank/a': something new"
        );
    }
}
