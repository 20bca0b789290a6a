//! Write throttling for `extract -r` map lines with `throttling.bps=N:` (and
//! `throttling.group=G:`, which makes devices share one budget), as qemu's block layer does
//! for PVE's restore bandwidth limit. A plain average-rate limiter: after each write, sleep
//! until the bytes written so far fit `bps` since the start.

use std::time::{Duration, Instant};

/// One bandwidth budget.
#[derive(Debug)]
pub struct Throttle {
    bps: u64,
    start: Instant,
    bytes: u64,
}

impl Throttle {
    /// A budget of `bps` bytes per second (0 = unlimited).
    pub fn new(bps: u64) -> Self {
        Self {
            bps,
            start: Instant::now(),
            bytes: 0,
        }
    }

    /// Changes the rate (a group's rate is the last one set, as in qemu).
    pub fn set_bps(&mut self, bps: u64) {
        self.bps = bps;
    }

    /// How long to wait after writing `n` more bytes.
    pub fn delay_after(&mut self, n: u64, now: Instant) -> Duration {
        self.bytes += n;
        if self.bps == 0 {
            return Duration::ZERO;
        }
        let due = Duration::from_secs_f64(self.bytes as f64 / self.bps as f64);
        due.saturating_sub(now.duration_since(self.start))
    }

    /// Accounts `n` bytes and sleeps as needed.
    pub fn account(&mut self, n: u64) {
        let d = self.delay_after(n, Instant::now());
        if !d.is_zero() {
            std::thread::sleep(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_to_the_average_rate() {
        let mut t = Throttle::new(1000);
        let now = t.start;
        assert_eq!(t.delay_after(500, now), Duration::from_millis(500));
        assert_eq!(
            t.delay_after(500, now + Duration::from_millis(800)),
            Duration::from_millis(200)
        );
        assert_eq!(
            t.delay_after(0, now + Duration::from_secs(5)),
            Duration::ZERO
        );
        let mut free = Throttle::new(0);
        assert_eq!(free.delay_after(1 << 40, now), Duration::ZERO);
    }
}
