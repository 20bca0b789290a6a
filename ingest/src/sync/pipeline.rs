//! Three-stage pipeline: a producer thread fills buffers, a second thread adds to them, the
//! calling thread consumes them.
//!
//! The sync has three parts that must overlap to reach the physical limit (perf.md §3.5):
//! 1. reading and decompressing the source — CPU-bound, and one thread at most, since zstd,
//!    gzip and lzop streams decompress sequentially;
//! 2. reading the old contents of the destination — waiting for the disk (or ARC); done on
//!    its own thread with large `pread`s, it keeps the disk busy while
//! 3. comparing and writing happens here — cheap CPU (memcmp) plus the few writes.
//!
//! On 2 cores that is two busy threads plus one that mostly waits, and the wall time
//! becomes max(1, 2, 3) instead of their sum. A synchronous read inside stage 3 measured
//! about twice the time of `cat` on the destination; `fadvise(WILLNEED)` hints block too.
//!
//! Buffers circulate: a fixed set is handed to the producer, passed through the middle stage
//! to the consumer through bounded channels, and returned empty for reuse, so memory stays
//! at `buffers × buffer size` however large the input is.

use crossbeam_channel::{Receiver, Sender, bounded};

/// A channel end pair.
type Channel<M> = (Sender<M>, Receiver<M>);

enum Msg<T, E> {
    Full(T),
    Done,
    Failed(E),
}

/// Runs `produce` and `middle` on two new threads and `consume` on this one, passing each of
/// `buffers` along and back. `produce` fills a buffer and returns `Ok(true)`, or `Ok(false)`
/// at the end of its input; `middle` completes a filled buffer; `consume` uses it. The first
/// error of any stage stops all of them and is returned; the others' partial work is
/// abandoned (each stops at its next hand-over).
///
/// Returns `Ok(())` once the producer reported the end and every buffer was consumed.
pub fn run<T, E, P, M, C>(
    buffers: Vec<T>,
    mut produce: P,
    mut middle: M,
    mut consume: C,
) -> Result<(), E>
where
    T: Send,
    E: Send,
    P: FnMut(&mut T) -> Result<bool, E> + Send,
    M: FnMut(&mut T) -> Result<(), E> + Send,
    C: FnMut(&mut T) -> Result<(), E>,
{
    let n = buffers.len().max(1);
    let (free_tx, free_rx): Channel<T> = bounded(n);
    let (ab_tx, ab_rx): Channel<Msg<T, E>> = bounded(n);
    let (bc_tx, bc_rx): Channel<Msg<T, E>> = bounded(n);
    for b in buffers {
        // Capacity n: never blocks.
        let _ = free_tx.send(b);
    }
    std::thread::scope(|s| {
        let producer = s.spawn(move || {
            // Ends when a later stage hangs up (its error) or the input ends.
            while let Ok(mut buf) = free_rx.recv() {
                let msg = match produce(&mut buf) {
                    Ok(true) => Msg::Full(buf),
                    Ok(false) => Msg::Done,
                    Err(e) => Msg::Failed(e),
                };
                let last = !matches!(msg, Msg::Full(_));
                if ab_tx.send(msg).is_err() || last {
                    return;
                }
            }
        });
        let mid = s.spawn(move || {
            while let Ok(msg) = ab_rx.recv() {
                let msg = match msg {
                    Msg::Full(mut buf) => match middle(&mut buf) {
                        Ok(()) => Msg::Full(buf),
                        Err(e) => Msg::Failed(e),
                    },
                    other => other,
                };
                let last = !matches!(msg, Msg::Full(_));
                if bc_tx.send(msg).is_err() || last {
                    return;
                }
            }
        });
        let result = (|| loop {
            match bc_rx.recv() {
                Ok(Msg::Full(mut buf)) => {
                    consume(&mut buf)?;
                    // The producer may already have finished; then the buffer is dropped.
                    let _ = free_tx.send(buf);
                }
                Ok(Msg::Done) => return Ok(()),
                Ok(Msg::Failed(e)) => return Err(e),
                // A stage ended without a message only if it panicked; re-raised below.
                Err(_) => return Ok(()),
            }
        })();
        // Unblock stages waiting for a free buffer or for room in a channel.
        drop(free_tx);
        drop(bc_rx);
        let panicked = mid.join().is_err() | producer.join().is_err();
        if panicked {
            // A bug, not an input error: re-raise instead of reporting success.
            std::panic::resume_unwind(Box::new("sync pipeline stage panicked"));
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_every_item_in_order_through_all_stages() {
        let mut next = 0u32;
        let mut seen = Vec::new();
        run(
            vec![Vec::<u32>::new(); 3],
            |b: &mut Vec<u32>| {
                b.clear();
                if next == 100 {
                    return Ok::<_, String>(false);
                }
                b.push(next);
                next += 1;
                Ok(true)
            },
            |b| {
                b.push(b[0] * 2);
                Ok(())
            },
            |b| {
                assert_eq!(b[1], b[0] * 2);
                seen.push(b[0]);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn producer_error_is_returned_after_earlier_items() {
        let mut n = 0;
        let mut consumed = 0;
        let r = run(
            vec![0u8; 2],
            |_| {
                n += 1;
                if n == 5 {
                    Err("bad input at 5")
                } else {
                    Ok(true)
                }
            },
            |_| Ok(()),
            |_| {
                consumed += 1;
                Ok(())
            },
        );
        assert_eq!(r, Err("bad input at 5"));
        assert_eq!(consumed, 4);
    }

    #[test]
    fn middle_and_consumer_errors_stop_everything() {
        let mut k = 0;
        let r = run(
            vec![0u8; 2],
            |_| Ok(true),
            |_| {
                k += 1;
                if k == 3 { Err("read error") } else { Ok(()) }
            },
            |_| Ok(()),
        );
        assert_eq!(r, Err("read error"));
        let r = run(vec![0u8; 2], |_| Ok(true), |_| Ok(()), |_| Err("disk full"));
        assert_eq!(r, Err("disk full"));
    }
}
