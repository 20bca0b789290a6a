//! A fixed valid header followed by arbitrary extent bytes: the extent parser and the
//! reader's cross-extent state (duplicates, device ends, vmstate order, completeness).
//!
//! The header has four devices: 1 = 3 clusters + 1 byte, 2 = 4095 bytes, 3 = `vmstate`,
//! 4 = 256 TiB. The first input byte selects a mode: bit 0 set = repair extent MD5s and
//! uuids so the fuzzer reaches the block accounting.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vma::{Config, VmaWriter, WriterOptions};

#[path = "common.rs"]
mod common;

const UUID: [u8; 16] = *b"vzsnap-fuzz-uuid";

fn header() -> &'static [u8] {
    static HEADER: OnceLock<Vec<u8>> = OnceLock::new();
    HEADER.get_or_init(|| {
        let mut out = Vec::new();
        let mut w = VmaWriter::new(
            &mut out,
            vec![Config {
                name: "qemu-server.conf".into(),
                data: b"memory: 512\n".to_vec(),
            }],
            vec![
                ("drive-scsi0".into(), 3 * 65536 + 1),
                ("drive-scsi1".into(), 4095),
                ("vmstate".into(), 1 << 20),
                ("drive-huge".into(), 1 << 48),
            ],
            WriterOptions {
                uuid: Some(UUID),
                ctime: Some(0),
            },
        )
        .expect("valid writer setup");
        // 59 clusters make the writer emit the header (and one extent we cut off again).
        for c in 0..59 {
            w.write_cluster(4, c, &[0; 65536]).expect("valid cluster");
        }
        drop(w);
        let size = u32::from_be_bytes([out[56], out[57], out[58], out[59]]) as usize;
        out.truncate(size);
        out
    })
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let h = header();
    let mut data = Vec::with_capacity(h.len() + rest.len());
    data.extend_from_slice(h);
    data.extend_from_slice(rest);
    if mode & 1 != 0 {
        common::fix_extents(&mut data, h.len(), Some(&UUID));
    }
    common::drain(&data);
});
