//! `vzsnap blocksync` on two 1 GiB sparse files with 1 % scattered changes: exactly the
//! changed blocks are written (or zeroed), and DST ends byte-identical to SRC.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;

use ingest::synth::Rng;

use crate::support::*;

const GIB: u64 = 1 << 30;
const BLOCK: u64 = 4096;

fn same_files(a: &std::path::Path, b: &std::path::Path) -> bool {
    let (mut fa, mut fb) = (File::open(a).unwrap(), File::open(b).unwrap());
    if fa.metadata().unwrap().len() != fb.metadata().unwrap().len() {
        return false;
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba).unwrap();
        let mut m = 0;
        while m < n {
            let k = fb.read(&mut bb[m..n]).unwrap();
            assert!(k > 0);
            m += k;
        }
        if ba[..n] != bb[..n] {
            return false;
        }
        if n == 0 {
            return true;
        }
    }
}

#[test]
fn one_gib_with_one_percent_scattered_changes() {
    let d = tempfile::tempdir().unwrap();
    let (src, dst) = (d.path().join("src.raw"), d.path().join("dst.raw"));
    let rw = |p: &std::path::Path| {
        File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(p)
            .unwrap()
    };
    let (fs, fd) = (rw(&src), rw(&dst));
    fs.set_len(GIB).unwrap();
    fd.set_len(GIB).unwrap();
    // Both files: data in one 64 KiB cluster out of four (sparse elsewhere).
    let mut rng = Rng::new(2026);
    let mut buf = vec![0u8; 65536];
    for c in (0..GIB / 65536).step_by(4) {
        rng.fill(&mut buf);
        fs.write_all_at(&buf, c * 65536).unwrap();
        fd.write_all_at(&buf, c * 65536).unwrap();
    }
    // 1 % of all blocks change in SRC: new data (in data or hole areas) or zeroed.
    let blocks = GIB / BLOCK;
    let mut changed = std::collections::BTreeMap::new();
    while changed.len() < (blocks / 100) as usize {
        let i = rng.below(blocks);
        let zero = rng.below(5) == 0;
        changed.insert(i, zero);
    }
    let (mut want_written, mut want_zeroed) = (0u64, 0u64);
    let mut old = vec![0u8; BLOCK as usize];
    for (&i, &zero) in &changed {
        fd.read_exact_at(&mut old, i * BLOCK).unwrap();
        let new = if zero {
            vec![0u8; BLOCK as usize]
        } else {
            let mut b = vec![0u8; BLOCK as usize];
            rng.fill(&mut b);
            b
        };
        if new != old {
            if zero {
                want_zeroed += BLOCK;
            } else {
                want_written += BLOCK;
            }
        }
        fs.write_all_at(&new, i * BLOCK).unwrap();
    }
    drop((fs, fd));
    assert!(want_written > 0 && want_zeroed > 0);
    let out = run_ok(vzsnap().arg("blocksync").arg(&src).arg(&dst).arg("--json"));
    let j = json(&out);
    assert_eq!(j["size"], GIB);
    assert_eq!(j["written"], want_written, "{j}");
    assert_eq!(j["zeroed"], want_zeroed, "{j}");
    assert_eq!(j["unchanged"], GIB - want_written - want_zeroed);
    assert!(same_files(&src, &dst), "DST must equal SRC");
    // Again: nothing left to write.
    let j = json(&run_ok(
        vzsnap().arg("blocksync").arg(&src).arg(&dst).arg("--json"),
    ));
    assert_eq!(
        (
            j["written"].as_u64(),
            j["zeroed"].as_u64(),
            j["write-calls"].as_u64()
        ),
        (Some(0), Some(0), Some(0))
    );
    // The human line.
    let out = run_ok(vzsnap().arg("blocksync").arg(&src).arg(&dst));
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.contains("0 B written in 0 writes"), "{line}");
}
