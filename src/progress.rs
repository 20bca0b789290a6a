//! Progress display: a bar on a terminal, periodic log lines otherwise (cron, systemd).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use vma::progress::Progress;

/// How often a non-terminal run logs its position.
const LOG_INTERVAL: Duration = Duration::from_secs(30);

/// Picks the right display for where stderr goes.
pub fn for_stderr(quiet: bool) -> Box<dyn Progress> {
    if quiet {
        Box::new(vma::progress::NoProgress)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bar::default())
    } else {
        Box::new(LogLines::default())
    }
}

#[derive(Default)]
struct Bar {
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress for Bar {
    fn start(&self, label: &str, total: Option<u64>) {
        let bar = match total {
            Some(t) => ProgressBar::new(t).with_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("static template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg} {bytes} {bytes_per_sec}")
                    .expect("static template"),
            ),
        };
        bar.set_message(label.to_string());
        *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
    }

    fn set_position(&self, pos: u64) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            bar.set_position(pos);
        }
    }

    fn finish(&self, summary: &str) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
        if !summary.is_empty() {
            eprintln!("{summary}");
        }
    }
}

struct LogLines {
    state: Mutex<Option<LogState>>,
    /// [`LOG_INTERVAL`]; shorter in tests.
    interval: Duration,
}

impl Default for LogLines {
    fn default() -> Self {
        LogLines {
            state: Mutex::new(None),
            interval: LOG_INTERVAL,
        }
    }
}

struct LogState {
    label: String,
    total: Option<u64>,
    started: Instant,
    last: Instant,
}

impl Progress for LogLines {
    fn start(&self, label: &str, total: Option<u64>) {
        let now = Instant::now();
        tracing::info!("{label}: started");
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(LogState {
            label: label.to_string(),
            total,
            started: now,
            last: now,
        });
    }

    fn set_position(&self, pos: u64) {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(st) = guard.as_mut() else { return };
        if st.last.elapsed() < self.interval {
            return;
        }
        st.last = Instant::now();
        let secs = st.started.elapsed().as_secs_f64().max(0.001);
        let rate = pos as f64 / secs / 1e6;
        match st.total {
            Some(t) if t > 0 => tracing::info!(
                "{}: {:.0}% ({} of {} bytes, {rate:.0} MB/s)",
                st.label,
                pos as f64 * 100.0 / t as f64,
                pos,
                t
            ),
            _ => tracing::info!("{}: {} bytes ({rate:.0} MB/s)", st.label, pos),
        }
    }

    fn finish(&self, summary: &str) {
        if let Some(st) = self.state.lock().unwrap_or_else(|e| e.into_inner()).take() {
            if summary.is_empty() {
                tracing::info!("{}: done", st.label);
            } else {
                tracing::info!("{}: {summary}", st.label);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A `tracing` writer that keeps everything in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(interval: Duration, steps: &[u64]) -> String {
        let out = Captured::default();
        let w = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let p = LogLines {
                state: Mutex::new(None),
                interval,
            };
            p.start("100: vzdump-qemu-100.vma.zst", Some(1000));
            for &s in steps {
                p.set_position(s);
            }
            p.finish("");
        });
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    /// Under cron/systemd (no terminal): a line when a phase starts, one per interval with
    /// the percentage, one at the end; nothing in between.
    #[test]
    fn log_lines_start_periodic_and_done() {
        let quiet = logged(Duration::from_secs(3600), &[100, 500, 900]);
        let lines: Vec<&str> = quiet.lines().collect();
        assert_eq!(lines.len(), 2, "{quiet}");
        assert!(
            lines[0].ends_with("100: vzdump-qemu-100.vma.zst: started"),
            "{quiet}"
        );
        assert!(
            lines[1].ends_with("100: vzdump-qemu-100.vma.zst: done"),
            "{quiet}"
        );
        let every = logged(Duration::ZERO, &[100, 500]);
        assert!(
            every.contains("100: vzdump-qemu-100.vma.zst: 10% (100 of 1000 bytes"),
            "{every}"
        );
        assert!(every.contains(": 50% (500 of 1000 bytes"), "{every}");
        assert_eq!(every.lines().count(), 4, "{every}");
    }
}
