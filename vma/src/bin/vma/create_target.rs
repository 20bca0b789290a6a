//! Where `vma create` writes, as C's `vma_writer_create` decides:
//!
//! - `exec:<command>`: the command runs via `/bin/sh -c` exactly like C's `popen(cmd, "w")`,
//!   and the archive goes to its stdin. vzdump uses this for VMs without disks
//!   (`exec:zstd > /path/vzdump-qemu-….vma.dat`). This is the one place a shell is right: the
//!   caller hands us a shell command; nothing of ours is ever interpolated into it. Unlike C
//!   (which ignores the command's exit status), a failing command fails `vma create`.
//! - an existing FIFO: opened for writing (this waits for a reader; C's `O_NONBLOCK` open
//!   fails instead when there is none).
//! - anything else: a new file, `O_EXCL`, mode 0644; an existing file is refused. This file is
//!   deleted again if `vma create` fails (the [`RemoveOnFailure`] guard).
//!
//! `-` is not special (C creates a file named `-`).

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{Result, anyhow, bail};

/// The `exec:` command exited unsuccessfully. Carried inside the `io::Error` of a write that
/// failed because the command had gone (EPIPE), so `vma create` names the command's failure
/// — the cause — and not the broken pipe, however early the command exits.
#[derive(Debug)]
pub struct CommandFailed(String);

impl std::fmt::Display for CommandFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CommandFailed {}

/// The [`CommandFailed`] somewhere in `e`'s chain of causes, if any.
pub fn command_failure<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a CommandFailed> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(cf) = err.downcast_ref::<CommandFailed>() {
            return Some(cf);
        }
        // io::Error's source() skips its own payload: look at it directly.
        if let Some(inner) = err
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|i| i.downcast_ref::<CommandFailed>())
        {
            return Some(inner);
        }
        cur = err.source();
    }
    None
}

fn failed(cmd: &OsStr, status: std::process::ExitStatus) -> String {
    format!("command '{}' failed: {status}", cmd.to_string_lossy())
}

/// A write to the command's stdin failed: if the command has exited unsuccessfully (the
/// usual reason for EPIPE), that is the error to report.
fn exec_write_error(child: &mut Child, cmd: &OsStr, e: io::Error) -> io::Error {
    if e.kind() != io::ErrorKind::BrokenPipe {
        return e;
    }
    match child.wait() {
        Ok(status) if !status.success() => io::Error::other(CommandFailed(failed(cmd, status))),
        _ => e,
    }
}

enum Kind {
    File(File),
    Fifo(File),
    Exec {
        child: Child,
        stdin: ChildStdin,
        cmd: OsString,
    },
}

/// An opened output.
pub struct Target {
    kind: Kind,
    /// The name as given, for messages.
    name: String,
}

/// Deletes the archive file we created unless [`RemoveOnFailure::disarm`] was called (C:
/// `unlink(archivename)` on every failure path). Holds nothing for FIFOs and `exec:`.
#[derive(Debug)]
pub struct RemoveOnFailure(Option<PathBuf>);

impl RemoveOnFailure {
    /// Keeps the file: the archive is complete.
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnFailure {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Opens the archive target named `arg`.
pub fn open(arg: &OsStr) -> Result<(Target, RemoveOnFailure)> {
    let name = arg.to_string_lossy().into_owned();
    if let Some(cmd) = arg.as_bytes().strip_prefix(b"exec:") {
        let cmd = OsStr::from_bytes(cmd).to_owned();
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(&cmd)
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| anyhow!("can't run '{}' - {e}", cmd.to_string_lossy()))?;
        let Some(stdin) = child.stdin.take() else {
            bail!("can't run '{}' - no stdin pipe", cmd.to_string_lossy());
        };
        return Ok((
            Target {
                kind: Kind::Exec { child, stdin, cmd },
                name,
            },
            RemoveOnFailure(None),
        ));
    }
    if let Ok(m) = std::fs::metadata(arg)
        && m.file_type().is_fifo()
    {
        let f = OpenOptions::new()
            .write(true)
            .open(arg)
            .map_err(|e| anyhow!("can't open fifo {name} - {e}"))?;
        return Ok((
            Target {
                kind: Kind::Fifo(f),
                name,
            },
            RemoveOnFailure(None),
        ));
    }
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(arg)
        .map_err(|e| anyhow!("can't open file {name} - {e}"))?;
    Ok((
        Target {
            kind: Kind::File(f),
            name,
        },
        RemoveOnFailure(Some(PathBuf::from(arg))),
    ))
}

impl Target {
    /// The name as given on the command line.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Completes a successful write: flushes a file to disk, or closes the command's stdin
    /// and waits for it (its failure is ours).
    pub fn close(self) -> Result<()> {
        match self.kind {
            Kind::File(f) => f
                .sync_all()
                .map_err(|e| anyhow!("{}: flush failed - {e}", self.name)),
            Kind::Fifo(_) => Ok(()),
            Kind::Exec {
                mut child,
                stdin,
                cmd,
            } => {
                drop(stdin);
                let status = child
                    .wait()
                    .map_err(|e| anyhow!("waiting for '{}' failed - {e}", cmd.to_string_lossy()))?;
                if !status.success() {
                    bail!("{}", failed(&cmd, status));
                }
                Ok(())
            }
        }
    }
}

impl Write for Target {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.kind {
            Kind::File(f) | Kind::Fifo(f) => f.write(buf),
            Kind::Exec { stdin, child, cmd } => stdin
                .write(buf)
                .map_err(|e| exec_write_error(child, cmd, e)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.kind {
            Kind::File(f) | Kind::Fifo(f) => f.flush(),
            Kind::Exec { stdin, child, cmd } => {
                stdin.flush().map_err(|e| exec_write_error(child, cmd, e))
            }
        }
    }
}
