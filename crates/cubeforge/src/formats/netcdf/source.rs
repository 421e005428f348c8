//! One NetCDF variable as a [`ChunkSource`].
//!
//! Units are what the file stores together: the HDF5 chunks of a chunked NetCDF-4 variable (so
//! the executor decodes them in parallel and its cache keys them), and for contiguous or compact
//! NetCDF-4 variables and every classic variable, blocks of whole rows of the first dimension of
//! about [`ROW_BLOCK_BYTES`] (for classic record variables, whole records). A unit's region is
//! clipped to the array: an edge chunk decodes to its part inside the array only.

use std::sync::Arc;

use hdf5_reader::{Dataset, SliceInfo, SliceInfoElem};
use ndarray::ArrayD;
use netcdf_reader::{NcFile, NcSliceInfo, NcSliceInfoElem};

use crate::dtype::{DType, RawArray};
use crate::error::{Error, Result};
use crate::region::{grid_blocks, Region};
use crate::source::{check_region, read_region_by_units, ChunkSource};

/// The size a block of rows aims at, for variables not stored in chunks.
pub const ROW_BLOCK_BYTES: u64 = 4 << 20;

/// Where a variable's values are read from.
#[derive(Clone)]
pub(crate) enum Reader {
    /// A variable of a classic (CDF-1, CDF-2, CDF-5) file, by its name.
    Classic(Arc<NcFile>, String),
    /// An HDF5 dataset (a NetCDF-4 variable or a plain HDF5 dataset).
    Hdf5(Box<Dataset>),
}

/// A NetCDF or HDF5 variable, read by units.
#[derive(Clone)]
pub struct NcSource {
    id: String,
    dtype: DType,
    shape: Vec<u64>,
    unit: Vec<u64>,
    fill: Vec<u8>,
    reader: Reader,
    encoding: Vec<String>,
    /// The filters without a decoder (named), which every unit read reports.
    undecodable: Option<String>,
}

impl std::fmt::Debug for NcSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NcSource")
            .field("id", &self.id)
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .field("unit", &self.unit)
            .finish_non_exhaustive()
    }
}

/// Blocks of whole leading rows of about [`ROW_BLOCK_BYTES`] (at least one row).
pub(crate) fn row_blocks(shape: &[u64], esize: usize) -> Vec<u64> {
    let Some((first, rest)) = shape.split_first() else {
        return Vec::new();
    };
    let row: u64 = rest.iter().product::<u64>() * esize as u64;
    let rows = (ROW_BLOCK_BYTES / row.max(1)).clamp(1, (*first).max(1));
    std::iter::once(rows).chain(rest.iter().copied()).collect()
}

impl NcSource {
    /// A source named `id` of `dtype` and `shape`, read in units of shape `unit` from `reader`;
    /// `fill` is one element of its fill value, `encoding` its filters (as `info` shows them),
    /// and `undecodable` the filter that has no decoder, when one has none.
    pub(crate) fn new(
        id: String,
        (dtype, shape, unit): (DType, Vec<u64>, Vec<u64>),
        fill: Vec<u8>,
        reader: Reader,
        (encoding, undecodable): (Vec<String>, Option<String>),
    ) -> NcSource {
        NcSource {
            id,
            dtype,
            shape,
            unit,
            fill,
            reader,
            encoding,
            undecodable,
        }
    }

    /// The region unit `unit` covers, clipped to the array.
    fn unit_region(&self, unit: &[u64]) -> Region {
        let start: Vec<u64> = unit.iter().zip(&self.unit).map(|(i, c)| i * c).collect();
        let shape = start
            .iter()
            .zip(&self.unit)
            .zip(&self.shape)
            .map(|((s, c), n)| (*c).min(n.saturating_sub(*s)))
            .collect();
        Region::new(start, shape)
    }

    fn corrupt(&self, unit: &[u64], why: impl std::fmt::Display) -> Error {
        Error::CorruptChunk {
            location: format!("{} unit {unit:?}", self.id),
            reason: why.to_string().replace('\n', " "),
        }
    }

    fn read(&self, region: &Region) -> std::result::Result<Vec<u8>, String> {
        let whole = region.shape() == self.shape.as_slice();
        match &self.reader {
            Reader::Classic(file, name) => {
                let sel = NcSliceInfo {
                    selections: region
                        .start()
                        .iter()
                        .zip(region.shape())
                        .map(|(s, n)| NcSliceInfoElem::Slice {
                            start: *s,
                            end: s + n,
                            step: 1,
                        })
                        .collect(),
                };
                macro_rules! classic {
                    ($t:ty) => {
                        if whole {
                            bytes_of(file.read_variable::<$t>(name))
                        } else {
                            bytes_of(file.read_variable_slice::<$t>(name, &sel))
                        }
                    };
                }
                dispatch!(self.dtype, classic)
            }
            Reader::Hdf5(ds) => {
                let sel = SliceInfo {
                    selections: region
                        .start()
                        .iter()
                        .zip(region.shape())
                        .map(|(s, n)| SliceInfoElem::Slice {
                            start: *s,
                            end: s + n,
                            step: 1,
                        })
                        .collect(),
                };
                macro_rules! hdf5 {
                    ($t:ty) => {
                        if whole {
                            bytes_of(ds.read_array::<$t>())
                        } else {
                            bytes_of(ds.read_slice::<$t>(&sel))
                        }
                    };
                }
                dispatch!(self.dtype, hdf5)
            }
        }
    }
}

/// Call `$m!(T)` with the Rust type of `$dtype`.
macro_rules! dispatch {
    ($dtype:expr, $m:ident) => {
        match $dtype {
            DType::Int8 => $m!(i8),
            DType::UInt8 | DType::Bool => $m!(u8),
            DType::Int16 => $m!(i16),
            DType::UInt16 => $m!(u16),
            DType::Int32 => $m!(i32),
            DType::UInt32 => $m!(u32),
            DType::Int64 => $m!(i64),
            DType::UInt64 => $m!(u64),
            DType::Float32 => $m!(f32),
            DType::Float64 => $m!(f64),
            other => Err(format!("type {other} is not read from NetCDF")),
        }
    };
}
use dispatch;

/// The values of an array in C order, as native-endian bytes.
fn bytes_of<T: bytemuck::Pod, E: std::fmt::Display>(
    read: std::result::Result<ArrayD<T>, E>,
) -> std::result::Result<Vec<u8>, String> {
    let a = read.map_err(|e| e.to_string())?;
    Ok(match a.as_slice() {
        Some(s) => bytemuck::cast_slice(s).to_vec(),
        None => {
            let v: Vec<T> = a.iter().copied().collect();
            bytemuck::cast_slice(&v).to_vec()
        }
    })
}

impl ChunkSource for NcSource {
    fn id(&self) -> &str {
        &self.id
    }

    fn dtype(&self) -> DType {
        self.dtype
    }

    fn shape(&self) -> &[u64] {
        &self.shape
    }

    fn chunk_shape(&self) -> &[u64] {
        &self.unit
    }

    fn units_in(&self, start: &[u64], shape: &[u64]) -> Result<Vec<(Vec<u64>, Region)>> {
        check_region(&self.id, &self.shape, start, shape)?;
        Ok(grid_blocks(start, shape, &self.unit)
            .into_iter()
            .map(|(unit, _)| {
                let region = self.unit_region(&unit);
                (unit, region)
            })
            .collect())
    }

    fn unit_bytes(&self, unit: &[u64]) -> usize {
        usize::try_from(self.unit_region(unit).len()).unwrap_or(usize::MAX) * self.dtype.size()
    }

    fn read_unit(&self, unit: &[u64]) -> Result<Option<Vec<u8>>> {
        if let Some(filter) = &self.undecodable {
            return Err(Error::Unsupported {
                location: self.id.clone(),
                feature: "HDF5 filter".into(),
                detail: format!("{filter} has no decoder in cubeforge"),
            });
        }
        let region = self.unit_region(unit);
        let inside = unit.len() == self.shape.len()
            && region.start().iter().zip(&self.shape).all(|(s, n)| s < n);
        if !inside {
            return Err(self.corrupt(unit, "no such unit"));
        }
        let bytes = self.read(&region).map_err(|e| self.corrupt(unit, e))?;
        if bytes.len() != self.unit_bytes(unit) {
            return Err(self.corrupt(
                unit,
                format!(
                    "{} bytes decoded, {} expected",
                    bytes.len(),
                    self.unit_bytes(unit)
                ),
            ));
        }
        Ok(Some(bytes))
    }

    fn fill_element(&self) -> Vec<u8> {
        self.fill.clone()
    }

    /// By units; a scalar as its one unit (region copies need at least one dimension).
    fn read_region(&self, start: &[u64], shape: &[u64]) -> Result<RawArray> {
        if !self.shape.is_empty() {
            return read_region_by_units(self, start, shape);
        }
        check_region(&self.id, &self.shape, start, shape)?;
        let bytes = self.read_unit(&[])?.unwrap_or_else(|| self.fill.clone());
        Ok(RawArray {
            dtype: self.dtype,
            shape: Vec::new(),
            bytes,
        })
    }

    fn encoding(&self) -> Vec<String> {
        self.encoding.clone()
    }

    fn stored_chunks(&self) -> Option<Vec<u64>> {
        match &self.reader {
            Reader::Classic(..) => None,
            Reader::Hdf5(ds) => ds
                .chunks()
                .filter(|c| c.len() == self.shape.len() && !c.contains(&0))
                .map(|_| self.unit.clone()),
        }
    }
}
