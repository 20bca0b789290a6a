//! Shared helpers: the binary, throw-away backends with their store spec, config files,
//! synthetic dump directories.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ingest::synth::{Day, Series, SeriesSpec, write_backup};
use store::Store;
use store::testutil::{TestBtrfs, TestZfs};

/// The `vzsnap` binary with a clean test environment (no crash hook, quiet logs).
pub fn vzsnap() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vzsnap"));
    c.env_remove("VZSNAP_TEST_CRASH_AT").env("RUST_LOG", "warn");
    c
}

pub fn run_ok(c: &mut Command) -> Output {
    let out = c.output().expect("spawn vzsnap");
    assert!(
        out.status.success(),
        "{c:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A real backend and the spec that opens the same store from the binary.
pub enum Backend {
    Btrfs(TestBtrfs),
    Zfs(TestZfs),
}

impl Backend {
    pub fn btrfs() -> Option<Backend> {
        store::testutil::btrfs_or_skip().map(Backend::Btrfs)
    }

    pub fn zfs() -> Option<Backend> {
        store::testutil::zfs_or_skip().map(Backend::Zfs)
    }

    pub fn store(&self) -> &dyn Store {
        match self {
            Backend::Btrfs(b) => b.store(),
            Backend::Zfs(z) => z.store(),
        }
    }

    pub fn spec(&self) -> String {
        match self {
            Backend::Btrfs(b) => format!("btrfs:{}", b.mountpoint().join("store").display()),
            Backend::Zfs(z) => format!("zfs:{}", z.root()),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Btrfs(_) => "btrfs",
            Backend::Zfs(_) => "zfs",
        }
    }
}

/// A work directory with a dump directory and a config for `spec`.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub dump: PathBuf,
    pub config: PathBuf,
    pub lock: PathBuf,
}

impl Setup {
    /// `extra` is appended to the `[ingest]` table.
    pub fn new(spec: &str, extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let dump = dir.path().join("dump");
        std::fs::create_dir(&dump).unwrap();
        let lock = dir.path().join("ingest.lock");
        let config = dir.path().join("vzsnap.toml");
        std::fs::write(
            &config,
            format!(
                "[store]\nspec = \"{spec}\"\n\n[ingest]\ndump_dirs = [\"{}\"]\nsettle_seconds = 0\nlock_file = \"{}\"\n{extra}\n",
                dump.display(),
                lock.display()
            ),
        )
        .unwrap();
        Setup {
            dir,
            dump,
            config,
            lock,
        }
    }

    /// `vzsnap --config <this config> ingest <args>`.
    pub fn ingest(&self, args: &[&str]) -> Command {
        let mut c = vzsnap();
        c.arg("--config").arg(&self.config).arg("ingest").args(args);
        c
    }
}

/// The days 1..=n of a series (day 1 first).
pub fn days(spec: SeriesSpec, n: u32) -> Vec<Day> {
    let mut s = Series::new(spec);
    let mut out = vec![s.day().clone()];
    for _ in 1..n {
        s.advance();
        out.push(s.day().clone());
    }
    out
}

pub fn write_days(dump: &Path, vmid: u32, seed: u64, days: &[Day]) {
    for d in days {
        write_backup(dump, vmid, seed, d, false).unwrap();
    }
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// `backend_tests!(a, b)`: for each `fn a(b: &Backend)` of the calling module, the tests
/// `btrfs::a` (needs root) and `zfs::a` (needs `VZSNAP_ZFS_POOL`, e.g. in the ZFS VM); each
/// prints `SKIPPED` when its backend is missing (or fails under `VZSNAP_REQUIRE_*`).
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod btrfs {
            $(
                #[test]
                fn $name() {
                    if let Some(b) = crate::support::Backend::btrfs() {
                        super::$name(&b)
                    }
                }
            )*
        }
        mod zfs {
            $(
                #[test]
                fn $name() {
                    if let Some(b) = crate::support::Backend::zfs() {
                        super::$name(&b)
                    }
                }
            )*
        }
    };
}
