//! Which config and device names `vma extract` may turn into file names.
//!
//! The names come from the archive, i.e. from whoever made the file. C `vma` joins them to
//! the target directory unchecked (`<dir>/<config name>`, `<dir>/tmp-disk-<devname>.raw`), so
//! a hostile archive could write anywhere (`../../etc/...`). We refuse, before creating
//! anything, any name that is empty, contains `/`, `..` or NUL, or contains control
//! characters (a newline in a device name would also forge extra `DEV:` lines for
//! qemu-server, which parses our stdout line by line).

use vma::Header;

/// Why a name is unsafe, or None if it may be used as (part of) a file name.
pub fn unsafe_reason(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.contains('/') {
        Some("contains '/'")
    } else if name.contains("..") {
        Some("contains '..'")
    } else if name.contains('\0') {
        Some("contains NUL")
    } else if name.chars().any(char::is_control) {
        Some("contains control characters")
    } else if name == "." {
        Some("is '.'")
    } else {
        None
    }
}

/// Checks every config and device name of the header; the error names the first bad one.
pub fn check_header(source: &str, h: &Header) -> Result<(), String> {
    for c in &h.configs {
        if let Some(why) = unsafe_reason(&c.name) {
            return Err(format!(
                "{source}: config name {:?} {why}; refusing to extract it (it could write outside the target directory)",
                c.name
            ));
        }
    }
    for d in &h.devices {
        if let Some(why) = unsafe_reason(&d.name) {
            return Err(format!(
                "{source}: device name {:?} (dev_id {}) {why}; refusing to extract it (it could write outside the target directory)",
                d.name, d.id
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_names() {
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "/etc/passwd",
            "a\0b",
            "a\nDEV: x",
            "x..y",
        ] {
            assert!(unsafe_reason(bad).is_some(), "{bad:?}");
        }
        for good in [
            "qemu-server.conf",
            "qemu-server.fw",
            "drive-scsi0",
            "drive-tpmstate0-backup",
            "a.b",
        ] {
            assert_eq!(unsafe_reason(good), None, "{good}");
        }
    }
}
