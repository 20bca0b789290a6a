//! `vma list`, `vma config`, help and option handling, against the real PVE sample and
//! archives of our own.

mod cli_util;

use cli_util::*;

const HELP: &str = "usage: vma command [command options]

vma list <filename>
vma config <filename> [-c <config>]
vma create <filename> [-c <config>] [-d format=<format>:<device name>=<path> [-d ...]]
vma extract <filename> [-d <drive-list>] [-r <fifo>] <targetdir>
vma verify <filename> [-v]
";

#[test]
fn list_real_pve_sample() {
    let r = run(&[std::ffi::OsString::from("list"), sample().into()]).ok();
    assert_eq!(
        r.stdout,
        "CFG: size: 417 name: qemu-server.conf\n\
         DEV: dev_id=1 size: 10737418240 devname: drive-scsi0\n\
         CTIME: Sun Oct 31 11:43:42 2021\n"
    );
    assert_eq!(r.stderr, "");
}

#[test]
fn list_from_stdin_pipe_compressed() {
    let gz = std::fs::read(sample()).unwrap();
    let r = run_stdin(&["list", "-"], gz).ok();
    assert!(
        r.stdout
            .starts_with("CFG: size: 417 name: qemu-server.conf\n")
    );
    assert!(r.stdout.ends_with("CTIME: Sun Oct 31 11:43:42 2021\n"));
}

#[test]
fn ctime_is_local_time_from_tz() {
    let s = sample();
    let out = vma()
        .env("TZ", "Europe/Vienna")
        .arg("list")
        .arg(&s)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    // 11:43:42 UTC on Oct 31 2021 is 12:43:42 CET (DST ended that morning).
    assert!(
        stdout.ends_with("CTIME: Sun Oct 31 12:43:42 2021\n"),
        "{stdout}"
    );
    let out = vma()
        .env("TZ", "America/New_York")
        .args(["list".as_ref(), s.as_os_str()])
        .output()
        .unwrap();
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .ends_with("CTIME: Sun Oct 31 07:43:42 2021\n")
    );
}

#[test]
fn list_vmstate_and_configs_in_slot_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = lib_archive(
        &[
            ("qemu-server.conf", b"memory: 512\n"),
            ("qemu-server.fw", b""),
        ],
        &[
            ("drive-virtio0", &disk(1, 70_000)),
            ("vmstate", &disk(2, 65536)),
        ],
        false,
        1_706_972_431,
    );
    let p = put(dir.path(), "a.vma", &a);
    let r = run(&["list".as_ref(), p.as_os_str()]).ok();
    assert_eq!(
        r.stdout,
        "CFG: size: 12 name: qemu-server.conf\n\
         CFG: size: 0 name: qemu-server.fw\n\
         DEV: dev_id=1 size: 70000 devname: drive-virtio0\n\
         VMSTATE: dev_id=2 memory: 65536\n\
         CTIME: Sat Feb  3 15:00:31 2024\n"
    );
}

#[test]
fn config_prints_raw_bytes_and_missing_is_255() {
    let s = sample();
    let r = run(&["config".as_ref(), s.as_os_str()]).ok();
    assert_eq!(r.raw_stdout.len(), 417);
    assert!(
        r.stdout
            .ends_with("#qmdump#map:scsi0:drive-scsi0:local-lvm:raw:\n")
    );
    // Option after the positional (GNU permutation) and attached value.
    let r2 = run(&[
        "config".as_ref(),
        s.as_os_str(),
        "-c".as_ref(),
        "qemu-server.conf".as_ref(),
    ])
    .ok();
    assert_eq!(r2.raw_stdout, r.raw_stdout);
    let r3 = run(&[
        "config".as_ref(),
        "-cqemu-server.conf".as_ref(),
        s.as_os_str(),
    ])
    .ok();
    assert_eq!(r3.raw_stdout, r.raw_stdout);

    let miss = run(&[
        "config".as_ref(),
        s.as_os_str(),
        "-c".as_ref(),
        "qemu-server.fw".as_ref(),
    ]);
    assert_eq!(miss.code(), 255);
    assert_eq!(
        miss.stderr,
        "unable to find configuration data 'qemu-server.fw'\n"
    );
    assert_eq!(miss.stdout, "");
}

#[test]
fn config_from_stdin_like_pve_storage() {
    let gz = std::fs::read(sample()).unwrap();
    let plain = tool("gzip", &["-dc"], &gz);
    let r = run_stdin(&["config", "-"], plain).ok();
    assert_eq!(r.raw_stdout.len(), 417);
}

#[test]
fn help_and_usage_errors_match_pve() {
    for args in [
        &[][..],
        &["-h"],
        &["--help"],
        &["bogus"],
        &["list"],
        &["list", "-h"],
        &["list", "a", "b"],
        &["config"],
        &["verify"],
        &["extract", "only-one"],
        &["create"],
    ] {
        let r = run(args);
        assert_eq!(r.code(), 1, "{args:?}");
        assert_eq!(r.stdout, HELP, "{args:?}");
    }
    let r = run(&["list", "-x", "file"]);
    assert_eq!(r.code(), 1);
    assert_eq!(r.stdout, HELP);
    assert_eq!(r.stderr, "list: invalid option -- 'x'\n");
    let r = run(&["extract", "a", "b", "-r"]);
    assert_eq!(r.code(), 1);
    assert_eq!(r.stderr, "extract: option requires an argument -- 'r'\n");
}

#[test]
fn unreadable_inputs_fail_with_one_line() {
    run(&["list", "/nonexistent/x.vma"]).fails_with(&["can't open file /nonexistent/x.vma"]);
    let dir = tempfile::tempdir().unwrap();
    let p = put(
        dir.path(),
        "notvma",
        b"this is not a vma archive at all....",
    );
    run(&["list".as_ref(), p.as_os_str()]).fails_with(&["not a vma file - wrong magic number"]);
    let bz = put(dir.path(), "x.vma.bz2", b"BZh91AY&SYgarbage");
    run(&["list".as_ref(), bz.as_os_str()])
        .fails_with(&["bzip2-compressed input is not supported"]);
}

#[test]
fn closed_stdout_ends_quietly() {
    // `vma config big | head -c1`: our stdout closes early; no error message, like SIGPIPE.
    let dir = tempfile::tempdir().unwrap();
    let cfg = vec![b'x'; 60_000];
    let a = lib_archive(&[("qemu-server.conf", &cfg)], &[], false, 0);
    let p = put(dir.path(), "a.vma", &a);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = vma()
        .args(["config".as_ref(), p.as_os_str()])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(141), "{:?}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}
