//! `vma extract`: round trips through `vma create`, out-of-order archives, vmstate, the `-d`
//! filter, the real (incomplete) PVE sample, and the `-r` fifo protocol played the way
//! qemu-server plays it.

mod cli_util;

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cli_util::*;

fn os(p: &Path) -> OsString {
    p.as_os_str().to_owned()
}

/// Expected `-v` totals, computed independently from the source data: every cluster is read;
/// zero bytes are the all-zero 4 KiB blocks (blocks past the device end are zero-masked),
/// counted up to the device size rounded down to 512 as C does.
fn expected_totals(devs: &[&[u8]]) -> (u64, u64) {
    let (mut read, mut zero) = (0u64, 0u64);
    for d in devs {
        let size = d.len() as u64;
        let limit = size - size % 512;
        for c in 0..d.len().div_ceil(65536) {
            read += 65536;
            for j in 0..16u64 {
                let start = c as u64 * 65536 + j * 4096;
                let stored = start < size && {
                    let e = (start + 4096).min(size) as usize;
                    d[start as usize..e].iter().any(|&b| b != 0)
                };
                if !stored {
                    let end = (start + 4096).min(limit);
                    if end > start {
                        zero += end - start;
                    }
                }
            }
        }
    }
    (read, zero)
}

fn create(dir: &Path, name: &str, devs: &[(&str, &[u8])], configs: &[(&str, &[u8])]) -> PathBuf {
    let archive = dir.join(name);
    let mut args: Vec<OsString> = vec!["create".into(), os(&archive)];
    for (n, d) in configs {
        args.push("-c".into());
        args.push(os(&put(dir, n, d)));
    }
    for (n, d) in devs {
        let src = put(dir, &format!("src-{n}.img"), d);
        args.push("-d".into());
        args.push(format!("format=raw:{n}={}", src.display()).into());
    }
    run(&args).ok();
    archive
}

#[test]
fn round_trip_through_create_and_extract() {
    let dir = tempfile::tempdir().unwrap();
    let a = disk(1, (1 << 20) + 12345);
    let mut b = vec![0u8; 3 << 20];
    b[100_000..100_100].fill(7);
    b[(3 << 20) - 1] = 1;
    let c = disk(3, 2 * 65536);
    let conf = b"memory: 2048\nscsi0: local-lvm:vm-100-disk-0,size=1M\n#qmdump#map:scsi0:drive-scsi0:local-lvm:raw:\n";
    let archive = create(
        dir.path(),
        "vzdump-qemu-100-2026_11_01-02_00_03.vma",
        &[
            ("drive-scsi0", &a),
            ("drive-virtio1", &b),
            ("drive-efidisk0", &c),
        ],
        &[
            ("qemu-server.conf", conf),
            ("qemu-server.fw", b"[OPTIONS]\nenable: 1\n"),
        ],
    );
    let target = dir.path().join("out");
    // -v after the positional: GNU permutation.
    let r = run(&["extract".into(), os(&archive), "-v".into(), os(&target)]).ok();
    let t = target.display();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!("DEVINFO {t}/tmp-disk-drive-scsi0.raw {}", a.len())
    );
    assert_eq!(
        lines[1],
        format!("DEVINFO {t}/tmp-disk-drive-virtio1.raw {}", b.len())
    );
    assert_eq!(
        lines[2],
        format!("DEVINFO {t}/tmp-disk-drive-efidisk0.raw {}", c.len())
    );
    let progress: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("progress "))
        .collect();
    assert!(!progress.is_empty());
    for p in &progress {
        let rest = p.strip_prefix("progress ").unwrap();
        let (pct, rest) = rest.split_once("% (read ").unwrap();
        pct.parse::<u64>().unwrap();
        let (bytes, rest) = rest.split_once(" bytes, duration ").unwrap();
        assert_eq!(bytes.parse::<u64>().unwrap() % 65536, 0);
        assert!(
            rest.strip_suffix(" sec)").unwrap().parse::<u64>().is_ok(),
            "{p}"
        );
    }
    let (read, zero) = expected_totals(&[&a, &b, &c]);
    let totals = lines
        .iter()
        .find(|l| l.starts_with("total bytes read"))
        .unwrap();
    assert!(
        totals.starts_with(&format!("total bytes read {read}, sparse bytes {zero} (")),
        "{totals} vs {read}/{zero}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("space reduction due to 4K zero blocks ")
    );

    for (n, d) in [
        ("drive-scsi0", &a),
        ("drive-virtio1", &b),
        ("drive-efidisk0", &c),
    ] {
        let p = target.join(format!("disk-{n}.raw"));
        let got = std::fs::read(&p).unwrap();
        assert_eq!(got.len(), d.len(), "{n}: exact device size");
        assert!(got == *d, "{n}: bytes differ");
        assert!(!target.join(format!("tmp-disk-{n}.raw")).exists());
    }
    // The mostly-zero disk stays sparse.
    assert!(allocated(&target.join("disk-drive-virtio1.raw")) < (1 << 20));
    assert_eq!(
        std::fs::read(target.join("qemu-server.conf")).unwrap(),
        conf
    );
    assert_eq!(
        std::fs::read(target.join("qemu-server.fw")).unwrap(),
        b"[OPTIONS]\nenable: 1\n"
    );
}

#[test]
fn out_of_order_interleaved_archive() {
    let dir = tempfile::tempdir().unwrap();
    let a = disk(11, 5 * 65536 + 4096 + 100);
    let b = disk(12, 9 * 65536);
    let arch = lib_archive(
        &[("qemu-server.conf", b"x\n")],
        &[("drive-scsi0", &a), ("drive-scsi1", &b)],
        true,
        0,
    );
    let p = put(dir.path(), "shuffled.vma", &arch);
    let target = dir.path().join("t");
    run(&["extract".into(), os(&p), os(&target)]).ok();
    assert!(std::fs::read(target.join("disk-drive-scsi0.raw")).unwrap() == a);
    assert!(std::fs::read(target.join("disk-drive-scsi1.raw")).unwrap() == b);
}

#[test]
fn vmstate_is_written_to_vmstate_bin() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(5, 65536 * 2);
    let mut state = disk(6, 65536 * 3);
    state[..4096].fill(0); // a zero block inside the RAM stream
    let arch = lib_archive(&[], &[("drive-ide0", &d), ("vmstate", &state)], false, 0);
    let p = put(dir.path(), "s.vma", &arch);
    let target = dir.path().join("t");
    let r = run(&["extract".into(), os(&p), os(&target)]).ok();
    assert_eq!(
        r.stdout.lines().count(),
        1,
        "one DEVINFO line: {}",
        r.stdout
    );
    assert!(std::fs::read(target.join("vmstate.bin")).unwrap() == state);
    assert!(std::fs::read(target.join("disk-drive-ide0.raw")).unwrap() == d);
}

#[test]
fn target_dir_must_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let arch = lib_archive(&[], &[("drive-scsi0", &disk(1, 65536))], false, 0);
    let p = put(dir.path(), "a.vma", &arch);
    let target = dir.path().join("exists");
    std::fs::create_dir(&target).unwrap();
    run(&["extract".into(), os(&p), os(&target)])
        .fails_with(&["unable to create target directory", "exists"]);
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
}

#[test]
fn real_sample_is_incomplete_and_leaves_no_disk() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("t");
    let r = run(&["extract".into(), sample().into(), os(&target)]).fails_with(&[
        "restore failed - ",
        "dissect-hypervisor_test.vma.gz: byte 538112: detected missing clusters: stream drive-scsi0 (dev_id 1): 163724 clusters missing: 23-31, 55-63",
    ]);
    assert_eq!(
        r.stdout,
        format!(
            "DEVINFO {}/tmp-disk-drive-scsi0.raw 10737418240\n",
            target.display()
        )
    );
    assert_no_complete_disks(&target);
    // What was present was written: cluster 0 of the sample (sha256 from the fixture README).
    let f = std::fs::File::open(target.join("tmp-disk-drive-scsi0.raw")).unwrap();
    let mut c0 = vec![0u8; 65536];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut c0, 0).unwrap();
    assert_eq!(
        sha256(&c0),
        "cf4adcf1933a8c9a0a3ff5588e1400e6beea8a32212b3a35ba08c7b08e4e6b1f"
    );
}

#[test]
fn drive_filter_restores_only_listed_devices() {
    let dir = tempfile::tempdir().unwrap();
    let a = disk(1, 3 * 65536);
    let b = disk(2, 65536 + 512);
    let c = disk(3, 65536);
    let arch = lib_archive(
        &[],
        &[
            ("drive-scsi0", &a),
            ("drive-scsi1", &b),
            ("drive-scsi2", &c),
        ],
        true,
        0,
    );
    let p = put(dir.path(), "a.vma", &arch);
    let target = dir.path().join("t");
    // Only the last -d counts, as in C.
    let r = run(&[
        "extract".into(),
        "-d".into(),
        "drive-scsi0".into(),
        os(&p),
        "-d".into(),
        "drive-scsi2,drive-scsi1".into(),
        os(&target),
    ])
    .ok();
    assert_eq!(r.stdout.lines().count(), 2);
    assert!(!target.join("disk-drive-scsi0.raw").exists());
    assert!(std::fs::read(target.join("disk-drive-scsi1.raw")).unwrap() == b);
    assert!(std::fs::read(target.join("disk-drive-scsi2.raw")).unwrap() == c);
}

/// Plays qemu-server: reads our stdout until `CTIME:`, parses the `DEV:` lines with
/// qemu-server's regex, writes the map into the fifo, then `done`.
struct Restore {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

fn start_restore(archive: &Path, fifo: &Path, target: &Path, extra: &[&str]) -> Restore {
    let st = Command::new("mkfifo").arg(fifo).status().unwrap();
    assert!(st.success());
    let mut child = vma()
        .arg("extract")
        .args(extra)
        .arg("-r")
        .arg(fifo)
        .arg(archive)
        .arg(target)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    Restore { child, lines: rx }
}

/// qemu-server's `^DEV:\sdev_id=(\d+)\ssize:\s(\d+)\sdevname:\s(\S+)$`.
fn parse_dev(l: &str) -> Option<(u32, u64, String)> {
    let r = l.strip_prefix("DEV: dev_id=")?;
    let (id, r) = r.split_once(" size: ")?;
    let (size, name) = r.split_once(" devname: ")?;
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    Some((id.parse().ok()?, size.parse().ok()?, name.to_owned()))
}

fn header_phase(r: &Restore) -> Vec<(u32, u64, String)> {
    let mut devs = Vec::new();
    loop {
        let l = r
            .lines
            .recv_timeout(Duration::from_secs(60))
            .expect("got timeout reading VMA header - corrupted? (no CTIME line before the fifo was opened)");
        if let Some(d) = parse_dev(&l) {
            devs.push(d);
        }
        if l.starts_with("CTIME: ") {
            return devs;
        }
    }
}

fn finish_restore(r: Restore) -> Run {
    let out = r.child.wait_with_output().unwrap();
    let mut rest = String::new();
    while let Ok(l) = r.lines.recv_timeout(Duration::from_secs(5)) {
        rest.push_str(&l);
        rest.push('\n');
    }
    Run {
        status: out.status,
        stdout: rest,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        raw_stdout: Vec::new(),
    }
}

#[test]
fn fifo_map_protocol_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let a = disk(21, 4 * 65536 + 8192);
    let b = disk(22, 6 * 65536);
    let c = disk(23, 65536);
    let conf = b"#qmdump#map:scsi0:drive-scsi0:local-lvm:raw:\n";
    let arch = lib_archive(
        &[("qemu-server.conf", conf)],
        &[
            ("drive-scsi0", &a),
            ("drive-virtio1", &b),
            ("drive-sata2", &c),
        ],
        true,
        1_635_680_622,
    );
    let p = put(dir.path(), "a.vma", &arch);
    // Targets: an exact-size image full of 0xff with write-zeros (1:), and a 1 MiB larger one
    // full of 0xee without (0:), whose zero blocks must keep the old bytes.
    let t1 = put(dir.path(), "vm-100-disk-0.raw", &vec![0xff; a.len()]);
    let t2 = put(
        dir.path(),
        "vm-100-disk-1.raw",
        &vec![0xee; b.len() + (1 << 20)],
    );
    let fifo = dir.path().join("vzdumptmp.fifo");
    let target = dir.path().join("vzdumptmp");
    let r = start_restore(&p, &fifo, &target, &["-v"]);
    let devs = header_phase(&r);
    assert_eq!(
        devs,
        vec![
            (1, a.len() as u64, "drive-scsi0".to_owned()),
            (2, b.len() as u64, "drive-virtio1".to_owned()),
            (3, c.len() as u64, "drive-sata2".to_owned()),
        ]
    );
    // The config is already there when CTIME is printed (qemu-server reads it now).
    assert_eq!(
        std::fs::read(target.join("qemu-server.conf")).unwrap(),
        conf
    );
    let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    writeln!(
        f,
        "throttling.bps=1073741824:throttling.group=local-lvm:format=raw:1:drive-scsi0={}",
        t1.display()
    )
    .unwrap();
    writeln!(
        f,
        "cache=writeback:format=raw:0:drive-virtio1={}",
        t2.display()
    )
    .unwrap();
    writeln!(f, "skip=drive-sata2").unwrap();
    writeln!(f, "done").unwrap();
    drop(f);
    let out = finish_restore(r);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout.contains("total bytes read "), "{}", out.stdout);
    assert!(std::fs::read(&t1).unwrap() == a, "1: writes zero blocks");
    let got2 = std::fs::read(&t2).unwrap();
    assert_eq!(got2.len(), b.len() + (1 << 20));
    for (i, blk) in b.chunks(4096).enumerate() {
        let g = &got2[i * 4096..i * 4096 + blk.len()];
        if blk.iter().all(|&x| x == 0) {
            assert!(
                g.iter().all(|&x| x == 0xee),
                "0: must not write zero block {i}"
            );
        } else {
            assert!(g == blk, "block {i}");
        }
    }
    assert!(
        got2[b.len()..].iter().all(|&x| x == 0xee),
        "nothing past the device"
    );
    assert_no_complete_disks(&target);
}

#[test]
fn fifo_map_errors() {
    let dir = tempfile::tempdir().unwrap();
    let a = disk(31, 2 * 65536);
    let arch = lib_archive(&[], &[("drive-scsi0", &a)], false, 0);
    let p = put(dir.path(), "a.vma", &arch);
    let small = put(dir.path(), "small.raw", &vec![0; 65536]);
    let big = put(dir.path(), "big.raw", &vec![0; a.len() + (5 << 20)]);
    let ok = put(dir.path(), "ok.img", &vec![0; a.len()]);
    let cases: Vec<(String, &str)> = vec![
        (
            "format=raw:1:drive-other=/x\n".into(),
            "no device name mapping for drive-scsi0",
        ),
        (
            format!("format=qcow2:1:drive-scsi0={}\n", ok.display()),
            "format 'qcow2' is not supported",
        ),
        (
            format!("format=raw:1:drive-scsi0={}\n", small.display()),
            "unexpected size 65536 != 131072",
        ),
        (
            format!("format=raw:1:drive-scsi0={}\n", big.display()),
            "unexpected size",
        ),
        (
            "format=raw:1:drive-scsi0=/nonexistent/disk.raw\n".into(),
            "can't open file /nonexistent/disk.raw",
        ),
        (
            format!("1:drive-scsi0={}\n", ok.display()),
            "no format given",
        ),
        (
            "format=raw:2:drive-scsi0=/x\n".into(),
            "read map failed - parse error",
        ),
        (
            format!("cache=bogus:format=raw:1:drive-scsi0={}\n", ok.display()),
            "invalid cache option: bogus",
        ),
    ];
    for (i, (line, want)) in cases.iter().enumerate() {
        let fifo = dir.path().join(format!("f{i}"));
        let target = dir.path().join(format!("t{i}"));
        let r = start_restore(&p, &fifo, &target, &[]);
        header_phase(&r);
        let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        f.write_all(line.as_bytes()).unwrap();
        f.write_all(b"done\n").unwrap();
        drop(f);
        let out = finish_restore(r);
        assert_eq!(out.code(), 255, "{line}: {}", out.stderr);
        assert!(out.stderr.contains(want), "{line}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
}

#[test]
fn fifo_map_with_drive_filter_needs_no_mapping_for_filtered_devices() {
    let dir = tempfile::tempdir().unwrap();
    let a = disk(61, 3 * 65536);
    let b = disk(62, 2 * 65536);
    let arch = lib_archive(&[], &[("drive-scsi0", &a), ("drive-scsi1", &b)], true, 0);
    let p = put(dir.path(), "a.vma", &arch);
    let t = put(dir.path(), "t.raw", &vec![0u8; a.len()]);
    let fifo = dir.path().join("f");
    let target = dir.path().join("out");
    let r = start_restore(&p, &fifo, &target, &["-d", "drive-scsi0"]);
    assert_eq!(header_phase(&r).len(), 2, "the listing shows every device");
    let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    writeln!(f, "format=raw:0:drive-scsi0={}", t.display()).unwrap();
    drop(f); // EOF ends the map like `done`
    let out = finish_restore(r);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(std::fs::read(&t).unwrap() == a);
}
