//! Classifies a failed `zfs` call from its stderr, conservatively.
//!
//! Only messages whose meaning is unambiguous map to a typed error; everything else stays
//! [`Failure::Unknown`] and keeps the full text. Where a pre-check is possible (holds, clones,
//! existence) the store checks first instead of relying on text: e.g. a held snapshot's
//! destroy reports "dataset is busy" before ZFS 2.4 and "it's being held" from 2.4 on (zrepl
//! `internal/zfs/zfs.go`), so holds are looked up before destroying. Matching needs
//! `LC_ALL=C`, which [`crate::cmd::Cmd`] always sets.

/// The kind of a failed zfs call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// "dataset does not exist", "no such pool or dataset", "could not find any snapshots".
    Missing,
    /// "dataset already exists".
    Exists,
    /// Busy, has dependent clones / children.
    Busy,
    /// Held (ZFS ≥ 2.4 wording; older versions say "busy").
    Held,
    /// "no such tag on this dataset" (release of an absent hold).
    NoSuchTag,
    /// "tag already exists on this dataset".
    TagExists,
    Permission,
    NoSpace,
    Unknown,
}

/// Pure: the failure kind for a zfs stderr text.
pub fn classify_stderr(stderr: &str) -> Failure {
    // Judge by the first non-empty line: zfs prints "cannot <verb> '<name>': <reason>" there;
    // later lines are hints ("use '-r' to destroy the following datasets:" …) that may quote
    // dataset names, which must not be mistaken for a reason.
    let first = stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_ascii_lowercase();
    let reason = first.rsplit_once("': ").map(|(_, r)| r).unwrap_or(&first);
    let has = |s: &str| reason.contains(s);
    if has("dataset does not exist")
        || has("no such pool or dataset")
        || first.starts_with("could not find any snapshots")
    {
        Failure::Missing
    } else if has("dataset already exists") {
        Failure::Exists
    } else if has("no such tag on this dataset") {
        Failure::NoSuchTag
    } else if has("tag already exists on this dataset") {
        Failure::TagExists
    } else if has("being held") {
        Failure::Held
    } else if has("is busy") || has("has dependent clones") || has("has children") {
        Failure::Busy
    } else if has("permission denied")
        || has("operation not permitted")
        || has("insufficient privileges")
    {
        Failure::Permission
    } else if has("out of space") || has("no space left") || has("quota exceeded") {
        Failure::NoSpace
    } else {
        Failure::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_messages() {
        let cases = [
            (
                "cannot open 'tank/x': dataset does not exist\n",
                Failure::Missing,
            ),
            (
                "cannot open 'nopool/x': no such pool or dataset\n",
                Failure::Missing,
            ),
            (
                "could not find any snapshots to destroy; check snapshot names.\n",
                Failure::Missing,
            ),
            (
                "cannot create snapshot 'tank/a@s': dataset already exists\n",
                Failure::Exists,
            ),
            (
                "cannot destroy snapshot tank/a@s: dataset is busy\n",
                Failure::Busy,
            ),
            (
                "cannot destroy snapshot tank/a@s: it's being held. Run 'zfs holds -r tank/a@s' to see holders.\n",
                Failure::Held,
            ),
            (
                "cannot release 'x' from 'tank/a@s': no such tag on this dataset\n",
                Failure::NoSuchTag,
            ),
            (
                "cannot hold snapshot 'tank/a@s': tag already exists on this dataset\n",
                Failure::TagExists,
            ),
            (
                "cannot create 'tank/a': permission denied\n",
                Failure::Permission,
            ),
            ("cannot create 'tank/a': out of space\n", Failure::NoSpace),
            (
                "cannot frobnicate 'tank/a': cosmic rays\n",
                Failure::Unknown,
            ),
            ("", Failure::Unknown),
        ];
        for (text, want) in cases {
            assert_eq!(classify_stderr(text), want, "{text:?}");
        }
    }

    #[test]
    fn only_the_reason_of_the_first_line_counts() {
        // A dataset *named* like a message must not be misread.
        assert_eq!(
            classify_stderr("cannot destroy 'tank/dataset does not exist': cosmic rays\n"),
            Failure::Unknown
        );
        assert_eq!(
            classify_stderr("cannot frobnicate 'tank/a': cosmic rays\nhint: dataset is busy\n"),
            Failure::Unknown
        );
    }
}
