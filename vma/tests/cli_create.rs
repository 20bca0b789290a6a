//! `vma create`: device argument forms, names, targets (file, exec:, FIFO), refusal of
//! existing files, deletion on failure, compression, `-v` output.

mod cli_util;

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use cli_util::*;

fn os(p: &Path) -> OsString {
    p.as_os_str().to_owned()
}

fn list(archive: &Path) -> String {
    run(&["list".into(), os(archive)]).ok().stdout
}

fn extract_all(archive: &Path, target: &Path) {
    run(&["extract".into(), os(archive), os(target)]).ok();
}

#[test]
fn dash_d_forms_default_names_and_basenames() {
    let dir = tempfile::tempdir().unwrap();
    let a = disk(1, 200_000);
    let b = disk(2, 65536);
    let sa = put(dir.path(), "a.raw", &a);
    let sb = put(dir.path(), "b.raw", &b);
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    let conf = put(&dir.path().join("etc"), "qemu-server.conf", b"name: t\n");
    let arch = dir.path().join("x.vma");
    run(&[
        "create".into(),
        os(&arch),
        "-c".into(),
        os(&conf),
        "-d".into(),
        format!("format=raw:drive-scsi0={}", sa.display()).into(),
        "-d".into(),
        format!("format=raw:{}", sb.display()).into(),
    ])
    .ok();
    let l = list(&arch);
    let lines: Vec<&str> = l.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "CFG: size: 8 name: qemu-server.conf",
            "DEV: dev_id=1 size: 200000 devname: drive-scsi0",
            "DEV: dev_id=2 size: 65536 devname: disk1",
        ]
    );
    assert!(lines[3].starts_with("CTIME: "));
    assert_eq!(lines.len(), 4);
    let t = dir.path().join("t");
    extract_all(&arch, &t);
    assert!(std::fs::read(t.join("disk-drive-scsi0.raw")).unwrap() == a);
    assert!(std::fs::read(t.join("disk-disk1.raw")).unwrap() == b);
}

#[test]
fn legacy_positional_devices_warn_and_mixing_fails() {
    let dir = tempfile::tempdir().unwrap();
    let a = disk(3, 70_000);
    let sa = put(dir.path(), "a.raw", &a);
    let arch = dir.path().join("legacy.vma");
    // Options after positionals, as GNU getopt allows.
    let r = run(&[
        "create".into(),
        os(&arch),
        format!("drive-ide0={}", sa.display()).into(),
        "-v".into(),
    ])
    .ok();
    assert!(r.stderr.contains(&format!(
        "Specifying a device without a format is deprecated - use '-d format=<format>:drive-ide0={}'",
        sa.display()
    )));
    assert!(list(&arch).contains("DEV: dev_id=1 size: 70000 devname: drive-ide0\n"));

    let arch2 = dir.path().join("mixed.vma");
    run(&[
        "create".into(),
        os(&arch2),
        "-d".into(),
        format!("format=raw:{}", sa.display()).into(),
        os(&sa),
    ])
    .fails_with(&["Unexpected extra argument - specify all devices via '-d'"]);
    assert!(!arch2.exists());

    run(&["create".into(), os(&arch2), "-d".into(), os(&sa)])
        .fails_with(&["No format specified for device: '", "a.raw'"]);
    assert!(!arch2.exists());

    run(&[
        "create".into(),
        os(&arch2),
        "-d".into(),
        format!("format=qcow2:{}", sa.display()).into(),
    ])
    .fails_with(&["format 'qcow2' is not supported"]);
    assert!(!arch2.exists());
}

#[test]
fn verbose_progress_and_image_lines_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = vec![0u8; 4 * 65536];
    a[70_000] = 1; // one non-zero block
    let sa = put(dir.path(), "a.raw", &a);
    let arch = dir.path().join("v.vma");
    let r = run(&[
        "create".into(),
        "-v".into(),
        os(&arch),
        "-d".into(),
        format!("format=raw:drive-scsi0={}", sa.display()).into(),
    ])
    .ok();
    assert_eq!(r.stdout, "");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.first(), Some(&"progress 25% 65536/262144 65536"));
    assert!(
        lines.contains(&"progress 100% 262144/262144 258048"),
        "{lines:?}"
    );
    assert_eq!(
        lines.last(),
        Some(&"image drive-scsi0: size=262144 zeros=258048 saved=4096")
    );
}

#[test]
fn existing_file_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let sa = put(dir.path(), "a.raw", &disk(1, 65536));
    let arch = put(dir.path(), "exists.vma", b"precious");
    run(&[
        "create".into(),
        os(&arch),
        "-d".into(),
        format!("format=raw:{}", sa.display()).into(),
    ])
    .fails_with(&["can't open file", "exists.vma", "File exists"]);
    assert_eq!(std::fs::read(&arch).unwrap(), b"precious");
}

#[test]
fn failure_deletes_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let arch = dir.path().join("gone.vma");
    run(&[
        "create".into(),
        os(&arch),
        "-d".into(),
        "format=raw:drive-scsi0=/nonexistent/disk.raw".into(),
    ])
    .fails_with(&["bdrv_open '/nonexistent/disk.raw' failed"]);
    assert!(!arch.exists());
    run(&[
        "create".into(),
        os(&arch),
        "-c".into(),
        "/nonexistent/qemu-server.conf".into(),
    ])
    .fails_with(&["Unable to read file: /nonexistent/qemu-server.conf"]);
    assert!(!arch.exists());
    // A config too large for a blob (65535 bytes).
    let big = put(dir.path(), "big.conf", &vec![b'x'; 70_000]);
    run(&["create".into(), os(&arch), "-c".into(), os(&big)]).fails_with(&["big.conf"]);
    assert!(!arch.exists());
}

#[test]
fn diskless_archive_like_vzdump_via_exec() {
    // vzdump: vma create -v -c qemu-server.conf "exec:zstd > <file>"
    let dir = tempfile::tempdir().unwrap();
    let conf = put(dir.path(), "qemu-server.conf", b"memory: 512\n");
    let out = dir.path().join("it's here.vma.zst");
    let cmd = format!(
        "exec:zstd -q > '{}'",
        out.display().to_string().replace('\'', "'\\''")
    );
    run(&[
        "create".into(),
        "-v".into(),
        "-c".into(),
        os(&conf),
        cmd.into(),
    ])
    .ok();
    let plain = tool("zstd", &["-dc"], &std::fs::read(&out).unwrap());
    // Header plus exactly one empty extent.
    assert_eq!(plain.len(), header_size(&plain) + 512);
    let r = run_stdin(&["list", "-"], std::fs::read(&out).unwrap()).ok();
    assert!(
        r.stdout
            .starts_with("CFG: size: 12 name: qemu-server.conf\nCTIME: ")
    );
    // A failing command fails create (its own stderr comes first; ours is the last line).
    let r = run(&[
        "create".into(),
        "-c".into(),
        os(&conf),
        "exec:cat > /nonexistent/dir/x".into(),
    ]);
    assert_eq!(r.code(), 255);
    assert!(
        r.stderr
            .lines()
            .last()
            .unwrap()
            .starts_with("vma: command 'cat > /nonexistent/dir/x' failed: exit status: 2"),
        "{}",
        r.stderr
    );
}

#[test]
fn fifo_target() {
    let dir = tempfile::tempdir().unwrap();
    let a = disk(9, 3 * 65536 + 7);
    let sa = put(dir.path(), "a.raw", &a);
    let fifo = dir.path().join("out.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    run(&[
        "create".into(),
        os(&fifo),
        "-d".into(),
        format!("format=raw:drive-scsi0={}", sa.display()).into(),
    ])
    .ok();
    let bytes = reader.join().unwrap();
    assert!(fifo.exists(), "the FIFO is not deleted or replaced");
    let p = put(dir.path(), "from-fifo.vma", &bytes);
    let t = dir.path().join("t");
    extract_all(&p, &t);
    assert!(std::fs::read(t.join("disk-drive-scsi0.raw")).unwrap() == a);
}

#[test]
fn compressed_output_is_what_the_real_tools_read() {
    let dir = tempfile::tempdir().unwrap();
    let a = disk(4, 2 << 20);
    let sa = put(dir.path(), "a.raw", &a);
    let conf = put(dir.path(), "qemu-server.conf", b"cores: 2\n");
    for (i, (comp, ext, tool_args, extra)) in [
        ("zstd", "zst", &["zstd", "-dc"][..], &["--threads", "2"][..]),
        (
            "zstd",
            "zst",
            &["zstd", "-dc"],
            &["--level=19", "--threads=0"],
        ),
        ("gzip", "gz", &["gzip", "-dc"], &[]),
        ("lzo", "lzo", &["lzop", "-dc"], &[]),
    ]
    .into_iter()
    .enumerate()
    {
        let arch = dir.path().join(format!("c-{i}-{comp}.vma.{ext}"));
        let mut args: Vec<OsString> = vec![
            "create".into(),
            os(&arch),
            "--compress".into(),
            comp.into(),
            "-c".into(),
            os(&conf),
            "-d".into(),
            format!("format=raw:drive-scsi0={}", sa.display()).into(),
        ];
        args.extend(extra.iter().map(OsString::from));
        run(&args).ok();
        let compressed = std::fs::read(&arch).unwrap();
        let plain = tool(tool_args[0], &tool_args[1..], &compressed);
        assert_eq!(&plain[..4], b"VMA\0", "{comp}");
        // The real tool's output is a complete archive with our data.
        let p = put(dir.path(), &format!("plain-{i}.vma"), &plain);
        run(&["verify".into(), os(&p)]).ok();
        let t = dir.path().join(format!("t-{i}"));
        extract_all(&arch, &t);
        assert!(
            std::fs::read(t.join("disk-drive-scsi0.raw")).unwrap() == a,
            "{comp}"
        );
    }
    let arch = dir.path().join("bad.vma");
    run(&[
        "create".into(),
        os(&arch),
        "--compress".into(),
        "lzo".into(),
        "--level".into(),
        "3".into(),
    ])
    .fails_with(&["invalid lzo compression level 3"]);
    assert!(!arch.exists());
    run(&["create".into(), os(&arch), "--compress".into(), "xz".into()])
        .fails_with(&["unknown compression 'xz'"]);
}

#[test]
fn exec_command_that_exits_first_is_named_not_the_broken_pipe() {
    // The command is gone before vma has written the archive: the write sees EPIPE, but the
    // error to report is the command's failure (with every compressor in between).
    let dir = tempfile::tempdir().unwrap();
    let sa = put(dir.path(), "a.raw", &disk(5, 8 << 20));
    for comp in [None, Some("zstd"), Some("gzip"), Some("lzo")] {
        let mut args: Vec<OsString> = vec!["create".into()];
        if let Some(c) = comp {
            args.push("--compress".into());
            args.push(c.into());
        }
        args.push("-d".into());
        args.push(format!("format=raw:drive-scsi0={}", sa.display()).into());
        args.push("exec:exit 3".into());
        run(&args).fails_with(&["vma: command 'exit 3' failed: exit status: 3"]);
    }
}
