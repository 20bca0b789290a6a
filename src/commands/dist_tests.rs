//! The shipped scheduling files in `dist/` run a command this CLI accepts, and systemd accepts
//! the units: `vzsnap-ingest.service` + `.timer` and the cron line (docs/ingest.md,
//! "systemd/cron"). A renamed option or a typo in a unit would otherwise only show on an
//! admin's machine, at night.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Parser;

use super::{Cli, Command};

fn dist(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("dist")
        .join(name)
}

/// A systemd unit file as `section → key → values` (a key may repeat).
fn unit(name: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let text = std::fs::read_to_string(dist(name)).unwrap();
    let mut out: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_string();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{name}: not key=value: {line}"));
        assert!(!section.is_empty(), "{name}: {k} outside a section");
        out.entry(section.clone())
            .or_default()
            .entry(k.trim().to_string())
            .or_default()
            .push(v.trim().to_string());
    }
    out
}

/// Parses a scheduled command line with the real CLI definition; it must be an ingest.
fn ingest_command(argv: &[&str]) -> Cli {
    assert!(
        argv[0].starts_with('/') && argv[0].ends_with("/vzsnap"),
        "absolute path to vzsnap: {argv:?}"
    );
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(
        matches!(cli.command, Command::Ingest(_)),
        "{argv:?} is not an ingest"
    );
    cli
}

#[test]
fn systemd_units_are_valid_and_run_an_ingest() {
    let service = unit("vzsnap-ingest.service");
    let timer = unit("vzsnap-ingest.timer");
    let one = |u: &BTreeMap<String, BTreeMap<String, Vec<String>>>, s: &str, k: &str| {
        let v = &u[s][k];
        assert_eq!(v.len(), 1, "[{s}] {k}");
        v[0].clone()
    };
    assert_eq!(one(&service, "Service", "Type"), "oneshot");
    let after = one(&service, "Unit", "After");
    for t in ["zfs.target", "remote-fs.target"] {
        assert!(after.split_whitespace().any(|x| x == t), "After= lacks {t}");
    }
    assert!(!one(&service, "Unit", "RequiresMountsFor").is_empty());
    let exec = one(&service, "Service", "ExecStart");
    let argv: Vec<&str> = exec.split_whitespace().collect();
    let cli = ingest_command(&argv);
    let Command::Ingest(a) = cli.command else {
        unreachable!()
    };
    assert!(a.wait, "a timer run queues behind a manual one");
    assert!(cli.global.quiet);

    assert!(!one(&timer, "Timer", "OnCalendar").is_empty());
    assert_eq!(one(&timer, "Timer", "Persistent"), "true");
    assert_eq!(one(&timer, "Install", "WantedBy"), "timers.target");
    // No Unit= : the timer starts the service of the same name.
    assert!(!timer["Timer"].contains_key("Unit"));

    // systemd's own parser: unknown keys, bad values and a bad calendar expression are
    // reported on stderr. The ExecStart binary must exist for `verify`, so a copy runs
    // /bin/true instead.
    let dir = tempfile::tempdir().unwrap();
    for name in ["vzsnap-ingest.service", "vzsnap-ingest.timer"] {
        let text = std::fs::read_to_string(dist(name)).unwrap();
        std::fs::write(dir.path().join(name), text.replace(argv[0], "/bin/true")).unwrap();
    }
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.path().join("vzsnap-ingest.service"))
        .arg(dir.path().join("vzsnap-ingest.timer"))
        .output()
        .expect("systemd-analyze (package systemd, scripts/install-deps)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{err}");
    let cal = std::process::Command::new("systemd-analyze")
        .arg("calendar")
        .arg(one(&timer, "Timer", "OnCalendar"))
        .output()
        .unwrap();
    assert!(
        cal.status.success(),
        "{}",
        String::from_utf8_lossy(&cal.stderr)
    );
}

#[test]
fn cron_line_runs_an_ingest() {
    let text = std::fs::read_to_string(dist("vzsnap.cron")).unwrap();
    let mut jobs = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split_whitespace().next().unwrap();
        if first.contains('=') {
            // An environment line (SHELL=, PATH=).
            continue;
        }
        jobs.push(line);
    }
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let f: Vec<&str> = jobs[0].split_whitespace().collect();
    // /etc/cron.d format: minute hour day-of-month month day-of-week user command…
    for (field, max) in f[..5].iter().zip([59u32, 23, 31, 12, 7]) {
        assert!(
            *field == "*" || field.parse::<u32>().is_ok_and(|n| n <= max),
            "cron time field {field:?}"
        );
    }
    assert_eq!(f[5], "root");
    let cli = ingest_command(&f[6..]);
    assert!(cli.global.quiet, "cron mails only when something failed");
}
