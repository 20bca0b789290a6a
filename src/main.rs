//! `vzsnap`: months of daily Proxmox VE VM backups on one ZFS pool.
//!
//! This binary only parses arguments, wires the library crates together and prints results;
//! the logic lives in `ingest`, `restore`, `store` and `vma`.

mod commands;
mod config;
mod exit;
mod logging;
mod progress;

use clap::Parser;

fn main() {
    let cli = commands::Cli::parse();
    logging::init(cli.global.verbose, cli.global.quiet);
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // One clear line (with its causes) on stderr; details are in the debug log.
            eprintln!("vzsnap: error: {err:#}");
            exit::ExitCode::Fatal
        }
    };
    std::process::exit(code as i32);
}
