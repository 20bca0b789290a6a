//! `vzsnap restore` end to end: three days of synthetic vzdump backups ingested by the real
//! binary, each restored plain and zstd, then checked the way Proxmox VE uses the file:
//! the name parses as a vzdump archive of that day, `vma extract` gives that day's images and
//! configs byte for byte, `vma list` matches qemu-server's own regexes (run through perl, as
//! in qemu-server), and `zstd -d | vma extract -v -r <fifo>` driven like `qmrestore` restores
//! the disks. The restored VMA stream equals the original backup's. Refusals exit 2 and leave
//! nothing behind.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ingest::synth::{Day, SeriesSpec};
use store::cmd::Cmd;
use vma::vzdump::{BackupName, GuestKind, VmId};

use crate::support::{Backend, Setup, days, json, run_ok, vzsnap, write_days};

const VMID: u32 = 100;

/// The `vma` binary of this build (`cargo build --workspace --bins`; scripts/test does).
pub fn vma_bin() -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_vzsnap")).with_file_name("vma");
    assert!(
        p.exists(),
        "{} missing: build it with `cargo build -p vma --bins`",
        p.display()
    );
    p
}

fn decompressed(path: &Path) -> Vec<u8> {
    let (_, mut r) = vma::compress::open_decompressed(std::fs::File::open(path).unwrap()).unwrap();
    let mut v = Vec::new();
    r.read_to_end(&mut v).unwrap();
    v
}

/// `vma extract FILE DIR`, then the images and configs as (name, bytes).
fn vma_extract(archive: &Path, dir: &Path) -> Vec<(String, Vec<u8>)> {
    Cmd::new(vma_bin().to_str().unwrap())
        .arg("extract")
        .arg(archive)
        .arg(dir)
        .run()
        .unwrap();
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// qemu-server's parsing of `vma list`/`vma extract -v` output, with its own regexes in perl.
fn qemu_server_parse(list_output: &str) -> (Vec<(u8, u64, String)>, bool) {
    let out = Cmd::new("perl")
        .args([
            "-ne",
            r"if (/^DEV:\sdev_id=(\d+)\ssize:\s(\d+)\sdevname:\s(\S+)$/) { print qq($1 $2 $3\n) } elsif (/^CTIME: /) { print qq(CTIME\n) }",
        ])
        .stdin_bytes(list_output.as_bytes().to_vec())
        .run()
        .unwrap()
        .stdout;
    let mut devs = Vec::new();
    let mut ctime = false;
    for l in out.lines() {
        if l == "CTIME" {
            ctime = true;
            continue;
        }
        let f: Vec<&str> = l.split(' ').collect();
        devs.push((
            f[0].parse().unwrap(),
            f[1].parse().unwrap(),
            f[2].to_string(),
        ));
    }
    (devs, ctime)
}

fn expected_devices(day: &Day) -> Vec<(u8, u64, String)> {
    day.disks
        .iter()
        .enumerate()
        .map(|(i, d)| (i as u8 + 1, d.data.len() as u64, d.name.clone()))
        .collect()
}

/// What `qmrestore` does with an archive: `zstd -q -d -c FILE | vma extract -v -r FIFO - DIR`
/// (or `vma extract -v -r FIFO FILE DIR` for a plain one), wait for the header on stdout up
/// to `CTIME:`, read the extracted qemu-server.conf's `#qmdump#map` lines, allocate a target
/// per device, write the map lines and `done` into the fifo. Returns the restored disks.
fn pve_fifo_restore(archive: &Path, work: &Path, day: &Day) -> Vec<(String, Vec<u8>)> {
    let fifo = work.join("restore.fifo");
    Cmd::new("mkfifo").arg(&fifo).run().unwrap();
    let tmpdir = work.join("vzdumptmp");
    let compressed = archive.extension().is_some_and(|e| e == "zst");
    let mut zstd = None;
    let mut vma = Command::new(vma_bin());
    vma.args(["extract", "-v", "-r"]).arg(&fifo);
    if compressed {
        let mut z = Command::new("zstd")
            .args(["-q", "-d", "-c"])
            .arg(archive)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        vma.stdin(Stdio::from(z.stdout.take().unwrap())).arg("-");
        zstd = Some(z);
    } else {
        vma.arg(archive);
    }
    let mut child = vma
        .arg(&tmpdir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut header = String::new();
    for l in lines.by_ref() {
        let l = l.unwrap();
        header.push_str(&l);
        header.push('\n');
        if l.starts_with("CTIME: ") {
            break;
        }
    }
    let (devs, ctime) = qemu_server_parse(&header);
    assert!(ctime, "no CTIME line: {header}");
    assert_eq!(devs, expected_devices(day));
    // At CTIME qemu-server reads the extracted config for the disk mapping.
    let conf = String::from_utf8(std::fs::read(tmpdir.join("qemu-server.conf")).unwrap()).unwrap();
    assert_eq!(conf.as_bytes(), day.configs[0].data.as_slice());
    let targets = work.join("targets");
    std::fs::create_dir(&targets).unwrap();
    let mut map = String::new();
    for (_, size, name) in &devs {
        assert!(
            conf.lines().any(
                |l| l.starts_with("#qmdump#map:") && l.split(':').nth(2) == Some(name.as_str())
            ),
            "no #qmdump#map line for {name} in {conf}"
        );
        let path = targets.join(name);
        std::fs::File::create(&path)
            .unwrap()
            .set_len(*size)
            .unwrap();
        map.push_str(&format!("format=raw:0:{name}={}\n", path.display()));
    }
    map.push_str("done\n");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .unwrap()
        .write_all(map.as_bytes())
        .unwrap();
    // Drain the progress lines, then the exit status.
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        status.success(),
        "vma extract -r failed: {status}: {err}\n{rest:?}"
    );
    if let Some(mut z) = zstd {
        assert!(z.wait().unwrap().success());
    }
    assert!(
        rest.iter().any(|l| l.starts_with("total bytes read")),
        "{rest:?}"
    );
    devs.iter()
        .map(|(_, _, n)| (n.clone(), std::fs::read(targets.join(n)).unwrap()))
        .collect()
}

fn three_days_restored(b: &Backend) {
    let setup = Setup::new(&b.spec(), "");
    let series = days(SeriesSpec::new(VMID, 11, 3 << 20), 3);
    write_days(&setup.dump, VMID, 11, &series);
    run_ok(setup.ingest(&["--no-prune"]).env("TZ", "UTC"));

    // `vzsnap list` shows the three backups with their disks.
    let mut c = vzsnap();
    c.arg("--config")
        .arg(&setup.config)
        .args(["list", "100", "--json"]);
    let listed = json(&run_ok(&mut c));
    let backups = listed["vms"][0]["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 3);
    for (b, d) in backups.iter().zip(&series) {
        assert_eq!(b["snapshot"], d.time.snapshot_name());
        let disks: Vec<(String, u64)> = b["disks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["name"].as_str().unwrap().to_string(),
                    x["size"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            disks,
            d.disks
                .iter()
                .map(|x| (x.name.clone(), x.data.len() as u64))
                .collect::<Vec<_>>()
        );
        assert_eq!(b["protected"], d.protected);
        assert_eq!(b["compression"], d.compression.name());
    }

    for day in &series {
        let original_name = BackupName::new(
            GuestKind::Qemu,
            VmId::new(VMID).unwrap(),
            day.time,
            day.compression,
        );
        let original = setup.dump.join(original_name.archive_name());
        for comp in ["none", "zstd"] {
            let work = setup.dir.path().join(format!("{}-{comp}", day.number));
            let to = work.join("to");
            std::fs::create_dir_all(&to).unwrap();
            let mut c = vzsnap();
            c.arg("--config").arg(&setup.config).env("TZ", "UTC").args([
                "restore",
                "100",
                &day.time.snapshot_name(),
                "--compress",
                comp,
                "--json",
                "--to",
            ]);
            c.arg(&to);
            let summary = json(&run_ok(&mut c));
            let archive = PathBuf::from(summary["archive"].as_str().unwrap());
            let name = BackupName::parse(archive.file_name().unwrap().to_str().unwrap()).unwrap();
            assert_eq!((name.vmid.get(), name.time), (VMID, day.time));
            assert_eq!(name.readable_compression().unwrap().name(), comp);
            // Same VMA stream as the backup vzdump (here: the generator) wrote.
            assert!(
                decompressed(&archive) == decompressed(&original),
                "day {} {comp}: VMA stream differs",
                day.number
            );

            let files = vma_extract(&archive, &work.join("extract"));
            let mut want: Vec<(String, Vec<u8>)> = day
                .disks
                .iter()
                .map(|d| (format!("disk-{}.raw", d.name), d.data.clone()))
                .chain(day.configs.iter().map(|c| (c.name.clone(), c.data.clone())))
                .collect();
            want.sort();
            assert_eq!(files.len(), want.len());
            for (g, w) in files.iter().zip(&want) {
                assert!(
                    g == w,
                    "day {} {comp}: {} differs from the backup's {}",
                    day.number,
                    g.0,
                    w.0
                );
            }

            let list = Cmd::new(vma_bin().to_str().unwrap())
                .arg("list")
                .arg(&archive)
                .run()
                .unwrap()
                .stdout;
            let (devs, ctime) = qemu_server_parse(&list);
            assert!(ctime, "{list}");
            assert_eq!(devs, expected_devices(day), "{list}");

            let restored = pve_fifo_restore(&archive, &work, day);
            for ((n, data), d) in restored.iter().zip(&day.disks) {
                assert!(
                    n == &d.name && data == &d.data,
                    "day {} {comp}: fifo restore of {n} differs",
                    day.number
                );
            }

            // The companions, as vzdump names them.
            assert_eq!(
                std::fs::read_to_string(to.join(name.log_name())).unwrap(),
                day.log
            );
            let notes = to.join(name.notes_name());
            assert_eq!(std::fs::read_to_string(&notes).ok(), day.notes);
            let mut names: Vec<String> = std::fs::read_dir(&to)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            let mut expect = vec![name.archive_name(), name.log_name()];
            if day.notes.is_some() {
                expect.push(name.notes_name());
            }
            expect.sort();
            assert_eq!(names, expect);
        }
    }

    // Refusals: exit 2 with a clear message, nothing written.
    let fails = |args: &[&str], want: &str| {
        let mut c = vzsnap();
        c.arg("--config")
            .arg(&setup.config)
            .arg("restore")
            .args(args);
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    };
    let before: Vec<_> = std::fs::read_dir(&setup.dump)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    fails(&["4242", "latest"], "VM 4242: no backups in the store");
    fails(
        &["100", "2026-12-24"],
        "VM 100: no backup 2026-12-24; available: 2026_11_01-02_00_03",
    );
    fails(&["100", "yesterday"], "invalid date \"yesterday\"");
    // Into the dump directory that still holds the original of the latest backup: refused.
    fails(
        &["100", "latest"],
        "already exists; refusing to overwrite it",
    );
    let after: Vec<_> = std::fs::read_dir(&setup.dump)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after);
}

backend_tests!(three_days_restored);
