//! Two-stage pipeline: a producer thread fills buffers, the calling thread consumes them.
//!
//! On a 2-core machine the sync has exactly two expensive parts — reading and decompressing
//! the source, and reading, comparing and writing the destination — and neither can be split
//! further (zstd, gzip and lzop streams decompress on one thread, perf.md §3.5). Running
//! them on two threads makes the wall time max(a, b) instead of a + b.
//!
//! Buffers circulate: a fixed set is handed to the producer, sent full to the consumer
//! through a bounded channel, and returned empty for reuse, so memory stays at
//! `buffers × buffer size` however large the input is.

use crossbeam_channel::{Receiver, Sender, bounded};

/// A channel end pair.
type Channel<M> = (Sender<M>, Receiver<M>);

enum Msg<T, E> {
    Full(T),
    Done,
    Failed(E),
}

/// Runs `produce` on a new thread and `consume` on this one, passing each of `buffers` back
/// and forth. `produce` fills a buffer and returns `Ok(true)`, or `Ok(false)` at the end of
/// its input. The first error of either side stops both and is returned; the other side's
/// partial work is abandoned (the producer stops at its next buffer hand-over).
///
/// Returns `Ok(())` once the producer reported the end and every buffer was consumed.
pub fn run<T, E, P, C>(buffers: Vec<T>, mut produce: P, mut consume: C) -> Result<(), E>
where
    T: Send,
    E: Send,
    P: FnMut(&mut T) -> Result<bool, E> + Send,
    C: FnMut(&mut T) -> Result<(), E>,
{
    let n = buffers.len().max(1);
    let (free_tx, free_rx): Channel<T> = bounded(n);
    let (full_tx, full_rx): Channel<Msg<T, E>> = bounded(n);
    for b in buffers {
        // Capacity n: never blocks.
        let _ = free_tx.send(b);
    }
    std::thread::scope(|s| {
        let producer = s.spawn(move || {
            // Ends when the consumer hangs up (its error) or the input ends.
            while let Ok(mut buf) = free_rx.recv() {
                match produce(&mut buf) {
                    Ok(true) => {
                        if full_tx.send(Msg::Full(buf)).is_err() {
                            return;
                        }
                    }
                    Ok(false) => {
                        let _ = full_tx.send(Msg::Done);
                        return;
                    }
                    Err(e) => {
                        let _ = full_tx.send(Msg::Failed(e));
                        return;
                    }
                }
            }
        });
        let result = (|| loop {
            match full_rx.recv() {
                Ok(Msg::Full(mut buf)) => {
                    consume(&mut buf)?;
                    // The producer may already have finished; then the buffer is dropped.
                    let _ = free_tx.send(buf);
                }
                Ok(Msg::Done) => return Ok(()),
                Ok(Msg::Failed(e)) => return Err(e),
                // The producer ended without a message only if it panicked; the scope
                // re-raises that panic when it joins.
                Err(_) => return Ok(()),
            }
        })();
        // Unblock a producer waiting for a free buffer or for room in the channel.
        drop(free_tx);
        drop(full_rx);
        if producer.join().is_err() {
            // Re-raise the producer's panic: a bug, not an input error.
            std::panic::resume_unwind(Box::new("sync pipeline producer panicked"));
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_every_item_in_order_with_bounded_buffers() {
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
                seen.extend_from_slice(b);
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
            |_| {
                consumed += 1;
                Ok(())
            },
        );
        assert_eq!(r, Err("bad input at 5"));
        assert_eq!(consumed, 4);
    }

    #[test]
    fn consumer_error_stops_the_producer() {
        let r = run(vec![0u8; 2], |_| Ok(true), |_| Err("disk full"));
        assert_eq!(r, Err("disk full"));
    }
}
