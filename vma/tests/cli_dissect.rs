//! Independent cross-check: archives made by our `vma create` are read by fox-it's
//! `dissect.archive` (a separate Python implementation, AGPL: installed into a test venv by
//! scripts/install-deps and only *executed* here, never vendored), which must see the same
//! configs and the same device bytes.

mod cli_util;

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use cli_util::*;

const PYTHON: &str = "/opt/vzsnap-test/venv/bin/python";

const READER: &str = r#"
import hashlib, sys
from dissect.archive.vma import VMA
with open(sys.argv[1], "rb") as fh:
    v = VMA(fh)
    for name, data in sorted(v.configs().items()):
        print("CFG", name, hashlib.sha256(data).hexdigest())
    for d in v.devices():
        data = d.open().read()
        print("DEV", d.id, d.name, d.size, len(data), hashlib.sha256(data).hexdigest())
"#;

fn dissect(archive: &Path) -> String {
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} is missing: run scripts/install-deps (it creates the venv with dissect.archive)"
    );
    let out = Command::new(PYTHON)
        .arg("-c")
        .arg(READER)
        .arg(archive)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dissect.archive failed (run scripts/install-deps if it is not installed): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn dissect_archive_reads_what_vma_create_writes() {
    let dir = tempfile::tempdir().unwrap();
    let a = disk(51, 5 * 65536 + 4096 * 3 + 17);
    let b = disk(52, 2 << 20);
    let mut c = vec![0u8; 64 * 65536];
    c[12345] = 9;
    let conf: &[u8] = b"bootdisk: scsi0\n#qmdump#map:scsi0:drive-scsi0:local-lvm:raw:\n";
    let fw: &[u8] = b"[OPTIONS]\nenable: 0\n";
    let archive = dir.path().join("vzdump-qemu-123-2026_01_02-03_04_05.vma");
    let mut args: Vec<OsString> = vec![
        "create".into(),
        archive.clone().into(),
        "-c".into(),
        put(dir.path(), "qemu-server.conf", conf).into(),
        "-c".into(),
        put(dir.path(), "qemu-server.fw", fw).into(),
    ];
    let devs = [
        ("drive-scsi0", &a),
        ("drive-virtio1", &b),
        ("drive-efidisk0", &c),
    ];
    for (n, d) in devs {
        let src = put(dir.path(), &format!("{n}.raw"), d);
        args.push("-d".into());
        args.push(format!("format=raw:{n}={}", src.display()).into());
    }
    run(&args).ok();

    let mut want = format!(
        "CFG qemu-server.conf {}\nCFG qemu-server.fw {}\n",
        sha256(conf),
        sha256(fw)
    );
    for (i, (n, d)) in devs.iter().enumerate() {
        want.push_str(&format!(
            "DEV {} {n} {} {} {}\n",
            i + 1,
            d.len(),
            d.len(),
            sha256(d)
        ));
    }
    assert_eq!(dissect(&archive), want);
}
