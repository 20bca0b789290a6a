//! [`VmaWriter`]: writes archives laid out exactly like Proxmox's C writer (`vma-writer.c`).
//!
//! Layout rules reproduced (see `vma-format.md` §1.9): every cluster of every device gets a
//! blockinfo entry (mask 0 for an all-zero cluster), only non-zero 4 KiB blocks are stored, an
//! extent is flushed once 58 clusters are buffered (slot 58 stays zero), the header's blob
//! table grows in 512-byte steps with configs (name, data) first and device names after, and
//! a device-less archive is the header plus one empty extent. Blocks past the device end are
//! never stored, and the part of a block that straddles the end is zeroed.
//!
//! Clusters are written in the caller's order, so tests can produce out-of-order and
//! interleaved archives like a live backup does. Memory: one extent buffer plus a sparse
//! written-cluster bitmap per device.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::bitmap::ClusterBitmap;
use crate::format::{
    BLOCK_SIZE, BLOCKINFO_SLOTS, BLOCKS_PER_CLUSTER, BlobTable, BlobTableBuilder, BlockInfo,
    CLUSTER_SIZE, DevInfo, EXTENT_HEADER_SIZE, ExtentHeader, HEADER_STRUCT_SIZE, MAX_BLOB_LEN,
    MAX_CONFIGS, MAX_HEADER_SIZE, MAX_WRITER_DEVICES, VMA_VERSION, VMSTATE_NAME, VmaHeader,
    WRITER_CLUSTERS_PER_EXTENT,
};
use crate::{Config, Error};

/// Options of [`VmaWriter::new`]; `Default` gives a random v4 uuid and the current time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterOptions {
    pub uuid: Option<[u8; 16]>,
    /// Seconds since the epoch.
    pub ctime: Option<i64>,
}

#[derive(Debug)]
struct WriterDev {
    name: String,
    size: u64,
    vmstate: bool,
    written: ClusterBitmap,
    next_vmstate: u64,
}

/// Streaming VMA writer. See the module docs.
pub struct VmaWriter<W: Write> {
    out: W,
    name: String,
    offset: u64,
    /// The serialised main header, written with the first extent (as C does).
    pending_header: Option<Vec<u8>>,
    uuid: [u8; 16],
    ctime: i64,
    /// Indexed by dev_id (1..=n).
    devs: Vec<Option<WriterDev>>,
    /// Extent header space plus up to 58 clusters of data.
    buf: Vec<u8>,
    entries: Vec<BlockInfo>,
    blocks: usize,
    extents: u64,
}

impl<W: Write> std::fmt::Debug for VmaWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmaWriter")
            .field("name", &self.name)
            .field("offset", &self.offset)
            .field("extents", &self.extents)
            .field("buffered_clusters", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// True if every byte is zero; folds 64-byte chunks so the compiler can vectorise it.
pub(crate) fn is_zero(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(64);
    for c in &mut chunks {
        if c.iter().fold(0u8, |a, &x| a | x) != 0 {
            return false;
        }
    }
    chunks.remainder().iter().all(|&x| x == 0)
}

fn check_config(c: &Config) -> Result<(), Error> {
    let bad = |reason: &str| {
        Err(Error::InvalidConfig {
            name: c.name.clone(),
            reason: reason.to_owned(),
        })
    };
    if c.name.is_empty() || c.name == "." || c.name == ".." {
        return bad("name must be a file name");
    }
    if c.name.contains('/') {
        return bad("name must be a basename (no '/')");
    }
    if c.name.contains('\0') {
        return bad("name must not contain NUL");
    }
    if c.name.len() + 1 > MAX_BLOB_LEN {
        return bad("name longer than 65534 bytes");
    }
    if c.data.len() > MAX_BLOB_LEN {
        return bad(&format!(
            "data is {} bytes, at most {MAX_BLOB_LEN} fit",
            c.data.len()
        ));
    }
    Ok(())
}

fn check_device(name: &str, size: u64, earlier: &[(String, u64)]) -> Result<(), Error> {
    let bad = |reason: &str| {
        Err(Error::InvalidDevice {
            name: name.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if name.is_empty() {
        return bad("empty name");
    }
    if name.contains('\0') || name.contains('/') {
        return bad("name must not contain NUL or '/'");
    }
    if name.len() + 1 > MAX_BLOB_LEN {
        return bad("name longer than 65534 bytes");
    }
    if earlier.iter().any(|(n, _)| n == name) {
        return bad("registered twice");
    }
    if size == 0 {
        return bad("size 0 (the format marks unused slots with size 0)");
    }
    if name != VMSTATE_NAME && size.div_ceil(CLUSTER_SIZE as u64) > 1 << 32 {
        return bad("larger than 2^32 clusters (256 TiB)");
    }
    Ok(())
}

impl<W: Write> VmaWriter<W> {
    /// Validates configs (basenames, ≤ 65535 bytes each) and devices (dev_ids 1..n in the
    /// given order, at most 254; a device named `vmstate` is the RAM-state stream) and builds
    /// the header. Nothing is written until the first extent is flushed.
    pub fn new(
        out: W,
        configs: Vec<Config>,
        devices: Vec<(String, u64)>,
        opts: WriterOptions,
    ) -> Result<Self, Error> {
        if configs.len() > MAX_CONFIGS {
            return Err(Error::InvalidConfig {
                name: configs[MAX_CONFIGS].name.clone(),
                reason: format!("more than {MAX_CONFIGS} configs"),
            });
        }
        if devices.len() > MAX_WRITER_DEVICES {
            return Err(Error::InvalidDevice {
                name: devices[MAX_WRITER_DEVICES].0.clone(),
                reason: format!("too many drives (at most {MAX_WRITER_DEVICES})"),
            });
        }
        let mut table = BlobTableBuilder::new();
        let too_large = |table: &BlobTableBuilder, more: usize| Error::HeaderTooLarge {
            size: (HEADER_STRUCT_SIZE + table.size() + more) as u64,
            max: MAX_HEADER_SIZE as u64,
        };
        let mut config_names = [0u32; MAX_CONFIGS];
        let mut config_data = [0u32; MAX_CONFIGS];
        for (i, c) in configs.iter().enumerate() {
            check_config(c)?;
            config_names[i] = table.add_str(&c.name).ok_or_else(|| too_large(&table, 0))?;
            config_data[i] = table
                .add_blob(&c.data)
                .ok_or_else(|| too_large(&table, 0))?;
            if HEADER_STRUCT_SIZE + table.size() > MAX_HEADER_SIZE {
                return Err(too_large(&table, 0));
            }
        }
        let mut dev_info = [DevInfo::default(); 256];
        let mut devs: Vec<Option<WriterDev>> = (0..=devices.len()).map(|_| None).collect();
        for (i, (name, size)) in devices.iter().enumerate() {
            check_device(name, *size, &devices[..i])?;
            let ptr = table.add_str(name).ok_or_else(|| too_large(&table, 0))?;
            if HEADER_STRUCT_SIZE + table.size() > MAX_HEADER_SIZE {
                return Err(too_large(&table, 0));
            }
            dev_info[i + 1] = DevInfo {
                devname_ptr: ptr,
                size: *size,
            };
            devs[i + 1] = Some(WriterDev {
                name: name.clone(),
                size: *size,
                vmstate: name == VMSTATE_NAME,
                written: ClusterBitmap::default(),
                next_vmstate: 0,
            });
        }
        if table.size() == 0 {
            // The C reader needs header_size > 12288; C's writer always has at least one
            // blob. Allocate one empty block so even a bare archive stays readable.
            table = BlobTableBuilder::with_empty_block();
        }
        let uuid = opts
            .uuid
            .unwrap_or_else(|| *uuid::Uuid::new_v4().as_bytes());
        let ctime = opts.ctime.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
        let header = VmaHeader {
            version: VMA_VERSION,
            uuid,
            ctime,
            md5sum: [0; 16],
            blob_buffer_offset: HEADER_STRUCT_SIZE as u32,
            blob_buffer_size: table.used() as u32,
            header_size: (HEADER_STRUCT_SIZE + table.size()) as u32,
            config_names,
            config_data,
            dev_info,
            blobs: BlobTable::parse(&table.as_bytes()[..table.used()]),
        };
        let header_bytes = header.to_bytes().ok_or_else(|| too_large(&table, 0))?;
        let mut buf = vec![0u8; EXTENT_HEADER_SIZE + WRITER_CLUSTERS_PER_EXTENT * CLUSTER_SIZE];
        buf.shrink_to_fit();
        Ok(VmaWriter {
            out,
            name: "-".into(),
            offset: 0,
            pending_header: Some(header_bytes),
            uuid,
            ctime,
            devs,
            buf,
            entries: Vec::with_capacity(BLOCKINFO_SLOTS),
            blocks: 0,
            extents: 0,
        })
    }

    /// Sets the target name used in errors (file name, `-` for stdout).
    pub fn with_target_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The archive's uuid (random unless given).
    pub fn uuid(&self) -> [u8; 16] {
        self.uuid
    }

    /// The archive's ctime (now unless given).
    pub fn ctime(&self) -> i64 {
        self.ctime
    }

    /// Bytes written to the output so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Adds one cluster. `data` is 64 KiB, or for the last cluster of a device also exactly
    /// the bytes up to the device end (a `vmstate` cluster may be shorter and is zero-padded).
    /// Bytes past the device end are ignored: blocks starting there are never stored and a
    /// block straddling the end has its tail zeroed. Each cluster exactly once; any order.
    pub fn write_cluster(&mut self, dev_id: u8, cluster: u32, data: &[u8]) -> Result<(), Error> {
        let valid = self.admit(dev_id, cluster, Some(data.len()))?;
        if self.entries.len() >= WRITER_CLUSTERS_PER_EXTENT {
            self.flush_extent()?;
        }

        let mut mask = 0u16;
        for j in 0..BLOCKS_PER_CLUSTER {
            let bstart = j * BLOCK_SIZE;
            // Past the device end, or past short (zero-padded) data: nothing more to store.
            if bstart >= valid || bstart >= data.len() {
                break;
            }
            let bend = (bstart + BLOCK_SIZE).min(valid).min(data.len());
            let src = &data[bstart..bend];
            if is_zero(src) {
                continue;
            }
            let at = EXTENT_HEADER_SIZE + self.blocks * BLOCK_SIZE;
            let dst = &mut self.buf[at..at + BLOCK_SIZE];
            dst[..src.len()].copy_from_slice(src);
            dst[src.len()..].fill(0);
            mask |= 1 << j;
            self.blocks += 1;
        }
        self.commit(dev_id, cluster, mask);
        Ok(())
    }

    /// Adds one cluster known to be all zero (e.g. a hole of the source image): the same
    /// entry as [`VmaWriter::write_cluster`] with 64 KiB of zeros, without looking at 64 KiB
    /// of zeros. Same rules (each cluster exactly once, any order, within the device).
    pub fn write_zero_cluster(&mut self, dev_id: u8, cluster: u32) -> Result<(), Error> {
        self.admit(dev_id, cluster, None)?;
        if self.entries.len() >= WRITER_CLUSTERS_PER_EXTENT {
            self.flush_extent()?;
        }
        self.commit(dev_id, cluster, 0);
        Ok(())
    }

    /// Checks that `cluster` of `dev_id` may be written now with `len` bytes of data (`None`:
    /// a zero cluster, any length is right) and returns how many of its bytes lie inside the
    /// device.
    fn admit(&self, dev_id: u8, cluster: u32, len: Option<usize>) -> Result<usize, Error> {
        let file = self.name.clone();
        let offset = self.offset;
        let Some(dev) = self.devs.get(usize::from(dev_id)).and_then(Option::as_ref) else {
            return Err(Error::UnknownDevice {
                file,
                offset,
                dev_id,
            });
        };
        let cluster_start = u64::from(cluster) * CLUSTER_SIZE as u64;
        let len_err = |len: usize, expected: String| Error::ClusterLength {
            file: file.clone(),
            offset,
            dev_id,
            cluster: u64::from(cluster),
            len,
            expected,
        };
        // Bytes of this cluster that lie inside the device.
        let valid = if dev.vmstate {
            if u64::from(cluster) != dev.next_vmstate {
                return Err(Error::VmstateOrder {
                    file,
                    offset,
                    dev_id,
                    cluster: u64::from(cluster),
                    expected: dev.next_vmstate,
                });
            }
            if let Some(len) = len
                && len > CLUSTER_SIZE
            {
                return Err(len_err(len, format!("at most {CLUSTER_SIZE}")));
            }
            CLUSTER_SIZE
        } else {
            if cluster_start >= dev.size {
                return Err(Error::BeyondDeviceEnd {
                    file,
                    offset,
                    dev_id,
                    name: dev.name.clone(),
                    cluster: u64::from(cluster),
                    block: 0,
                    size: dev.size,
                });
            }
            if dev.written.contains(cluster) {
                return Err(Error::DuplicateCluster {
                    file,
                    offset,
                    dev_id,
                    name: dev.name.clone(),
                    cluster: u64::from(cluster),
                });
            }
            let valid = (dev.size - cluster_start).min(CLUSTER_SIZE as u64) as usize;
            if let Some(len) = len
                && len != CLUSTER_SIZE
                && len != valid
            {
                return Err(len_err(
                    len,
                    if valid == CLUSTER_SIZE {
                        format!("{CLUSTER_SIZE}")
                    } else {
                        format!("{CLUSTER_SIZE} or {valid}")
                    },
                ));
            }
            valid
        };
        Ok(valid)
    }

    /// Records the blockinfo entry of an admitted cluster whose blocks are in the buffer.
    fn commit(&mut self, dev_id: u8, cluster: u32, mask: u16) {
        self.entries.push(BlockInfo {
            mask,
            dev_id,
            cluster,
        });
        if let Some(dev) = self.devs[usize::from(dev_id)].as_mut() {
            if dev.vmstate {
                dev.next_vmstate += 1;
            } else {
                dev.written.insert(cluster);
            }
        }
    }

    /// Writes the header (first time) and the buffered extent, even if it has no entries.
    fn flush_extent(&mut self) -> Result<(), Error> {
        if let Some(h) = self.pending_header.take() {
            let at = self.offset;
            self.out.write_all(&h).map_err(|e| self.io_error(at, e))?;
            self.offset += h.len() as u64;
        }
        let mut eh = ExtentHeader {
            magic: crate::format::EXTENT_MAGIC,
            reserved1: 0,
            block_count: self.blocks as u16,
            uuid: self.uuid,
            md5sum: [0; 16],
            blockinfo: [BlockInfo::default(); BLOCKINFO_SLOTS],
        };
        eh.blockinfo[..self.entries.len()].copy_from_slice(&self.entries);
        self.buf[..EXTENT_HEADER_SIZE].copy_from_slice(&eh.to_bytes());
        let len = EXTENT_HEADER_SIZE + self.blocks * BLOCK_SIZE;
        let at = self.offset;
        self.out
            .write_all(&self.buf[..len])
            .map_err(|e| self.io_error(at, e))?;
        self.offset += len as u64;
        self.entries.clear();
        self.blocks = 0;
        self.extents += 1;
        Ok(())
    }

    fn io_error(&self, offset: u64, source: io::Error) -> Error {
        Error::Io {
            file: self.name.clone(),
            offset,
            source,
        }
    }

    /// Checks every cluster of every (non-vmstate) device was written ("incomplete stream"
    /// otherwise), flushes the last extent (or the one empty extent of an archive without
    /// data) and the output, and returns the output.
    pub fn finish(mut self) -> Result<W, Error> {
        for (id, d) in self.devs.iter().enumerate() {
            let Some(d) = d else { continue };
            let total = d.size.div_ceil(CLUSTER_SIZE as u64);
            if !d.vmstate && d.written.len() != total {
                return Err(Error::IncompleteStream {
                    file: self.name.clone(),
                    offset: self.offset,
                    dev_id: id as u8,
                    name: d.name.clone(),
                    written: d.written.len(),
                    total,
                });
            }
        }
        if !self.entries.is_empty() || self.extents == 0 {
            self.flush_extent()?;
        }
        let at = self.offset;
        self.out.flush().map_err(|e| self.io_error(at, e))?;
        Ok(self.out)
    }
}
