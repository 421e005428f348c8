//! Arrays held in memory, cut into chunks on a regular grid: a [`ChunkSource`] for values a
//! program already holds (and the second implementation of the trait, which its contract tests
//! and a build from memory exercise). Chunks can be marked absent: they read as the fill value,
//! as a chunk a Zarr store does not hold does.

use std::collections::HashSet;

use crate::dtype::{DType, RawArray};
use crate::error::{Error, Result};
use crate::region::{copy_region, fill_region, grid_blocks, Region};
use crate::source::{check_region, ChunkSource};

/// An array in memory, in chunks of a regular grid.
#[derive(Debug, Clone)]
pub struct MemorySource {
    id: String,
    dtype: DType,
    shape: Vec<u64>,
    chunks: Vec<u64>,
    /// Every value, C order, native endian.
    values: Vec<u8>,
    fill: Vec<u8>,
    /// Chunks that read as the fill value everywhere.
    absent: HashSet<Vec<u64>>,
}

impl MemorySource {
    /// The array of type `dtype` and shape `shape` whose values, C order and native endian, are
    /// `values`, read in chunks of `chunks`; `fill` is one element of the fill value.
    ///
    /// # Errors
    /// [`Error::InvalidMetadata`] naming `id` when the sizes disagree or a chunk length is 0.
    pub fn new(
        id: &str,
        dtype: DType,
        (shape, chunks): (&[u64], &[u64]),
        values: Vec<u8>,
        fill: Vec<u8>,
    ) -> Result<MemorySource> {
        let bad = |reason: String| Error::InvalidMetadata {
            location: id.to_string(),
            reason,
        };
        let elements = shape
            .iter()
            .try_fold(1u64, |a, n| a.checked_mul(*n))
            .and_then(|n| usize::try_from(n).ok())
            .and_then(|n| n.checked_mul(dtype.size()))
            .ok_or_else(|| bad(format!("shape {shape:?} is too large")))?;
        if chunks.len() != shape.len() || chunks.contains(&0) {
            return Err(bad(format!("chunks {chunks:?} for shape {shape:?}")));
        }
        if values.len() != elements || fill.len() != dtype.size() {
            return Err(bad(format!(
                "{} bytes of values and {} of fill value for {shape:?} of {dtype}",
                values.len(),
                fill.len()
            )));
        }
        Ok(MemorySource {
            id: id.to_string(),
            dtype,
            shape: shape.to_vec(),
            chunks: chunks.to_vec(),
            values,
            fill,
            absent: HashSet::new(),
        })
    }

    /// The array of `values` (cast to `dtype` as a cast does), NaN as its fill value for floats
    /// and 0 for the others.
    ///
    /// # Errors
    /// As [`MemorySource::new`].
    pub fn from_f64(
        id: &str,
        dtype: DType,
        (shape, chunks): (&[u64], &[u64]),
        values: &[f64],
    ) -> Result<MemorySource> {
        let mut bytes = Vec::with_capacity(values.len() * dtype.size());
        for v in values {
            dtype.push_f64(*v, &mut bytes);
        }
        let mut fill = Vec::with_capacity(dtype.size());
        dtype.push_f64(if dtype.is_float() { f64::NAN } else { 0.0 }, &mut fill);
        MemorySource::new(id, dtype, (shape, chunks), bytes, fill)
    }

    /// The same array with chunk `chunk` (its grid index) absent: it reads as the fill value.
    #[must_use]
    pub fn without_chunk(mut self, chunk: &[u64]) -> MemorySource {
        self.absent.insert(chunk.to_vec());
        self
    }

    /// The region chunk `chunk` covers, whole (beyond the array at the edges).
    fn chunk_region(&self, chunk: &[u64]) -> Region {
        let start = chunk.iter().zip(&self.chunks).map(|(i, c)| i * c).collect();
        Region::new(start, self.chunks.clone())
    }

    /// Copy the values of the block `start .. start + shape` (which may reach beyond the
    /// array: the rest of `out` is left as it is) into `out`, a buffer of that shape.
    fn copy_values(&self, out: &mut [u8], start: &[u64], shape: &[u64]) {
        let origin = vec![0; self.shape.len()];
        let esize = self.dtype.size();
        copy_region(&self.values, &self.shape, &origin, out, shape, start, esize);
    }

    /// Whether chunk `chunk` exists on the grid and is not absent.
    fn holds(&self, chunk: &[u64]) -> bool {
        chunk.len() == self.shape.len()
            && chunk
                .iter()
                .zip(&self.chunks)
                .zip(&self.shape)
                .all(|((i, c), n)| i * c < *n)
            && !self.absent.contains(chunk)
    }
}

impl ChunkSource for MemorySource {
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
        &self.chunks
    }

    fn units_in(&self, start: &[u64], shape: &[u64]) -> Result<Vec<(Vec<u64>, Region)>> {
        check_region(&self.id, &self.shape, start, shape)?;
        Ok(grid_blocks(start, shape, &self.chunks))
    }

    fn unit_bytes(&self, _unit: &[u64]) -> usize {
        let n: u64 = self.chunks.iter().product();
        usize::try_from(n).unwrap_or(usize::MAX) * self.dtype.size()
    }

    fn read_unit(&self, unit: &[u64]) -> Result<Option<Vec<u8>>> {
        if !self.holds(unit) {
            return Ok(None);
        }
        let region = self.chunk_region(unit);
        let mut out = self.fill.repeat(self.unit_bytes(unit) / self.dtype.size());
        self.copy_values(&mut out, region.start(), region.shape());
        Ok(Some(out))
    }

    fn fill_element(&self) -> Vec<u8> {
        self.fill.clone()
    }

    /// Copied from the values at hand, the parts of absent chunks filled: not through units.
    fn read_region(&self, start: &[u64], shape: &[u64]) -> Result<RawArray> {
        check_region(&self.id, &self.shape, start, shape)?;
        let esize = self.dtype.size();
        let total: u64 = shape.iter().product();
        let mut out = vec![0u8; usize::try_from(total).unwrap_or(usize::MAX) * esize];
        if total > 0 {
            self.copy_values(&mut out, start, shape);
            for chunk in &self.absent {
                let r = self.chunk_region(chunk);
                fill_region(&self.fill, r.shape(), r.start(), &mut out, shape, start);
            }
        }
        Ok(RawArray {
            dtype: self.dtype,
            shape: shape.to_vec(),
            bytes: out,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use proptest::prelude::*;

    use super::*;
    use crate::source::contract;
    use crate::testkit::{first_array, memory_group, put_key};

    /// Shape, chunks, absent chunks (a flag per chunk of the grid), element type, and a region.
    #[derive(Debug, Clone)]
    struct Case {
        shape: Vec<u64>,
        chunks: Vec<u64>,
        absent: Vec<bool>,
        dtype: DType,
        start: Vec<u64>,
        size: Vec<u64>,
    }

    fn cases() -> impl Strategy<Value = Case> {
        let dims = prop::collection::vec((1u64..=9, 1u64..=4), 1..=3);
        let dtype = prop::sample::select(vec![
            DType::Float32,
            DType::Float64,
            DType::Int16,
            DType::UInt8,
        ]);
        (dims, dtype, prop::collection::vec(any::<bool>(), 64))
            .prop_flat_map(|(dims, dtype, absent)| {
                let region: Vec<_> = dims
                    .iter()
                    .map(|&(n, _)| (0..n).prop_flat_map(move |s| (Just(s), 0..=n - s)))
                    .collect();
                (Just(dims), Just(dtype), Just(absent), region)
            })
            .prop_map(|(dims, dtype, absent, region)| {
                let grid: u64 = dims.iter().map(|(n, c)| n.div_ceil(*c)).product();
                let grid = usize::try_from(grid).expect("grid");
                Case {
                    shape: dims.iter().map(|(n, _)| *n).collect(),
                    chunks: dims.iter().map(|(_, c)| *c).collect(),
                    // Some chunks absent, never all (every fourth flag at most).
                    absent: (0..grid).map(|i| i % 4 == 0 && absent[i % 64]).collect(),
                    dtype,
                    start: region.iter().map(|(s, _)| *s).collect(),
                    size: region.iter().map(|(_, n)| *n).collect(),
                }
            })
    }

    /// The grid index of chunk number `flat` (C order).
    fn unravel(mut flat: u64, shape: &[u64], chunks: &[u64]) -> Vec<u64> {
        let grid: Vec<u64> = shape
            .iter()
            .zip(chunks)
            .map(|(n, c)| n.div_ceil(*c))
            .collect();
        let mut idx = vec![0; grid.len()];
        for d in (0..grid.len()).rev() {
            idx[d] = flat % grid[d];
            flat /= grid[d];
        }
        idx
    }

    /// The case's array: value `i` at flat position `i`, cast to its type.
    #[allow(clippy::cast_precision_loss)]
    fn source(case: &Case) -> MemorySource {
        let n: u64 = case.shape.iter().product();
        let values: Vec<f64> = (0..n).map(|i| (i % 251) as f64 - 7.0).collect();
        let mut src = MemorySource::from_f64(
            "memory-test",
            case.dtype,
            (&case.shape, &case.chunks),
            &values,
        )
        .expect("source");
        for (flat, gone) in case.absent.iter().enumerate() {
            if *gone {
                src = src.without_chunk(&unravel(flat as u64, &case.shape, &case.chunks));
            }
        }
        src
    }

    /// The case's values written by `zarrs` as an uncompressed Zarr v2 array in a memory store,
    /// absent chunks not written.
    fn zarr_twin(case: &Case, src: &MemorySource) -> crate::formats::zarr::ZarrArray {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!("memory://memory-twin-{}", N.fetch_add(1, Ordering::Relaxed));
        let store = memory_group(&name);
        let dtype = match case.dtype {
            DType::Float32 => "<f4",
            DType::Float64 => "<f8",
            DType::Int16 => "<i2",
            _ => "|u1",
        };
        let fill = if case.dtype.is_float() {
            "\"NaN\""
        } else {
            "0"
        };
        let zarray = format!(
            r#"{{"zarr_format": 2, "shape": {:?}, "chunks": {:?}, "dtype": "{dtype}",
               "compressor": null, "filters": null, "fill_value": {fill}, "order": "C"}}"#,
            case.shape, case.chunks
        );
        put_key(&store, "a/.zarray", zarray.into_bytes());
        for (flat, _) in case.absent.iter().enumerate() {
            let idx = unravel(flat as u64, &case.shape, &case.chunks);
            if let Some(bytes) = src.read_unit(&idx).expect("unit") {
                let key: Vec<String> = idx.iter().map(u64::to_string).collect();
                put_key(&store, &format!("a/{}", key.join(".")), bytes);
            }
        }
        first_array(&store)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn memory_sources_keep_the_contract_and_agree_with_zarr(case in cases()) {
            let src = source(&case);
            contract::check_probe(&src, &case.start, &case.size).map_err(TestCaseError::fail)?;
            let got = src.read_region(&case.start, &case.size).expect("region");
            // Each element: its value, or the fill value in an absent chunk.
            let esize = case.dtype.size();
            let n: u64 = case.size.iter().product();
            for k in 0..n {
                let mut rest = k;
                let mut pos = vec![0u64; case.shape.len()];
                for d in (0..pos.len()).rev() {
                    pos[d] = case.start[d] + rest % case.size[d];
                    rest /= case.size[d];
                }
                let flat = pos.iter().zip(&case.shape).fold(0, |a, (p, s)| a * s + p);
                let chunk: Vec<u64> = pos.iter().zip(&case.chunks).map(|(p, c)| p / c).collect();
                let k = usize::try_from(k).expect("k");
                let element = &got.bytes[k * esize..(k + 1) * esize];
                let mut want = Vec::new();
                #[allow(clippy::cast_precision_loss)]
                let value = if src.absent.contains(&chunk) {
                    if case.dtype.is_float() { f64::NAN } else { 0.0 }
                } else {
                    (flat % 251) as f64 - 7.0
                };
                case.dtype.push_f64(value, &mut want);
                prop_assert_eq!(element, &want[..], "at {:?}", pos);
            }
            // A Zarr array holding the same chunks reads the same region.
            let twin = zarr_twin(&case, &src);
            let from_zarr = ChunkSource::read_region(&twin, &case.start, &case.size).expect("zarr");
            prop_assert_eq!(from_zarr.bytes, got.bytes);
        }
    }

    #[test]
    fn a_memory_source_keeps_the_contract() {
        #[allow(clippy::cast_precision_loss)]
        let values: Vec<f64> = (0..7 * 5 * 3).map(|i| i as f64 * 0.5).collect();
        let src = MemorySource::from_f64(
            "memory-contract",
            DType::Float32,
            (&[7, 5, 3], &[3, 2, 3]),
            &values,
        )
        .expect("source")
        .without_chunk(&[1, 1, 0])
        .without_chunk(&[2, 2, 0]);
        contract::check(&src).expect("contract");
    }

    #[test]
    fn sizes_that_disagree_are_refused() {
        let err = MemorySource::new(
            "memory://x/a",
            DType::Float32,
            (&[4], &[2]),
            vec![0; 12],
            vec![0; 4],
        )
        .expect_err("12 bytes for 4 float32");
        assert!(matches!(err, Error::InvalidMetadata { .. }), "{err}");
        assert!(MemorySource::new(
            "memory://x/a",
            DType::Float32,
            (&[4], &[0]),
            vec![0; 16],
            vec![0; 4]
        )
        .is_err());
    }
}
