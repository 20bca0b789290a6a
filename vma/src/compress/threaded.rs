//! A reader that runs its source (typically a decompressor) on a background thread.
//!
//! Why: zstd decodes at about 1 GB/s on one core and the VMA reader plus `pwrite` want another
//! core; on the 2-core boxes this runs on, doing both on one thread serialises them. The
//! worker fills ~1 MiB buffers and hands them over a bounded channel, so memory stays bounded
//! (`depth + 2` buffers) and the source never runs more than `depth` buffers ahead.
//! Buffers come back to the worker through a second channel and are reused.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;

/// Default buffer size handed over per message.
pub const DEFAULT_CHUNK: usize = 1024 * 1024;
/// Default number of filled buffers that may wait in the channel.
pub const DEFAULT_DEPTH: usize = 4;

enum Msg {
    /// A buffer and how many of its bytes are valid (always > 0).
    Data(Vec<u8>, usize),
    /// The source returned EOF.
    Eof,
    /// The source failed; nothing follows.
    Err(io::Error),
}

/// See the module docs. Reading after EOF keeps returning 0; after an error, the error is
/// returned once and then a "source failed earlier" error.
#[derive(Debug)]
pub struct ThreadedReader {
    rx: Receiver<Msg>,
    recycle: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    cur_len: usize,
    pos: usize,
    state: State,
    worker: Option<JoinHandle<()>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Eof,
    Failed,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Data(_, n) => write!(f, "Data({n})"),
            Msg::Eof => write!(f, "Eof"),
            Msg::Err(e) => write!(f, "Err({e})"),
        }
    }
}

/// Fills `buf` from `r` until full, EOF or an error. Returns the bytes read and the error, so
/// data read before a failure is still delivered.
fn fill<R: Read>(r: &mut R, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

impl ThreadedReader {
    /// Starts the worker with [`DEFAULT_CHUNK`] and [`DEFAULT_DEPTH`].
    pub fn new<R: Read + Send + 'static>(source: R) -> io::Result<Self> {
        Self::with_options(source, DEFAULT_CHUNK, DEFAULT_DEPTH)
    }

    /// Starts the worker with `chunk`-byte buffers, at most `depth` of them queued.
    pub fn with_options<R: Read + Send + 'static>(
        mut source: R,
        chunk: usize,
        depth: usize,
    ) -> io::Result<Self> {
        let chunk = chunk.max(4096);
        let depth = depth.max(1);
        let (tx, rx) = sync_channel::<Msg>(depth);
        let (recycle, recycled) = sync_channel::<Vec<u8>>(depth + 2);
        let worker = std::thread::Builder::new()
            .name("vma-read-ahead".into())
            .spawn(move || {
                loop {
                    let mut buf = match recycled.try_recv() {
                        Ok(b) => b,
                        Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                            vec![0u8; chunk]
                        }
                    };
                    let (n, err) = fill(&mut source, &mut buf);
                    // A send error means the consumer is gone: stop reading.
                    if n > 0 && tx.send(Msg::Data(buf, n)).is_err() {
                        return;
                    }
                    if let Some(e) = err {
                        let _ = tx.send(Msg::Err(e));
                        return;
                    }
                    if n == 0 {
                        let _ = tx.send(Msg::Eof);
                        return;
                    }
                }
            })?;
        Ok(Self {
            rx,
            recycle,
            cur: Vec::new(),
            cur_len: 0,
            pos: 0,
            state: State::Running,
            worker: Some(worker),
        })
    }

    fn join_worker(&mut self) -> io::Result<()> {
        if let Some(h) = self.worker.take()
            && h.join().is_err()
        {
            return Err(io::Error::other("read-ahead thread panicked"));
        }
        Ok(())
    }

    /// Gets the next buffer. Ok(false) at EOF.
    fn next_chunk(&mut self) -> io::Result<bool> {
        match self.state {
            State::Eof => return Ok(false),
            State::Failed => {
                return Err(io::Error::other("read-ahead source failed earlier"));
            }
            State::Running => {}
        }
        let old = std::mem::take(&mut self.cur);
        if !old.is_empty() {
            // The worker may be gone already; the buffer is then simply dropped.
            let _ = self.recycle.try_send(old);
        }
        match self.rx.recv() {
            Ok(Msg::Data(buf, n)) => {
                self.cur = buf;
                self.cur_len = n;
                self.pos = 0;
                Ok(true)
            }
            Ok(Msg::Eof) => {
                self.state = State::Eof;
                self.join_worker()?;
                Ok(false)
            }
            Ok(Msg::Err(e)) => {
                self.state = State::Failed;
                self.join_worker()?;
                Err(e)
            }
            Err(_) => {
                self.state = State::Failed;
                self.join_worker()?;
                Err(io::Error::other("read-ahead thread ended unexpectedly"))
            }
        }
    }
}

impl Read for ThreadedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.pos == self.cur_len {
            if !self.next_chunk()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.cur_len - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The worker's buffers are handed out as they are: a decoder reading through
/// `fill_buf`/`consume` takes its input without another copy.
impl BufRead for ThreadedReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.cur_len {
            if !self.next_chunk()? {
                return Ok(&[]);
            }
        }
        Ok(&self.cur[self.pos..self.cur_len])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.cur_len);
    }
}

/// Dropping the reader early closes the channel; the worker stops after its current read.
/// It is not joined, because that read may block (stdin) for as long as the peer likes.
impl Drop for ThreadedReader {
    fn drop(&mut self) {
        self.worker.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that yields its data in odd-sized pieces, then optionally fails.
    struct Jagged {
        data: Vec<u8>,
        pos: usize,
        fail_at_end: bool,
    }

    impl Read for Jagged {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.data.len() {
                if self.fail_at_end {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "boom at end"));
                }
                return Ok(0);
            }
            let n = buf.len().min(7919).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn passes_bytes_through_in_order() {
        let d = data(3 * 1024 * 1024 + 17);
        let src = Jagged {
            data: d.clone(),
            pos: 0,
            fail_at_end: false,
        };
        let mut r = ThreadedReader::with_options(src, 64 * 1024, 2).unwrap();
        let mut out = Vec::new();
        // Odd read sizes on the consumer side too.
        let mut buf = vec![0u8; 100_003];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert!(out == d, "bytes differ");
        assert_eq!(r.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn forwards_the_source_error_after_the_data() {
        let d = data(200_000);
        let src = Jagged {
            data: d.clone(),
            pos: 0,
            fail_at_end: true,
        };
        let mut r = ThreadedReader::with_options(src, 4096, 1).unwrap();
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(e.to_string(), "boom at end");
        assert!(out == d, "bytes before the error differ");
        let again = r.read(&mut [0u8; 10]).unwrap_err();
        assert!(again.to_string().contains("failed earlier"));
    }

    #[test]
    fn buffered_reads_hand_out_whole_chunks() {
        let d = data(300_000);
        let src = Jagged {
            data: d.clone(),
            pos: 0,
            fail_at_end: false,
        };
        let mut r = ThreadedReader::with_options(src, 65536, 2).unwrap();
        let mut out = Vec::new();
        loop {
            let b = r.fill_buf().unwrap();
            if b.is_empty() {
                break;
            }
            // Whole chunks (filled completely but the last), or what is left of one.
            let left_in_chunk = 65536 - out.len() % 65536;
            assert_eq!(b.len(), left_in_chunk.min(d.len() - out.len()));
            let take = b.len().min(40_000);
            out.extend_from_slice(&b[..take]);
            r.consume(take);
        }
        assert!(out == d, "bytes differ");
    }

    #[test]
    fn empty_source() {
        let mut r = ThreadedReader::new(io::empty()).unwrap();
        assert_eq!(r.read(&mut [0u8; 10]).unwrap(), 0);
    }

    #[test]
    fn dropping_early_stops_the_worker() {
        // An endless source: the worker must stop once the consumer is gone.
        let mut r = ThreadedReader::with_options(io::repeat(7), 4096, 1).unwrap();
        let mut buf = [0u8; 10];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(buf, [7; 10]);
        let h = r.worker.take().unwrap();
        drop(r);
        h.join().unwrap();
    }
}
