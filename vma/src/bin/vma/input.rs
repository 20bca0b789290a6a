//! Opening the archive a reading subcommand works on: a path or `-` (stdin), compressed or
//! not (detected by content), never seeked.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;

use anyhow::{Context, Result};
use vma::VmaReader;
use vma::compress::{ThreadedReader, open_decompressed};

/// An opened archive.
pub struct Input {
    /// Reader positioned after the validated header.
    pub reader: VmaReader<Box<dyn Read + Send>>,
    /// The name used in messages (`-` for stdin).
    pub name: String,
}

/// Opens `file` (`-` = stdin) and reads its header. With `read_ahead`, decompression and
/// reading run on a worker thread so they overlap with writing (extract, verify); `list` and
/// `config` read only the header and do without.
pub fn open(file: &OsStr, read_ahead: bool) -> Result<Input> {
    let name = file.to_string_lossy().into_owned();
    let src = if file == "-" {
        // dup(0), as C does: a File gives unbuffered big reads.
        let fd = std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .context("can't open stdin")?;
        File::from(fd)
    } else {
        File::open(file).with_context(|| format!("can't open file {name}"))?
    };
    let (_, r) = open_decompressed(src).with_context(|| format!("{name}: can't read input"))?;
    let r: Box<dyn Read + Send> = if read_ahead {
        Box::new(ThreadedReader::new(r).context("can't start the read-ahead thread")?)
    } else {
        r
    };
    let reader = VmaReader::new_named(r, name.clone())?;
    Ok(Input { reader, name })
}
