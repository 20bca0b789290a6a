//! Opening the archive a reading subcommand works on: a path or `-` (stdin), compressed or
//! not (detected by content), never seeked.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;

use anyhow::{Context, Result};
use vma::VmaReader;
use vma::compress::{Compression, ThreadedReader, open_decompressed, open_decompressed_threaded};

/// An opened archive.
pub struct Input {
    /// Reader positioned after the validated header.
    pub reader: VmaReader<Box<dyn Read + Send>>,
    /// The name used in messages (`-` for stdin).
    pub name: String,
}

/// Pipe buffer we ask for on stdin (the default `pipe-max-size`): with the default 64 KiB the
/// writer (`zstd -dc | vma extract -`) and we wake each other up for every 64 KiB.
const PIPE_SIZE: i32 = 1 << 20;

/// Enlarges the pipe behind `f` if it is one; advisory (fails quietly on files, terminals,
/// or when an unprivileged user exceeds `pipe-max-size`).
fn enlarge_pipe(f: &File) {
    use std::os::unix::fs::FileTypeExt;
    if f.metadata().is_ok_and(|m| m.file_type().is_fifo()) {
        let _ = nix::fcntl::fcntl(f, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
    }
}

/// Opens `file` (`-` = stdin) and reads its header. With `read_ahead` (extract, verify) the
/// file is read on one worker thread and decompressed on another, so reading, decoding and
/// parsing/writing overlap; `list` and `config` read only the header and do without.
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
    enlarge_pipe(&src);
    let opened = if read_ahead {
        // The file is read on a thread of its own and the decoder takes its buffers in place.
        open_decompressed_threaded(src)
    } else {
        open_decompressed(src)
    };
    let (compression, r) = opened.with_context(|| format!("{name}: can't read input"))?;
    let r: Box<dyn Read + Send> = if read_ahead && compression != Compression::None {
        // Decompression on another thread again, so it overlaps parsing and writing.
        Box::new(ThreadedReader::new(r).context("can't start the read-ahead thread")?)
    } else {
        r
    };
    let reader = VmaReader::new_named(r, name.clone())?;
    Ok(Input { reader, name })
}
