//! `vma config <file> [-c <name>]`: the raw bytes of one config blob (default
//! `qemu-server.conf`) on stdout. pve-storage runs `<decompressor> | vma config -` to show a
//! backup's configuration. Missing config: C's message and exit status 255.

use std::ffi::OsString;
use std::io::Write;

use anyhow::Result;

use crate::getopt::{Opt, OptKey, Spec};
use crate::{Status, input, stdout};

/// getopt string of C `vma config`.
pub const SPEC: Spec = Spec {
    short: "hc:",
    long: &[],
};

/// Runs the subcommand.
pub fn run(opts: &[Opt], pos: &[OsString]) -> Result<Status> {
    let mut name = "qemu-server.conf".to_owned();
    for o in opts {
        match (o.key, &o.value) {
            (OptKey::Short('c'), Some(v)) => name = v.to_string_lossy().into_owned(),
            _ => return Ok(Status::Help),
        }
    }
    let [file] = pos else {
        return Ok(Status::Help);
    };
    let input = input::open(file, false)?;
    match input.reader.header().config(&name) {
        Some(c) => {
            let mut out = stdout();
            out.write_all(&c.data)?;
            out.flush()?;
            Ok(Status::Ok)
        }
        None => {
            eprintln!("unable to find configuration data '{name}'");
            Ok(Status::Code(255))
        }
    }
}
