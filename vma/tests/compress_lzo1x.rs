//! LZO1X decoder and LZO1X-1 compressor: round trips (property-based), every token type,
//! and the decoder's refusal of hostile streams. Cross-checked against `lzokay-native`, an
//! independent implementation, in both directions.

use proptest::prelude::*;
use vma::compress::lzo1x::{Lzo1xErrorKind, decompress};
use vma::compress::lzo1x_compress::{Lzo1xCompressor, worst_case_len};

fn compress(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Lzo1xCompressor::new().compress(data, &mut out);
    assert!(out.len() <= worst_case_len(data.len()));
    out
}

fn round_trip(data: &[u8]) {
    let c = compress(data);
    let mut out = vec![0u8; data.len()];
    decompress(&c, &mut out).unwrap();
    assert!(out == data, "our decoder, {} bytes", data.len());
    // lzokay-native decodes what we encode ...
    if !data.is_empty() {
        let theirs = lzokay_native::decompress_all(&c, Some(data.len())).unwrap();
        assert!(theirs == data, "lzokay decoder, {} bytes", data.len());
        // ... and we decode what it encodes (LZO1X-999 style, uses M1 and 3-byte matches).
        let l = lzokay_native::compress(data).unwrap();
        let mut out = vec![0u8; data.len()];
        decompress(&l, &mut out).unwrap();
        assert!(out == data, "lzokay-encoded, {} bytes", data.len());
    }
}

/// Structured data that exercises every match class: short and long matches, near (M2),
/// middle (M3) and far (M4, > 16 KiB back) distances, long literal runs, zero runs.
fn structured(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut v: Vec<u8> = Vec::with_capacity(len);
    while v.len() < len {
        let r = next();
        let n = (r >> 8) as usize % 3000 + 1;
        match r % 6 {
            0 => v.extend((0..n).map(|_| next() as u8)),
            1 => v.extend(std::iter::repeat_n(0u8, n)),
            2 | 3 if !v.is_empty() => {
                let dist = match r % 3 {
                    0 => (next() as usize % 0x800) + 1,
                    1 => (next() as usize % 0x4000) + 1,
                    _ => (next() as usize % 0xbfff) + 1,
                }
                .min(v.len());
                for _ in 0..n {
                    let b = v[v.len() - dist];
                    v.push(b);
                }
            }
            _ => v.extend(b"the quick brown fox ".iter().cycle().take(n)),
        }
    }
    v.truncate(len);
    v
}

#[test]
fn small_sizes() {
    for n in 0..300 {
        round_trip(&structured(n as u64 + 7, n));
        round_trip(&vec![0u8; n]);
        round_trip(&(0..n).map(|i| (i * 7919 % 256) as u8).collect::<Vec<_>>());
    }
}

#[test]
fn block_sized_inputs() {
    for seed in 0..20 {
        round_trip(&structured(seed, 256 * 1024));
    }
    // Long zero run: matches with length extensions of many 255-steps.
    round_trip(&vec![0u8; 256 * 1024]);
    // 1 MiB single block with far matches.
    round_trip(&structured(99, 1 << 20));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_bytes_round_trip(data in proptest::collection::vec(any::<u8>(), 0..5000)) {
        round_trip(&data);
    }

    #[test]
    fn low_entropy_round_trip(data in proptest::collection::vec(0u8..3, 0..20000)) {
        round_trip(&data);
    }

    /// Any input decodes to an error or to exactly the declared length; never a panic.
    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400), n in 0usize..2000) {
        let mut out = vec![0u8; n];
        let _ = decompress(&data, &mut out);
    }
}

fn err_kind(src: &[u8], out_len: usize) -> Lzo1xErrorKind {
    let mut out = vec![0u8; out_len];
    decompress(src, &mut out).unwrap_err().kind
}

#[test]
fn hostile_streams_are_refused() {
    // Too short for any stream.
    assert_eq!(err_kind(&[0x11, 0], 0), Lzo1xErrorKind::InputOverrun);
    // The minimal valid stream: just the end marker.
    decompress(&[0x11, 0, 0], &mut []).unwrap();
    // Bytes after the end marker.
    assert_eq!(
        err_kind(&[0x11, 0, 0, 0], 0),
        Lzo1xErrorKind::InputNotConsumed
    );
    // End marker with a length other than 3 (after one literal, so the first byte is not
    // read as a literal count).
    assert_eq!(
        err_kind(&[17 + 1, b'a', 0x12, 0, 0], 1),
        Lzo1xErrorKind::BadEndMarker
    );
    // Declared output longer than the data.
    assert_eq!(
        err_kind(&[0x11, 0, 0], 5),
        Lzo1xErrorKind::OutputTooShort { got: 0 }
    );
    // 4 literals "abcd" then a match reaching 100 bytes back: before the output start.
    let mut s = vec![17 + 4, b'a', b'b', b'c', b'd'];
    s.extend([0x20 | 1, 0x8c, 0x01]); // M3, len 3, dist 1 + (0x018c >> 2) = 100
    s.extend([0x11, 0, 0]);
    assert_eq!(err_kind(&s, 7), Lzo1xErrorKind::LookBehindOverrun);
    // The same with dist 4 is valid: "abcdabc".
    let mut ok = vec![
        17 + 4,
        b'a',
        b'b',
        b'c',
        b'd',
        0x20 | 1,
        3 << 2,
        0,
        0x11,
        0,
        0,
    ];
    let mut out = [0u8; 7];
    decompress(&ok, &mut out).unwrap();
    assert_eq!(&out, b"abcdabc");
    // ... but not into a 6-byte output.
    assert_eq!(err_kind(&ok, 6), Lzo1xErrorKind::OutputOverrun);
    // Truncated in the middle of the match's distance.
    ok.truncate(7);
    assert_eq!(err_kind(&ok, 7), Lzo1xErrorKind::InputOverrun);
    // A literal run longer than the input.
    assert_eq!(
        err_kind(&[17 + 100, 1, 2, 3], 100),
        Lzo1xErrorKind::InputOverrun
    );
    // An endless run of length-extension zeros is cut off by the output size, not overflow.
    let zeros = vec![0u8; 10_000]; // a literal run whose length extension never ends
    assert!(matches!(
        err_kind(&zeros, 1000),
        Lzo1xErrorKind::OutputOverrun | Lzo1xErrorKind::InputOverrun
    ));
}

#[test]
fn errors_name_their_position() {
    let mut out = [0u8; 7];
    let e = decompress(
        &[
            17 + 4,
            b'a',
            b'b',
            b'c',
            b'd',
            0x20 | 1,
            0x8c,
            0x01,
            0x11,
            0,
            0,
        ],
        &mut out,
    )
    .unwrap_err();
    assert_eq!(e.at, 8);
    assert_eq!(
        e.to_string(),
        "corrupt LZO1X data at block offset 8: match refers to data before the block start"
    );
}
