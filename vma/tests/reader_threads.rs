//! The ingest pipeline's pattern: a reader thread fills `ExtentBuf`s and hands them to a
//! consumer thread, which sends them back for reuse. Two buffers, no allocation per extent.

use std::sync::mpsc;

use vma::{ExtentBuf, VmaReader, VmaWriter, WriterOptions};

#[test]
fn extent_buffers_travel_between_threads_and_are_reused() {
    let clusters = 300u32;
    let size = u64::from(clusters) * 65536 - 123;
    let mut w = VmaWriter::new(
        Vec::new(),
        vec![],
        vec![("drive-scsi0".into(), size), ("drive-scsi1".into(), 70_000)],
        WriterOptions::default(),
    )
    .unwrap();
    let mut data = vec![0u8; 65536];
    for c in 0..clusters {
        data.fill(0);
        data[(c as usize * 4096) % 65536] = (c % 251) as u8 + 1;
        w.write_cluster(1, c, &data).unwrap();
        if c < 2 {
            w.write_cluster(2, c, &data).unwrap();
        }
    }
    let archive = w.finish().unwrap();

    let (full_tx, full_rx) = mpsc::channel::<ExtentBuf>();
    let (empty_tx, empty_rx) = mpsc::channel::<ExtentBuf>();
    for _ in 0..2 {
        empty_tx.send(ExtentBuf::new()).unwrap();
    }
    let consumer = std::thread::spawn(move || {
        let mut image = vec![0u8; size as usize];
        let mut extents = 0;
        for buf in full_rx {
            extents += 1;
            for c in buf.clusters().filter(|c| c.dev_id == 1) {
                for (i, b) in c.blocks() {
                    if let Some(b) = b {
                        let at = c.device_offset() as usize + i * 4096;
                        let end = (at + 4096).min(image.len());
                        image[at..end].copy_from_slice(&b[..end - at]);
                    }
                }
            }
            if empty_tx.send(buf).is_err() {
                break;
            }
        }
        (image, extents)
    });
    let archive_len = archive.len() as u64;
    let reader = std::thread::spawn(move || {
        let mut r = VmaReader::new(&archive[..]).unwrap();
        let mut seen_ptrs = std::collections::HashSet::new();
        for mut buf in empty_rx.iter() {
            if !r.read_extent(&mut buf).unwrap() {
                break;
            }
            seen_ptrs.insert(buf.as_bytes().as_ptr() as usize);
            full_tx.send(buf).unwrap();
        }
        drop(full_tx);
        r.check_complete(None).unwrap();
        (r.offset(), seen_ptrs.len())
    });
    let (offset, distinct_buffers) = reader.join().unwrap();
    let (image, extents) = consumer.join().unwrap();
    assert_eq!(offset, archive_len);
    assert_eq!(extents, 302usize.div_ceil(58));
    assert!(distinct_buffers <= 2, "only the two buffers were used");
    for c in 0..clusters as usize {
        let at = c * 65536 + (c * 4096) % 65536;
        if at < image.len() {
            assert_eq!(image[at], (c % 251) as u8 + 1, "cluster {c}");
        }
    }
    assert_eq!(image.iter().filter(|&&b| b != 0).count(), clusters as usize);
}
