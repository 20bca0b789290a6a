//! `vzsnap mount` / `mounts` / `umount` end to end through the binary and its config
//! (`[mount] root` and `state_dir`): a VM whose disk is a whole-disk ext4 filesystem (made with
//! `mkfs.ext4 -d`, no mount needed), two days; day 1 is mounted, read, listed, and undone.

use std::collections::BTreeMap;
use std::path::Path;

use store::cmd::Cmd;
use store::layout::{self, Manifest, ManifestDevice, SourceFile, VmaIdentity};
use store::{MetaKey, SnapshotName, Store, VolumeName};

use crate::support::{Backend, Setup, json, run_ok, vzsnap};

const VMID: u32 = 104;

/// One day: an ext4 image holding `hello.txt` = `text`, stored and snapshotted as ingest does.
fn store_day(store: &dyn Store, work: &Path, snap: &str, text: &str) {
    let vol = VolumeName::new(VMID.to_string()).unwrap();
    let dir = store.ensure_volume(&vol, &[]).unwrap();
    let src = work.join(format!("src-{snap}"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("hello.txt"), text).unwrap();
    let img = dir.join("disk-drive-scsi0.raw");
    let _ = std::fs::remove_file(&img);
    std::fs::File::create(&img)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    Cmd::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "cli-test", "-d"])
        .arg(&src)
        .arg(&img)
        .run()
        .unwrap();
    std::fs::write(
        dir.join("qemu-server.conf"),
        "name: cli\n#qmdump#map:scsi0:drive-scsi0:local:raw:\n",
    )
    .unwrap();
    Manifest {
        format: layout::MANIFEST_FORMAT,
        vmid: VMID,
        backup_time: 1_793_500_000,
        source: SourceFile {
            name: format!("vzdump-qemu-{VMID}-{snap}.vma.zst"),
            size: 1,
            compression: "zstd".into(),
        },
        vma: VmaIdentity {
            uuid: layout::format_uuid(&[9; 16]),
            ctime: 1_793_500_000,
        },
        devices: vec![ManifestDevice {
            dev_id: 1,
            name: "drive-scsi0".into(),
            size: 16 << 20,
            file: "disk-drive-scsi0.raw".into(),
        }],
        configs: vec!["qemu-server.conf".into()],
    }
    .write_to(&dir)
    .unwrap();
    let mut meta = BTreeMap::new();
    meta.insert(
        MetaKey::new("source").unwrap(),
        format!("vzdump-qemu-{VMID}-{snap}.vma.zst"),
    );
    store
        .snapshot(&vol, &SnapshotName::new(snap).unwrap(), &meta)
        .unwrap();
}

fn mount_list_umount(b: &Backend) {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("mounts");
    let state = work.path().join("state");
    let setup = Setup::new(
        &b.spec(),
        &format!(
            "\n[mount]\nroot = \"{}\"\nstate_dir = \"{}\"\n",
            root.display(),
            state.display()
        ),
    );
    store_day(
        b.store(),
        work.path(),
        "2026_11_01-01_00_00",
        "hello from day 1\n",
    );
    store_day(
        b.store(),
        work.path(),
        "2026_11_02-01_00_00",
        "hello from day 2\n",
    );
    let cli = |args: &[&str]| {
        let mut c = vzsnap();
        c.arg("--config").arg(&setup.config).args(args);
        c
    };
    // A failing test must not leave mounts and loop devices behind (they would keep the
    // test's btrfs busy): undo everything on the way out, also after a panic.
    struct UmountAll(std::path::PathBuf);
    impl Drop for UmountAll {
        fn drop(&mut self) {
            let _ = vzsnap()
                .arg("--config")
                .arg(&self.0)
                .args(["umount", "--all"])
                .output();
        }
    }
    let _cleanup = UmountAll(setup.config.clone());

    let report = json(&run_ok(&mut cli(&["mount", "104", "2026-11-01", "--json"])));
    let item = &report["disks"][0]["items"][0];
    assert_eq!(report["disks"][0]["layout"], "whole-disk");
    assert_eq!(item["filesystem"], "ext4");
    assert_eq!(item["label"], "cli-test");
    assert_eq!(item["status"], "mounted", "{report}");
    let at = Path::new(item["mounted-at"].as_str().unwrap());
    assert_eq!(
        at,
        root.canonicalize()
            .unwrap()
            .join("104-2026_11_01-01_00_00/drive-scsi0/disk")
    );
    assert_eq!(
        std::fs::read_to_string(at.join("hello.txt")).unwrap(),
        "hello from day 1\n"
    );

    let mounts = json(&run_ok(&mut cli(&["mounts", "--json"])));
    assert_eq!(mounts["mounts"].as_array().unwrap().len(), 1);
    assert_eq!(mounts["mounts"][0]["vmid"], VMID);
    assert_eq!(mounts["mounts"][0]["live-mounts"], 1);
    assert_eq!(mounts["orphaned-clones"].as_array().unwrap().len(), 0);
    let text = String::from_utf8(run_ok(&mut cli(&["mounts"])).stdout).unwrap();
    assert!(
        text.contains("2026_11_01-01_00_00") && text.contains("active"),
        "{text}"
    );

    // Unknown disk: exit 2, nothing added.
    let out = cli(&["mount", "104", "latest", "--disk", "drive-virtio9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no disk \"drive-virtio9\""));
    assert_eq!(b.store().list_clones().unwrap().len(), 1);

    let undone = json(&run_ok(&mut cli(&["umount", "--all", "--json"])));
    assert_eq!(undone["undone"].as_array().unwrap().len(), 1, "{undone}");
    assert_eq!(undone["undone"][0]["clone-destroyed"], true);
    assert!(b.store().list_clones().unwrap().is_empty());
    assert!(!at.exists());
    let mounts = json(&run_ok(&mut cli(&["mounts", "--json"])));
    assert!(mounts["mounts"].as_array().unwrap().is_empty());
    let text = String::from_utf8(run_ok(&mut cli(&["umount", "--all"])).stdout).unwrap();
    assert_eq!(text, "nothing to undo\n");
}

backend_tests!(mount_list_umount);
