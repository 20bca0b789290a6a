//! Archives compressed by the real `zstd`, `gzip`, `pigz` and `lzop` (as vzdump runs them)
//! extract exactly like the plain archive, from a path and from a stdin pipe (so nothing
//! seeks), and verify.

mod cli_util;

use std::ffi::OsString;
use std::path::Path;

use cli_util::*;

fn os(p: &Path) -> OsString {
    p.as_os_str().to_owned()
}

fn read_disks(t: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(t)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn real_compressors_extract_identically_from_path_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let a = disk(41, 3 * 1024 * 1024 + 4096 * 3);
    let b = disk(42, 1024 * 1024);
    let arch = lib_archive(
        &[(
            "qemu-server.conf",
            b"#qmdump#map:scsi0:drive-scsi0:local:raw:\n",
        )],
        &[("drive-scsi0", &a), ("drive-scsi1", &b)],
        true,
        1_700_000_000,
    );
    let plain = put(dir.path(), "plain.vma", &arch);
    let reference_dir = dir.path().join("ref");
    run(&["extract".into(), os(&plain), os(&reference_dir)]).ok();
    let reference = read_disks(&reference_dir);
    assert_eq!(reference.len(), 3);

    let variants: Vec<(&str, &str, Vec<&str>)> = vec![
        ("zstd-1", "zstd", vec!["-1", "-c"]),
        ("zstd-9", "zstd", vec!["-9", "-c"]),
        ("zstd-threads", "zstd", vec!["--threads=2", "-c"]),
        ("gzip-1", "gzip", vec!["-1", "-c"]),
        ("gzip-9", "gzip", vec!["-9", "-c"]),
        ("pigz-1", "pigz", vec!["-1", "-c"]),
        (
            "pigz-9-rsyncable",
            "pigz",
            vec!["-9", "--rsyncable", "-p", "2", "-c"],
        ),
        ("lzop-1", "lzop", vec!["-1", "-c"]),
        ("lzop-9", "lzop", vec!["-9", "-c"]),
        ("lzop-default", "lzop", vec!["-c"]),
    ];
    for (name, prog, args) in variants {
        let compressed = tool(prog, &args, &arch);
        let p = put(dir.path(), &format!("{name}.vma.x"), &compressed);
        let t1 = dir.path().join(format!("{name}-path"));
        run(&["extract".into(), os(&p), os(&t1)]).ok();
        assert!(read_disks(&t1) == reference, "{name}: from path");
        let t2 = dir.path().join(format!("{name}-stdin"));
        run_stdin(&["extract".into(), "-".into(), os(&t2)], compressed.clone()).ok();
        assert!(read_disks(&t2) == reference, "{name}: from stdin");
        run_stdin(&["verify", "-"], compressed).ok();
    }
}
