//! [`VmaReader`]: streams an archive from any [`Read`] (file, pipe, stdin) without seeking.
//!
//! Memory is bounded by the format's own limits: the header (≤ 512 KiB), one extent buffer
//! (≤ 3.7 MiB, owned by the caller's [`ExtentBuf`]) and one sparse bitmap per device that
//! grows with the clusters actually seen. Nothing is allocated from an untrusted length
//! beyond those limits. Each extent is read with one `read_exact`-style call for its header
//! and one for its data, straight into the reused buffer; only the 512-byte headers are
//! hashed (the format has no checksum over data).

mod extent_buf;

pub use extent_buf::{ClusterBlocks, ClusterRef, ExtentBuf};

use std::io::{self, Read};
use std::ops::Range;

use crate::bitmap::ClusterBitmap;
use crate::error::MissingRanges;
use crate::format::extent::offset as ext_off;
use crate::format::header::{check_magic, parse_header_size};
use crate::format::{
    BLOCK_SIZE, BLOCKINFO_SLOTS, BlockInfo, CLUSTER_SIZE, EXTENT_HEADER_SIZE, ExtentHeader,
    HEADER_STRUCT_SIZE, MAX_EXTENT_BLOCKS, VmaHeader,
};
use crate::{Error, Header};

/// Per-device state the reader keeps across extents.
#[derive(Debug)]
struct DevState {
    name: String,
    size: u64,
    vmstate: bool,
    seen: ClusterBitmap,
    /// vmstate only: the next cluster number expected.
    next_vmstate: u64,
}

/// Streaming VMA reader. See the module docs.
pub struct VmaReader<R: Read> {
    inner: R,
    name: String,
    offset: u64,
    raw: VmaHeader,
    header: Header,
    /// Indexed by dev_id.
    devs: Vec<Option<DevState>>,
}

impl<R: Read> std::fmt::Debug for VmaReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmaReader")
            .field("name", &self.name)
            .field("offset", &self.offset)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read. Unlike
/// `read_exact`, a short stream is not an error here, so the caller can tell "clean end"
/// from "truncated" and report how many bytes there were. On an I/O error it also says how
/// many bytes had arrived, so the error can name the exact offset.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, (usize, io::Error)> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((got, e)),
        }
    }
    Ok(got)
}

impl<R: Read> VmaReader<R> {
    /// Reads and validates the header (C order: magic, size, MD5, version, blobs, tables).
    /// Errors name the source `-`; use [`VmaReader::new_named`] to name it from the start.
    pub fn new(inner: R) -> Result<Self, Error> {
        Self::new_named(inner, "-")
    }

    /// Like [`VmaReader::new`], with the source name (file name, `-` for stdin) used in every
    /// error, including header errors.
    pub fn new_named(mut inner: R, name: impl Into<String>) -> Result<Self, Error> {
        let name = name.into();
        let io_err = |offset: u64, source: io::Error| Error::Io {
            file: name.clone(),
            offset,
            source,
        };
        let mut fixed = vec![0u8; HEADER_STRUCT_SIZE];
        let got = read_full(&mut inner, &mut fixed).map_err(|(n, e)| io_err(n as u64, e))?;
        if got >= 4 {
            check_magic(&fixed[..got]).map_err(|e| e.with_file(&name))?;
        }
        if got < HEADER_STRUCT_SIZE {
            return Err(Error::ShortHeader {
                file: name,
                offset: 0,
                got: got as u64,
                expected: HEADER_STRUCT_SIZE as u64,
            });
        }
        let size = parse_header_size(&fixed).map_err(|e| e.with_file(&name))? as usize;
        // size is at most MAX_HEADER_SIZE (512 KiB), checked above.
        fixed.resize(size, 0);
        let more = read_full(&mut inner, &mut fixed[HEADER_STRUCT_SIZE..])
            .map_err(|(n, e)| io_err((HEADER_STRUCT_SIZE + n) as u64, e))?;
        if HEADER_STRUCT_SIZE + more < size {
            return Err(Error::ShortHeader {
                file: name,
                offset: 0,
                got: (HEADER_STRUCT_SIZE + more) as u64,
                expected: size as u64,
            });
        }
        let raw = VmaHeader::parse(&fixed).map_err(|e| e.with_file(&name))?;
        let header = Header::from_vma_header(&raw).map_err(|e| e.with_file(&name))?;
        let mut devs: Vec<Option<DevState>> = (0..256).map(|_| None).collect();
        for d in &header.devices {
            devs[usize::from(d.id)] = Some(DevState {
                name: d.name.clone(),
                size: d.size,
                vmstate: d.is_vmstate(),
                seen: ClusterBitmap::default(),
                next_vmstate: 0,
            });
        }
        Ok(VmaReader {
            inner,
            name,
            offset: size as u64,
            raw,
            header,
            devs,
        })
    }

    /// Sets the source name used in later errors (file name, or `-` for stdin).
    pub fn with_source_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The validated header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The header as stored (blob pointers, sizes), for tools that show the raw layout.
    pub fn raw_header(&self) -> &VmaHeader {
        &self.raw
    }

    /// Archive byte offset of the next unread byte (uncompressed stream offset).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Gives back the inner reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Reads and validates the next extent into `buf` (reused, allocation-free after the
    /// first call). `Ok(false)` at a clean end of file (the stream ends exactly at an extent
    /// boundary). Checks, in the C reader's order: header MD5, uuid, magic + reserved, bytes
    /// available, then per blockinfo slot: unknown dev_id, duplicate cluster / vmstate order,
    /// blocks vs `block_count`, blocks beyond the device end; finally `block_count` vs masks.
    ///
    /// On error `buf` is left empty; the stream position is then unspecified, so stop.
    pub fn read_extent(&mut self, buf: &mut ExtentBuf) -> Result<bool, Error> {
        let res = self.read_extent_inner(buf);
        if res.is_err() {
            buf.clear();
        }
        res
    }

    fn read_extent_inner(&mut self, buf: &mut ExtentBuf) -> Result<bool, Error> {
        buf.clear();
        let at = self.offset;
        buf.offset = at;
        let got = read_full(
            &mut self.inner,
            &mut buf.storage(EXTENT_HEADER_SIZE)[..EXTENT_HEADER_SIZE],
        )
        .map_err(|(n, e)| self.io_error(at + n as u64, e))?;
        self.offset += got as u64;
        if got == 0 {
            return Ok(false);
        }
        if got < EXTENT_HEADER_SIZE {
            return Err(Error::ShortExtent {
                file: self.name.clone(),
                offset: at,
                got: got as u64,
                expected: EXTENT_HEADER_SIZE as u64,
            });
        }
        let mut hdr = [0u8; EXTENT_HEADER_SIZE];
        hdr.copy_from_slice(&buf.data[..EXTENT_HEADER_SIZE]);
        let eh = ExtentHeader::parse_checked(&hdr, &self.header.uuid, at)
            .map_err(|e| e.with_file(&self.name))?;
        let block_count = usize::from(eh.block_count);
        if block_count > MAX_EXTENT_BLOCKS {
            // No mask combination can use this many blocks, and reading them would exceed
            // the extent buffer: C reports "short vma extent" here, we say what is wrong.
            return Err(Error::ExtentMissingBlocks {
                file: self.name.clone(),
                offset: at + ext_off::BLOCK_COUNT as u64,
                block_count: eh.block_count,
                used: eh.mask_blocks(),
            });
        }
        let data_len = block_count * BLOCK_SIZE;
        let total = EXTENT_HEADER_SIZE + data_len;
        let storage = buf.storage(total);
        let got = read_full(&mut self.inner, &mut storage[EXTENT_HEADER_SIZE..total])
            .map_err(|(n, e)| self.io_error(self.offset + n as u64, e))?;
        self.offset += got as u64;
        if got < data_len {
            return Err(Error::ShortExtent {
                file: self.name.clone(),
                offset: at,
                got: (EXTENT_HEADER_SIZE + got) as u64,
                expected: total as u64,
            });
        }
        self.validate_blocks(&eh, at, &mut buf.entries)
            .map_err(|e| e.with_file(&self.name))?;
        // Only now, with the whole extent valid, record its clusters as seen.
        for &(bi, _) in buf.entries.iter() {
            if let Some(d) = self.devs[usize::from(bi.dev_id)].as_mut() {
                if d.vmstate {
                    d.next_vmstate += 1;
                } else {
                    d.seen.insert(bi.cluster);
                }
            }
        }
        buf.len = total;
        Ok(true)
    }

    fn io_error(&self, offset: u64, source: io::Error) -> Error {
        Error::Io {
            file: self.name.clone(),
            offset,
            source,
        }
    }

    /// Walks the blockinfo slots like `restore_extent` and fills `entries` with the used slots
    /// and their data offsets. Does not change the reader's state.
    fn validate_blocks(
        &self,
        eh: &ExtentHeader,
        at: u64,
        entries: &mut Vec<(BlockInfo, u32)>,
    ) -> Result<(), Error> {
        let block_count = u64::from(eh.block_count);
        let mut used: u64 = 0;
        for slot in 0..BLOCKINFO_SLOTS {
            let bi = eh.blockinfo[slot];
            if bi.dev_id == 0 {
                continue;
            }
            let slot_at = at + (ext_off::BLOCKINFO + 8 * slot) as u64;
            let Some(dev) = self.devs[usize::from(bi.dev_id)].as_ref() else {
                return Err(Error::UnknownDevice {
                    file: "-".into(),
                    offset: slot_at,
                    dev_id: bi.dev_id,
                });
            };
            let earlier = || entries.iter().filter(|(e, _)| e.dev_id == bi.dev_id);
            if dev.vmstate {
                let expected = dev.next_vmstate + earlier().count() as u64;
                if u64::from(bi.cluster) != expected {
                    return Err(Error::VmstateOrder {
                        file: "-".into(),
                        offset: slot_at,
                        dev_id: bi.dev_id,
                        cluster: u64::from(bi.cluster),
                        expected,
                    });
                }
            } else if dev.seen.contains(bi.cluster)
                || earlier().any(|(e, _)| e.cluster == bi.cluster)
            {
                return Err(Error::DuplicateCluster {
                    file: "-".into(),
                    offset: slot_at,
                    dev_id: bi.dev_id,
                    name: dev.name.clone(),
                    cluster: u64::from(bi.cluster),
                });
            }
            let too_many = || Error::ExtentTooManyBlocks {
                file: "-".into(),
                offset: at + ext_off::BLOCK_COUNT as u64,
                block_count: eh.block_count,
                needed: eh.mask_blocks(),
            };
            let beyond = |block: u32| Error::BeyondDeviceEnd {
                file: "-".into(),
                offset: slot_at,
                dev_id: bi.dev_id,
                name: dev.name.clone(),
                cluster: u64::from(bi.cluster),
                block: block as u8,
                size: dev.size,
            };
            let cluster_start = u64::from(bi.cluster) * CLUSTER_SIZE as u64;
            let blocks = u64::from(bi.blocks());
            if bi.mask == 0xffff {
                // A full cluster is checked as a whole and by its start only, like C (old
                // writers stored the whole last cluster of an unaligned device).
                if used + blocks > block_count {
                    return Err(too_many());
                }
                if !dev.vmstate && cluster_start >= dev.size {
                    return Err(beyond(0));
                }
            } else {
                // Block by block, in C's order: room in the extent, then inside the device.
                let mut m = bi.mask;
                let mut k = used;
                while m != 0 {
                    let j = m.trailing_zeros();
                    m &= m - 1;
                    if k + 1 > block_count {
                        return Err(too_many());
                    }
                    if !dev.vmstate && cluster_start + u64::from(j) * BLOCK_SIZE as u64 >= dev.size
                    {
                        return Err(beyond(j));
                    }
                    k += 1;
                }
            }
            let data_start = EXTENT_HEADER_SIZE as u64 + used * BLOCK_SIZE as u64;
            // data_start <= MAX_EXTENT_SIZE, fits in u32.
            entries.push((bi, data_start as u32));
            used += blocks;
        }
        if used != block_count {
            return Err(Error::ExtentMissingBlocks {
                file: "-".into(),
                offset: at + ext_off::BLOCK_COUNT as u64,
                block_count: eh.block_count,
                used,
            });
        }
        Ok(())
    }

    /// Clusters never seen so far, per non-vmstate device (only devices with gaps), as
    /// ascending half-open cluster ranges. Meaningful after the end of the archive.
    pub fn missing(&self) -> Vec<(u8, Vec<Range<u64>>)> {
        self.missing_detail(None)
            .into_iter()
            .map(|m| (m.dev_id, m.ranges))
            .collect()
    }

    fn missing_detail(&self, only: Option<&[u8]>) -> Vec<MissingRanges> {
        let mut out = Vec::new();
        for d in &self.header.devices {
            if d.is_vmstate() || only.is_some_and(|o| !o.contains(&d.id)) {
                continue;
            }
            let Some(state) = self.devs[usize::from(d.id)].as_ref() else {
                continue;
            };
            let ranges = state.seen.missing(d.clusters());
            if !ranges.is_empty() {
                out.push(MissingRanges {
                    dev_id: d.id,
                    name: d.name.clone(),
                    ranges,
                });
            }
        }
        out
    }

    /// Number of distinct clusters of `dev_id` seen so far (vmstate: clusters read).
    pub fn clusters_seen(&self, dev_id: u8) -> u64 {
        match self.devs[usize::from(dev_id)].as_ref() {
            Some(d) if d.vmstate => d.next_vmstate,
            Some(d) => d.seen.len(),
            None => 0,
        }
    }

    /// `Err(MissingClusters)` unless every cluster of every non-vmstate device (or only of the
    /// given dev_ids; unknown ids are ignored) was seen. Call after `read_extent` returned
    /// `Ok(false)`. The C `vma verify` does not check this; `vma extract` does.
    pub fn check_complete(&self, only: Option<&[u8]>) -> Result<(), Error> {
        let missing = self.missing_detail(only);
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::MissingClusters {
            file: self.name.clone(),
            offset: self.offset,
            missing,
        })
    }
}
