//! Test support for this crate and for other crates' tests (cargo feature `testutil`):
//!
//! - [`TestBtrfs`]: a fresh btrfs file system on a loop device (needs root), gone on drop.
//! - [`TestZfs`]: a fresh child dataset of the pool in `VZSNAP_ZFS_POOL`, destroyed on drop.
//! - [`btrfs_or_skip`] / [`zfs_or_skip`]: print `SKIPPED (<reason>)` and return `None` when the
//!   backend is unavailable, or panic when `VZSNAP_REQUIRE_BTRFS=1` / `VZSNAP_REQUIRE_ZFS=1`.
//! - [`backend_tests!`](crate::backend_tests): run `fn name(&dyn Store)` on both real backends
//!   as `btrfs::name` and `zfs::name` (so `cargo test zfs` selects the ZFS half).
//! - [`FakeStore`]: the same trait over plain directories with in-memory bookkeeping, for
//!   pure-logic unit tests (never for acceptance tests).
//! - [`noise`]: deterministic incompressible test data.

mod btrfs;
mod fake;
mod zfs;

use std::io::Write;

pub use btrfs::TestBtrfs;
pub use fake::{FakeOp, FakeStore};
pub use zfs::TestZfs;

/// Deterministic pseudo-random bytes (xorshift): incompressible, so a store's compression
/// does not hide them, and the same for a seed, so failures reproduce.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Env var that turns a missing btrfs backend into a test failure.
pub const REQUIRE_BTRFS: &str = "VZSNAP_REQUIRE_BTRFS";
/// Env var that turns a missing ZFS backend into a test failure.
pub const REQUIRE_ZFS: &str = "VZSNAP_REQUIRE_ZFS";
/// Env var naming the pool TestZfs creates its datasets in.
pub const ZFS_POOL: &str = "VZSNAP_ZFS_POOL";

fn skip_or_panic<T>(require_var: &str, what: &str, reason: &str) -> Option<T> {
    if std::env::var(require_var).is_ok_and(|v| v == "1") {
        panic!("{what} backend is required ({require_var}=1) but unavailable: {reason}");
    }
    // Straight to the process's stderr: libtest captures `eprintln!` of passing tests, and a
    // skip must never be silent.
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let _ = writeln!(std::io::stderr(), "SKIPPED ({what}: {reason}): {test}");
    None
}

/// A ready btrfs test store, or `None` after printing `SKIPPED (…)` (panics instead when
/// `VZSNAP_REQUIRE_BTRFS=1`).
pub fn btrfs_or_skip() -> Option<TestBtrfs> {
    TestBtrfs::new().map_or_else(
        |reason| skip_or_panic(REQUIRE_BTRFS, "btrfs", &reason),
        Some,
    )
}

/// A ready ZFS test store, or `None` after printing `SKIPPED (…)` (panics instead when
/// `VZSNAP_REQUIRE_ZFS=1`).
pub fn zfs_or_skip() -> Option<TestZfs> {
    TestZfs::new().map_or_else(|reason| skip_or_panic(REQUIRE_ZFS, "zfs", &reason), Some)
}

/// Generates `mod btrfs { #[test] fn name() }` and `mod zfs { #[test] fn name() }` for each
/// `fn name(store: &dyn store::Store)` in the calling module, each on a fresh backend.
///
/// ```text
/// fn snapshot_round_trip(s: &dyn store::Store) { /* … */ }
/// store::backend_tests!(snapshot_round_trip);
/// ```
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod btrfs {
            $(
                #[test]
                fn $name() {
                    if let Some(backend) = $crate::testutil::btrfs_or_skip() {
                        super::$name(backend.store());
                    }
                }
            )*
        }
        mod zfs {
            $(
                #[test]
                fn $name() {
                    if let Some(backend) = $crate::testutil::zfs_or_skip() {
                        super::$name(backend.store());
                    }
                }
            )*
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_returns_none_without_the_require_variable() {
        // The variable name is unique to this test, so parallel tests cannot set it.
        assert!(skip_or_panic::<()>("VZSNAP_TEST_UNSET_REQUIRE_VAR", "demo", "not here").is_none());
    }
}
