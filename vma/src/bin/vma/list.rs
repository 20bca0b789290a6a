//! `vma list <file>`: the header listing (see `content`).

use std::ffi::OsString;

use anyhow::Result;

use crate::content::print_content;
use crate::getopt::{Opt, Spec};
use crate::{Status, input, stdout};

/// getopt string of C `vma list`.
pub const SPEC: Spec = Spec {
    short: "h",
    long: &[],
};

/// Runs the subcommand.
pub fn run(opts: &[Opt], pos: &[OsString]) -> Result<Status> {
    let ([file], true) = (pos, opts.is_empty()) else {
        return Ok(Status::Help);
    };
    let input = input::open(file, false)?;
    print_content(&mut stdout(), input.reader.header())?;
    Ok(Status::Ok)
}
