//! Validated names: the only way a string from input data reaches a command line or a path.
//!
//! Why newtypes: a name that was validated once cannot be forgotten later. Every name here is
//! a single argv element or a single path component by construction: no whitespace, no `/`,
//! no `@`/`#`, no NUL, no leading `-` (so it can never be read as an option), never `.` or
//! `..`, ASCII only, bounded length. Validation happens in the constructor, so a hostile name
//! is rejected before any command runs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct NameError {
    /// What kind of name (`volume name`, `snapshot name`, …).
    pub kind: &'static str,
    /// The rejected input (escaped when printed).
    pub value: String,
    pub reason: &'static str,
}

fn err(kind: &'static str, value: &str, reason: &'static str) -> NameError {
    // Keep error messages bounded even for absurd inputs.
    let value: String = value.chars().take(300).collect();
    NameError {
        kind,
        value,
        reason,
    }
}

/// The shared rule for one path component / one argv element.
fn check_component(
    kind: &'static str,
    s: &str,
    max: usize,
    allow_leading_dot: bool,
) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(err(kind, s, "empty"));
    }
    if s.len() > max {
        return Err(err(kind, s, "too long"));
    }
    if s == "." || s == ".." {
        return Err(err(kind, s, "`.` and `..` are not names"));
    }
    if s.starts_with('-') {
        return Err(err(kind, s, "must not start with `-`"));
    }
    if !allow_leading_dot && s.starts_with('.') {
        return Err(err(kind, s, "must not start with `.`"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')))
    {
        return Err(err(
            kind,
            s,
            match c {
                '/' => "must not contain `/`",
                '@' | '#' => "must not contain `@` or `#`",
                '\0' => "must not contain NUL",
                c if c.is_whitespace() => "must not contain whitespace",
                c if !c.is_ascii() => "must be ASCII",
                _ => "allowed characters are A-Z a-z 0-9 _ . : -",
            },
        ));
    }
    Ok(())
}

macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident, $kind:literal, $check:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const KIND: &'static str = $kind;

            pub fn new(s: impl Into<String>) -> Result<Self, NameError> {
                let s = s.into();
                let check: fn(&str) -> Result<(), NameError> = $check;
                check(&s)?;
                Ok($name(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<std::path::Path> for $name {
            fn as_ref(&self) -> &std::path::Path {
                std::path::Path::new(&self.0)
            }
        }

        impl AsRef<std::ffi::OsStr> for $name {
            fn as_ref(&self) -> &std::ffi::OsStr {
                std::ffi::OsStr::new(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                $name::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                $name::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = NameError;
            fn try_from(s: &str) -> Result<Self, NameError> {
                $name::new(s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }
    };
}

/// Maximum length of a [`VolumeName`].
pub const MAX_VOLUME_NAME: usize = 64;
/// Maximum length of a [`SnapshotName`].
pub const MAX_SNAPSHOT_NAME: usize = 200;
/// Maximum length of a full ZFS dataset or snapshot name (ZFS_MAX_DATASET_NAME_LEN - 1).
pub const MAX_DATASET_NAME: usize = 255;
/// Maximum length of a [`MetaKey`] (the ZFS user property `vzsnap:<key>` must stay ≤ 256).
pub const MAX_META_KEY: usize = 200;
/// Maximum length of a [`HoldTag`].
pub const MAX_HOLD_TAG: usize = 200;
/// Maximum length of a metadata value in bytes (the ZFS user property value limit).
pub const MAX_META_VALUE: usize = 8192;
/// The ZFS user-property namespace for snapshot metadata.
pub const META_PREFIX: &str = "vzsnap:";

string_newtype!(
    /// One per-VM volume (a dataset below the store root, or a btrfs subvolume directory):
    /// one path component of `[A-Za-z0-9_.:-]`, not starting with `-` or `.`, ≤ 64 bytes.
    /// Not starting with `.` keeps the store's own bookkeeping (`.clones`, `.vzsnap`) out of
    /// the volume namespace.
    VolumeName,
    "volume name",
    |s| check_component("volume name", s, MAX_VOLUME_NAME, false)
);

string_newtype!(
    /// A snapshot's name (the part after `@`): `[A-Za-z0-9_.:-]`, not starting with `-`,
    /// not `.`/`..`, ≤ 200 bytes.
    SnapshotName,
    "snapshot name",
    |s| check_component("snapshot name", s, MAX_SNAPSHOT_NAME, true)
);

string_newtype!(
    /// A metadata key, stored as ZFS user property `vzsnap:<key>` (ZFS allows only lowercase
    /// letters, digits and `: - . _` in user property names): `[a-z0-9_.-]`, starting with a
    /// letter or digit, ≤ 200 bytes.
    MetaKey,
    "metadata key",
    check_meta_key
);

string_newtype!(
    /// A hold tag (`zfs hold <tag>`; a file name on btrfs): same characters as a snapshot
    /// name, ≤ 200 bytes.
    HoldTag,
    "hold tag",
    |s| check_component("hold tag", s, MAX_HOLD_TAG, true)
);

string_newtype!(
    /// A full ZFS filesystem name `pool/a/b`, per zfs(8) but stricter: components of
    /// `[A-Za-z0-9_.:-]` (no spaces), none empty, `.` or `..`, none starting with `-`; the
    /// pool name starts with a letter; ≤ 255 bytes; no `@` or `#` (those are built from a
    /// [`SnapshotName`] by [`DatasetName::snapshot`]).
    DatasetName,
    "dataset name",
    check_dataset
);

fn check_meta_key(s: &str) -> Result<(), NameError> {
    const KIND: &str = "metadata key";
    if s.is_empty() {
        return Err(err(KIND, s, "empty"));
    }
    if s.len() > MAX_META_KEY {
        return Err(err(KIND, s, "too long"));
    }
    if !s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err(err(KIND, s, "must start with a-z or 0-9"));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
    {
        return Err(err(KIND, s, "allowed characters are a-z 0-9 _ . -"));
    }
    Ok(())
}

fn check_dataset(s: &str) -> Result<(), NameError> {
    const KIND: &str = "dataset name";
    if s.is_empty() {
        return Err(err(KIND, s, "empty"));
    }
    if s.len() > MAX_DATASET_NAME {
        return Err(err(KIND, s, "too long"));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(err(KIND, s, "the pool name must start with a letter"));
    }
    for part in s.split('/') {
        if part.is_empty() {
            return Err(err(
                KIND,
                s,
                "empty component (leading, trailing or double `/`)",
            ));
        }
        check_component(KIND, part, MAX_DATASET_NAME, true).map_err(|e| err(KIND, s, e.reason))?;
    }
    Ok(())
}

impl DatasetName {
    /// `self/child`, checked against the total length limit.
    pub fn child(&self, child: &str) -> Result<DatasetName, NameError> {
        DatasetName::new(format!("{}/{}", self.0, child))
    }

    /// The full snapshot name `self@snap`, checked against the total length limit.
    pub fn snapshot(&self, snap: &SnapshotName) -> Result<String, NameError> {
        let full = format!("{}@{}", self.0, snap.0);
        if full.len() > MAX_DATASET_NAME {
            return Err(err(
                "snapshot name",
                &full,
                "dataset@snapshot is longer than 255 bytes",
            ));
        }
        Ok(full)
    }

    /// The parent dataset, `None` for a pool.
    pub fn parent(&self) -> Option<DatasetName> {
        self.0
            .rsplit_once('/')
            .map(|(p, _)| DatasetName(p.to_string()))
    }

    /// The last component.
    pub fn base_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl MetaKey {
    /// The ZFS user property this key is stored as: `vzsnap:<key>`.
    pub fn zfs_property(&self) -> String {
        format!("{META_PREFIX}{}", self.0)
    }
}

/// Checks a metadata value: 1..=8192 bytes, no control characters (a tab or newline would
/// break the one-line-per-row, tab-separated `zfs -H` output), and not `-` (what `zfs get`
/// prints for an unset property).
pub fn check_meta_value(value: &str) -> Result<(), NameError> {
    const KIND: &str = "metadata value";
    if value.is_empty() {
        return Err(err(KIND, value, "empty"));
    }
    if value.len() > MAX_META_VALUE {
        return Err(err(KIND, value, "longer than 8192 bytes"));
    }
    if value == "-" {
        return Err(err(KIND, value, "`-` means unset in zfs output"));
    }
    if value.chars().any(char::is_control) {
        return Err(err(KIND, value, "contains a control character"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hostile() -> Vec<String> {
        vec![
            String::new(),
            "a b".into(),
            "-o".into(),
            "--help".into(),
            "../x".into(),
            "x/y".into(),
            "/abs".into(),
            "x@y".into(),
            "x#y".into(),
            ".".into(),
            "..".into(),
            "a\0b".into(),
            "a\nb".into(),
            "a\tb".into(),
            "zürich".into(),
            "a$(id)".into(),
            "a;b".into(),
            "a*".into(),
            "x".repeat(300),
        ]
    }

    #[test]
    fn hostile_names_are_rejected_everywhere() {
        for h in hostile() {
            assert!(VolumeName::new(h.clone()).is_err(), "volume {h:?}");
            assert!(SnapshotName::new(h.clone()).is_err(), "snapshot {h:?}");
            assert!(HoldTag::new(h.clone()).is_err(), "tag {h:?}");
            assert!(MetaKey::new(h.clone()).is_err(), "key {h:?}");
            if h != "x/y" {
                assert!(DatasetName::new(h.clone()).is_err(), "dataset {h:?}");
            }
        }
    }

    #[test]
    fn ordinary_names_are_accepted() {
        for v in ["100", "vm-100", "a_b.c:d", "clone-1"] {
            VolumeName::new(v).unwrap();
        }
        assert!(VolumeName::new(".clones").is_err());
        assert!(VolumeName::new("x".repeat(64)).is_ok());
        assert!(VolumeName::new("x".repeat(65)).is_err());
        for s in ["2026_11_01-02_00_03", ".hidden-ok", "a.b"] {
            SnapshotName::new(s).unwrap();
        }
        assert!(SnapshotName::new("x".repeat(200)).is_ok());
        assert!(SnapshotName::new("x".repeat(201)).is_err());
        for k in ["source", "archive-size", "backup-time", "a.b_c", "0x"] {
            MetaKey::new(k).unwrap();
        }
        for k in ["Source", "-x", ".x", "a:b"] {
            assert!(MetaKey::new(k).is_err(), "{k}");
        }
        assert_eq!(
            MetaKey::new("source").unwrap().zfs_property(),
            "vzsnap:source"
        );
    }

    #[test]
    fn dataset_names() {
        let d = DatasetName::new("tank/vzsnap").unwrap();
        assert_eq!(d.child("100").unwrap().as_str(), "tank/vzsnap/100");
        assert_eq!(d.child(".clones").unwrap().as_str(), "tank/vzsnap/.clones");
        assert_eq!(d.parent().unwrap().as_str(), "tank");
        assert_eq!(d.base_name(), "vzsnap");
        assert!(DatasetName::new("tank").unwrap().parent().is_none());
        for bad in [
            "tank/",
            "/tank",
            "tank//a",
            "tank/./a",
            "tank/../a",
            "tank/-o",
            "1tank",
            "tank/a b",
            "tank@s",
        ] {
            assert!(DatasetName::new(bad).is_err(), "{bad}");
        }
        assert!(d.child("..").is_err());
        let snap = SnapshotName::new("s1").unwrap();
        assert_eq!(d.snapshot(&snap).unwrap(), "tank/vzsnap@s1");
        let long = DatasetName::new(format!("t/{}", "a".repeat(250))).unwrap();
        assert!(
            long.snapshot(&SnapshotName::new("x".repeat(10)).unwrap())
                .is_err()
        );
    }

    #[test]
    fn meta_values() {
        check_meta_value("vzdump-qemu-100-2026_11_01-02_00_03.vma.zst").unwrap();
        check_meta_value("with spaces and = signs, ünïcödé").unwrap();
        for bad in ["", "-", "a\tb", "a\nb", "a\0b"] {
            assert!(check_meta_value(bad).is_err(), "{bad:?}");
        }
        assert!(check_meta_value(&"v".repeat(8193)).is_err());
    }

    #[test]
    fn serde_validates() {
        let v: VolumeName = serde_json::from_str("\"100\"").unwrap();
        assert_eq!(v.as_str(), "100");
        assert!(serde_json::from_str::<VolumeName>("\"../x\"").is_err());
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"100\"");
    }

    #[test]
    fn error_message_names_kind_and_escapes_value() {
        let e = SnapshotName::new("a\0b").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid snapshot name \"a\\0b\": must not contain NUL"
        );
    }
}
