//! Space accounting for btrfs snapshots from physical extent ranges.
//!
//! A snapshot *references* the distinct physical bytes its files map to; the bytes it has
//! *written* since the previous snapshot are those ranges not present in the previous
//! snapshot. Because btrfs shares extents between snapshots (copy-on-write) and a 4 KiB
//! overwrite creates a new 4 KiB extent while the file keeps referencing the unchanged parts
//! of the old one (FIEMAP reports the referenced sub-range), this is exact for uncompressed
//! data. Inline extents (tiny files stored in metadata) have no physical range: they count by
//! their length, and as written unless the previous snapshot has the same file with the same
//! bytes. Compressed extents are counted by the range FIEMAP reports (approximate).
//!
//! The interval arithmetic is pure; [`scan_tree`] does the I/O.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::fiemap::{FIEMAP_EXTENT_DATA_INLINE, FIEMAP_EXTENT_UNKNOWN, file_extents};

/// Sorted, non-overlapping, non-adjacent half-open byte ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet(Vec<(u64, u64)>);

impl RangeSet {
    /// Builds the union of arbitrary (possibly overlapping, unsorted) `(start, len)` ranges.
    pub fn from_ranges(mut ranges: Vec<(u64, u64)>) -> RangeSet {
        ranges.retain(|&(_, len)| len > 0);
        ranges.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (start, len) in ranges {
            let end = start.saturating_add(len);
            match out.last_mut() {
                Some((_, e)) if start <= *e => *e = (*e).max(end),
                _ => out.push((start, end)),
            }
        }
        RangeSet(out)
    }

    /// Total bytes covered.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|(s, e)| e - s).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes covered by `self` but not by `other` (a two-pointer sweep, linear).
    pub fn difference_len(&self, other: &RangeSet) -> u64 {
        let mut total = 0;
        let mut j = 0;
        for &(s, e) in &self.0 {
            let mut cur = s;
            while j < other.0.len() && other.0[j].1 <= cur {
                j += 1;
            }
            let mut k = j;
            while cur < e && k < other.0.len() && other.0[k].0 < e {
                let (os, oe) = other.0[k];
                if os > cur {
                    total += os - cur;
                }
                cur = cur.max(oe);
                k += 1;
            }
            if cur < e {
                total += e - cur;
            }
        }
        total
    }
}

/// What a snapshot's files map to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeExtents {
    /// Physical ranges of all regular (non-inline) extents.
    pub physical: RangeSet,
    /// Inline file contents by relative path.
    pub inline: BTreeMap<PathBuf, Vec<u8>>,
}

impl TreeExtents {
    /// Distinct bytes referenced.
    pub fn referenced(&self) -> u64 {
        self.physical.len() + self.inline.values().map(|v| v.len() as u64).sum::<u64>()
    }

    /// Bytes in `self` that `prev` does not have (`prev == None`: everything).
    pub fn written_since(&self, prev: Option<&TreeExtents>) -> u64 {
        let Some(prev) = prev else {
            return self.referenced();
        };
        let inline: u64 = self
            .inline
            .iter()
            .filter(|(p, data)| prev.inline.get(*p) != Some(*data))
            .map(|(_, data)| data.len() as u64)
            .sum();
        self.physical.difference_len(&prev.physical) + inline
    }
}

/// Walks `root` (without following symlinks or crossing into other file systems) and maps
/// every regular file with FIEMAP.
pub fn scan_tree(root: &Path) -> io::Result<TreeExtents> {
    use std::os::unix::fs::MetadataExt;
    let root_dev = std::fs::symlink_metadata(root)?.dev();
    let mut ranges = Vec::new();
    let mut inline = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let rel_child = rel.join(entry.file_name());
            let md = entry.metadata()?;
            if md.dev() != root_dev {
                // A nested subvolume or mount: not part of this snapshot.
                continue;
            }
            if md.is_dir() {
                stack.push(rel_child);
            } else if md.is_file() {
                let path = root.join(&rel_child);
                let file = File::open(&path)?;
                for e in file_extents(&file).map_err(|err| {
                    io::Error::new(err.kind(), format!("{}: FIEMAP: {err}", path.display()))
                })? {
                    if e.flags & FIEMAP_EXTENT_UNKNOWN != 0 {
                        return Err(io::Error::other(format!(
                            "{}: extent with unknown location",
                            path.display()
                        )));
                    }
                    if e.flags & FIEMAP_EXTENT_DATA_INLINE != 0 {
                        let data = std::fs::read(&path)?;
                        inline.insert(rel_child.clone(), data);
                    } else {
                        ranges.push((e.physical, e.length));
                    }
                }
            }
        }
    }
    Ok(TreeExtents {
        physical: RangeSet::from_ranges(ranges),
        inline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(v: &[(u64, u64)]) -> RangeSet {
        RangeSet::from_ranges(v.to_vec())
    }

    #[test]
    fn union_merges_overlaps_and_neighbours() {
        let s = rs(&[(10, 5), (0, 4), (12, 10), (4, 2), (100, 0)]);
        assert_eq!(s.0, vec![(0, 6), (10, 22)]);
        assert_eq!(s.len(), 18);
    }

    #[test]
    fn difference() {
        let old = rs(&[(0, 1 << 20)]);
        // A file that now maps [0,12K) old, [12K,16K) new elsewhere, [16K,1M) old.
        let new = rs(&[(0, 12288), (5 << 20, 4096), (16384, (1 << 20) - 16384)]);
        assert_eq!(new.difference_len(&old), 4096);
        assert_eq!(old.difference_len(&new), 4096);
        assert_eq!(new.difference_len(&RangeSet::default()), new.len());
        assert_eq!(RangeSet::default().difference_len(&new), 0);
        let a = rs(&[(0, 10), (20, 10), (40, 10)]);
        let b = rs(&[(5, 20), (45, 100)]);
        // a\b = [0,5) + [25,30) + [40,45) = 15
        assert_eq!(a.difference_len(&b), 15);
        // b\a = [10,20) + [50,145)
        assert_eq!(b.difference_len(&a), 10 + 95);
    }

    #[test]
    fn difference_matches_a_brute_force_model() {
        // Deterministic pseudo-random ranges in a small address space, checked bit by bit.
        let mut x = 0x9e3779b97f4a7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            let mk = |next: &mut dyn FnMut() -> u64| {
                (0..(next() % 6))
                    .map(|_| (next() % 200, next() % 40))
                    .collect::<Vec<_>>()
            };
            let (va, vb) = (mk(&mut next), mk(&mut next));
            let bits = |v: &[(u64, u64)]| {
                let mut b = [false; 256];
                for &(s, l) in v {
                    for i in s..s + l {
                        b[i as usize] = true;
                    }
                }
                b
            };
            let (ba, bb) = (bits(&va), bits(&vb));
            let want = (0..256).filter(|&i| ba[i] && !bb[i]).count() as u64;
            let (a, b) = (rs(&va), rs(&vb));
            assert_eq!(a.difference_len(&b), want, "{va:?} \\ {vb:?}");
            assert_eq!(a.len(), ba.iter().filter(|&&x| x).count() as u64);
        }
    }

    #[test]
    fn inline_files_count_when_new_or_changed() {
        let mut a = TreeExtents::default();
        a.inline.insert("x".into(), b"hello".to_vec());
        a.inline.insert("y".into(), b"same".to_vec());
        let mut b = a.clone();
        b.inline.insert("x".into(), b"HELLO!".to_vec());
        b.inline.insert("z".into(), b"new".to_vec());
        assert_eq!(b.written_since(Some(&a)), 6 + 3);
        assert_eq!(b.written_since(None), 6 + 4 + 3);
        assert_eq!(a.written_since(Some(&a)), 0);
    }
}
