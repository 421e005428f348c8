//! The seam between formats and the executor: [`ChunkSource`], what the executor needs from any
//! chunked input, and [`Sources`], the readers of one build.
//!
//! A source is read in *units*: the pieces it decodes at once (a Zarr chunk, a shard, or an equal
//! part of a large chunk; a NetCDF-4 chunk; a GeoTIFF tile or strip). The executor's chunk cache keys
//! decoded units by the source's [`id`](ChunkSource::id) and the unit's grid index, schedules
//! them across a pass, reads local files ahead and evicts what the pass no longer needs; a format
//! supplies the eight required methods and gets all of that. Formats with a faster way to decode
//! a unit into a buffer the cache owns declare it as [`DirectUnits`] (and, for stored frames whose
//! values lie in byte planes, [`PlaneFrames`]); the executor uses them where they exist.
//!
//! [`contract::check`] states the contract every implementation keeps; each format's tests run it.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::dtype::{DType, RawArray};
use crate::error::{Error, Result};
use crate::formats::zarr::blosc::Planes;
use crate::region::{copy_region, fill_region, Region};

pub mod concat;
pub mod contract;

/// A chunked array the executor reads: identity, type, shape, and decoded units.
pub trait ChunkSource: Send + Sync + fmt::Debug {
    /// The source's full location (path or URL, and the array within it): the cache's key and
    /// what error messages name.
    fn id(&self) -> &str;

    /// Element type of the decoded values.
    fn dtype(&self) -> DType;

    /// Shape.
    fn shape(&self) -> &[u64];

    /// The shape in which values are stored and compressed (a Zarr chunk, the inner chunk of a
    /// shard; a NetCDF-4 chunk; a tile): what the dry run's memory estimate counts per input.
    /// Units are such chunks, parts of them, or (shards) groups of them.
    fn chunk_shape(&self) -> &[u64];

    /// The units that the region `start .. start + shape` overlaps, in grid order, each with its
    /// grid index and the region of the source its decoded bytes hold: whole, as stored (an edge
    /// unit may extend beyond the source). An empty region overlaps none.
    ///
    /// # Errors
    /// A region outside the source; a grid the source cannot describe.
    fn units_in(&self, start: &[u64], shape: &[u64]) -> Result<Vec<(Vec<u64>, Region)>>;

    /// The decoded size in bytes of unit `unit` (its region's elements times the element size).
    fn unit_bytes(&self, unit: &[u64]) -> usize;

    /// Unit `unit`'s decoded bytes (C order, native endian, [`ChunkSource::unit_bytes`] long), or
    /// `None` when it is not stored: it then holds [`ChunkSource::fill_element`] everywhere.
    ///
    /// # Errors
    /// A read that fails, or stored bytes that cannot be decoded, naming the unit's location.
    fn read_unit(&self, unit: &[u64]) -> Result<Option<Vec<u8>>>;

    /// One element of the fill value (native endian): what an absent unit holds.
    fn fill_element(&self) -> Vec<u8>;

    /// The region `start .. start + shape`, decoded (C order, native endian). By default read
    /// unit by unit; a format may read it its own way, with the same result.
    ///
    /// # Errors
    /// As [`ChunkSource::read_unit`]; a region outside the source.
    fn read_region(&self, start: &[u64], shape: &[u64]) -> Result<RawArray> {
        read_region_by_units(self, start, shape)
    }

    /// The local file holding unit `unit`, when there is one: the cache asks the kernel to read
    /// it ahead of the tasks that need it. A hint only.
    fn local_file(&self, _unit: &[u64]) -> Option<PathBuf> {
        None
    }

    /// Decoding straight into a buffer the cache owns, for formats that can.
    fn direct(&self) -> Option<&dyn DirectUnits> {
        None
    }

    /// How the values are stored, for `cubeforge info`: the filters or codecs in the order they
    /// apply when writing (`["shuffle", "deflate(level=4)"]`, `["lzw", "predictor=2"]`); empty
    /// when stored as plain values or unknown.
    fn encoding(&self) -> Vec<String> {
        Vec::new()
    }

    /// The chunk shape the format itself stores, or `None` for values stored contiguously (a
    /// classic NetCDF variable, a contiguous or compact HDF5 dataset), whose units are blocks
    /// the reader chooses. The Python package presents it as the reference engine does
    /// (`chunksizes`, `contiguous`).
    fn stored_chunks(&self) -> Option<Vec<u64>> {
        Some(self.chunk_shape().to_vec())
    }
}

/// A source whose units all decode to the same size from stored bytes that can be fetched first
/// and decoded into a caller's buffer (Zarr chunks that are single Blosc frames, and equal parts
/// of them). The cache then decodes into buffers of its pool, reused from one unit to the next,
/// instead of a fresh allocation per unit.
pub trait DirectUnits: Send + Sync {
    /// The decoded size in bytes of every unit.
    fn unit_len(&self) -> usize;

    /// The stored bytes unit `unit` is decoded from (those of the chunk it lies in), as the
    /// store holds them; `None` when they are not stored.
    ///
    /// # Errors
    /// A read that fails, naming the chunk.
    fn read_stored(&self, unit: &[u64]) -> Result<Option<bytes::Bytes>>;

    /// Decode unit `unit` from `stored` (from [`DirectUnits::read_stored`]) into `out`,
    /// [`DirectUnits::unit_len`] bytes long.
    ///
    /// # Errors
    /// Bytes that cannot be decoded, naming the chunk.
    fn decode_unit_into(&self, unit: &[u64], stored: &[u8], out: &mut [u8]) -> Result<()>;

    /// Reading which values are NaN from the stored frames' byte planes, without decoding.
    fn planes(&self) -> Option<&dyn PlaneFrames> {
        None
    }
}

/// Stored frames whose values' bytes lie in planes (Blosc with byte shuffle: each block holds its
/// values' first bytes, then their second bytes, …), so that which values are NaN can be read
/// from the planes of their most significant bytes without decoding the values.
pub trait PlaneFrames: Send + Sync {
    /// The stored frame unit `unit` lies in (its grid index), and where the unit starts in the
    /// frame's values.
    fn frame_of(&self, unit: &[u64]) -> (Vec<u64>, usize);

    /// Frame `frame`'s stored bytes, for reading a small part of them; `None` when not stored.
    ///
    /// # Errors
    /// A read that fails, naming the frame.
    fn read_frame(&self, frame: &[u64]) -> Result<Option<bytes::Bytes>>;

    /// The byte planes of a frame's stored bytes, when they can be read so and hold exactly one
    /// frame's values; `None` sends the unit to be decoded instead.
    fn byte_planes<'a>(&self, stored: &'a [u8]) -> Option<Planes<'a>>;

    /// The error for frame `frame` whose planes did not decompress.
    fn corrupt(&self, frame: &[u64], reason: String) -> Error;
}

/// The readers of one build, each at the index its [`crate::plan::SourceRef`] holds: the plan
/// names sources, the executor reads them.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    list: Vec<Arc<dyn ChunkSource>>,
}

impl Sources {
    /// Add a reader, returning its index; a reader with the same id already added keeps its own.
    pub fn add(&mut self, source: Arc<dyn ChunkSource>) -> usize {
        if let Some(i) = self.list.iter().position(|s| s.id() == source.id()) {
            return i;
        }
        self.list.push(source);
        self.list.len() - 1
    }

    /// The reader at `index`.
    ///
    /// # Errors
    /// An index no reader was added at (a plan made with other sources).
    pub fn get(&self, index: usize) -> Result<&Arc<dyn ChunkSource>> {
        self.list.get(index).ok_or_else(|| {
            Error::Other(format!(
                "internal: the plan reads source {index}, but only {} are open",
                self.list.len()
            ))
        })
    }

    /// How many readers there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Check the region `start .. start + shape` against the shape `dims` of source `id`.
///
/// # Errors
/// [`Error::Other`] naming the source when the region has the wrong number of dimensions or
/// reaches beyond the source.
pub fn check_region(id: &str, dims: &[u64], start: &[u64], shape: &[u64]) -> Result<()> {
    let inside = start.len() == dims.len()
        && shape.len() == dims.len()
        && start
            .iter()
            .zip(shape)
            .zip(dims)
            .all(|((s, n), len)| s.checked_add(*n).is_some_and(|end| end <= *len));
    if inside {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "{id}: region {start:?} + {shape:?} outside the array of shape {dims:?}"
        )))
    }
}

/// The region `start .. start + shape` of `source`, read unit by unit: what
/// [`ChunkSource::read_region`] does unless a format reads regions its own way.
///
/// # Errors
/// As [`ChunkSource::read_unit`]; a region outside the source.
pub fn read_region_by_units<S: ChunkSource + ?Sized>(
    source: &S,
    start: &[u64],
    shape: &[u64],
) -> Result<RawArray> {
    read_region_with(source, start, shape, 1)
}

/// Units [`read_region_parallel`] reads at once: enough to keep every core busy, few enough that
/// the decoded bytes in flight stay small.
const UNITS_AT_ONCE: usize = 64;

/// [`read_region_by_units`] with the units read and decoded in parallel (on the current rayon
/// pool), a group of them at a time; the same result.
///
/// # Errors
/// As [`read_region_by_units`].
pub fn read_region_parallel<S: ChunkSource + ?Sized>(
    source: &S,
    start: &[u64],
    shape: &[u64],
) -> Result<RawArray> {
    read_region_with(source, start, shape, UNITS_AT_ONCE)
}

fn read_region_with<S: ChunkSource + ?Sized>(
    source: &S,
    start: &[u64],
    shape: &[u64],
    at_once: usize,
) -> Result<RawArray> {
    use rayon::prelude::*;
    check_region(source.id(), source.shape(), start, shape)?;
    let esize = source.dtype().size();
    let total: u64 = shape.iter().product();
    let mut out = vec![0u8; usize::try_from(total).unwrap_or(usize::MAX) * esize];
    if total > 0 {
        let units = source.units_in(start, shape)?;
        for group in units.chunks(at_once.max(1)) {
            let read: Vec<Option<Vec<u8>>> = if group.len() > 1 {
                group
                    .par_iter()
                    .map(|(unit, _)| source.read_unit(unit))
                    .collect::<Result<_>>()?
            } else {
                group
                    .iter()
                    .map(|(unit, _)| source.read_unit(unit))
                    .collect::<Result<_>>()?
            };
            for ((_, region), bytes) in group.iter().zip(read) {
                match bytes {
                    Some(bytes) => copy_region(
                        &bytes,
                        region.shape(),
                        region.start(),
                        &mut out,
                        shape,
                        start,
                        esize,
                    ),
                    None => fill_region(
                        &source.fill_element(),
                        region.shape(),
                        region.start(),
                        &mut out,
                        shape,
                        start,
                    ),
                }
            }
        }
    }
    Ok(RawArray {
        dtype: source.dtype(),
        shape: shape.to_vec(),
        bytes: out,
    })
}
