//! Reading cached values where they lie, row by row ([`Row`]), and answering which values of a
//! unit no task reads are NaN from the byte planes of its stored frame, without decoding it
//! ([`PlaneSource`], for sources with [`PlaneFrames`]).

use super::{Cached, ChunkCache, ChunkKey, FRAMES_KEPT};
use crate::dtype::DType;
use crate::error::Result;
use crate::formats::zarr::blosc::Planes;
use crate::plan::Window;
use crate::region::{overlap_rows, Region};
use crate::source::{ChunkSource, PlaneFrames};

/// A run of values along the last dimension, where the chunk cache holds them.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Row<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
    /// `n` times one value (a chunk that is not stored).
    Fill(f64, usize),
    /// Values of a chunk that is not decoded: only whether each is NaN is known, read from the
    /// byte planes of its Blosc frame (see [`PlaneSource`]).
    Planes(PlaneRow<'a>),
}

impl Row<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Row::F32(v) => v.len(),
            Row::F64(v) => v.len(),
            Row::Fill(_, n) => *n,
            Row::Planes(r) => r.len,
        }
    }

    /// Whether any value's NaN-ness is `nan`. For a [`Row::Planes`] row handed out first (its
    /// quick look), `false` may also mean "not known yet": the row is then handed out again.
    pub(crate) fn any_nan_is(&self, nan: bool) -> bool {
        match self {
            Row::F32(v) => v.iter().any(|x| x.is_nan() == nan),
            Row::F64(v) => v.iter().any(|x| x.is_nan() == nan),
            Row::Fill(x, n) => *n > 0 && x.is_nan() == nan,
            Row::Planes(r) => r.any_nan_is(nan),
        }
    }

    /// Whether each value is NaN, for rows whose values are not at hand.
    pub(crate) fn nan_flags(&self) -> Option<Vec<bool>> {
        match self {
            Row::Planes(r) => Some(r.src.nan_flags(r.start, r.len)),
            _ => None,
        }
    }

    /// Whether value `i` is NaN.
    pub(crate) fn is_nan(&self, i: usize) -> bool {
        match self {
            Row::F32(v) => v[i].is_nan(),
            Row::F64(v) => v[i].is_nan(),
            Row::Fill(x, _) => x.is_nan(),
            Row::Planes(r) => r.src.nan_flags(r.start + i, 1)[0],
        }
    }
}

/// Values `start .. start + len` of a chunk read through a [`PlaneSource`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlaneRow<'a> {
    src: &'a PlaneSource<'a>,
    start: usize,
    len: usize,
    /// The first look: [`Row::any_nan_is`] answers from the most significant byte plane alone,
    /// `true` only when that settles it; when it does not, the row is handed out again.
    quick: bool,
}

impl PlaneRow<'_> {
    fn any_nan_is(&self, nan: bool) -> bool {
        if !self.quick {
            return self.src.nan_flags(self.start, self.len).contains(&nan);
        }
        // A value whose top byte, sign aside, is not all ones is finite, whatever the others.
        let (finite, maybe_nan) = self.src.top_byte(self.start, self.len);
        match (nan, finite, maybe_nan) {
            (false, true, _) => true,
            (true, _, false) | (false, false, false) => false,
            _ => {
                self.src.unresolved.set(true);
                false
            }
        }
    }
}

/// Whether the values of a Blosc frame are NaN, read from its byte planes (see
/// [`Planes`]) without decoding the values: for little-endian floats the most
/// significant byte is the last plane. A float is NaN when its exponent bits are all ones and
/// its mantissa is not zero: the top byte (sign aside) tells most finite values apart; the next
/// byte settles the rest but infinities and NaNs whose mantissa lies in the low bytes, and only
/// for those are the low planes read. Planes are decompressed when first needed, for the two
/// blocks read last.
#[derive(Debug)]
pub(crate) struct PlaneSource<'a> {
    planes: Planes<'a>,
    /// Bytes per value: 4 or 8.
    size: usize,
    state: std::cell::RefCell<PlaneState>,
    /// Set when a quick look could not decide (see [`PlaneRow::quick`]).
    unresolved: std::cell::Cell<bool>,
}

#[derive(Debug, Default)]
struct PlaneState {
    /// Blocks with their planes decompressed so far (`None`: not yet), the latest last.
    blocks: Vec<(usize, Vec<Option<Vec<u8>>>)>,
    scratch: Vec<u8>,
    spare: Vec<Vec<u8>>,
    /// The first stream that did not decompress.
    error: Option<String>,
}

/// Blocks whose planes a [`PlaneSource`] keeps: a row may span two.
const PLANE_BLOCKS_KEPT: usize = 2;

impl<'a> PlaneSource<'a> {
    fn new(planes: Planes<'a>, size: usize) -> PlaneSource<'a> {
        PlaneSource {
            planes,
            size,
            state: std::cell::RefCell::new(PlaneState::default()),
            unresolved: std::cell::Cell::new(false),
        }
    }

    /// The bits of the second most significant byte that belong to the exponent, and those
    /// that belong to the mantissa.
    fn second_byte_masks(&self) -> (u8, u8) {
        if self.size == 4 {
            (0x80, 0x7f)
        } else {
            (0xf0, 0x0f)
        }
    }

    /// Call `f(block, from, to)` for the part of values `start .. start + len` in each block.
    fn segments(&self, start: usize, len: usize, mut f: impl FnMut(usize, usize, usize)) {
        let per = self.planes.block_values();
        let (mut i, end) = (start, start + len);
        while i < end {
            let b = i / per;
            let to = end.min((b + 1) * per);
            f(b, i - b * per, to - b * per);
            i = to;
        }
    }

    /// Make sure plane `p` of block `b` is decompressed; `false` after a failure (recorded).
    fn load(&self, st: &mut PlaneState, b: usize, p: usize) -> bool {
        if st.error.is_some() {
            return false;
        }
        let at = match st.blocks.iter().position(|(x, _)| *x == b) {
            Some(at) => at,
            None => {
                if st.blocks.len() >= PLANE_BLOCKS_KEPT {
                    let (_, old) = st.blocks.remove(0);
                    st.spare.extend(old.into_iter().flatten());
                }
                st.blocks.push((b, vec![None; self.size]));
                st.blocks.len() - 1
            }
        };
        if st.blocks[at].1[p].is_some() {
            return true;
        }
        let mut buf = st.spare.pop().unwrap_or_default();
        let PlaneState { scratch, error, .. } = st;
        match self.planes.plane(b, p, &mut buf, scratch) {
            Ok(()) => {
                st.blocks[at].1[p] = Some(buf);
                true
            }
            Err(e) => {
                *error = Some(e);
                false
            }
        }
    }

    /// Plane `p` of block `b`, loaded before.
    fn plane(st: &PlaneState, b: usize, p: usize) -> &[u8] {
        st.blocks
            .iter()
            .find(|(x, _)| *x == b)
            .and_then(|(_, planes)| planes[p].as_deref())
            .unwrap_or(&[])
    }

    /// For values `start .. start + len`, from their top bytes: whether any is finite for
    /// certain, and whether any may be NaN.
    fn top_byte(&self, start: usize, len: usize) -> (bool, bool) {
        let top = self.size - 1;
        let mut guard = self.state.borrow_mut();
        let st: &mut PlaneState = &mut guard;
        let (mut finite, mut maybe_nan) = (false, false);
        self.segments(start, len, |b, from, to| {
            if !self.load(st, b, top) {
                return;
            }
            let hi = &Self::plane(st, b, top)[from..to];
            finite |= hi.iter().any(|x| x & 0x7f != 0x7f);
            maybe_nan |= hi.iter().any(|x| x & 0x7f == 0x7f);
        });
        (finite, maybe_nan)
    }

    /// Whether each of values `start .. start + len` is NaN.
    fn nan_flags(&self, start: usize, len: usize) -> Vec<bool> {
        let top = self.size - 1;
        let (exp, man) = self.second_byte_masks();
        let mut out = Vec::with_capacity(len);
        let mut guard = self.state.borrow_mut();
        let st: &mut PlaneState = &mut guard;
        self.segments(start, len, |b, from, to| {
            let n = to - from;
            if !self.load(st, b, top) {
                out.resize(out.len() + n, false);
                return;
            }
            let maybe = |hi: u8| hi & 0x7f == 0x7f;
            if !Self::plane(st, b, top)[from..to].iter().any(|x| maybe(*x)) {
                out.resize(out.len() + n, false);
                return;
            }
            if !self.load(st, b, top - 1) {
                out.resize(out.len() + n, false);
                return;
            }
            // Exponent all ones, and no mantissa bit in the second byte: an infinity, or a NaN
            // whose mantissa lies lower.
            let (hi, next) = (
                &Self::plane(st, b, top)[from..to],
                &Self::plane(st, b, top - 1)[from..to],
            );
            let low_needed = hi
                .iter()
                .zip(next)
                .any(|(h, m)| maybe(*h) && m & exp == exp && m & man == 0);
            if low_needed && !(0..top - 1).all(|p| self.load(st, b, p)) {
                out.resize(out.len() + n, false);
                return;
            }
            let (hi, next) = (
                &Self::plane(st, b, top)[from..to],
                &Self::plane(st, b, top - 1)[from..to],
            );
            for i in 0..n {
                let (h, m) = (hi[i], next[i]);
                let nan = maybe(h)
                    && m & exp == exp
                    && (m & man != 0
                        || (low_needed
                            && (0..top - 1).any(|p| Self::plane(st, b, p)[from + i] != 0)));
                out.push(nan);
            }
        });
        out
    }

    /// Why a stream did not decompress, if one did not.
    fn error(&self) -> Option<String> {
        self.state.borrow().error.clone()
    }
}

impl ChunkCache {
    /// Call `f(offset, row)` for every run along the last dimension of the region `window` of
    /// a float source, read where the cache holds it (see [`crate::plan::Node`]'s `visit_rows`).
    pub(crate) fn visit_rows(
        &self,
        source: &dyn ChunkSource,
        window: &Window,
        f: &mut dyn FnMut(usize, Row<'_>),
    ) -> Result<()> {
        let start: Vec<u64> = window.iter().map(|r| r.start).collect();
        let shape: Vec<u64> = window.iter().map(|r| r.end - r.start).collect();
        if shape.iter().product::<u64>() == 0 {
            return Ok(());
        }
        let f32s = source.dtype() == DType::Float32;
        for (idx, cs) in source.units_in(&start, &shape)? {
            if self.visit_planes(source, &idx, &cs, (&start, &shape), f)? {
                continue;
            }
            let cached = self.chunk(source, &idx)?;
            let bytes = match &*cached {
                Cached::Fill(elem) => {
                    let v = source.dtype().element_to_f64(elem);
                    overlap_rows(cs.shape(), cs.start(), &shape, &start, |_, o, n| {
                        f(o, Row::Fill(v, n));
                    });
                    continue;
                }
                stored => stored.bytes(),
            };
            overlap_rows(cs.shape(), cs.start(), &shape, &start, |so, o, n| {
                if f32s {
                    let b = &bytes[so * 4..(so + n) * 4];
                    match bytemuck::try_cast_slice::<u8, f32>(b) {
                        Ok(v) => f(o, Row::F32(v)),
                        Err(_) => {
                            let v: Vec<f32> = bytemuck::pod_collect_to_vec(b);
                            f(o, Row::F32(&v));
                        }
                    }
                } else {
                    let b = &bytes[so * 8..(so + n) * 8];
                    match bytemuck::try_cast_slice::<u8, f64>(b) {
                        Ok(v) => f(o, Row::F64(v)),
                        Err(_) => {
                            let v: Vec<f64> = bytemuck::pod_collect_to_vec(b);
                            f(o, Row::F64(&v));
                        }
                    }
                }
            });
        }
        Ok(())
    }

    /// The stored bytes of frame `frame` of `source`, for reading by byte planes; `None` when
    /// it is not stored.
    fn frame(
        &self,
        source: &dyn ChunkSource,
        planes: &dyn PlaneFrames,
        frame: &[u64],
    ) -> Result<Option<bytes::Bytes>> {
        let key: ChunkKey = (source.id().to_string(), frame.to_vec());
        if let Some((_, bytes)) = self
            .frames
            .lock()
            .map_err(|_| Self::poisoned())?
            .iter()
            .find(|(k, _)| *k == key)
        {
            return Ok(Some(bytes.clone()));
        }
        let Some(bytes) = planes.read_frame(frame)? else {
            return Ok(None);
        };
        let mut frames = self.frames.lock().map_err(|_| Self::poisoned())?;
        if frames.len() >= FRAMES_KEPT {
            frames.remove(0);
        }
        frames.push((key, bytes.clone()));
        Ok(Some(bytes))
    }

    /// Visit the rows of unit `idx` (of region `cs`) within the region `start .. start + shape`
    /// as [`Row::Planes`], when the pass asks only which of its values are NaN (see
    /// [`super::state::CacheState::by_planes`]) and its source reads the byte planes of its
    /// stored frame ([`PlaneFrames`]). Every row is handed out for a quick look, and those it
    /// did not settle again. `Ok(false)`, having visited nothing, when the unit is to be read
    /// through the cache.
    fn visit_planes(
        &self,
        source: &dyn ChunkSource,
        idx: &[u64],
        cs: &Region,
        (start, shape): (&[u64], &[u64]),
        f: &mut dyn FnMut(usize, Row<'_>),
    ) -> Result<bool> {
        let Some(frames) = source
            .direct()
            .and_then(|d| d.planes())
            .filter(|_| cfg!(target_endian = "little"))
        else {
            return Ok(false);
        };
        let size = source.dtype().size();
        let key = (source.id().to_string(), idx.to_vec());
        {
            let st = self.state.lock().map_err(|_| Self::poisoned())?;
            if !st.uses.contains_key(&key) || !st.planes_serve(&key) {
                return Ok(false);
            }
        }
        let (frame, base) = frames.frame_of(idx);
        let Some(stored) = self.frame(source, frames, &frame)? else {
            return Ok(false);
        };
        let Some(planes) = frames.byte_planes(&stored) else {
            return Ok(false);
        };
        let src = PlaneSource::new(planes, size);
        let mut again: Vec<(usize, usize, usize)> = Vec::new();
        overlap_rows(cs.shape(), cs.start(), shape, start, |so, o, n| {
            src.unresolved.set(false);
            let row = PlaneRow {
                src: &src,
                start: base + so,
                len: n,
                quick: true,
            };
            f(o, Row::Planes(row));
            if src.unresolved.get() {
                again.push((so, o, n));
            }
        });
        for (so, o, n) in again {
            let row = PlaneRow {
                src: &src,
                start: base + so,
                len: n,
                quick: false,
            };
            f(o, Row::Planes(row));
        }
        match src.error() {
            None => Ok(true),
            Some(reason) => Err(frames.corrupt(&frame, reason)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::exec::Exec;
    use crate::plan::{Block, Data, Node, NodeRef, Op, Reduction, UnOp, VType};
    use crate::source::Sources;
    use crate::testkit::{first_array, memory_group, nan_reduction, put_key, source_node};

    #[test]
    fn nan_scans_by_byte_planes_agree_with_decoded_values() {
        use zarrs::array::codec::{BloscCompressor, BloscShuffleMode};
        let (nt, ny, nx, ct) = (10u64, 60u64, 70u64, 6u64);
        let dims: Vec<String> = ["t", "y", "x"].iter().map(|d| (*d).to_string()).collect();
        for size in [4usize, 8] {
            // NaNs whose mantissa bits lie only in the lowest byte, positive and negative.
            let (low_nan, neg_nan) = if size == 4 {
                (f64::from(f32::from_bits(0x7f80_0001)), -f64::NAN)
            } else {
                (f64::from_bits(0x7ff0_0000_0000_0001), -f64::NAN)
            };
            let huge = if size == 4 {
                f64::from(f32::MAX)
            } else {
                f64::MAX
            };
            #[allow(clippy::cast_precision_loss)]
            let value = |t: u64, y: u64, x: u64| -> f64 {
                let nan = match (y * 7 + x) % 3 {
                    0 => f64::NAN,
                    1 => low_nan,
                    _ => neg_nan,
                };
                let alone = (y, x) == (50, 66);
                match t {
                    // NaN everywhere; then NaN but for an infinity, the largest finite value, a
                    // negative infinity, a zero.
                    2 | 8 => nan,
                    3 if alone => f64::INFINITY,
                    4 if alone => huge,
                    5 if alone => f64::NEG_INFINITY,
                    7 if alone => 0.0,
                    3 | 4 | 5 | 7 => nan,
                    // Land, and values.
                    _ if x < 10 || (t + y + x) % 11 == 0 => f64::NAN,
                    _ => (t * 1000 + y * 10 + x) as f64 / 7.0,
                }
            };
            let store = memory_group(&format!("memory://plan-nan-planes-{size}"));
            let zarray = format!(
                r#"{{"zarr_format": 2, "shape": [{nt}, {ny}, {nx}],
                   "chunks": [{ct}, {ny}, {nx}], "dtype": "<f{size}",
                   "compressor": {{"id": "blosc", "cname": "lz4", "clevel": 5,
                   "shuffle": 1, "blocksize": 0}}, "filters": null,
                   "fill_value": "NaN", "order": "C"}}"#
            );
            put_key(&store, "a/.zarray", zarray.clone().into_bytes());
            let mut frames = Vec::new();
            for c in 0..nt.div_ceil(ct) {
                let mut raw = Vec::new();
                for t in c * ct..(c + 1) * ct {
                    for (y, x) in (0..ny).flat_map(|y| (0..nx).map(move |x| (y, x))) {
                        let v = value(t, y, x);
                        #[allow(clippy::cast_possible_truncation)]
                        if size == 4 {
                            // A NaN keeps its payload through the conversion.
                            let bits = if v.is_nan() && v.to_bits() == low_nan.to_bits() {
                                0x7f80_0001
                            } else {
                                (v as f32).to_bits()
                            };
                            raw.extend_from_slice(&bits.to_le_bytes());
                        } else {
                            raw.extend_from_slice(&v.to_le_bytes());
                        }
                    }
                }
                // Blocks of 64 KiB: rows cross their boundaries, and the last is shorter.
                let frame = crate::formats::zarr::blosc::tests::frame_with(
                    &raw,
                    size,
                    65536 / size,
                    BloscCompressor::LZ4,
                    BloscShuffleMode::Shuffle,
                );
                let planes =
                    crate::formats::zarr::blosc::Planes::parse(&frame, size).expect("planes");
                assert!(planes.values() > planes.block_values());
                put_key(&store, &format!("a/{c}.0.0"), frame.clone());
                frames.push(frame);
            }
            let source = |store: &crate::store::Store| -> (NodeRef, Exec) {
                let vtype = if size == 4 { VType::F32 } else { VType::F64 };
                let mut sources = Sources::default();
                let node =
                    source_node(&mut sources, Arc::new(first_array(store)), &["t", "y", "x"]);
                // Some days, and a range of columns.
                let days = vec![0u64, 2, 3, 4, 5, 6, 7, 8, 9];
                let node = Node::new(
                    Op::Take {
                        child: node,
                        dim: "t".into(),
                        index: Arc::new(days.clone()),
                    },
                    dims.clone(),
                    vec![days.len() as u64, ny, nx],
                    vtype,
                );
                let columns: Vec<u64> = (5..nx).collect();
                let node = Node::new(
                    Op::Take {
                        child: node,
                        dim: "x".into(),
                        index: Arc::new(columns.clone()),
                    },
                    dims.clone(),
                    vec![days.len() as u64, ny, columns.len() as u64],
                    vtype,
                );
                (node, Exec::new(sources, 1 << 24))
            };
            let (x, ex) = source(&store);
            assert!(x.visitable());
            let evaluated = Node::new(Op::Cast(x.clone()), dims.clone(), x.shape.clone(), x.vtype);
            let cases: Vec<(UnOp, Reduction, &[&str])> = [UnOp::IsNan, UnOp::NotNull]
                .into_iter()
                .flat_map(|op| {
                    [Reduction::All, Reduction::Any]
                        .into_iter()
                        .flat_map(move |kind| {
                            [&["y", "x"][..], &["t"], &["t", "x"], &["t", "y", "x"]]
                                .into_iter()
                                .map(move |over| (op, kind, over))
                        })
                })
                .collect();
            let fast: Vec<Block> = cases
                .iter()
                .map(|(op, kind, over)| {
                    nan_reduction(&ex, &x, &dims, *op, *kind, over).expect("fast")
                })
                .collect();
            // Read by planes: nothing decoded.
            assert_eq!(ex.cache().decoded(), 0, "size {size}");
            for ((op, kind, over), f) in cases.iter().zip(&fast) {
                let slow = nan_reduction(&ex, &evaluated, &dims, *op, *kind, over).expect("slow");
                let (Data::Bool(f), Data::Bool(s)) = (&f.data, &slow.data) else {
                    panic!("not boolean");
                };
                assert_eq!(f, s, "size {size}: {op:?} {kind:?} over {over:?}");
            }
            assert!(ex.cache().decoded() > 0);
            // Days all NaN: of days 0, 2, 3, 4, 5, 6, 7, 8, 9, days 2 and 8 (an infinity, the
            // largest float, a zero are values).
            let Data::Bool(days) =
                nan_reduction(&ex, &x, &dims, UnOp::IsNan, Reduction::All, &["y", "x"])
                    .expect("days")
                    .data
            else {
                panic!("not boolean")
            };
            assert_eq!(
                days,
                vec![false, true, false, false, false, false, false, true, false]
            );

            // A stream that does not decompress: the chunk is named.
            let damaged = memory_group(&format!("memory://plan-nan-planes-damaged-{size}"));
            put_key(&damaged, "a/.zarray", zarray.into_bytes());
            for (c, frame) in frames.iter().enumerate() {
                let mut frame = frame.clone();
                if c == 1 {
                    let planes =
                        crate::formats::zarr::blosc::Planes::parse(&frame, size).expect("planes");
                    let top = planes.stream_bytes(0, size - 1);
                    frame[top].fill(0xff);
                }
                put_key(&damaged, &format!("a/{c}.0.0"), frame);
            }
            let (x, ex) = source(&damaged);
            let err = nan_reduction(&ex, &x, &dims, UnOp::IsNan, Reduction::All, &["y", "x"])
                .expect_err("damaged");
            assert!(err.to_string().contains("a/1.0.0"), "{err}");
        }
    }
}
