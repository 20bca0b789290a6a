//! Real `zfs` output, captured in the test VM (scripts/zfs-vm) from OpenZFS
//! `zfs-2.3.2-2~bpo12+2` / `zfs-kmod-2.3.2-2~bpo12+2` (Debian bookworm-backports) on kernel
//! 6.1.0-56-amd64, run with `LC_ALL=C`, and the parser and classifier tests that use it.
//! Tabs are written as `\t` so editors cannot turn them into spaces.

use super::classify::{Failure, classify_stderr};
use super::parse::*;

/// `zfs list -H -p -o name,createtxg,creation,used,referenced,written,userrefs,clones
///  -t snapshot -s createtxg -d 1 vzsnaptest/vzsnap/100` (256 KiB file, then one 4 KiB block
/// rewritten, recordsize=4K).
const LIST_SNAPSHOTS: &str = "\
vzsnaptest/vzsnap/100@2026_11_01-02_00_03\t12\t1795744963\t69632\t368640\t368640\t0\t-
vzsnaptest/vzsnap/100@2026_11_02-02_00_03\t13\t1795744965\t0\t368640\t69632\t0\t-
";

/// The same listing of another run, while a clone of the second snapshot existed
/// (1 MiB file, ten 4 KiB blocks rewritten).
const LIST_SNAPSHOTS_WITH_CLONE: &str = "\
vzsnaptest/cap/100@2026_11_01-02_00_03\t12\t1795741895\t122880\t1171456\t1171456\t0\t-
vzsnaptest/cap/100@2026_11_02-02_00_03\t16\t1795741896\t0\t1171456\t122880\t0\tvzsnaptest/cap/.clones/r1
";

/// One held snapshot: `zfs list … -t snapshot vzsnaptest/vzsnap/100@2026_11_01-02_00_03`.
const LIST_ONE_HELD: &str =
    "vzsnaptest/vzsnap/100@2026_11_01-02_00_03\t12\t1795744963\t69632\t368640\t368640\t1\t-\n";

/// `zfs get -H -p -o name,property,value -s local -t snapshot -d 1 all vzsnaptest/vzsnap/100`.
const SNAPSHOT_USER_PROPS: &str = "\
vzsnaptest/vzsnap/100@2026_11_01-02_00_03\tvzsnap:backup-time\t1793498403
vzsnaptest/vzsnap/100@2026_11_01-02_00_03\tvzsnap:source\tvzdump-qemu-100-2026_11_01-02_00_03.vma.zst
vzsnaptest/vzsnap/100@2026_11_02-02_00_03\tvzsnap:source\tvzdump-qemu-100-2026_11_02-02_00_03.vma.zst
";

/// `zfs get -H -p -o property,value type,mounted,mountpoint,canmount vzsnaptest/vzsnap/100`.
const DATASET_PROPS: &str = "\
type\tfilesystem
mounted\tyes
mountpoint\t/work/main/target/zfs-vm/run.pWfPhA/mnt/vzsnap/100
canmount\ton
";

/// `zfs get -H -p -o property,value,source recordsize,compression,atime,… vzsnaptest/cap/100`
/// after `zfs create -o recordsize=4k -o compression=lz4 -o atime=off` (three columns: we
/// ask for two, this shows what `source` looks like).
const CREATED_PROPS_WITH_SOURCE: &str = "\
recordsize\t4096\tlocal
compression\tlz4\tlocal
atime\toff\tlocal
mounted\tyes\t-
mountpoint\t/work/main/target/zfs-vm/mnt/cap/100\tinherited from vzsnaptest
canmount\ton\tdefault
type\tfilesystem\t-
";

/// `zpool sync` then `zfs list -H -p -o name,written,createtxg -t filesystem,snapshot -d 1
/// vzsnaptest/vzsnap/100` after rewriting a block and creating a file …
const WRITTEN_CHANGED: &str = "\
vzsnaptest/vzsnap/100\t86016\t10
vzsnaptest/vzsnap/100@2026_11_01-02_00_03\t368640\t12
vzsnaptest/vzsnap/100@2026_11_02-02_00_03\t69632\t13
";

/// … and after `zfs rollback …@2026_11_02-02_00_03`.
const WRITTEN_AFTER_ROLLBACK: &str = "\
vzsnaptest/vzsnap/100\t0\t10
vzsnaptest/vzsnap/100@2026_11_01-02_00_03\t368640\t12
vzsnaptest/vzsnap/100@2026_11_02-02_00_03\t69632\t13
";

/// `zfs diff -H vzsnaptest/vzsnap/100@2026_11_02-02_00_03` before that rollback (after it the
/// output was empty).
const DIFF_CHANGED: &str = "\
M\t/work/main/target/zfs-vm/run.pWfPhA/mnt/vzsnap/100/disk-drive-scsi0.raw
M\t/work/main/target/zfs-vm/run.pWfPhA/mnt/vzsnap/100/
+\t/work/main/target/zfs-vm/run.pWfPhA/mnt/vzsnap/100/qemu-server.conf
";

/// `zfs holds -H` and `zfs holds -H -p` (2.3 only) of a held snapshot.
const HOLDS: &str =
    "vzsnaptest/vzsnap/100@2026_11_01-02_00_03\tvzsnap-protected\tFri Nov 27 02:02 2026\n";
const HOLDS_P: &str = "vzsnaptest/cap/100@2026_11_01-02_00_03\tkeep\t1795741900\n";

/// `zfs list -H -p -o name,origin -t filesystem -d 1 vzsnaptest/vzsnap/.clones`.
const CLONES: &str = "\
vzsnaptest/vzsnap/.clones\t-
vzsnaptest/vzsnap/.clones/restore-1\tvzsnaptest/vzsnap/100@2026_11_02-02_00_03
";

/// `zfs list -H -p -o name -t filesystem -d 1 vzsnaptest/vzsnap`.
const VOLUMES: &str = "vzsnaptest/vzsnap\nvzsnaptest/vzsnap/.clones\nvzsnaptest/vzsnap/100\n";

/// stderr of failed calls, verbatim, with what they must classify as.
const ERRORS: &[(&str, &str, Failure)] = &[
    (
        "zfs snapshot vzsnaptest/vzsnap/nosuch@x (exit 2)",
        "cannot open 'vzsnaptest/vzsnap/nosuch': dataset does not exist\nusage:\n\tsnapshot [-r] [-o property=value] ... <filesystem|volume>@<snap> ...\n\nFor the property list, run: zfs set|get\n\nFor the delegated permission list, run: zfs allow|unallow\n\nFor further help on a command or topic, run: zfs help [<topic>]\n",
        Failure::Missing,
    ),
    (
        "zfs list -H -p -o name nosuchpool",
        "cannot open 'nosuchpool': dataset does not exist\n",
        Failure::Missing,
    ),
    (
        "zfs list … @nosuch",
        "cannot open 'vzsnaptest/cap/100@nosuch': dataset does not exist\n",
        Failure::Missing,
    ),
    (
        "zfs destroy …@nosuch",
        "could not find any snapshots to destroy; check snapshot names.\n",
        Failure::Missing,
    ),
    (
        "zfs holds -H …@nosuch",
        "cannot open 'vzsnaptest/cap/100@nosuch': dataset does not exist\nno datasets available\n",
        Failure::Missing,
    ),
    (
        "zfs snapshot (duplicate)",
        "cannot create snapshot 'vzsnaptest/vzsnap/100@2026_11_02-02_00_03': dataset already exists\n",
        Failure::Exists,
    ),
    (
        "zfs create (existing)",
        "cannot create 'vzsnaptest/vzsnap/100': dataset already exists\n",
        Failure::Exists,
    ),
    (
        "zfs clone (existing target)",
        "cannot create 'vzsnaptest/vzsnap/.clones/restore-1': dataset already exists\n",
        Failure::Exists,
    ),
    (
        "zfs destroy (held)",
        "cannot destroy snapshot vzsnaptest/vzsnap/100@2026_11_01-02_00_03: it's being held. Run 'zfs holds -r vzsnaptest/vzsnap/100@2026_11_01-02_00_03' to see holders.\n",
        Failure::Held,
    ),
    (
        "zfs destroy (clones)",
        "cannot destroy 'vzsnaptest/vzsnap/100@2026_11_02-02_00_03': snapshot has dependent clones\nuse '-R' to destroy the following datasets:\nvzsnaptest/vzsnap/.clones/restore-1\n",
        Failure::Busy,
    ),
    (
        "zfs destroy (has snapshots)",
        "cannot destroy 'vzsnaptest/vzsnap/100': filesystem has children\nuse '-r' to destroy the following datasets:\nvzsnaptest/vzsnap/100@2026_11_01-02_00_03\nvzsnaptest/vzsnap/100@2026_11_02-02_00_03\n",
        Failure::Busy,
    ),
    (
        "zfs unmount (in use)",
        "cannot unmount '/work/main/target/zfs-vm/mnt/cap/100': pool or dataset is busy\n",
        Failure::Busy,
    ),
    (
        "zfs hold (again)",
        "cannot hold snapshot 'vzsnaptest/cap/100@2026_11_01-02_00_03': tag already exists on this dataset\n",
        Failure::TagExists,
    ),
    (
        "zfs release (absent tag)",
        "cannot release hold from snapshot 'vzsnaptest/cap/100@2026_11_01-02_00_03': no such tag on this dataset\n",
        Failure::NoSuchTag,
    ),
    (
        "zfs rollback (not the latest)",
        "cannot rollback to 'vzsnaptest/vzsnap/100@2026_11_01-02_00_03': more recent snapshots or bookmarks exist\nuse '-r' to force deletion of the following snapshots and bookmarks:\nvzsnaptest/vzsnap/100@2026_11_02-02_00_03\n",
        Failure::Unknown,
    ),
    (
        "zfs create -o recordsize=4x",
        "cannot create 'vzsnaptest/vzsnap/200': invalid numeric suffix 'x'\n",
        Failure::Unknown,
    ),
    (
        "zfs diff …@nosuch",
        "Unable to obtain diffs: No such file or directory\n",
        Failure::Unknown,
    ),
    (
        "zfs mount (mounted)",
        "cannot mount 'vzsnaptest/cap/100': filesystem already mounted\n",
        Failure::Unknown,
    ),
];

#[test]
fn snapshot_listing() {
    let rows = parse_snapshot_rows(LIST_SNAPSHOTS, "vzsnaptest/vzsnap/100").unwrap();
    assert_eq!(
        rows,
        vec![
            SnapshotRow {
                snapshot: "2026_11_01-02_00_03".into(),
                createtxg: 12,
                creation: 1795744963,
                used: 69632,
                referenced: 368640,
                written: 368640,
                userrefs: 0,
                clones: vec![],
            },
            SnapshotRow {
                snapshot: "2026_11_02-02_00_03".into(),
                createtxg: 13,
                creation: 1795744965,
                used: 0,
                referenced: 368640,
                written: 69632,
                userrefs: 0,
                clones: vec![],
            },
        ]
    );
    let rows = parse_snapshot_rows(LIST_SNAPSHOTS_WITH_CLONE, "vzsnaptest/cap/100").unwrap();
    assert_eq!(rows[1].clones, vec!["vzsnaptest/cap/.clones/r1"]);
    assert_eq!(rows[1].written, 122880);
    let held = parse_snapshot_rows(LIST_ONE_HELD, "vzsnaptest/vzsnap/100").unwrap();
    assert_eq!(held[0].userrefs, 1);
    // The listing of another dataset is refused, not misattributed.
    assert!(parse_snapshot_rows(LIST_SNAPSHOTS, "vzsnaptest/vzsnap/10").is_err());
}

#[test]
fn user_properties() {
    let m =
        parse_snapshot_user_props(SNAPSHOT_USER_PROPS, "vzsnaptest/vzsnap/100", "vzsnap:").unwrap();
    assert_eq!(m.len(), 2);
    let first = &m["2026_11_01-02_00_03"];
    assert_eq!(
        first["source"],
        "vzdump-qemu-100-2026_11_01-02_00_03.vma.zst"
    );
    assert_eq!(first["backup-time"], "1793498403");
    assert_eq!(m["2026_11_02-02_00_03"].len(), 1);
}

#[test]
fn dataset_properties() {
    let p = parse_props(DATASET_PROPS).unwrap();
    assert_eq!(p["type"], "filesystem");
    assert_eq!(p["mounted"], "yes");
    assert_eq!(
        p["mountpoint"],
        "/work/main/target/zfs-vm/run.pWfPhA/mnt/vzsnap/100"
    );
    // With a third column the value would swallow the source: -o must match what we parse.
    let with_source = parse_props(CREATED_PROPS_WITH_SOURCE).unwrap();
    assert_eq!(with_source["recordsize"], "4096\tlocal");
    let three = parse_rows(CREATED_PROPS_WITH_SOURCE, 3).unwrap();
    assert_eq!(three[0], vec!["recordsize", "4096", "local"]);
    assert!(prop_matches("recordsize", "4k", three[0][1]));
}

#[test]
fn written_and_latest() {
    assert_eq!(
        parse_written_and_latest(WRITTEN_CHANGED, "vzsnaptest/vzsnap/100").unwrap(),
        (86016, Some("2026_11_02-02_00_03".to_string()))
    );
    assert_eq!(
        parse_written_and_latest(WRITTEN_AFTER_ROLLBACK, "vzsnaptest/vzsnap/100").unwrap(),
        (0, Some("2026_11_02-02_00_03".to_string()))
    );
    assert_eq!(
        parse_written_and_latest(
            "vzsnaptest/vzsnap/100\t24576\t10\n",
            "vzsnaptest/vzsnap/100"
        )
        .unwrap(),
        (24576, None)
    );
    assert!(parse_written_and_latest(WRITTEN_CHANGED, "vzsnaptest/vzsnap/1").is_err());
    assert_eq!(DIFF_CHANGED.lines().count(), 3);
}

#[test]
fn holds_clones_volumes() {
    assert_eq!(parse_holds(HOLDS).unwrap(), vec!["vzsnap-protected"]);
    assert_eq!(parse_holds(HOLDS_P).unwrap(), vec!["keep"]);
    let clones = parse_name_origin(CLONES).unwrap();
    assert_eq!(clones[0], ("vzsnaptest/vzsnap/.clones".to_string(), None));
    assert_eq!(
        clones[1],
        (
            "vzsnaptest/vzsnap/.clones/restore-1".to_string(),
            Some("vzsnaptest/vzsnap/100@2026_11_02-02_00_03".to_string())
        )
    );
    let vols: Vec<&str> = parse_rows(VOLUMES, 1)
        .unwrap()
        .into_iter()
        .map(|r| r[0])
        .collect();
    assert_eq!(
        vols,
        [
            "vzsnaptest/vzsnap",
            "vzsnaptest/vzsnap/.clones",
            "vzsnaptest/vzsnap/100"
        ]
    );
}

#[test]
fn real_error_messages_classify() {
    for (what, stderr, want) in ERRORS {
        assert_eq!(classify_stderr(stderr), *want, "{what}: {stderr:?}");
    }
}
