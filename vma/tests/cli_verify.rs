//! `vma verify`: the reader's checks plus completeness (stricter than C, which does not check
//! that every cluster is present), `-v` output.

mod cli_util;

use std::ffi::OsString;

use cli_util::*;

#[test]
fn real_sample_is_reported_incomplete() {
    let r = run(&["verify".into(), OsString::from(sample())]).fails_with(&[
        "verify failed - ",
        "dissect-hypervisor_test.vma.gz: byte 538112: detected missing clusters: stream drive-scsi0 (dev_id 1): 163724 clusters missing: 23-31, 55-63, 104-111, 120-127, 136-143, 151-159, 167-163839",
    ]);
    assert_eq!(r.stdout, "");
    // -v first lists the header (exactly like `vma list`).
    let r = run(&["verify".into(), "-v".into(), OsString::from(sample())]);
    assert_eq!(r.code(), 255);
    assert_eq!(
        r.stdout,
        "CFG: size: 417 name: qemu-server.conf\n\
         DEV: dev_id=1 size: 10737418240 devname: drive-scsi0\n\
         CTIME: Sun Oct 31 11:43:42 2021\n"
    );
}

#[test]
fn complete_archive_verifies_quietly_and_verbosely() {
    let dir = tempfile::tempdir().unwrap();
    let a = disk(7, 40 * 65536);
    let b = vec![0u8; 20 * 65536 + 1000];
    let arch = lib_archive(
        &[("qemu-server.conf", b"a\n")],
        &[("drive-scsi0", &a), ("drive-scsi1", &b)],
        true,
        0,
    );
    let p = put(dir.path(), "ok.vma", &arch);
    let r = run(&["verify".into(), p.clone().into_os_string()]).ok();
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));

    let r = run(&["verify".into(), p.into_os_string(), "-v".into()]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "CFG: size: 2 name: qemu-server.conf");
    assert_eq!(lines[1], "DEV: dev_id=1 size: 2621440 devname: drive-scsi0");
    assert_eq!(lines[2], "DEV: dev_id=2 size: 1311720 devname: drive-scsi1");
    assert_eq!(lines[3], "CTIME: Thu Jan  1 00:00:00 1970");
    // 61 clusters read against C's floor-based count of 60: the last line says 101%.
    let progress: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("progress "))
        .collect();
    assert!(progress.len() >= 60, "{}", r.stdout);
    assert!(
        progress
            .last()
            .unwrap()
            .starts_with("progress 101% (read 3997696 bytes, duration ")
    );
    let total = lines
        .iter()
        .find(|l| l.starts_with("total bytes read"))
        .unwrap();
    assert!(
        total.starts_with("total bytes read 3997696, sparse bytes "),
        "{total}"
    );
}

#[test]
fn truncated_at_an_extent_boundary_fails_verify_but_c_would_pass() {
    let dir = tempfile::tempdir().unwrap();
    let a = disk(8, 100 * 65536);
    let arch = lib_archive(&[], &[("drive-scsi0", &a)], false, 0);
    let ext = extent_offsets(&arch);
    assert_eq!(ext.len(), 2, "58 + 42 clusters");
    let p = put(dir.path(), "cut.vma", &arch[..ext[1]]);
    run(&["verify".into(), p.into_os_string()])
        .fails_with(&["verify failed - ", "42 clusters missing: 58-99"]);
}
