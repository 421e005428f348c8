//! The contract of [`ChunkSource`], as checks every implementation's tests run:
//!
//! - units cover a region exactly: every element of the region lies in exactly one of the units
//!   [`ChunkSource::units_in`] lists, each of which it overlaps, in grid order, with no unit twice;
//! - a unit's decoded bytes are [`ChunkSource::unit_bytes`] long, its region's elements times the
//!   element size, and an absent unit reads as the fill value;
//! - unit reads agree with region reads: a region assembled from its units is, byte for byte,
//!   what [`ChunkSource::read_region`] returns;
//! - the optional capabilities agree with the required methods: [`DirectUnits`] decodes each unit
//!   to the bytes `read_unit` gives, and [`PlaneFrames`]' byte planes hold those bytes;
//! - a region outside the source is an error, not a panic.

use super::{ChunkSource, DirectUnits, PlaneFrames};
use crate::region::{copy_region, fill_region, overlap_rows, Region};

/// A region: where it starts and its shape.
pub type Probe = (Vec<u64>, Vec<u64>);

/// Check `source` against the contract on the regions [`probes`] picks for it.
///
/// # Errors
/// The first broken promise, naming the region or unit.
pub fn check(source: &dyn ChunkSource) -> Result<(), String> {
    check_basics(source)?;
    for (start, shape) in probes(source.shape(), source.chunk_shape()) {
        check_probe(source, &start, &shape)?;
    }
    check_outside(source)
}

/// Regions that exercise a source of shape `shape` stored in chunks of `chunk`: the whole
/// source, each element at a corner, regions straddling chunk boundaries, one chunk, regions
/// reaching the far edge, and an empty region.
#[must_use]
pub fn probes(shape: &[u64], chunk: &[u64]) -> Vec<Probe> {
    let nd = shape.len();
    let mut out: Vec<Probe> = vec![(vec![0; nd], shape.to_vec())];
    if shape.contains(&0) {
        return out;
    }
    let last: Vec<u64> = shape.iter().map(|n| n - 1).collect();
    out.push((vec![0; nd], vec![1; nd]));
    out.push((last.clone(), vec![1; nd]));
    let c: Vec<u64> = chunk.iter().map(|c| (*c).max(1)).collect();
    // Straddling the first chunk boundary of each dimension (where there is one).
    let start: Vec<u64> = c
        .iter()
        .zip(shape)
        .map(|(c, n)| (c / 2).min(n - 1))
        .collect();
    let size: Vec<u64> = start
        .iter()
        .zip(&c)
        .zip(shape)
        .map(|((s, c), n)| (*c).max(2).min(n - s))
        .collect();
    out.push((start, size));
    // The second chunk along every dimension, where it exists, else the first.
    let start: Vec<u64> = c
        .iter()
        .zip(shape)
        .map(|(c, n)| if *c < *n { *c } else { 0 })
        .collect();
    let size: Vec<u64> = start
        .iter()
        .zip(&c)
        .zip(shape)
        .map(|((s, c), n)| (*c).min(n - s))
        .collect();
    out.push((start, size));
    // From the middle to the far edge.
    let start: Vec<u64> = shape.iter().map(|n| n / 2).collect();
    let size: Vec<u64> = shape.iter().zip(&start).map(|(n, s)| n - s).collect();
    out.push((start, size));
    // Empty along the first dimension.
    let mut size = shape.to_vec();
    size[0] = 0;
    out.push((vec![0; nd], size));
    out
}

/// What holds whatever the region: an id, an element type, consistent shapes and fill value.
fn check_basics(source: &dyn ChunkSource) -> Result<(), String> {
    if source.id().is_empty() {
        return Err("the source has no id".into());
    }
    let esize = source.dtype().size();
    if source.fill_element().len() != esize {
        return Err(format!(
            "{}: a fill value of {} bytes for {esize}-byte elements",
            source.id(),
            source.fill_element().len()
        ));
    }
    let chunk = source.chunk_shape();
    if chunk.len() != source.shape().len() || chunk.contains(&0) && !source.shape().contains(&0) {
        return Err(format!(
            "{}: chunk shape {chunk:?} for shape {:?}",
            source.id(),
            source.shape()
        ));
    }
    Ok(())
}

/// Check the units of one region and the region read from them.
///
/// # Errors
/// The first broken promise.
pub fn check_probe(source: &dyn ChunkSource, start: &[u64], shape: &[u64]) -> Result<(), String> {
    let id = source.id();
    let at = format!("{id}: region {start:?} + {shape:?}");
    let units = source
        .units_in(start, shape)
        .map_err(|e| format!("{at}: units_in failed: {e}"))?;
    check_cover(&at, &units, start, shape)?;
    let esize = source.dtype().size();
    let fill = source.fill_element();
    let total: u64 = shape.iter().product();
    let mut assembled = vec![0u8; usize::try_from(total).unwrap_or(0) * esize];
    for (unit, region) in &units {
        let want = usize::try_from(region.len()).unwrap_or(usize::MAX) * esize;
        if source.unit_bytes(unit) != want {
            return Err(format!(
                "{at}: unit {unit:?} of region {region:?} says {} bytes, expected {want}",
                source.unit_bytes(unit)
            ));
        }
        let read = source
            .read_unit(unit)
            .map_err(|e| format!("{at}: unit {unit:?}: {e}"))?;
        if let Some(direct) = source.direct() {
            check_direct(&at, direct, unit, read.as_deref(), want)?;
            if let Some(planes) = direct.planes() {
                check_planes(&at, planes, unit, read.as_deref(), esize)?;
            }
        }
        match &read {
            Some(bytes) if bytes.len() != want => {
                return Err(format!(
                    "{at}: unit {unit:?} decoded to {} bytes, expected {want}",
                    bytes.len()
                ))
            }
            Some(bytes) => copy_region(
                bytes,
                region.shape(),
                region.start(),
                &mut assembled,
                shape,
                start,
                esize,
            ),
            None => fill_region(
                &fill,
                region.shape(),
                region.start(),
                &mut assembled,
                shape,
                start,
            ),
        }
    }
    let region = source
        .read_region(start, shape)
        .map_err(|e| format!("{at}: read_region failed: {e}"))?;
    if region.dtype != source.dtype() || region.shape != shape {
        return Err(format!(
            "{at}: read_region gave {:?} of shape {:?}",
            region.dtype, region.shape
        ));
    }
    if region.bytes != assembled {
        let first = region
            .bytes
            .iter()
            .zip(&assembled)
            .position(|(a, b)| a != b)
            .map_or(0, |b| b / esize);
        return Err(format!(
            "{at}: read_region and the units disagree, first at element {first}"
        ));
    }
    Ok(())
}

/// Whether `units` cover the region exactly: each overlaps it, none twice, in grid order, and
/// together every element once.
fn check_cover(
    at: &str,
    units: &[(Vec<u64>, Region)],
    start: &[u64],
    shape: &[u64],
) -> Result<(), String> {
    if units.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(format!("{at}: units not in grid order, or listed twice"));
    }
    let total: u64 = shape.iter().product();
    if total == 0 {
        return if units.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{at}: an empty region overlaps {} units",
                units.len()
            ))
        };
    }
    let n = usize::try_from(total).map_err(|_| format!("{at}: too large to check"))?;
    let mut seen = vec![0u8; n];
    for (unit, region) in units {
        let mut overlap = 0u64;
        overlap_rows(region.shape(), region.start(), shape, start, |_, o, len| {
            overlap += len as u64;
            for s in &mut seen[o..o + len] {
                *s = s.saturating_add(1);
            }
        });
        if overlap == 0 {
            return Err(format!(
                "{at}: unit {unit:?} ({region:?}) does not overlap it"
            ));
        }
    }
    match seen.iter().position(|s| *s != 1) {
        None => Ok(()),
        Some(i) => Err(format!(
            "{at}: element {i} of the region is covered by {} units",
            seen[i]
        )),
    }
}

/// Whether the direct path decodes `unit` to the bytes `read_unit` gave (`read`).
fn check_direct(
    at: &str,
    direct: &dyn DirectUnits,
    unit: &[u64],
    read: Option<&[u8]>,
    want: usize,
) -> Result<(), String> {
    if direct.unit_len() != want {
        return Err(format!(
            "{at}: direct units of {} bytes, unit {unit:?} holds {want}",
            direct.unit_len()
        ));
    }
    let stored = direct
        .read_stored(unit)
        .map_err(|e| format!("{at}: unit {unit:?}: read_stored: {e}"))?;
    match (stored, read) {
        (None, None) => Ok(()),
        (Some(stored), Some(read)) => {
            let mut out = vec![0xA5u8; want];
            direct
                .decode_unit_into(unit, &stored, &mut out)
                .map_err(|e| format!("{at}: unit {unit:?}: decode_unit_into: {e}"))?;
            if out == read {
                Ok(())
            } else {
                Err(format!(
                    "{at}: unit {unit:?} decoded directly differs from read_unit"
                ))
            }
        }
        (stored, _) => Err(format!(
            "{at}: unit {unit:?} is {} to read_stored but {} to read_unit",
            if stored.is_some() { "stored" } else { "absent" },
            if read.is_some() { "stored" } else { "absent" }
        )),
    }
}

/// Whether the byte planes of `unit`'s frame hold its decoded bytes (`read`), plane by plane.
fn check_planes(
    at: &str,
    planes: &dyn PlaneFrames,
    unit: &[u64],
    read: Option<&[u8]>,
    esize: usize,
) -> Result<(), String> {
    let (frame, base) = planes.frame_of(unit);
    let stored = planes
        .read_frame(&frame)
        .map_err(|e| format!("{at}: frame {frame:?}: {e}"))?;
    let (Some(stored), Some(read)) = (stored, read) else {
        return Ok(());
    };
    let Some(p) = planes.byte_planes(&stored) else {
        return Ok(()); // decoded instead
    };
    let values = read.len() / esize;
    if base + values > p.values() {
        return Err(format!(
            "{at}: unit {unit:?} at value {base} of frame {frame:?}, which holds {}",
            p.values()
        ));
    }
    let per = p.block_values();
    let (mut plane, mut scratch) = (Vec::new(), Vec::new());
    for byte in 0..esize {
        for i in 0..values {
            let v = base + i;
            if i == 0 || v % per == 0 {
                p.plane(v / per, byte, &mut plane, &mut scratch)
                    .map_err(|e| format!("{at}: frame {frame:?}: {e}"))?;
            }
            if plane.get(v % per) != Some(&read[i * esize + byte]) {
                return Err(format!(
                    "{at}: unit {unit:?}: byte {byte} of value {i} differs in its plane"
                ));
            }
        }
    }
    Ok(())
}

/// Regions reaching beyond the source are refused.
fn check_outside(source: &dyn ChunkSource) -> Result<(), String> {
    let shape = source.shape();
    if shape.is_empty() {
        return Ok(());
    }
    let mut start = vec![0; shape.len()];
    start[0] = shape[0];
    let one = vec![1; shape.len()];
    if source.read_region(&start, &one).is_ok() {
        return Err(format!(
            "{}: a region beyond the source was read",
            source.id()
        ));
    }
    if source.units_in(&start, &one).is_ok() {
        return Err(format!(
            "{}: a region beyond the source has units",
            source.id()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::{DType, RawArray};
    use crate::error::Result;
    use crate::formats::memory::MemorySource;

    /// A source that breaks one promise of the contract.
    #[derive(Debug)]
    struct Broken {
        inner: MemorySource,
        fault: Fault,
    }

    #[derive(Debug, Clone, Copy)]
    enum Fault {
        /// `units_in` leaves out the last unit.
        MissingUnit,
        /// `units_in` lists a unit twice.
        UnitTwice,
        /// A unit decodes to one byte too few.
        ShortUnit,
        /// `read_region` does not read absent units as the fill value.
        AbsentNotFill,
        /// `units_in` accepts regions beyond the source.
        NoBounds,
    }

    impl ChunkSource for Broken {
        fn id(&self) -> &str {
            self.inner.id()
        }
        fn dtype(&self) -> DType {
            self.inner.dtype()
        }
        fn shape(&self) -> &[u64] {
            self.inner.shape()
        }
        fn chunk_shape(&self) -> &[u64] {
            self.inner.chunk_shape()
        }
        fn units_in(&self, start: &[u64], shape: &[u64]) -> Result<Vec<(Vec<u64>, Region)>> {
            if matches!(self.fault, Fault::NoBounds) && start.first() >= self.shape().first() {
                return Ok(vec![]);
            }
            let mut units = self.inner.units_in(start, shape)?;
            match self.fault {
                Fault::MissingUnit if units.len() > 1 => {
                    units.pop();
                }
                Fault::UnitTwice if !units.is_empty() => units.push(units[0].clone()),
                _ => {}
            }
            Ok(units)
        }
        fn unit_bytes(&self, unit: &[u64]) -> usize {
            self.inner.unit_bytes(unit)
        }
        fn read_unit(&self, unit: &[u64]) -> Result<Option<Vec<u8>>> {
            let mut bytes = self.inner.read_unit(unit)?;
            if let (Fault::ShortUnit, Some(b)) = (self.fault, bytes.as_mut()) {
                b.pop();
            }
            Ok(bytes)
        }
        fn fill_element(&self) -> Vec<u8> {
            self.inner.fill_element()
        }
        fn read_region(&self, start: &[u64], shape: &[u64]) -> Result<RawArray> {
            if matches!(self.fault, Fault::AbsentNotFill) {
                // What the values would be had the absent chunk been stored.
                let whole =
                    MemorySource::from_f64(self.id(), self.dtype(), (&[6, 4], &[3, 2]), &values())?;
                return whole.read_region(start, shape);
            }
            self.inner.read_region(start, shape)
        }
    }

    #[allow(clippy::cast_precision_loss)]
    fn values() -> Vec<f64> {
        (0..24).map(|i| i as f64).collect()
    }

    #[test]
    fn the_contract_catches_a_source_that_breaks_it() {
        let good = MemorySource::from_f64(
            "memory://contract/a",
            DType::Float64,
            (&[6, 4], &[3, 2]),
            &values(),
        )
        .expect("source")
        .without_chunk(&[1, 1]);
        check(&good).expect("a correct source keeps the contract");
        for fault in [
            Fault::MissingUnit,
            Fault::UnitTwice,
            Fault::ShortUnit,
            Fault::AbsentNotFill,
            Fault::NoBounds,
        ] {
            let broken = Broken {
                inner: good.clone(),
                fault,
            };
            let err = check(&broken).expect_err("a broken source");
            assert!(err.contains("memory://contract/a"), "{fault:?}: {err}");
        }
    }
}
