//! The one runner for every external program (`zfs`, `btrfs`, `losetup`, `mount`, `sfdisk`…).
//!
//! Why one choke point (zrepl, omicron `illumos-utils`): every call gets the same hygiene, and
//! error text is stable enough to classify.
//! - Argument vectors only, never `sh -c`: a name from input data is one argv element and can
//!   never become a second command or an option of a different command.
//! - Cleared environment plus `LC_ALL=C` and a fixed `PATH`: messages are in English (so the
//!   conservative stderr classification in [`crate::zfs::classify`] keeps working) and no
//!   caller's `PATH` or `ZFS_*` variable changes which binary runs or how it behaves.
//! - stdout and stderr are captured; stderr goes into [`CmdError::Failed`] so the person reading
//!   the error sees what the tool said.
//! - Every call is traced at debug level with its argv, exit status and duration.

use std::cell::Cell;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

/// The only `PATH` external programs are looked up in (and see).
pub const FIXED_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

thread_local! {
    static RUNS_ON_THIS_THREAD: Cell<u64> = const { Cell::new(0) };
}

/// How many commands this thread has started (spawned or tried to spawn) so far.
///
/// Why: tests prove that a hostile name is rejected *before* anything runs by comparing this
/// counter before and after a call. It is per thread because `cargo test` runs tests on
/// parallel threads and each store call runs its commands on the calling thread.
pub fn runs_on_this_thread() -> u64 {
    RUNS_ON_THIS_THREAD.with(Cell::get)
}

/// Captured output of a successful command (lossily decoded as UTF-8; the tools we run print
/// ASCII in the C locale, and dataset names are validated ASCII).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// The program could not be started (not installed, not executable…).
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// Reading its output or feeding its stdin failed.
    #[error("{program}: i/o with the child process failed: {source}")]
    Pipe {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// It ran and exited non-zero (or was killed by a signal: `status` is then `None`).
    #[error("{program} {}: {}: {}", args.join(" "), status_text(*status), stderr.trim_end())]
    Failed {
        program: String,
        args: Vec<String>,
        status: Option<i32>,
        stderr: String,
    },
}

fn status_text(status: Option<i32>) -> String {
    match status {
        Some(c) => format!("exit status {c}"),
        None => "killed by a signal".to_string(),
    }
}

impl CmdError {
    /// The captured stderr if the command ran and failed.
    pub fn stderr(&self) -> Option<&str> {
        match self {
            CmdError::Failed { stderr, .. } => Some(stderr),
            _ => None,
        }
    }
}

/// A command line to run: a program and its argument vector (see the module docs).
#[derive(Debug, Clone)]
pub struct Cmd {
    program: String,
    args: Vec<OsString>,
    env: Vec<(String, OsString)>,
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    /// `program` is looked up in [`FIXED_PATH`] unless it contains a `/`.
    pub fn new(program: &str) -> Self {
        Cmd {
            program: program.to_string(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_os_string());
        self
    }

    pub fn args<I, S>(mut self, it: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(it.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Adds one variable to the otherwise cleared environment (e.g. `TZ`). `PATH` and
    /// `LC_ALL` are fixed and cannot be overridden.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.to_string(), value.as_ref().to_os_string()));
        self
    }

    /// Bytes fed to the child's stdin (e.g. an `sfdisk` script); without it stdin is
    /// `/dev/null`, so a tool that unexpectedly prompts fails instead of hanging.
    pub fn stdin_bytes(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    pub fn program(&self) -> &str {
        &self.program
    }

    /// The arguments, lossily as strings (for messages and tests).
    pub fn arg_strings(&self) -> Vec<String> {
        self.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// Runs to completion. Non-zero exit → [`CmdError::Failed`] with the captured stderr.
    pub fn run(&self) -> Result<Output, CmdError> {
        let (status, out) = self.run_raw()?;
        if status.success() {
            Ok(out)
        } else {
            Err(CmdError::Failed {
                program: self.program.clone(),
                args: self.arg_strings(),
                status: status.code(),
                stderr: out.stderr,
            })
        }
    }

    /// Runs; `Ok(false)` on a non-zero exit (for tools whose exit status is the answer, like
    /// `mountpoint -q`). Spawn and pipe errors are still errors.
    pub fn status_ok(&self) -> Result<bool, CmdError> {
        let (status, _) = self.run_raw()?;
        Ok(status.success())
    }

    fn run_raw(&self) -> Result<(ExitStatus, Output), CmdError> {
        RUNS_ON_THIS_THREAD.with(|c| c.set(c.get() + 1));
        let started = Instant::now();
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .env_clear()
            .env("PATH", FIXED_PATH)
            .env("LC_ALL", "C");
        for (k, v) in &self.env {
            if k != "PATH" && k != "LC_ALL" {
                command.env(k, v);
            }
        }
        command
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|source| {
            tracing::debug!(program = %self.program, args = ?self.arg_strings(), error = %source, "spawn failed");
            CmdError::Spawn { program: self.program.clone(), source }
        })?;
        let pipe_err = |source| CmdError::Pipe {
            program: self.program.clone(),
            source,
        };
        // stdin and stderr are served on their own threads while this one drains stdout, so
        // no pipe can fill up and deadlock the child (ripgrep `cli::process` does the same).
        let stdin_thread = match (child.stdin.take(), self.stdin.clone()) {
            (Some(mut pipe), Some(data)) => {
                Some(std::thread::spawn(move || -> std::io::Result<()> {
                    match pipe.write_all(&data) {
                        // The child may legitimately exit without reading everything.
                        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                        other => other,
                    }
                }))
            }
            _ => None,
        };
        let mut stderr_pipe = child.stderr.take();
        let stderr_thread = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
            let mut buf = Vec::new();
            if let Some(p) = stderr_pipe.as_mut() {
                p.read_to_end(&mut buf)?;
            }
            Ok(buf)
        });
        let mut stdout = Vec::new();
        let read_result = match child.stdout.take() {
            Some(mut p) => p.read_to_end(&mut stdout).map(|_| ()),
            None => Ok(()),
        };
        let status = child.wait().map_err(pipe_err)?;
        let stderr = stderr_thread
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("stderr reader thread panicked")))
            .map_err(pipe_err)?;
        read_result.map_err(pipe_err)?;
        if let Some(t) = stdin_thread {
            t.join()
                .unwrap_or_else(|_| Err(std::io::Error::other("stdin writer thread panicked")))
                .map_err(pipe_err)?;
        }
        let out = Output {
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        };
        tracing::debug!(
            program = %self.program,
            args = ?self.arg_strings(),
            status = status.code(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            stderr = %out.stderr.trim_end(),
            "ran command"
        );
        Ok((status, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_is_cleared_and_fixed() {
        // `set_var` is unsafe in edition 2024 (threads), so rely on a variable cargo sets for
        // every test process and check it does not leak into the child.
        assert!(std::env::var_os("CARGO_PKG_NAME").is_some());
        let out = Cmd::new("env").run().unwrap();
        let mut lines: Vec<&str> = out.stdout.lines().collect();
        lines.sort_unstable();
        assert_eq!(lines, vec!["LC_ALL=C", &format!("PATH={FIXED_PATH}")]);
        let out = Cmd::new("env")
            .env("TZ", "UTC")
            .env("PATH", "/evil")
            .run()
            .unwrap();
        assert!(out.stdout.contains("TZ=UTC\n"));
        assert!(!out.stdout.contains("/evil"));
    }

    #[test]
    fn arguments_are_not_interpreted_by_a_shell() {
        let hostile = "$(touch /tmp/vzsnap-should-not-exist); `id` 'x' \"y\" *";
        let out = Cmd::new("printf").args(["%s", hostile]).run().unwrap();
        assert_eq!(out.stdout, hostile);
    }

    #[test]
    fn failure_carries_program_args_status_and_stderr() {
        let err = Cmd::new("ls")
            .arg("/nonexistent/vzsnap-test")
            .run()
            .unwrap_err();
        match &err {
            CmdError::Failed {
                program,
                args,
                status,
                stderr,
            } => {
                assert_eq!(program, "ls");
                assert_eq!(args, &vec!["/nonexistent/vzsnap-test".to_string()]);
                assert_eq!(*status, Some(2));
                assert!(stderr.contains("No such file or directory"), "{stderr}");
            }
            other => panic!("unexpected {other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.starts_with("ls /nonexistent/vzsnap-test: exit status 2: "),
            "{text}"
        );
    }

    #[test]
    fn status_ok_and_spawn_errors() {
        assert!(Cmd::new("true").status_ok().unwrap());
        assert!(!Cmd::new("false").status_ok().unwrap());
        assert!(matches!(
            Cmd::new("vzsnap-no-such-program").run(),
            Err(CmdError::Spawn { .. })
        ));
    }

    #[test]
    fn stdin_is_fed_and_large_outputs_do_not_deadlock() {
        let data = vec![b'x'; 1 << 20];
        let out = Cmd::new("cat").stdin_bytes(data.clone()).run().unwrap();
        assert_eq!(out.stdout.len(), data.len());
        // Without stdin_bytes the child reads /dev/null.
        assert_eq!(Cmd::new("cat").run().unwrap().stdout, "");
        // Lots of stderr while stdout is also busy.
        let out = Cmd::new("sh")
            .args([
                "-c",
                "yes err | head -c 300000 >&2; yes out | head -c 300000",
            ])
            .run()
            .unwrap();
        assert_eq!(out.stdout.len(), 300000);
        assert_eq!(out.stderr.len(), 300000);
    }

    #[test]
    fn runs_are_counted_per_thread() {
        let before = runs_on_this_thread();
        Cmd::new("true").run().unwrap();
        let _ = Cmd::new("vzsnap-no-such-program").run();
        assert_eq!(runs_on_this_thread(), before + 2);
        let other = std::thread::spawn(runs_on_this_thread).join().unwrap();
        assert_eq!(other, 0);
    }
}
