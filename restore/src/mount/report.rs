//! What `vzsnap mount` found and did, per disk and partition (printed, `--json`, and kept in
//! the state file for `vzsnap mounts`). Field names are kebab-case and stable.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What happened to one partition (or a whole-disk filesystem).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemStatus {
    /// Mounted read-only at `mounted-at`.
    Mounted,
    /// Recognised (or not) and deliberately not mounted; `note` says why and what to do.
    NotMounted,
    /// A filesystem vzsnap mounts, but mounting failed; `note` has the reason.
    Failed,
}

/// `528 KiB`, `48 MiB`, `1.5 GiB`: binary units, at most one decimal.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 || v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// One partition or whole-disk filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ItemReport {
    /// Partition number (Linux numbering); `None` for a filesystem on the whole disk.
    pub partition: Option<u32>,
    /// Byte offset and size in the disk image.
    pub start: u64,
    pub size: u64,
    /// Partition type (GPT GUID name or MBR type name) when the table says.
    pub part_type: Option<String>,
    /// Detected filesystem (`ext4`, `vfat`, `LVM2_member`…), `None` if unrecognised.
    pub filesystem: Option<String>,
    pub label: Option<String>,
    pub uuid: Option<String>,
    pub status: ItemStatus,
    pub loop_device: Option<String>,
    pub mounted_at: Option<PathBuf>,
    pub note: Option<String>,
}

/// One disk of the backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DiskReport {
    /// VMA device name, e.g. `drive-scsi0`.
    pub disk: String,
    /// The image in the clone.
    pub image: PathBuf,
    pub size: u64,
    /// `gpt`, `mbr`, `whole-disk`, `none` (nothing recognised) or `error`.
    pub layout: String,
    pub items: Vec<ItemReport>,
    /// Why the disk could not be inspected (`layout` = `error`).
    pub error: Option<String>,
}

/// The whole mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MountReport {
    /// Mount id (= the clone's name); what `vzsnap mounts` lists.
    pub id: String,
    pub vmid: u32,
    pub snapshot: String,
    pub mountpoint: PathBuf,
    pub clone_path: PathBuf,
    pub disks: Vec<DiskReport>,
}

impl MountReport {
    pub fn items(&self) -> impl Iterator<Item = (&DiskReport, &ItemReport)> {
        self.disks
            .iter()
            .flat_map(|d| d.items.iter().map(move |i| (d, i)))
    }

    pub fn mounted(&self) -> usize {
        self.items()
            .filter(|(_, i)| i.status == ItemStatus::Mounted)
            .count()
    }

    pub fn failed(&self) -> usize {
        self.items()
            .filter(|(_, i)| i.status == ItemStatus::Failed)
            .count()
            + self.disks.iter().filter(|d| d.error.is_some()).count()
    }

    /// Human-readable lines, one per partition, then notes.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "VM {} backup {} at {}",
            self.vmid,
            self.snapshot,
            self.mountpoint.display()
        )];
        for d in &self.disks {
            let size = human_size(d.size);
            match &d.error {
                Some(e) => out.push(format!("  {} ({size}): cannot read: {e}", d.disk)),
                None => out.push(format!("  {} ({size}, {})", d.disk, d.layout)),
            }
            for i in &d.items {
                let what = match i.partition {
                    Some(n) => format!("part{n}"),
                    None => "disk".to_string(),
                };
                let fs = i.filesystem.as_deref().unwrap_or("unknown");
                let label = i
                    .label
                    .as_deref()
                    .map(|l| format!(" label {l:?}"))
                    .unwrap_or_default();
                let kind = i
                    .part_type
                    .as_deref()
                    .map(|t| format!(" [{t}]"))
                    .unwrap_or_default();
                let status = match i.status {
                    ItemStatus::Mounted => format!(
                        "mounted read-only at {}",
                        i.mounted_at
                            .as_ref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                    ),
                    ItemStatus::NotMounted => "not mounted".to_string(),
                    ItemStatus::Failed => "FAILED".to_string(),
                };
                out.push(format!("    {what}: {fs}{label}{kind}: {status}"));
                if let Some(n) = &i.note {
                    out.push(format!("      {n}"));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(528 * 1024), "528 KiB");
        assert_eq!(human_size(48 << 20), "48 MiB");
        assert_eq!(human_size(3 << 29), "1.5 GiB");
    }
}
