//! The one error type of the `vma` library.
//!
//! Every variant about archive *contents* carries the source name (`file`: a path, or `-` for
//! stdin) and the absolute byte `offset` of the offending structure or field in the
//! uncompressed archive stream, plus what was expected, so a person can open the file in a hex
//! editor and see the problem. The messages follow the C `vma` tool's wording where one exists,
//! so people searching for a PVE error text still find their way.
//!
//! The field is called `file` rather than `source` because `thiserror` treats a field named
//! `source` as the error's cause.

use std::io;
use std::ops::Range;

/// Shows a 16-byte checksum or uuid as lower-case hex.
pub(crate) struct Hex<'a>(pub &'a [u8]);

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Clusters of one device that never appeared in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingRanges {
    pub dev_id: u8,
    pub name: String,
    /// Half-open cluster ranges, ascending.
    pub ranges: Vec<Range<u64>>,
}

fn fmt_missing(missing: &[MissingRanges]) -> String {
    // A 256 TiB device with every other cluster missing would make an absurd message; the
    // complete list stays available in the variant for programs.
    const MAX_RANGES: usize = 8;
    let mut out = String::new();
    for (i, m) in missing.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        let total: u64 = m.ranges.iter().map(|r| r.end - r.start).sum();
        out.push_str(&format!(
            "stream {} (dev_id {}): {} clusters missing: ",
            m.name, m.dev_id, total
        ));
        for (j, r) in m.ranges.iter().take(MAX_RANGES).enumerate() {
            if j > 0 {
                out.push_str(", ");
            }
            if r.end - r.start == 1 {
                out.push_str(&r.start.to_string());
            } else {
                out.push_str(&format!("{}-{}", r.start, r.end - 1));
            }
        }
        if m.ranges.len() > MAX_RANGES {
            out.push_str(&format!(", ... ({} ranges in all)", m.ranges.len()));
        }
    }
    out
}

/// Errors of reading, validating and writing VMA archives.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing the underlying stream failed.
    #[error("{file}: byte {offset}: {source}")]
    Io {
        file: String,
        offset: u64,
        #[source]
        source: io::Error,
    },

    /// The first four bytes are not `VMA\0`.
    #[error(
        "{file}: byte {offset}: not a vma file - wrong magic number (expected 56 4d 41 00, found {})",
        Hex(found)
    )]
    BadMagic {
        file: String,
        offset: u64,
        found: Vec<u8>,
    },

    /// The stream ended inside the main header.
    #[error("{file}: byte {offset}: read short vma header ({got} bytes, expected {expected})")]
    ShortHeader {
        file: String,
        offset: u64,
        got: u64,
        expected: u64,
    },

    /// `header_size` is not in `12289..=524288`.
    #[error(
        "{file}: byte {offset}: wrong vma header size {size} (expected more than {min} and at most {max})"
    )]
    HeaderSize {
        file: String,
        offset: u64,
        size: u32,
        min: u32,
        max: u32,
    },

    /// MD5 over the header (with its md5sum field zeroed) does not match.
    #[error(
        "{file}: byte {offset}: wrong vma header checksum (stored {}, computed {})",
        Hex(stored),
        Hex(computed)
    )]
    HeaderChecksum {
        file: String,
        offset: u64,
        stored: [u8; 16],
        computed: [u8; 16],
    },

    /// Only version 1 exists.
    #[error("{file}: byte {offset}: wrong vma version {version} (expected 1)")]
    Version {
        file: String,
        offset: u64,
        version: u32,
    },

    /// `blob_buffer_offset` / `blob_buffer_size` do not fit the header.
    #[error("{file}: byte {offset}: {what}")]
    BlobTable {
        file: String,
        offset: u64,
        what: String,
    },

    /// A config or device-name pointer does not resolve to a valid blob.
    #[error(
        "{file}: byte {offset}: vma contains invalid data pointers: {what} pointer {pointer}: {reason}"
    )]
    InvalidBlobPointer {
        file: String,
        offset: u64,
        /// e.g. `config name 0`, `config data 0`, `device 1 name`
        what: String,
        pointer: u32,
        reason: &'static str,
    },

    /// MD5 over the 512-byte extent header (md5sum field zeroed) does not match.
    #[error(
        "{file}: byte {offset}: wrong vma extent header checksum (stored {}, computed {})",
        Hex(stored),
        Hex(computed)
    )]
    ExtentChecksum {
        file: String,
        offset: u64,
        stored: [u8; 16],
        computed: [u8; 16],
    },

    /// The extent's uuid is not the archive's.
    #[error(
        "{file}: byte {offset}: wrong vma extent uuid (expected {}, found {})",
        Hex(expected),
        Hex(found)
    )]
    ExtentUuid {
        file: String,
        offset: u64,
        expected: [u8; 16],
        found: [u8; 16],
    },

    /// Extent magic is not `VMAE`, or `reserved1` is not zero.
    #[error(
        "{file}: byte {offset}: wrong vma extent header magic (expected 56 4d 41 45 + reserved 0, found {} + reserved {reserved})",
        Hex(found)
    )]
    ExtentMagic {
        file: String,
        offset: u64,
        found: [u8; 4],
        reserved: u16,
    },

    /// The blockinfo masks reference more blocks than `block_count` provides
    /// (C: "short vma extent - too many blocks").
    #[error(
        "{file}: byte {offset}: short vma extent - too many blocks (block_count {block_count}, blockinfo masks need at least {needed})"
    )]
    ExtentTooManyBlocks {
        file: String,
        offset: u64,
        block_count: u16,
        needed: u64,
    },

    /// `block_count` is larger than the blocks the masks reference
    /// (C: "vma extent error - missing blocks").
    #[error(
        "{file}: byte {offset}: vma extent error - missing blocks (block_count {block_count}, blockinfo masks reference {used})"
    )]
    ExtentMissingBlocks {
        file: String,
        offset: u64,
        block_count: u16,
        used: u64,
    },

    /// The stream ended inside an extent. `offset` is the extent's start; `got` bytes of it
    /// were there.
    #[error("{file}: byte {offset}: read short extent ({got} bytes, expected {expected})")]
    ShortExtent {
        file: String,
        offset: u64,
        got: u64,
        expected: u64,
    },

    /// A blockinfo names a dev_id without a device in the header.
    #[error("{file}: byte {offset}: got wrong dev id {dev_id} (no such device in the header)")]
    UnknownDevice {
        file: String,
        offset: u64,
        dev_id: u8,
    },

    /// A cluster appeared a second time.
    #[error(
        "{file}: byte {offset}: found duplicated cluster {cluster} for stream {name} (dev_id {dev_id})"
    )]
    DuplicateCluster {
        file: String,
        offset: u64,
        dev_id: u8,
        name: String,
        cluster: u64,
    },

    /// A stored block (or a cluster written to the writer) starts at or after the device end.
    #[error(
        "{file}: byte {offset}: got wrong block address - write beyond end (stream {name}, cluster {cluster} block {block}, device size {size})"
    )]
    BeyondDeviceEnd {
        file: String,
        offset: u64,
        dev_id: u8,
        name: String,
        cluster: u64,
        block: u8,
        size: u64,
    },

    /// `vmstate` clusters must come strictly in order from 0.
    #[error(
        "{file}: byte {offset}: found out of order vmstate data (cluster {cluster}, expected {expected})"
    )]
    VmstateOrder {
        file: String,
        offset: u64,
        dev_id: u8,
        cluster: u64,
        expected: u64,
    },

    /// After the end of the archive some clusters were never seen.
    #[error(
        "{file}: byte {offset}: detected missing clusters: {}",
        fmt_missing(missing)
    )]
    MissingClusters {
        file: String,
        offset: u64,
        missing: Vec<MissingRanges>,
    },

    /// The writer was given an unusable config (name or size).
    #[error("vma writer: config {name:?}: {reason}")]
    InvalidConfig { name: String, reason: String },

    /// The writer was given an unusable device (name, size, or too many devices).
    #[error("vma writer: device {name:?}: {reason}")]
    InvalidDevice { name: String, reason: String },

    /// Configs and device names need more than the 512 KiB header allows.
    #[error("vma writer: header would be {size} bytes, more than {max}")]
    HeaderTooLarge { size: u64, max: u64 },

    /// `write_cluster` got a buffer that is neither 64 KiB nor the exact device tail.
    #[error(
        "{file}: byte {offset}: cluster {cluster} of dev_id {dev_id}: {len} bytes of data (expected {expected})"
    )]
    ClusterLength {
        file: String,
        offset: u64,
        dev_id: u8,
        cluster: u64,
        len: usize,
        expected: String,
    },

    /// `finish` found a device whose clusters were not all written.
    #[error("{file}: byte {offset}: incomplete stream '{name}' ({written} != {total} clusters)")]
    IncompleteStream {
        file: String,
        offset: u64,
        dev_id: u8,
        name: String,
        written: u64,
        total: u64,
    },
}

/// Expands to a `match` over every variant that is about archive bytes (they all carry
/// `file` and `offset`), binding those two fields, with `$none` for the writer's argument
/// errors. The one list of located variants, so a new variant is added in one place.
macro_rules! match_located {
    ($e:expr, |$file:pat_param, $offset:pat_param| $located:expr, $none:expr) => {{
        use Error::*;
        match $e {
            Io { file: $file, offset: $offset, .. }
            | BadMagic { file: $file, offset: $offset, .. }
            | ShortHeader { file: $file, offset: $offset, .. }
            | HeaderSize { file: $file, offset: $offset, .. }
            | HeaderChecksum { file: $file, offset: $offset, .. }
            | Version { file: $file, offset: $offset, .. }
            | BlobTable { file: $file, offset: $offset, .. }
            | InvalidBlobPointer { file: $file, offset: $offset, .. }
            | ExtentChecksum { file: $file, offset: $offset, .. }
            | ExtentUuid { file: $file, offset: $offset, .. }
            | ExtentMagic { file: $file, offset: $offset, .. }
            | ExtentTooManyBlocks { file: $file, offset: $offset, .. }
            | ExtentMissingBlocks { file: $file, offset: $offset, .. }
            | ShortExtent { file: $file, offset: $offset, .. }
            | UnknownDevice { file: $file, offset: $offset, .. }
            | DuplicateCluster { file: $file, offset: $offset, .. }
            | BeyondDeviceEnd { file: $file, offset: $offset, .. }
            | VmstateOrder { file: $file, offset: $offset, .. }
            | MissingClusters { file: $file, offset: $offset, .. }
            | ClusterLength { file: $file, offset: $offset, .. }
            | IncompleteStream { file: $file, offset: $offset, .. } => $located,
            InvalidConfig { .. } | InvalidDevice { .. } | HeaderTooLarge { .. } => $none,
        }
    }};
}

impl Error {
    /// The source (file name or `-`) the error is about, if it is about archive bytes.
    pub fn file(&self) -> Option<&str> {
        match_located!(self, |file, _| Some(file.as_str()), None)
    }

    /// The absolute archive byte offset the error is about, if it is about archive bytes.
    pub fn offset(&self) -> Option<u64> {
        match_located!(self, |_, offset| Some(*offset), None)
    }

    /// Replaces the source name (pure parsers report `-`; the reader knows the real name).
    pub(crate) fn with_file(mut self, name: &str) -> Self {
        match_located!(&mut self, |file, _| *file = name.to_owned(), ());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_file_offset_and_expectation() {
        let e = Error::ShortExtent {
            file: "a.vma".into(),
            offset: 12800,
            got: 100,
            expected: 512,
        };
        assert_eq!(
            e.to_string(),
            "a.vma: byte 12800: read short extent (100 bytes, expected 512)"
        );
        assert_eq!(e.file(), Some("a.vma"));
        assert_eq!(e.offset(), Some(12800));
        let e = e.with_file("-");
        assert_eq!(e.file(), Some("-"));
    }

    #[test]
    fn missing_clusters_message_lists_ranges_and_truncates() {
        let e = Error::MissingClusters {
            file: "-".into(),
            offset: 7,
            missing: vec![MissingRanges {
                dev_id: 1,
                name: "drive-scsi0".into(),
                ranges: (0..10u64).map(|i| i * 10..i * 10 + 1 + (i % 2)).collect(),
            }],
        };
        let s = e.to_string();
        assert!(
            s.starts_with("-: byte 7: detected missing clusters: stream drive-scsi0 (dev_id 1): 15 clusters missing: 0, 10-11, 20,"),
            "{s}"
        );
        assert!(s.ends_with("... (10 ranges in all)"), "{s}");
    }
}
