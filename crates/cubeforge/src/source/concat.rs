//! Sources joined along one axis ([`ConcatSource`]), and a source given a new axis of length 1
//! ([`WithAxis`]): how many files read as one array. Both are formats of their own to the
//! executor: their units are their parts' units, renumbered, so the chunk cache schedules and
//! keeps them as it does any source's.

use std::sync::Arc;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::region::{copy_region, fill_region, Region};
use crate::source::{check_region, ChunkSource};

/// `N` sources of one type and rank, joined along `axis` (their other lengths equal).
///
/// Part `p`'s unit `u` is unit `u` with `u[axis] + first[p]` here, where `first[p]` counts the
/// units along `axis` of the parts before it; a unit that reaches beyond its part along `axis`
/// (a last, partial chunk) is cut at the part's end, so that no element lies in two units.
#[derive(Debug)]
pub struct ConcatSource {
    id: String,
    parts: Vec<Arc<dyn ChunkSource>>,
    axis: usize,
    shape: Vec<u64>,
    /// Where each part starts along `axis`, and one past the end.
    starts: Vec<u64>,
    /// The first unit index along `axis` of each part, and one past the last.
    first_unit: Vec<u64>,
    /// The extent of each part's units (their grid is regular).
    extents: Vec<Vec<u64>>,
    fill: Vec<u8>,
}

impl ConcatSource {
    /// Join `parts` along `axis`; `id` names the result (it must differ from every other
    /// source's id of a build, as the cache keys units by it).
    ///
    /// # Errors
    /// [`Error::InvalidMetadata`] naming the parts when there are none, or when their types,
    /// ranks or lengths other than along `axis` differ.
    pub fn new(id: String, parts: Vec<Arc<dyn ChunkSource>>, axis: usize) -> Result<ConcatSource> {
        let bad = |reason: String| Error::InvalidMetadata {
            location: id.clone(),
            reason,
        };
        let first = parts
            .first()
            .ok_or_else(|| bad("no sources to join".into()))?;
        let (dtype, rank) = (first.dtype(), first.shape().len());
        if axis >= rank {
            return Err(bad(format!("axis {axis} of a {rank}-dimensional array")));
        }
        let mut starts = vec![0u64];
        let mut first_unit = vec![0u64];
        let mut extents = Vec::with_capacity(parts.len());
        for p in &parts {
            let same_others = p.shape().len() == rank
                && (0..rank).all(|a| a == axis || p.shape()[a] == first.shape()[a]);
            if p.dtype() != dtype || !same_others {
                return Err(bad(format!(
                    "{} is {} {:?}, {} is {dtype} {:?}: they cannot be joined along axis {axis}",
                    p.id(),
                    p.dtype(),
                    p.shape(),
                    first.id(),
                    first.shape()
                )));
            }
            let len = p.shape()[axis];
            starts.push(starts.last().copied().unwrap_or(0) + len);
            let (n, extent) = unit_grid(&**p, axis)?;
            first_unit.push(first_unit.last().copied().unwrap_or(0) + n);
            extents.push(extent);
        }
        let mut shape = first.shape().to_vec();
        shape[axis] = starts.last().copied().unwrap_or(0);
        let fill = first.fill_element();
        Ok(ConcatSource {
            id,
            parts,
            axis,
            shape,
            starts,
            first_unit,
            extents,
            fill,
        })
    }

    /// The parts, in order.
    #[must_use]
    pub fn parts(&self) -> &[Arc<dyn ChunkSource>] {
        &self.parts
    }

    /// The part unit `unit` belongs to, and the unit's index in it.
    fn part_of(&self, unit: &[u64]) -> Option<(usize, Vec<u64>)> {
        let u = *unit.get(self.axis)?;
        let p = self
            .first_unit
            .partition_point(|f| *f <= u)
            .checked_sub(1)?;
        if p >= self.parts.len() {
            return None;
        }
        let mut local = unit.to_vec();
        local[self.axis] = u - self.first_unit[p];
        Some((p, local))
    }

    /// The region (here) of part `p`'s unit whose region in the part is `region`, cut at the
    /// part's end along the axis.
    fn shifted(&self, p: usize, region: &Region) -> Region {
        let mut start = region.start().to_vec();
        let mut shape = region.shape().to_vec();
        let len = self.parts[p].shape()[self.axis];
        let a = self.axis;
        shape[a] = shape[a].min(len.saturating_sub(start[a]));
        start[a] += self.starts[p];
        Region::new(start, shape)
    }

    /// Part `p`'s unit `local`: its region in the part, whole, and the region kept here.
    fn regions(&self, p: usize, local: &[u64]) -> (Region, Region) {
        let ext = &self.extents[p];
        let start = local.iter().zip(ext).map(|(i, e)| i * e).collect();
        let whole = Region::new(start, ext.clone());
        let kept = self.shifted(p, &whole);
        (whole, kept)
    }

    fn no_unit(&self, unit: &[u64]) -> Error {
        Error::Other(format!("{}: no unit {unit:?}", self.id))
    }
}

/// How many units `source` has along `axis` (one more than the largest index there), and the
/// extent of its units (that of the first).
fn unit_grid(source: &dyn ChunkSource, axis: usize) -> Result<(u64, Vec<u64>)> {
    let shape = source.shape();
    if shape.contains(&0) {
        return Ok((0, vec![1; shape.len()]));
    }
    let mut probe = vec![1u64; shape.len()];
    probe[axis] = shape[axis];
    let units = source.units_in(&vec![0; shape.len()], &probe)?;
    let n = units.iter().map(|(u, _)| u[axis] + 1).max().unwrap_or(0);
    let extent = units
        .first()
        .map_or_else(|| vec![1; shape.len()], |(_, r)| r.shape().to_vec());
    Ok((n, extent))
}

impl ChunkSource for ConcatSource {
    fn id(&self) -> &str {
        &self.id
    }

    fn dtype(&self) -> DType {
        self.parts[0].dtype()
    }

    fn shape(&self) -> &[u64] {
        &self.shape
    }

    fn chunk_shape(&self) -> &[u64] {
        self.parts[0].chunk_shape()
    }

    fn units_in(&self, start: &[u64], shape: &[u64]) -> Result<Vec<(Vec<u64>, Region)>> {
        check_region(&self.id, &self.shape, start, shape)?;
        let a = self.axis;
        let (lo, hi) = (start[a], start[a] + shape[a]);
        let mut out = Vec::new();
        if shape.contains(&0) {
            return Ok(out);
        }
        // The parts overlapping lo..hi, found by bisection (thousands of files join).
        let first = self.starts[1..].partition_point(|end| *end <= lo);
        for (p, part) in self.parts.iter().enumerate().skip(first) {
            let (ps, pe) = (self.starts[p], self.starts[p + 1]);
            if ps >= hi {
                break;
            }
            if pe <= lo {
                continue;
            }
            let mut local_start = start.to_vec();
            let mut local_shape = shape.to_vec();
            local_start[a] = lo.max(ps) - ps;
            local_shape[a] = hi.min(pe) - lo.max(ps);
            for (mut unit, region) in part.units_in(&local_start, &local_shape)? {
                unit[a] += self.first_unit[p];
                out.push((unit, self.shifted(p, &region)));
            }
        }
        out.sort_by(|x, y| x.0.cmp(&y.0));
        Ok(out)
    }

    fn unit_bytes(&self, unit: &[u64]) -> usize {
        let Some((p, local)) = self.part_of(unit) else {
            return 0;
        };
        let (_, kept) = self.regions(p, &local);
        usize::try_from(kept.len()).unwrap_or(usize::MAX) * self.dtype().size()
    }

    fn read_unit(&self, unit: &[u64]) -> Result<Option<Vec<u8>>> {
        let (p, local) = self.part_of(unit).ok_or_else(|| self.no_unit(unit))?;
        let part = &self.parts[p];
        let (whole, kept) = self.regions(p, &local);
        let read = part.read_unit(&local)?;
        let same_fill = part.fill_element() == self.fill;
        if whole.shape() == kept.shape() {
            return Ok(match read {
                Some(bytes) => Some(bytes),
                None if same_fill => None,
                None => Some(
                    part.fill_element()
                        .repeat(usize::try_from(whole.len()).unwrap_or(0)),
                ),
            });
        }
        // Cut at the part's end: the kept block, in the part's coordinates.
        let esize = self.dtype().size();
        let n = usize::try_from(kept.len()).unwrap_or(0);
        let mut out = vec![0u8; n * esize];
        let origin = whole.start().to_vec();
        match read {
            Some(bytes) => copy_region(
                &bytes,
                whole.shape(),
                &origin,
                &mut out,
                kept.shape(),
                &origin,
                esize,
            ),
            None if same_fill => return Ok(None),
            None => fill_region(
                &part.fill_element(),
                whole.shape(),
                &origin,
                &mut out,
                kept.shape(),
                &origin,
            ),
        }
        Ok(Some(out))
    }

    fn fill_element(&self) -> Vec<u8> {
        self.fill.clone()
    }

    fn local_file(&self, unit: &[u64]) -> Option<std::path::PathBuf> {
        let (p, local) = self.part_of(unit)?;
        self.parts[p].local_file(&local)
    }

    fn encoding(&self) -> Vec<String> {
        self.parts[0].encoding()
    }

    fn stored_chunks(&self) -> Option<Vec<u64>> {
        self.parts[0].stored_chunks()
    }
}

/// A source with a new axis of length 1 at `axis` (a file without the dimension the others are
/// joined along: one scene, one map of a day).
#[derive(Debug)]
pub struct WithAxis {
    inner: Arc<dyn ChunkSource>,
    axis: usize,
    shape: Vec<u64>,
    chunks: Vec<u64>,
}

impl WithAxis {
    /// `inner` with an axis of length 1 inserted before its axis `axis` (`axis` = its rank:
    /// after the last).
    #[must_use]
    pub fn new(inner: Arc<dyn ChunkSource>, axis: usize) -> WithAxis {
        let axis = axis.min(inner.shape().len());
        let mut shape = inner.shape().to_vec();
        shape.insert(axis, 1);
        let mut chunks = inner.chunk_shape().to_vec();
        chunks.insert(axis.min(chunks.len()), 1);
        WithAxis {
            inner,
            axis,
            shape,
            chunks,
        }
    }

    fn without(&self, v: &[u64]) -> Vec<u64> {
        let mut v = v.to_vec();
        if self.axis < v.len() {
            v.remove(self.axis);
        }
        v
    }
}

impl ChunkSource for WithAxis {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn dtype(&self) -> DType {
        self.inner.dtype()
    }

    fn shape(&self) -> &[u64] {
        &self.shape
    }

    fn chunk_shape(&self) -> &[u64] {
        &self.chunks
    }

    fn units_in(&self, start: &[u64], shape: &[u64]) -> Result<Vec<(Vec<u64>, Region)>> {
        check_region(self.inner.id(), &self.shape, start, shape)?;
        if shape.contains(&0) {
            return Ok(Vec::new());
        }
        let units = self
            .inner
            .units_in(&self.without(start), &self.without(shape))?;
        Ok(units
            .into_iter()
            .map(|(mut u, r)| {
                u.insert(self.axis, 0);
                let mut s = r.start().to_vec();
                let mut n = r.shape().to_vec();
                s.insert(self.axis, 0);
                n.insert(self.axis, 1);
                (u, Region::new(s, n))
            })
            .collect())
    }

    fn unit_bytes(&self, unit: &[u64]) -> usize {
        self.inner.unit_bytes(&self.without(unit))
    }

    fn read_unit(&self, unit: &[u64]) -> Result<Option<Vec<u8>>> {
        self.inner.read_unit(&self.without(unit))
    }

    fn fill_element(&self) -> Vec<u8> {
        self.inner.fill_element()
    }

    fn local_file(&self, unit: &[u64]) -> Option<std::path::PathBuf> {
        self.inner.local_file(&self.without(unit))
    }

    fn encoding(&self) -> Vec<String> {
        self.inner.encoding()
    }

    fn stored_chunks(&self) -> Option<Vec<u64>> {
        self.inner.stored_chunks().map(|mut c| {
            c.insert(self.axis.min(c.len()), 1);
            c
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::formats::memory::MemorySource;
    use crate::source::contract;

    /// A float32 part of `len` rows of 3 columns, values `base + position`, in chunks of
    /// `chunk` rows and 2 columns.
    fn part(name: &str, len: u64, chunk: u64, base: f64) -> MemorySource {
        let values: Vec<f64> = (0..len * 3).map(|i| base + i as f64).collect();
        MemorySource::from_f64(name, DType::Float32, (&[len, 3], &[chunk, 2]), &values)
            .expect("part")
    }

    #[test]
    fn parts_joined_along_the_first_axis_read_as_one_array() {
        let parts: Vec<Arc<dyn ChunkSource>> = vec![
            Arc::new(part("a", 5, 2, 0.0)),
            Arc::new(part("b", 1, 4, 15.0).without_chunk(&[0, 1])),
            Arc::new(part("c", 4, 3, 18.0)),
        ];
        let c = ConcatSource::new("abc".into(), parts, 0).expect("joined");
        assert_eq!(c.shape(), &[10, 3]);
        contract::check(&c).expect("contract");
        let all = c.read_region(&[0, 0], &[10, 3]).expect("read").to_f64_vec();
        for (i, v) in all.iter().enumerate() {
            // Row 5, columns 2.. is the absent chunk of `b`.
            if i == 17 {
                assert!(v.is_nan());
            } else {
                assert_eq!(*v, i as f64, "{i}");
            }
        }
    }

    #[test]
    fn a_new_axis_of_length_one_keeps_the_contract() {
        let inner: Arc<dyn ChunkSource> = Arc::new(part("x", 5, 2, 0.0));
        for axis in 0..3 {
            let w = WithAxis::new(inner.clone(), axis);
            assert_eq!(w.shape().iter().product::<u64>(), 15);
            assert_eq!(w.shape()[axis], 1);
            contract::check(&w).expect("contract");
        }
        // Joined along the new axis.
        let parts: Vec<Arc<dyn ChunkSource>> = (0..3)
            .map(|k| {
                Arc::new(WithAxis::new(
                    Arc::new(part(&format!("s{k}"), 2, 1, f64::from(k) * 6.0)),
                    0,
                )) as Arc<dyn ChunkSource>
            })
            .collect();
        let c = ConcatSource::new("scenes".into(), parts, 0).expect("joined");
        assert_eq!(c.shape(), &[3, 2, 3]);
        contract::check(&c).expect("contract");
        let all = c.read_region(&[0, 0, 0], &[3, 2, 3]).expect("read");
        assert_eq!(all.to_f64_vec(), (0..18).map(f64::from).collect::<Vec<_>>());
    }

    #[test]
    fn parts_that_do_not_fit_are_refused() {
        let parts: Vec<Arc<dyn ChunkSource>> = vec![
            Arc::new(part("a", 5, 2, 0.0)),
            Arc::new(part("b", 5, 2, 0.0)),
        ];
        assert!(ConcatSource::new("ab".into(), parts.clone(), 0).is_ok());
        let e = ConcatSource::new("ab".into(), parts, 2).unwrap_err();
        assert!(e.to_string().contains("axis 2"), "{e}");
        let wide = MemorySource::from_f64("w", DType::Float32, (&[2, 4], &[1, 1]), &[0.0; 8])
            .expect("wide");
        let parts: Vec<Arc<dyn ChunkSource>> = vec![Arc::new(part("a", 5, 2, 0.0)), Arc::new(wide)];
        let e = ConcatSource::new("aw".into(), parts, 0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("w is float32 [2, 4]") && e.contains("a is float32 [5, 3]"),
            "{e}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Parts of random lengths and chunkings (along both axes), some chunks absent, joined
        /// along either axis: the contract holds and every value is where it belongs.
        #[test]
        fn joined_parts_keep_the_contract(
            lens in proptest::collection::vec((1u64..7, 1u64..5, 1u64..4, any::<bool>()), 1..5),
            axis in 0usize..2,
        ) {
            let other = 3u64;
            let mut parts: Vec<Arc<dyn ChunkSource>> = Vec::new();
            let mut offset = 0u64;
            for (k, (len, chunk, ochunk, absent)) in lens.iter().enumerate() {
                let shape = if axis == 0 { [*len, other] } else { [other, *len] };
                let chunks = if axis == 0 { [*chunk, *ochunk] } else { [*ochunk, *chunk] };
                let values: Vec<f64> = (0..len * other)
                    .map(|i| {
                        let (r, c) = (i / shape[1], i % shape[1]);
                        let (along, across) = if axis == 0 { (r, c) } else { (c, r) };
                        ((along + offset) * 100 + across) as f64
                    })
                    .collect();
                let mut s = MemorySource::from_f64(
                    &format!("p{k}"), DType::Float64, (&shape, &chunks), &values,
                ).expect("part");
                if *absent {
                    s = s.without_chunk(&[0, 0]);
                }
                parts.push(Arc::new(s));
                offset += len;
            }
            let c = ConcatSource::new("joined".into(), parts.clone(), axis).expect("joined");
            prop_assert_eq!(c.shape()[axis], offset);
            contract::check(&c).map_err(TestCaseError::fail)?;
            let all = c.read_region(&[0, 0], c.shape()).expect("read").to_f64_vec();
            let mut start = 0u64;
            for (k, (len, _, _, absent)) in lens.iter().enumerate() {
                let p = &parts[k];
                let ch = p.chunk_shape().to_vec();
                for along in start..start + len {
                    for across in 0..other {
                        let (r, col) = if axis == 0 { (along, across) } else { (across, along) };
                        let v = all[usize::try_from(r * c.shape()[1] + col).expect("index")];
                        let (lr, lc) = if axis == 0 { (along - start, across) } else { (across, along - start) };
                        if *absent && lr < ch[0] && lc < ch[1] {
                            prop_assert!(v.is_nan());
                        } else {
                            prop_assert_eq!(v, (along * 100 + across) as f64);
                        }
                    }
                }
                start += len;
            }
        }
    }
}
