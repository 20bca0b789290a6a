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

#[derive(Default)]
struct LogLines {
    state: Mutex<Option<LogState>>,
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
        if st.last.elapsed() < LOG_INTERVAL {
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
