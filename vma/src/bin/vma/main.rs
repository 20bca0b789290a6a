//! `vma`: a drop-in replacement for Proxmox VE's `vma` tool (list, config, verify, extract,
//! create), reading `.vma`, `.vma.zst`, `.vma.gz` and `.vma.lzo` directly (by content, also
//! from stdin). See README.md next to this file for where we differ from C `vma`.
//!
//! Exit status: 0 success; 1 usage (help printed on stdout, as C); 255 failure (one line on
//! stderr naming the file and byte offset; C aborts via `g_error`, PVE only checks for
//! non-zero); 141 when stdout was closed early (C dies of SIGPIPE there).

mod config;
mod content;
mod create;
mod create_target;
mod extract;
mod getopt;
mod input;
mod list;
mod names;
mod restore_map;
mod sink;
mod stats;
mod throttle;
mod verify;

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

use crate::getopt::{Opt, OptKey, Spec, getopt};

/// C `vma`'s help text, verbatim (printed on stdout, exit status 1).
pub const HELP: &str = "usage: vma command [command options]

vma list <filename>
vma config <filename> [-c <config>]
vma create <filename> [-c <config>] [-d format=<format>:<device name>=<path> [-d ...]]
vma extract <filename> [-d <drive-list>] [-r <fifo>] <targetdir>
vma verify <filename> [-v]
";

/// What a subcommand asks `main` to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Exit 0.
    Ok,
    /// Print the help and exit 1 (bad usage).
    Help,
    /// Exit with this status (messages already printed).
    Code(u8),
}

/// Marks errors writing our stdout, so a closed pipe can end us quietly like SIGPIPE would.
#[derive(Debug, thiserror::Error)]
#[error("write to stdout failed: {0}")]
pub struct StdoutError(io::Error);

/// Our stdout, with errors marked as [`StdoutError`].
#[derive(Debug)]
pub struct Out(io::Stdout);

/// Our stdout.
pub fn stdout() -> Out {
    Out(io::stdout())
}

fn mark(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), StdoutError(e))
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(mark)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(mark)
    }
}

fn stdout_closed(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(|io| {
            io.kind() == io::ErrorKind::BrokenPipe
                && io.get_ref().is_some_and(|inner| inner.is::<StdoutError>())
        })
    })
}

fn help() -> ExitCode {
    let mut o = io::stdout();
    let _ = o.write_all(HELP.as_bytes());
    let _ = o.flush();
    ExitCode::from(1)
}

type Run = fn(&[Opt], &[OsString]) -> anyhow::Result<Status>;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let Some(sub) = args.get(1) else {
        return help();
    };
    let sub = sub.to_string_lossy().into_owned();
    let (spec, run): (Spec, Run) = match sub.as_str() {
        "list" => (list::SPEC, list::run),
        "config" => (config::SPEC, config::run),
        "verify" => (verify::SPEC, verify::run),
        "extract" => (extract::SPEC, extract::run),
        "create" => (create::SPEC, create::run),
        _ => return help(),
    };
    let (opts, pos) = match getopt(&args[2..], &spec) {
        Ok(r) => r,
        Err(e) => {
            // glibc prints this with argv[0], which C has shifted to the subcommand.
            eprintln!("{sub}: {}", e.0);
            return help();
        }
    };
    if opts.iter().any(|o| o.key == OptKey::Short('h')) {
        return help();
    }
    match run(&opts, &pos) {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::Help) => help(),
        Ok(Status::Code(c)) => ExitCode::from(c),
        Err(e) if stdout_closed(&e) => ExitCode::from(141),
        Err(e) => {
            eprintln!("vma: {e:#}");
            ExitCode::from(255)
        }
    }
}
