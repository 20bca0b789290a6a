//! Read-only loop devices over a byte range of an image file, via `losetup` (through
//! [`store::cmd::Cmd`]), and the kernel's view of existing loop devices (sysfs).
//!
//! Why by offset and size limit rather than `--partscan`: the kernel does not have to parse
//! the guest's partition table (some kernels cannot for loop devices at all), and the device
//! exposes exactly one partition, read-only.

use std::path::{Path, PathBuf};

use store::cmd::Cmd;

use crate::error::RestoreError;

/// An attached loop device as sysfs describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopInfo {
    /// `/dev/loopN`
    pub device: String,
    pub backing_file: PathBuf,
    pub offset: u64,
    /// 0 = up to the end of the file.
    pub sizelimit: u64,
    pub read_only: bool,
}

/// Pure: the path in `/sys/block/loopN/loop/backing_file` (a trailing newline, and
/// ` (deleted)` when the file was unlinked, are not part of it).
pub fn parse_backing_file(s: &str) -> PathBuf {
    let s = s.strip_suffix('\n').unwrap_or(s);
    PathBuf::from(s.strip_suffix(" (deleted)").unwrap_or(s))
}

/// Whether `dev` is a loop device path as losetup prints it (`/dev/loop<N>`).
pub fn is_loop_device_path(dev: &str) -> bool {
    dev.strip_prefix("/dev/loop")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}

/// Every loop device with a backing file.
pub fn list_loops() -> std::io::Result<Vec<LoopInfo>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/sys/block")? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        let dir = entry.path();
        // Detached devices have no backing_file; the device may also vanish meanwhile.
        let Ok(backing) = std::fs::read_to_string(dir.join("loop/backing_file")) else {
            continue;
        };
        let num = |f: &str| -> u64 {
            std::fs::read_to_string(dir.join(f))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0)
        };
        out.push(LoopInfo {
            device: format!("/dev/{name}"),
            backing_file: parse_backing_file(&backing),
            offset: num("loop/offset"),
            sizelimit: num("loop/sizelimit"),
            read_only: num("ro") == 1,
        });
    }
    out.sort_by(|a, b| a.device.cmp(&b.device));
    Ok(out)
}

/// Makes sure the loop driver is there. Normally opening `/dev/loop-control` loads it (the
/// node is created at boot from the module's alias), but minimal systems (containers, rescue
/// or test VMs) may have neither the node nor the module loaded; `modprobe loop` fixes both.
/// A failure is not an error here: losetup then reports what is wrong.
pub fn ensure_loop_driver() {
    if !Path::new("/dev/loop-control").exists()
        && let Err(e) = Cmd::new("modprobe").arg("loop").run()
    {
        tracing::warn!("/dev/loop-control is missing and `modprobe loop` failed: {e}");
    }
}

/// Attaches `size` bytes of `image` from byte `offset` as a new read-only loop device.
pub fn attach_read_only(image: &Path, offset: u64, size: u64) -> Result<String, RestoreError> {
    ensure_loop_driver();
    let out = Cmd::new("losetup")
        .args([
            "--find",
            "--show",
            "--read-only",
            "--offset",
            &offset.to_string(),
            "--sizelimit",
            &size.to_string(),
        ])
        .arg(image)
        .run()?;
    let dev = out.stdout.trim().to_string();
    if !is_loop_device_path(&dev) {
        return Err(RestoreError::Refused {
            what: format!("losetup output {dev:?}"),
            reason: "not a /dev/loopN path".into(),
        });
    }
    Ok(dev)
}

/// Detaches a loop device. One that is no longer bound (ENXIO: detached meanwhile, or being
/// auto-cleared by the kernel after its last user went away) counts as detached: `Ok(false)`.
pub fn detach(device: &str) -> Result<bool, RestoreError> {
    if !is_loop_device_path(device) {
        return Err(RestoreError::Refused {
            what: device.to_string(),
            reason: "not a /dev/loopN path".into(),
        });
    }
    match Cmd::new("losetup").args(["--detach", device]).run() {
        Ok(_) => Ok(true),
        Err(e)
            if e.stderr()
                .is_some_and(|s| s.contains("No such device or address")) =>
        {
            tracing::debug!("{device} was already detached");
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backing_file_text() {
        assert_eq!(
            parse_backing_file("/tank/x/disk-drive-scsi0.raw\n"),
            Path::new("/tank/x/disk-drive-scsi0.raw")
        );
        assert_eq!(
            parse_backing_file("/a b/c (deleted)\n"),
            Path::new("/a b/c")
        );
    }

    #[test]
    fn loop_paths() {
        assert!(is_loop_device_path("/dev/loop0"));
        assert!(is_loop_device_path("/dev/loop123"));
        for bad in [
            "/dev/loop",
            "/dev/loop1p2",
            "/dev/sda",
            "loop0",
            "/dev/loop0 ",
            "/dev/loop-control",
        ] {
            assert!(!is_loop_device_path(bad), "{bad}");
        }
    }
}
