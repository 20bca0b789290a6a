//! A VMA archive stream onto a set of destination images, in one pass.
//!
//! The producer thread reads (and, through the reader's inner stream, decompresses) extents
//! into recycled [`ExtentBuf`]s; this thread applies each cluster to its device's image.
//! Clusters may come in any order and devices interleaved (live backups, vma-format.md §1.6);
//! each is written at `cluster × 64 KiB` of its own image.

use std::io::Read;

use vma::{ExtentBuf, VmaReader};

use super::compare::NewCluster;
use super::{ImageSync, SyncError, pipeline};

/// Extent buffers in flight (each up to 3.7 MiB): enough to keep both threads busy, small
/// enough for the memory bound.
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
}

/// Reads every extent of `reader` (on a second thread) and applies its clusters to
/// `targets`. `after_extent` runs on this thread after each extent is applied, with the
/// archive offset reached (for progress reports); an error from it stops the sync. `source`
/// names the archive in errors raised here (use the reader's source name).
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
    let buffers = (0..EXTENT_BUFFERS).map(|_| ExtentBuf::new()).collect();
    pipeline::run(
        buffers,
        |buf: &mut ExtentBuf| reader.read_extent(buf).map_err(SyncError::from),
        |buf: &mut ExtentBuf| {
            for c in buf.clusters() {
                let Some(img) = targets.get_mut(c.dev_id) else {
                    return Err(SyncError::NoTarget {
                        file: source.to_owned(),
                        offset: buf.offset(),
                        dev_id: c.dev_id,
                    });
                };
                img.apply(
                    u64::from(c.cluster),
                    NewCluster::Packed {
                        mask: c.mask,
                        data: c.data(),
                    },
                )?;
            }
            after_extent(buf.offset() + buf.as_bytes().len() as u64)
        },
    )
}
