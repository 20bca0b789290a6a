//! `vzsnap list [VMID]`: the VMs in the store and, per VM, its backups: date, disks and
//! sizes, space written, source archive, held/protected.
//!
//! Exit codes: 0 listed; 2 store unreachable or the VM has no backups.

use clap::Args;
use restore::catalog::{BackupEntry, VmEntry, list_vm, list_vms};
use serde::Serialize;
use vma::vzdump::VmId;

use super::GlobalArgs;
use super::prune::{load_config, table, write_stdout};
use super::report::human_bytes;
use crate::exit::ExitCode;

#[derive(Debug, Args)]
#[command(after_help = "\
Columns:
  BACKUP    snapshot name = the backup's local time (what `vzsnap restore` and `mount` take)
  DISKS     the backup's disks (VMA device names) and their sizes
  WRITTEN   space the snapshot takes: bytes not shared with the previous snapshot
  ARCHIVE   size of the vzdump archive it was ingested from, and its compression
  FLAGS     held (cannot be pruned), protected (was protected in PVE)

JSON (--json): {\"vms\": [{\"vmid\", \"backups\": [{\"snapshot\", \"backup-time\", \"created\",
\"source\", \"archive-size\", \"compression\", \"disks\": [{\"dev-id\", \"name\", \"size\"}],
\"disk-bytes\", \"written\", \"referenced\", \"held\", \"protected\", \"manifest-error\"}]}]}
(times in epoch seconds, sizes in bytes; unknown values are null).")]
pub struct ListArgs {
    /// Only this VM.
    #[arg(value_name = "VMID")]
    pub vmid: Option<VmId>,
    /// Machine-readable output on stdout (stable field names, see below).
    #[arg(long)]
    pub json: bool,
    /// Store spec instead of [store] spec, e.g. `zfs:tank/vzsnap`.
    #[arg(long, value_name = "SPEC")]
    pub store: Option<String>,
}

/// `vzsnap list --json`.
#[derive(Debug, Serialize)]
pub struct ListOutput {
    pub vms: Vec<VmEntry>,
}

pub fn run(global: &GlobalArgs, args: ListArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(global, args.store.as_deref())?;
    let store = config.open_store()?;
    let vms = match args.vmid {
        Some(id) => vec![list_vm(store.as_ref(), id)?],
        None => list_vms(store.as_ref())?,
    };
    let out = ListOutput { vms };
    let text = if args.json {
        serde_json::to_string_pretty(&out)? + "\n"
    } else {
        render(&out)
    };
    write_stdout(text.as_bytes())?;
    Ok(ExitCode::Ok)
}

fn disks(b: &BackupEntry) -> String {
    if let Some(e) = &b.manifest_error {
        return format!("? ({e})");
    }
    b.disks
        .iter()
        .map(|d| format!("{} {}", d.name, human_bytes(d.size)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn flags(b: &BackupEntry) -> String {
    let mut f = Vec::new();
    if b.held {
        f.push("held");
    }
    if b.protected {
        f.push("protected");
    }
    f.join(",")
}

fn render(out: &ListOutput) -> String {
    if out.vms.is_empty() {
        return "no VMs in the store\n".to_string();
    }
    let mut s = String::new();
    for vm in &out.vms {
        let written: u64 = vm.backups.iter().map(|b| b.written).sum();
        s.push_str(&format!(
            "VM {}: {} backups, {} on disk\n",
            vm.vmid,
            vm.backups.len(),
            human_bytes(written)
        ));
        let rows: Vec<[String; 6]> = vm
            .backups
            .iter()
            .map(|b| {
                let archive = match (b.archive_size, &b.compression) {
                    (Some(n), Some(c)) => format!("{} {c}", human_bytes(n)),
                    (Some(n), None) => human_bytes(n),
                    _ => "?".into(),
                };
                [
                    b.snapshot.clone(),
                    disks(b),
                    human_bytes(b.written),
                    archive,
                    flags(b),
                    b.source.clone().unwrap_or_else(|| "?".into()),
                ]
            })
            .collect();
        s.push_str(&table(
            &["BACKUP", "DISKS", "WRITTEN", "ARCHIVE", "FLAGS", "SOURCE"],
            &rows,
        ));
    }
    s
}
