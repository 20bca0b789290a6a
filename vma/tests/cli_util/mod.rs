//! Shared helpers of the `vma` CLI tests: running the binary, deterministic disk data,
//! archives built with the library writer (for orders and layouts the CLI cannot produce),
//! and byte patching with MD5 repair for hostile inputs.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use sha2::{Digest, Sha256};
use vma::format::{CLUSTER_SIZE, EXTENT_HEADER_SIZE, md5_with_zeroed_field};
use vma::{Config, VmaWriter, WriterOptions};

/// The binary under test, with `TZ=UTC` so `CTIME:` lines are predictable.
pub fn vma() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vma"));
    c.env("TZ", "UTC");
    c.env_remove("POSIXLY_CORRECT");
    c
}

/// Outcome of one run.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub raw_stdout: Vec<u8>,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// Asserts success and returns self.
    pub fn ok(self) -> Self {
        assert!(
            self.status.success(),
            "vma failed ({:?}): stderr: {}\nstdout: {}",
            self.status,
            self.stderr,
            self.stdout
        );
        self
    }

    /// Asserts exit status 255 with exactly one stderr line containing every `needle`.
    pub fn fails_with(self, needles: &[&str]) -> Self {
        assert_eq!(
            self.code(),
            255,
            "expected failure, got {:?}; stderr: {}",
            self.status,
            self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "one stderr line expected: {:?}",
            self.stderr
        );
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "{n:?} not in stderr: {}",
                self.stderr
            );
        }
        self
    }
}

fn finish(out: std::process::Output) -> Run {
    Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        raw_stdout: out.stdout,
    }
}

/// Runs `vma args...`.
pub fn run<S: AsRef<OsStr>>(args: &[S]) -> Run {
    finish(vma().args(args).stdin(Stdio::null()).output().unwrap())
}

/// Runs `vma args...` with `input` written into a pipe on stdin.
pub fn run_stdin<S: AsRef<OsStr>>(args: &[S], input: Vec<u8>) -> Run {
    let mut child = vma()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    finish(out)
}

/// Deterministic disk-like data: about half the 4 KiB blocks zero, whole zero clusters, text
/// and noise; `len` need not be a multiple of anything.
pub fn disk(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut v = vec![0u8; len];
    for (ci, cluster) in v.chunks_mut(CLUSTER_SIZE).enumerate() {
        if next() % 4 == 0 {
            continue; // an all-zero cluster
        }
        for block in cluster.chunks_mut(4096) {
            match next() % 4 {
                0 | 1 => {}
                2 => {
                    for (i, b) in block.iter_mut().enumerate() {
                        *b = b"vzsnap disk data "[(i + ci) % 17];
                    }
                }
                _ => block.iter_mut().for_each(|b| *b = next() as u8),
            }
        }
    }
    v
}

/// Hex sha256.
pub fn sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Writes an archive with the library writer. With `shuffle`, clusters of all devices are
/// interleaved in a scrambled order, like a live backup.
pub fn lib_archive(
    configs: &[(&str, &[u8])],
    devices: &[(&str, &[u8])],
    shuffle: bool,
    ctime: i64,
) -> Vec<u8> {
    let cfgs = configs
        .iter()
        .map(|(n, d)| Config {
            name: n.to_string(),
            data: d.to_vec(),
        })
        .collect();
    let devs = devices
        .iter()
        .map(|(n, d)| (n.to_string(), d.len() as u64))
        .collect();
    let mut w = VmaWriter::new(
        Vec::new(),
        cfgs,
        devs,
        WriterOptions {
            uuid: Some(*b"0123456789abcdef"),
            ctime: Some(ctime),
        },
    )
    .unwrap();
    let mut order: Vec<(u8, u32)> = Vec::new();
    for (i, (_, d)) in devices.iter().enumerate() {
        for c in 0..d.len().div_ceil(CLUSTER_SIZE) {
            order.push((i as u8 + 1, c as u32));
        }
    }
    if shuffle {
        // A fixed permutation: multiplicative stride over the index space.
        let n = order.len();
        if n > 1 {
            let stride = (0..)
                .map(|k| 7919 + k)
                .find(|s| gcd(*s, n) == 1)
                .unwrap_or(1);
            order = (0..n).map(|i| order[(i * stride) % n]).collect();
        }
    }
    for (dev, c) in order {
        let d = devices[usize::from(dev) - 1].1;
        let start = c as usize * CLUSTER_SIZE;
        let end = (start + CLUSTER_SIZE).min(d.len());
        w.write_cluster(dev, c, &d[start..end]).unwrap();
    }
    w.finish().unwrap()
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// header_size field of an archive.
pub fn header_size(a: &[u8]) -> usize {
    u32::from_be_bytes(a[56..60].try_into().unwrap()) as usize
}

/// Recomputes the header MD5 after patching header bytes.
pub fn fix_header_md5(a: &mut [u8]) {
    let hs = header_size(a);
    let md5 = md5_with_zeroed_field(&a[..hs], 32);
    a[32..48].copy_from_slice(&md5);
}

/// Recomputes the MD5 of the extent header at `at` after patching it.
pub fn fix_extent_md5(a: &mut [u8], at: usize) {
    let md5 = md5_with_zeroed_field(&a[at..at + EXTENT_HEADER_SIZE], 24);
    a[at + 24..at + 40].copy_from_slice(&md5);
}

/// Offsets of all extents (walking block_count).
pub fn extent_offsets(a: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut at = header_size(a);
    while at + EXTENT_HEADER_SIZE <= a.len() {
        v.push(at);
        let bc = u16::from_be_bytes([a[at + 6], a[at + 7]]) as usize;
        at += EXTENT_HEADER_SIZE + bc * 4096;
    }
    v
}

/// Asserts no `disk-*.raw` exists in `dir` (a failed extract must not leave one).
pub fn assert_no_complete_disks(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            assert!(
                !n.starts_with("disk-"),
                "{n} left in {} after a failure",
                dir.display()
            );
        }
    }
}

/// Writes bytes to a file in `dir`.
pub fn put(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// Runs an external tool with `input` on stdin; fails the test if missing or failing.
pub fn tool(name: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(name)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("`{name}` missing ({e}): run scripts/install-deps"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let t = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let st = child.wait().unwrap();
    t.join().unwrap();
    assert!(st.success(), "{name} {args:?}: {err}");
    out
}

/// Bytes of allocated storage of a file (to check sparseness).
pub fn allocated(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().blocks() * 512
}

/// The real PVE sample (gzip-compressed, truncated after two extents); see
/// shared/fixtures/third_party/README.md.
pub fn sample() -> PathBuf {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/third_party/dissect-hypervisor_test.vma.gz"
    ));
    assert!(p.exists(), "missing fixture {}", p.display());
    p
}
