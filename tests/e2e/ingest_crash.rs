//! Crash safety of `vzsnap ingest`: the real binary is crashed at random points — aborted by
//! the test hook `VZSNAP_TEST_CRASH_AT` at a random archive byte or at a named step
//! (`std::process::abort()`: no cleanup, like a power cut for the process), or killed with
//! SIGKILL after a random delay — and re-run each time. After every crash:
//! - every snapshot that exists is byte-identical to its backup's images (no partial
//!   snapshot), and only backups' snapshots exist;
//! - every backup's input still exists unless its snapshot does (`delete_input = true`);
//!
//! and after a final clean run every backup is a complete snapshot, the protected one held.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use ingest::crash::PHASES;
use ingest::synth::check::compare_volume;
use ingest::synth::{Day, Rng, SeriesSpec};
use store::layout::PROTECTED_HOLD_TAG;
use store::{SnapshotName, VolumeName};

use crate::support::*;

const VMID: u32 = 100;
const SEED: u64 = 17;

fn vol() -> VolumeName {
    VolumeName::new(VMID.to_string()).unwrap()
}

/// Back to an empty store and a full dump directory: the archives are copied from `pristine`
/// (generated once: generating and compressing them again costs more than an ingest in the
/// emulated ZFS VM), with their modification times, which `vzsnap ingest` looks at.
fn reset(b: &Backend, s: &Setup, pristine: &Path) {
    let st = b.store();
    if st.list_volumes().unwrap().contains(&vol()) {
        for snap in st.list_snapshots(&vol()).unwrap() {
            st.release(&vol(), &snap.name, PROTECTED_HOLD_TAG).unwrap();
        }
        st.destroy_volume(&vol(), true).unwrap();
    }
    for e in std::fs::read_dir(&s.dump).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    for e in std::fs::read_dir(pristine).unwrap() {
        let from = e.unwrap().path();
        let to = s.dump.join(from.file_name().unwrap());
        std::fs::copy(&from, &to).unwrap();
        let mtime = std::fs::metadata(&from).unwrap().modified().unwrap();
        std::fs::File::options()
            .write(true)
            .open(&to)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }
}

fn archive_exists(s: &Setup, d: &Day) -> bool {
    std::fs::read_dir(&s.dump).unwrap().any(|e| {
        let n = e.unwrap().file_name().into_string().unwrap();
        n.starts_with(&format!(
            "vzdump-qemu-{VMID}-{}.vma",
            d.time.snapshot_name()
        )) && !n.ends_with(".notes")
            && !n.ends_with(".protected")
    })
}

/// The uncompressed (VMA stream) size of a day's archive in the dump directory.
fn plain_size(s: &Setup, d: &Day) -> u64 {
    let name = format!("vzdump-qemu-{VMID}-{}.vma", d.time.snapshot_name());
    let path = std::fs::read_dir(&s.dump)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with(&name) && !n.ends_with(".notes") && !n.ends_with(".protected")
        })
        .unwrap();
    let (_, mut r) = vma::compress::open_decompressed(std::fs::File::open(path).unwrap()).unwrap();
    std::io::copy(&mut r, &mut std::io::sink()).unwrap()
}

/// The invariants that must hold after any crash. Returns how many backups are done.
fn check(b: &Backend, s: &Setup, days: &[Day], what: &str) -> usize {
    let st = b.store();
    let snaps = if st.list_volumes().unwrap().contains(&vol()) {
        st.list_snapshots(&vol()).unwrap()
    } else {
        Vec::new()
    };
    for snap in &snaps {
        let day = days
            .iter()
            .find(|d| d.time.snapshot_name() == snap.name.as_str())
            .unwrap_or_else(|| panic!("{what}: unexpected snapshot {}", snap.name));
        let dir = st.snapshot_path(&vol(), &snap.name).unwrap();
        compare_volume(&dir, day)
            .unwrap_or_else(|e| panic!("{what}: partial snapshot {}: {e}", snap.name));
    }
    for d in days {
        let snapped = snaps
            .iter()
            .any(|x| x.name.as_str() == d.time.snapshot_name());
        assert!(
            snapped || archive_exists(s, d),
            "{what}: day {} lost: no snapshot and no input",
            d.number
        );
    }
    snaps.len()
}

fn kill_at_random_points(b: &Backend, points: usize, size: u64) {
    let seed = std::env::var("VZSNAP_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261127u64);
    eprintln!(
        "{}: crash test seed {seed} (set VZSNAP_CRASH_SEED to repeat)",
        b.name()
    );
    let s = Setup::new(&b.spec(), "delete_input = true");
    let days = days(SeriesSpec::new(VMID, SEED, size), 3);
    let pristine = s.dir.path().join("pristine");
    std::fs::create_dir(&pristine).unwrap();
    write_days(&pristine, VMID, SEED, &days);
    reset(b, &s, &pristine);
    // Crash offsets are uncompressed archive offsets: up to the plain size of day 1's archive.
    let stream_bytes = plain_size(&s, &days[0]);
    let started = Instant::now();
    // Calibrate the timed kills with one clean run (its snapshots are the first point's
    // starting state: everything done, so it begins with a reset).
    let t0 = Instant::now();
    run_ok(&mut s.ingest(&["-q"]));
    let full = t0.elapsed();
    let mut done = check(b, &s, &days, "calibration");
    assert_eq!(done, 3);

    let mut rng = Rng::new(seed);
    let (mut aborted, mut killed) = (0, 0);
    for k in 0..points {
        let t = Instant::now();
        if done == days.len() {
            reset(b, &s, &pristine);
        }
        let mut cmd = s.ingest(&["-q"]);
        let what = match rng.below(10) {
            0..6 => format!("byte:{}", 1 + rng.below(stream_bytes)),
            6..8 => PHASES[rng.below(PHASES.len() as u64) as usize].to_string(),
            _ => format!("kill after {} ms", rng.below(full.as_millis() as u64 + 1)),
        };
        let (status, stderr) = if let Some(ms) = what
            .strip_prefix("kill after ")
            .and_then(|r| r.strip_suffix(" ms"))
        {
            let mut child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
            let _ = child.kill();
            (child.wait().unwrap(), String::new())
        } else {
            let out = cmd.env("VZSNAP_TEST_CRASH_AT", &what).output().unwrap();
            (
                out.status,
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        use std::os::unix::process::ExitStatusExt;
        match status.signal() {
            Some(6) => aborted += 1,
            Some(9) => killed += 1,
            // Anything else (an error exit, SIGSEGV…) is a failure; its stderr says why.
            _ => assert!(status.success(), "point {k} ({what}): {status}\n{stderr}"),
        }
        done = check(b, &s, &days, &format!("point {k} ({what})"));
        eprintln!(
            "{} point {k}: {what}: {status}, {done} snapshots ({:.1} s)",
            b.name(),
            t.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "{}: {aborted} aborted by the hook, {killed} killed by SIGKILL",
        b.name()
    );
    assert!(
        aborted + killed >= points * 2 / 3,
        "most points must really crash"
    );
    // A clean run finishes everything.
    run_ok(&mut s.ingest(&["-q"]));
    eprintln!(
        "{}: {points} points in {:.0} s",
        b.name(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(check(b, &s, &days, "final"), 3);
    let st = b.store();
    assert!(!st.changed_since_latest(&vol()).unwrap());
    for d in &days {
        let snap = SnapshotName::new(d.time.snapshot_name()).unwrap();
        let held = st
            .holds(&vol(), &snap)
            .unwrap()
            .contains(&PROTECTED_HOLD_TAG.to_string());
        assert_eq!(held, d.protected, "day {}", d.number);
        assert_eq!(
            archive_exists(&s, d),
            d.protected,
            "day {}: input deleted unless protected",
            d.number
        );
    }
}

mod btrfs {
    use super::*;

    #[test]
    fn kill_at_random_points() {
        if let Some(b) = Backend::btrfs() {
            super::kill_at_random_points(&b, 24, 8 << 20);
        }
    }
}

mod zfs {
    use super::*;

    #[test]
    fn kill_at_random_points() {
        if let Some(b) = Backend::zfs() {
            super::kill_at_random_points(&b, 24, 1 << 20);
        }
    }
}
