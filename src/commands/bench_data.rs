//! `vzsnap dev gen-disk` and `vzsnap dev churn`: deterministic raw disk images for
//! `scripts/bench` (hidden; not part of the stable CLI).
//!
//! Why not `dev gen-backups`: that series keeps whole disks in memory and its text blocks are
//! sixteen templates, which zstd compresses far better than real data (and decompresses
//! faster), so the decompression floor would be unrealistically low. The benchmark needs
//! multi-GiB images streamed to disk, a content mix like perf.md §4.1 (≈55 % "real" data that
//! compresses about 2–3× with zstd, 15 % random, 30 % zeros, in runs of 1–64 blocks), and a
//! next-day version with a known number of changed 4 KiB blocks.
//!
//! - `gen-disk --size S --seed N OUT`: writes OUT sparse (zero blocks are holes).
//! - `churn --percent P --pattern random|clustered IN OUT`: OUT = IN with P % of the 4 KiB
//!   blocks rewritten (random: uniformly scattered single blocks; clustered: runs of 1–64
//!   blocks), a fifth of them becoming zero. Prints JSON with the exact count of blocks that
//!   differ from IN (`changed-blocks`, split into `data-blocks` and `zeroed-blocks`): the
//!   minimum any sync must write.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use ingest::synth::Rng;
use serde::Serialize;

const BLOCK: usize = 4096;
/// Bytes generated and written per step (a multiple of the block size).
const CHUNK: usize = 4 << 20;

#[derive(Debug, Args)]
pub struct GenDiskArgs {
    /// Output file (created or truncated; written sparse).
    pub out: PathBuf,
    /// Size (K, M, G suffixes: binary units).
    #[arg(long, value_parser = super::dev::parse_size)]
    pub size: u64,
    /// Seed of everything random.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Percent of the blocks (in runs) that hold compressible "real" data.
    #[arg(long, default_value_t = 55)]
    pub real: u8,
    /// Percent of the blocks (in runs) that hold random (incompressible) data; the rest is zero.
    #[arg(long, default_value_t = 15)]
    pub random: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pattern {
    /// Single 4 KiB blocks, uniformly scattered.
    Random,
    /// Runs of 1–64 blocks (4–256 KiB) at random places.
    Clustered,
}

#[derive(Debug, Args)]
pub struct ChurnArgs {
    /// Yesterday's image.
    pub input: PathBuf,
    /// Today's image (created or truncated; written sparse).
    pub out: PathBuf,
    /// Percent of the 4 KiB blocks to rewrite.
    #[arg(long, default_value_t = 1.0)]
    pub percent: f64,
    #[arg(long, value_enum, default_value_t = Pattern::Random)]
    pub pattern: Pattern,
    #[arg(long, default_value_t = 2)]
    pub seed: u64,
}

/// What `churn` prints (JSON, one line).
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct ChurnReport {
    pub size: u64,
    /// Blocks picked for rewriting.
    pub touched_blocks: u64,
    /// Blocks whose bytes differ from the input (data + zeroed).
    pub changed_blocks: u64,
    /// Changed blocks with non-zero new contents.
    pub data_blocks: u64,
    /// Changed blocks that became zero.
    pub zeroed_blocks: u64,
    /// `changed_blocks × 4096`: what a minimal sync writes (data) or zeroes.
    pub min_bytes: u64,
    /// Distinct records of 4, 16, 64 and 128 KiB holding a changed block: a ZFS dataset
    /// with that recordsize rewrites at least this many records (perf.md §3.7 model).
    pub dirty_records: DirtyRecords,
}

/// See [`ChurnReport::dirty_records`].
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct DirtyRecords {
    #[serde(rename = "4K")]
    pub r4k: u64,
    #[serde(rename = "16K")]
    pub r16k: u64,
    #[serde(rename = "64K")]
    pub r64k: u64,
    #[serde(rename = "128K")]
    pub r128k: u64,
}

impl DirtyRecords {
    /// Counts distinct records over ascending changed block numbers.
    fn count(changed: &[u64]) -> Self {
        let distinct = |blocks_per_record: u64| {
            let mut n = 0;
            let mut last = None;
            for b in changed {
                let r = b / blocks_per_record;
                if last != Some(r) {
                    n += 1;
                    last = Some(r);
                }
            }
            n
        };
        DirtyRecords {
            r4k: distinct(1),
            r16k: distinct(4),
            r64k: distinct(16),
            r128k: distinct(32),
        }
    }
}

/// Content kinds of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Real,
    Random,
    Zero,
}

/// Deterministic block contents. "Real" data alternates text (words of a seeded vocabulary,
/// Zipf-like frequencies) and binary records (counters, small integers, pointer-like values),
/// which together compress about 2.5× with `zstd -3`, like a tar of `/usr` (perf.md §2.2).
#[derive(Debug)]
pub struct Painter {
    words: Vec<Vec<u8>>,
}

impl Painter {
    pub fn new(seed: u64) -> Self {
        const LETTERS: &[u8] = b"eeeettaaooiinnsshhrrddllucmfwypvbgkjqxz";
        let mut rng = Rng::new(seed ^ 0x005e_ed0f_7e47);
        let words = (0..4096)
            .map(|_| {
                let len = 2 + rng.below(5) as usize + rng.below(6) as usize;
                (0..len)
                    .map(|_| LETTERS[rng.below(LETTERS.len() as u64) as usize])
                    .collect()
            })
            .collect();
        Painter { words }
    }

    fn text(&self, rng: &mut Rng, b: &mut [u8]) {
        let mut n = 0;
        while n < b.len() {
            // Zipf-like: small indexes are much more frequent.
            let u = rng.below(1 << 20) as f64 / (1 << 20) as f64;
            let w: &[u8] = if rng.below(20) == 0 {
                let num = rng.below(1_000_000).to_string();
                let k = num.len().min(b.len() - n);
                b[n..n + k].copy_from_slice(&num.as_bytes()[..k]);
                n += k;
                &[]
            } else {
                &self.words[(u * u * u * self.words.len() as f64) as usize]
            };
            let k = w.len().min(b.len() - n);
            b[n..n + k].copy_from_slice(&w[..k]);
            n += k;
            if n < b.len() {
                b[n] = match rng.below(20) {
                    0 => b'\n',
                    1 => b',',
                    2 => b'.',
                    _ => b' ',
                };
                n += 1;
            }
        }
    }

    fn binary(rng: &mut Rng, b: &mut [u8], at: u64) {
        let base = 0x0000_7f3a_0000_0000u64 | (rng.below(1 << 16) << 16);
        for (i, w) in b.chunks_exact_mut(8).enumerate() {
            let v = match rng.below(8) {
                0..3 => 0,
                3 => rng.below(256),
                4 => at / 8 + i as u64,
                5 | 6 => base + (rng.below(4096) << 3),
                _ => rng.next_u64(),
            };
            w.copy_from_slice(&v.to_le_bytes());
        }
    }

    fn real(&self, rng: &mut Rng, b: &mut [u8], at: u64) {
        if rng.below(2) == 0 {
            self.text(rng, b);
        } else {
            Self::binary(rng, b, at);
        }
    }

    fn fill(&self, rng: &mut Rng, kind: Kind, b: &mut [u8], at: u64) {
        match kind {
            Kind::Real => self.real(rng, b, at),
            Kind::Random => rng.fill(b),
            Kind::Zero => b.fill(0),
        }
    }
}

fn is_zero(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

/// Writes the non-zero 4 KiB blocks of `buf` at `off` (runs coalesced), so zeros stay holes.
fn write_sparse(f: &File, buf: &[u8], off: u64, path: &Path) -> anyhow::Result<()> {
    let mut i = 0;
    let blocks: Vec<&[u8]> = buf.chunks(BLOCK).collect();
    while i < blocks.len() {
        if is_zero(blocks[i]) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < blocks.len() && !is_zero(blocks[j]) {
            j += 1;
        }
        let start = i * BLOCK;
        let end = (j * BLOCK).min(buf.len());
        f.write_all_at(&buf[start..end], off + start as u64)
            .with_context(|| format!("writing {}", path.display()))?;
        i = j;
    }
    Ok(())
}

fn create(path: &Path, size: u64) -> anyhow::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .read(true)
        .create(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.set_len(size)
        .with_context(|| format!("sizing {}", path.display()))?;
    Ok(f)
}

pub fn gen_disk(a: &GenDiskArgs) -> anyhow::Result<()> {
    if u32::from(a.real) + u32::from(a.random) > 100 {
        bail!("--real plus --random must not exceed 100");
    }
    let p = Painter::new(a.seed);
    let f = create(&a.out, a.size)?;
    let mut rng = Rng::new(a.seed);
    let mut buf = vec![0u8; CHUNK];
    let (mut kind, mut left) = (Kind::Zero, 0u64);
    let mut off = 0u64;
    while off < a.size {
        let n = (CHUNK as u64).min(a.size - off) as usize;
        for (i, b) in buf[..n].chunks_mut(BLOCK).enumerate() {
            if left == 0 {
                left = 1 + rng.below(64);
                let k = rng.below(100);
                kind = if k < u64::from(a.real) {
                    Kind::Real
                } else if k < u64::from(a.real) + u64::from(a.random) {
                    Kind::Random
                } else {
                    Kind::Zero
                };
            }
            left -= 1;
            p.fill(&mut rng, kind, b, off + (i * BLOCK) as u64);
        }
        write_sparse(&f, &buf[..n], off, &a.out)?;
        off += n as u64;
    }
    Ok(())
}

/// Picks the blocks to rewrite: exactly `target` distinct blocks (fewer only if the disk has
/// fewer), as single blocks or runs. Returned sorted.
fn pick(rng: &mut Rng, nblocks: u64, target: u64, pattern: Pattern) -> Vec<u64> {
    let target = target.min(nblocks);
    let mut seen = vec![false; nblocks as usize];
    let mut out = Vec::with_capacity(target as usize);
    while (out.len() as u64) < target {
        let (start, run) = match pattern {
            Pattern::Random => (rng.below(nblocks), 1),
            Pattern::Clustered => (rng.below(nblocks), 1 + rng.below(64)),
        };
        for b in start..(start + run).min(nblocks) {
            if (out.len() as u64) < target && !seen[b as usize] {
                seen[b as usize] = true;
                out.push(b);
            }
        }
    }
    out.sort_unstable();
    out
}

pub fn churn(a: &ChurnArgs) -> anyhow::Result<ChurnReport> {
    if !(0.0..=100.0).contains(&a.percent) {
        bail!("--percent must be between 0 and 100");
    }
    let src = File::open(&a.input).with_context(|| format!("opening {}", a.input.display()))?;
    let size = src.metadata()?.len();
    let f = create(&a.out, size)?;
    let mut buf = vec![0u8; CHUNK];
    let mut off = 0u64;
    while off < size {
        let n = (CHUNK as u64).min(size - off) as usize;
        src.read_exact_at(&mut buf[..n], off)
            .with_context(|| format!("reading {}", a.input.display()))?;
        write_sparse(&f, &buf[..n], off, &a.out)?;
        off += n as u64;
    }
    let nblocks = size.div_ceil(BLOCK as u64);
    let mut rng = Rng::new(a.seed);
    let target = (nblocks as f64 * a.percent / 100.0).round() as u64;
    let blocks = pick(&mut rng, nblocks, target, a.pattern);
    let p = Painter::new(a.seed);
    let mut r = ChurnReport {
        size,
        touched_blocks: blocks.len() as u64,
        ..Default::default()
    };
    let (mut old, mut new) = (vec![0u8; BLOCK], vec![0u8; BLOCK]);
    let mut changed = Vec::new();
    for b in blocks {
        let at = b * BLOCK as u64;
        let len = (BLOCK as u64).min(size - at) as usize;
        src.read_exact_at(&mut old[..len], at)?;
        // A fifth becomes zero (trim), the rest new data: mostly "real", some random.
        let kind = match rng.below(5) {
            0 => Kind::Zero,
            4 => Kind::Random,
            _ => Kind::Real,
        };
        p.fill(&mut rng, kind, &mut new[..len], at);
        if new[..len] == old[..len] {
            continue;
        }
        r.changed_blocks += 1;
        changed.push(b);
        if is_zero(&new[..len]) {
            r.zeroed_blocks += 1;
            f.write_all_at(&new[..len], at)
                .with_context(|| format!("zeroing in {}", a.out.display()))?;
        } else {
            r.data_blocks += 1;
            f.write_all_at(&new[..len], at)
                .with_context(|| format!("writing {}", a.out.display()))?;
        }
    }
    r.min_bytes = r.changed_blocks * BLOCK as u64;
    r.dirty_records = DirtyRecords::count(&changed);
    f.sync_all()?;
    Ok(r)
}

pub fn print_report(r: &ChurnReport) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, r)?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_is_exact_distinct_and_sorted() {
        for pattern in [Pattern::Random, Pattern::Clustered] {
            let v = pick(&mut Rng::new(3), 10_000, 100, pattern);
            assert_eq!(v.len(), 100);
            assert!(v.windows(2).all(|w| w[0] < w[1]));
            assert!(v.iter().all(|&b| b < 10_000));
        }
        assert_eq!(pick(&mut Rng::new(3), 5, 50, Pattern::Random).len(), 5);
    }

    #[test]
    fn clustered_makes_runs() {
        let v = pick(&mut Rng::new(9), 1 << 20, 2000, Pattern::Clustered);
        let adjacent = v.windows(2).filter(|w| w[1] == w[0] + 1).count();
        assert!(adjacent > 1500, "{adjacent}");
        let v = pick(&mut Rng::new(9), 1 << 20, 2000, Pattern::Random);
        let adjacent = v.windows(2).filter(|w| w[1] == w[0] + 1).count();
        assert!(adjacent < 50, "{adjacent}");
    }

    #[test]
    fn gen_and_churn_are_deterministic_and_counted_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let d1 = dir.path().join("d1");
        let gen_args = |out: PathBuf| GenDiskArgs {
            out,
            size: 8 << 20,
            seed: 5,
            real: 55,
            random: 15,
        };
        gen_disk(&gen_args(d1.clone())).unwrap();
        gen_disk(&gen_args(dir.path().join("d1b"))).unwrap();
        let a = std::fs::read(&d1).unwrap();
        assert_eq!(a, std::fs::read(dir.path().join("d1b")).unwrap());
        assert_eq!(a.len(), 8 << 20);
        let zero = a.chunks(BLOCK).filter(|b| is_zero(b)).count() as f64 / 2048.0;
        assert!((0.15..0.45).contains(&zero), "zero fraction {zero}");

        let d2 = dir.path().join("d2");
        let r = churn(&ChurnArgs {
            input: d1.clone(),
            out: d2.clone(),
            percent: 1.0,
            pattern: Pattern::Random,
            seed: 2,
        })
        .unwrap();
        let b = std::fs::read(&d2).unwrap();
        let (mut data, mut zeroed) = (0, 0);
        for (x, y) in a.chunks(BLOCK).zip(b.chunks(BLOCK)) {
            if x != y {
                if is_zero(y) {
                    zeroed += 1;
                } else {
                    data += 1;
                }
            }
        }
        assert_eq!(r.touched_blocks, 20);
        assert_eq!((r.data_blocks, r.zeroed_blocks), (data, zeroed));
        assert_eq!(r.changed_blocks, data + zeroed);
        assert_eq!(r.min_bytes, (data + zeroed) * BLOCK as u64);
        assert!(r.changed_blocks >= 12, "{r:?}");
        assert_eq!(r.dirty_records.r4k, r.changed_blocks);
    }

    #[test]
    fn dirty_records_count_distinct_records() {
        let d = DirtyRecords::count(&[0, 1, 3, 4, 15, 16, 40, 1000]);
        assert_eq!((d.r4k, d.r16k, d.r64k, d.r128k), (8, 6, 4, 3));
        assert_eq!(DirtyRecords::count(&[]), DirtyRecords::default());
    }
}
