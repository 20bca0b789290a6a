//! Restore/verify statistics and `-v` output in the C reader's exact format
//! (`vma_reader_restore_full` / `restore_extent`):
//!
//! ```text
//! progress 42% (read 4521984 bytes, duration 3 sec)
//! total bytes read 10737418240, sparse bytes 9663676416 (90%)
//! space reduction due to 4K zero blocks 1.08%
//! ```
//!
//! The percentage is `clusters_read * 100 / Σ floor(size / 64 KiB)` over the registered
//! devices, printed whenever its integer value changes (so it can exceed 100 for devices
//! whose size is not a multiple of 64 KiB, as in C). C divides by zero when that sum is 0;
//! we print no progress then.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use vma::ClusterRef;

const CLUSTER: u64 = 65536;
const BLOCK: u64 = 4096;

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Counters of one restore or verify run.
#[derive(Debug)]
pub struct Stats {
    verbose: bool,
    start: i64,
    cluster_count: u64,
    clusters_read: u64,
    zero_bytes: u64,
    partial_zero_bytes: u64,
    last_percent: u64,
}

impl Stats {
    /// Starts the clock (C: `start_time = time(NULL)` when reading extents begins).
    pub fn new(verbose: bool) -> Self {
        Self {
            verbose,
            start: now_secs(),
            cluster_count: 0,
            clusters_read: 0,
            zero_bytes: 0,
            partial_zero_bytes: 0,
            last_percent: 0,
        }
    }

    /// Restarts the duration clock (C starts it when reading extents begins, after setup).
    pub fn restart_clock(&mut self) {
        self.start = now_secs();
    }

    /// Adds a registered device (C's `allocate_rstate`: `size / 64 KiB`, rounded down).
    pub fn register(&mut self, size: u64) {
        self.cluster_count += size / CLUSTER;
    }

    /// Accounts one cluster read from the archive and prints progress if the percentage
    /// changed. `limit` is the device size (None for the vmstate stream, which has no end).
    pub fn cluster(
        &mut self,
        out: &mut impl Write,
        c: &ClusterRef<'_>,
        limit: Option<u64>,
    ) -> io::Result<()> {
        self.clusters_read += 1;
        if self.verbose && self.cluster_count > 0 {
            let percent = self.clusters_read * 100 / self.cluster_count;
            if percent != self.last_percent {
                writeln!(
                    out,
                    "progress {percent}% (read {} bytes, duration {} sec)",
                    self.clusters_read * CLUSTER,
                    now_secs() - self.start
                )?;
                out.flush()?;
                self.last_percent = percent;
            }
        }
        if c.mask != 0xffff {
            let base = c.device_offset();
            for j in 0..16u64 {
                if c.mask & (1 << j) != 0 {
                    continue;
                }
                let start = base + j * BLOCK;
                let end = match limit {
                    Some(size) => (start + BLOCK).min(size - size % 512),
                    None => start + BLOCK,
                };
                if end > start {
                    self.zero_bytes += end - start;
                    if c.mask != 0 {
                        self.partial_zero_bytes += end - start;
                    }
                }
            }
        }
        Ok(())
    }

    /// The closing lines of `-v`.
    pub fn print_totals(&self, out: &mut impl Write) -> io::Result<()> {
        if !self.verbose {
            return Ok(());
        }
        if self.clusters_read > 0 {
            let total = self.clusters_read * CLUSTER;
            writeln!(
                out,
                "total bytes read {total}, sparse bytes {} ({}%)",
                self.zero_bytes,
                format_g3(100.0 * self.zero_bytes as f64 / total as f64)
            )?;
            let data = total.saturating_sub(self.zero_bytes);
            if data > 0 {
                writeln!(
                    out,
                    "space reduction due to 4K zero blocks {}%",
                    format_g3(100.0 * self.partial_zero_bytes as f64 / data as f64)
                )?;
            }
        } else {
            writeln!(out, "vma archive contains no image data")?;
        }
        out.flush()
    }
}

/// C's `printf("%.3g", x)`: 3 significant digits, trailing zeros removed, scientific
/// notation for exponents below -4 or from 3 on.
pub fn format_g3(x: f64) -> String {
    const P: i32 = 3;
    if x == 0.0 {
        return "0".to_owned();
    }
    if !x.is_finite() {
        return if x.is_nan() {
            "nan"
        } else if x > 0.0 {
            "inf"
        } else {
            "-inf"
        }
        .to_owned();
    }
    // Round to P significant digits first; the exponent after rounding decides the style.
    let sci = format!("{:.*e}", (P - 1) as usize, x);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    if !(-4..P).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mant), exp.abs())
    } else {
        trim(&format!("{:.*}", (P - 1 - exp) as usize, x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_g3_like_printf() {
        for (x, s) in [
            (95.234, "95.2"),
            (100.0, "100"),
            (99.96, "100"),
            (0.5, "0.5"),
            (12.0, "12"),
            (1e-5, "1e-05"),
            (123_456.0, "1.23e+05"),
            (0.000_123_4, "0.000123"),
            (0.0, "0"),
            (33.333_333, "33.3"),
            (1.0, "1"),
            (9.999, "10"),
        ] {
            assert_eq!(format_g3(x), s, "{x}");
        }
    }
}
