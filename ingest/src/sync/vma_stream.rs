//! A VMA archive stream onto a set of destination images, in one pass.
//!
//! Three threads (see [`super::pipeline`]): one reads and decompresses the archive and
//! parses extents into recycled [`ExtentBuf`]s; one reads the old contents of each extent's
//! clusters from the images; this one compares and writes. Clusters may come in any order
//! and devices interleaved (live backups, vma-format.md §1.6); each is written at
//! `cluster × 64 KiB` of its own image.

use std::io::Read;

use vma::{ExtentBuf, VmaReader};

use super::compare::NewCluster;
use super::image::ImageReader;
use super::old::OldData;
use super::{ImageSync, SyncError, pipeline};

/// Extents in flight (each up to 3.7 MiB, plus as much old data): enough to keep all three
/// threads busy, small enough for the memory bound.
pub const EXTENT_BUFFERS: usize = 4;

/// Destination images by dev_id (index = dev_id; `None` = no image for that id).
#[derive(Debug, Default)]
pub struct Targets {
    images: Vec<Option<ImageSync>>,
}

impl Targets {
    pub fn new() -> Self {
        Targets {
            images: (0..256).map(|_| None).collect(),
        }
    }

    /// Sets the image for `dev_id`.
    pub fn insert(&mut self, dev_id: u8, image: ImageSync) {
        self.images[usize::from(dev_id)] = Some(image);
    }

    /// Takes the image of `dev_id` out (to finish it).
    pub fn take(&mut self, dev_id: u8) -> Option<ImageSync> {
        self.images
            .get_mut(usize::from(dev_id))
            .and_then(Option::take)
    }

    fn get_mut(&mut self, dev_id: u8) -> Option<&mut ImageSync> {
        self.images
            .get_mut(usize::from(dev_id))
            .and_then(Option::as_mut)
    }

    fn readers(&self) -> Result<Vec<Option<ImageReader>>, SyncError> {
        self.images
            .iter()
            .map(|i| i.as_ref().map(ImageSync::reader).transpose())
            .collect()
    }
}

/// One extent and the old contents of its clusters.
#[derive(Debug, Default)]
struct Work {
    ext: ExtentBuf,
    old: OldData,
}

/// Reads every extent of `reader` and applies its clusters to `targets` (see the module
/// docs). `after_extent` runs on this thread after each extent is applied, with the archive
/// offset reached (for progress reports); an error from it stops the sync. `source` names the
/// archive in errors raised here (use the reader's source name).
///
/// Does not check completeness: call [`VmaReader::check_complete`] afterwards.
pub fn sync_stream<R, F>(
    reader: &mut VmaReader<R>,
    source: &str,
    targets: &mut Targets,
    mut after_extent: F,
) -> Result<(), SyncError>
where
    R: Read + Send,
    F: FnMut(u64) -> Result<(), SyncError>,
{
    let readers = targets.readers()?;
    let buffers = (0..EXTENT_BUFFERS).map(|_| Work::default()).collect();
    pipeline::run(
        buffers,
        |w: &mut Work| reader.read_extent(&mut w.ext).map_err(SyncError::from),
        |w: &mut Work| {
            w.old.clear();
            for c in w.ext.clusters() {
                let r = readers.get(usize::from(c.dev_id)).and_then(Option::as_ref);
                match r.and_then(|r| r.cluster_range(u64::from(c.cluster)).map(|x| (r, x))) {
                    Some((r, (off, len))) if !r.known_zero(off) => {
                        w.old.push_read(c.dev_id, off, len)
                    }
                    // Known zero; or no image / beyond its end, which the writer reports.
                    _ => w.old.push_zero(),
                }
            }
            w.old
                .read(|dev| readers.get(usize::from(dev)).and_then(Option::as_ref))
        },
        |w: &mut Work| {
            for (i, c) in w.ext.clusters().enumerate() {
                let Some(img) = targets.get_mut(c.dev_id) else {
                    return Err(SyncError::NoTarget {
                        file: source.to_owned(),
                        offset: w.ext.offset(),
                        dev_id: c.dev_id,
                    });
                };
                let new = NewCluster::Packed {
                    mask: c.mask,
                    data: c.data(),
                };
                img.apply_old(u64::from(c.cluster), new, w.old.get(i))?;
            }
            after_extent(w.ext.offset() + w.ext.as_bytes().len() as u64)
        },
    )
}
