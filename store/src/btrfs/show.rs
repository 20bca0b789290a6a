//! Pure parsing of `btrfs subvolume show` and conservative classification of btrfs-progs
//! error text.

use crate::cmd::CmdError;
use crate::error::StoreError;

/// The fields of `btrfs subvolume show` the store uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubvolInfo {
    pub uuid: String,
    /// Transaction id of the last change to the subvolume's tree ("Generation").
    pub generation: u64,
    /// Transaction id that created it ("Gen at creation").
    pub gen_at_creation: u64,
    pub readonly: bool,
}

/// Parses `btrfs subvolume show <path>` (btrfs-progs 5.x/6.x: `\tKey: \t\tvalue` lines).
pub fn parse_subvolume_show(out: &str) -> Result<SubvolInfo, String> {
    let field = |key: &str| -> Result<&str, String> {
        out.lines()
            .filter_map(|l| l.trim_start().split_once(':'))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim())
            .ok_or_else(|| format!("`btrfs subvolume show` output has no {key:?} line"))
    };
    let num = |key: &str| -> Result<u64, String> {
        let v = field(key)?;
        v.parse()
            .map_err(|_| format!("{key} {v:?} is not a number"))
    };
    let uuid = field("UUID")?.to_string();
    if uuid.len() != 36 {
        return Err(format!("UUID {uuid:?} is not a uuid"));
    }
    Ok(SubvolInfo {
        uuid,
        generation: num("Generation")?,
        gen_at_creation: num("Gen at creation")?,
        readonly: field("Flags")?.split([',', ' ']).any(|f| f == "readonly"),
    })
}

/// Maps a failed btrfs-progs call to a typed error by the errno text it prints
/// (`ERROR: cannot snapshot 'v': Read-only file system`). Only errno strings (stable in the C
/// locale) are matched; anything else stays `Unknown` with the text.
pub fn classify(subject: &str, err: CmdError) -> StoreError {
    let Some(stderr) = err.stderr() else {
        return StoreError::Command(err);
    };
    let detail = stderr.trim_end().to_string();
    let subject = subject.to_string();
    if detail.contains("No space left on device") || detail.contains("Disk quota exceeded") {
        StoreError::NoSpace { subject, detail }
    } else if detail.contains("Permission denied")
        || detail.contains("Operation not permitted")
        || detail.contains("Read-only file system")
    {
        StoreError::Permission { subject, detail }
    } else if detail.contains("Device or resource busy") {
        StoreError::Busy { subject, detail }
    } else {
        StoreError::unknown(subject, err)
    }
}

/// Parses `btrfs inspect-internal rootid <path>`: the id of the subvolume holding `path`.
pub fn parse_rootid(out: &str) -> Result<u64, String> {
    out.trim()
        .parse()
        .map_err(|_| format!("unexpected output of btrfs inspect-internal rootid: {out:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootid() {
        assert_eq!(parse_rootid("257\n"), Ok(257));
        assert!(parse_rootid("").is_err());
        assert!(parse_rootid("ERROR: not a btrfs filesystem\n").is_err());
    }

    /// Captured from btrfs-progs v6.2 (Debian bookworm) on kernel 6.18, a fresh subvolume
    /// after one read-only snapshot and later writes.
    const SHOW_LIVE: &str = "v
\tName: \t\t\tv
\tUUID: \t\t\te0290f1f-2ca7-704f-a2e7-8175435f9331
\tParent UUID: \t\t-
\tReceived UUID: \t\t-
\tCreation time: \t\t2026-11-27 01:12:06 +0000
\tSubvolume ID: \t\t256
\tGeneration: \t\t9
\tGen at creation: \t7
\tParent ID: \t\t5
\tTop level ID: \t\t5
\tFlags: \t\t\t-
\tSend transid: \t\t0
\tSend time: \t\t2026-11-27 01:12:06 +0000
\tReceive transid: \t0
\tReceive time: \t\t-
\tSnapshot(s):
\t\t\t\tsnaps/s1
";

    /// Same machine: the read-only snapshot of it.
    const SHOW_SNAP: &str = "snaps/s1
\tName: \t\t\ts1
\tUUID: \t\t\t48b21453-fae0-7148-8dd4-a19477116dd7
\tParent UUID: \t\te0290f1f-2ca7-704f-a2e7-8175435f9331
\tReceived UUID: \t\t-
\tCreation time: \t\t2026-11-27 01:12:07 +0000
\tSubvolume ID: \t\t257
\tGeneration: \t\t7
\tGen at creation: \t7
\tParent ID: \t\t5
\tTop level ID: \t\t5
\tFlags: \t\t\treadonly
\tSend transid: \t\t0
\tSend time: \t\t2026-11-27 01:12:07 +0000
\tReceive transid: \t0
\tReceive time: \t\t-
\tSnapshot(s):
";

    #[test]
    fn parses_real_output() {
        let live = parse_subvolume_show(SHOW_LIVE).unwrap();
        assert_eq!(
            live,
            SubvolInfo {
                uuid: "e0290f1f-2ca7-704f-a2e7-8175435f9331".into(),
                generation: 9,
                gen_at_creation: 7,
                readonly: false
            }
        );
        let snap = parse_subvolume_show(SHOW_SNAP).unwrap();
        assert_eq!(
            (snap.generation, snap.gen_at_creation, snap.readonly),
            (7, 7, true)
        );
    }

    #[test]
    fn rejects_truncated_output() {
        assert!(parse_subvolume_show("v\n\tName: v\n").is_err());
        assert!(
            parse_subvolume_show(&SHOW_LIVE.replace("Generation: \t\t9", "Generation: \t\tnine"))
                .is_err()
        );
    }

    #[test]
    fn classifies_errno_text_only() {
        let failed = |stderr: &str| CmdError::Failed {
            program: "btrfs".into(),
            args: vec![],
            status: Some(1),
            stderr: stderr.into(),
        };
        assert!(matches!(
            classify(
                "v",
                failed("ERROR: cannot snapshot 'v': Read-only file system\n")
            ),
            StoreError::Permission { .. }
        ));
        assert!(matches!(
            classify(
                "v",
                failed("ERROR: cannot snapshot 'v': No space left on device\n")
            ),
            StoreError::NoSpace { .. }
        ));
        assert!(matches!(
            classify(
                "v",
                failed("ERROR: Could not statfs: No such file or directory\n")
            ),
            StoreError::Unknown { .. }
        ));
    }
}
