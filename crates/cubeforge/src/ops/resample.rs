//! `resample`: one value per time bin, as xarray's `ds.resample(time=freq).how()` (without
//! flox) computes it. An output window of bins reads the samples of those bins only (the other
//! dimensions map 1:1), so memory is bounded by the window, not the time axis.
//!
//! The kernels follow the order NumPy computes in, so that sums are the same bits as xarray's:
//! along a time axis that is not the last of its variable NumPy adds bin values one time step
//! after the other (in the variable's own type: float32 stays float32); along the last axis it
//! adds pairwise. NaN is skipped as xarray's `skipna` (replaced by 0 in sums); the mean is the
//! sum divided by the count in float64 and rounded to the type; `std` is NumPy's two-pass
//! `nanvar` (ddof 0) in the type; the median of an even count is the mean of the middle two.
//! A bin without samples is NaN whatever `how` (xarray's reindexing of empty groups).

use std::sync::Arc;

use serde_json::json;

use crate::error::{Error, Result};
use crate::plan::{Block, Data, Node, NodeRef, VType, Window, WindowOp};
use crate::recipe::ResampleHow;

pub mod bins;

pub use bins::{bins, Bins, Freq, FreqUnit};

/// The type xarray gives `how` of values of type `input` along a time axis, where `empty`
/// says whether some bin holds no sample (its NaN promotes integers and booleans to floats).
#[must_use]
pub fn result_type(input: VType, how: ResampleHow, empty: bool) -> VType {
    use crate::dtype::DType;
    use ResampleHow as H;
    let int_or_bool = |v: VType| matches!(v, VType::Int(_) | VType::Bool);
    let base = match how {
        H::Mean | H::Std | H::Median if int_or_bool(input) => VType::F64,
        H::Mean | H::Std | H::Median | H::Min | H::Max | H::First | H::Last => input,
        H::Count => VType::Int(DType::Int64),
        H::Sum => match input {
            VType::Bool => VType::Int(DType::Int64),
            VType::Int(d) if d.int_range().is_some_and(|(lo, _)| lo < 0) => {
                VType::Int(DType::Int64)
            }
            VType::Int(_) => VType::Int(DType::UInt64),
            float => float,
        },
    };
    match base {
        VType::Int(d) if empty && d.size() <= 2 => VType::F32,
        VType::Int(_) | VType::Bool if empty => VType::F64,
        other => other,
    }
}

/// One value per time bin of its input.
#[derive(Debug)]
pub struct Resample {
    input: [NodeRef; 1],
    /// The time axis (the same in the input and the output).
    axis: usize,
    /// Each output bin's samples: positions `start .. end` along the input's axis.
    ranges: Arc<Vec<(u64, u64)>>,
    how: ResampleHow,
    /// The frequency, for the printed plan.
    freq: String,
}

impl Resample {
    /// `how` of `input` over the bins `ranges` along its axis `axis`.
    #[must_use]
    pub fn new(
        input: NodeRef,
        axis: usize,
        ranges: Arc<Vec<(u64, u64)>>,
        how: ResampleHow,
        freq: String,
    ) -> Resample {
        Resample {
            input: [input],
            axis,
            ranges,
            how,
            freq,
        }
    }

    /// The input positions bins `window` read: the union of their samples, or one position
    /// when they hold none (an empty read is not asked of a source).
    fn samples(&self, bins: &std::ops::Range<u64>) -> (u64, u64) {
        let at = |b: u64| self.ranges[usize::try_from(b).unwrap_or(0)];
        let len = self.input[0].shape[self.axis];
        let lo = at(bins.start).0;
        let hi = at(bins.end.saturating_sub(1).max(bins.start)).1;
        if hi > lo {
            (lo, hi)
        } else {
            let lo = lo.min(len.saturating_sub(1));
            (lo, lo + 1)
        }
    }
}

impl WindowOp for Resample {
    fn name(&self) -> &'static str {
        "resample"
    }

    fn inputs(&self) -> &[NodeRef] {
        &self.input
    }

    fn input_window(&self, _out: &Node, _i: usize, window: &Window) -> Window {
        let mut w = window.clone();
        let (lo, hi) = self.samples(&window[self.axis]);
        w[self.axis] = lo..hi;
        w
    }

    fn eval(&self, out: &Node, window: &Window, inputs: Vec<Block>) -> Result<Data> {
        let Some(input) = inputs.into_iter().next() else {
            return Err(Error::Other("internal: resample takes one input".into()));
        };
        let shape: Vec<usize> = input.shape.clone();
        let outer: usize = shape[..self.axis].iter().product();
        let inner: usize = shape[self.axis + 1..].iter().product();
        let t_in = shape[self.axis];
        let (lo, _) = self.samples(&window[self.axis]);
        let bins: Vec<(usize, usize)> = (window[self.axis].start..window[self.axis].end)
            .map(|b| {
                let (s, e) = self.ranges[usize::try_from(b).unwrap_or(0)];
                (
                    usize::try_from(s.saturating_sub(lo)).unwrap_or(0),
                    usize::try_from(e.saturating_sub(lo)).unwrap_or(0),
                )
            })
            .collect();
        let layout = Layout {
            outer,
            t_in,
            inner,
            // As NumPy sums the variable's values, whatever part of them the window holds.
            pairwise: self.input[0].shape[self.axis + 1..].iter().product::<u64>() == 1,
        };
        let values = match input.data {
            Data::F32(v) => reduce_bins(&v, &layout, &bins, self.how),
            Data::F64(v) => reduce_bins(&v, &layout, &bins, self.how),
            Data::Bool(v) => reduce_bools(&v, &layout, &bins, self.how),
            other => reduce_bins(&other.into_f64(), &layout, &bins, self.how),
        };
        Ok(Data::F64(values).convert_if_needed(out.vtype))
    }

    fn describe(&self) -> serde_json::Value {
        json!({"freq": self.freq, "how": self.how.name(), "bins": self.ranges.len()})
    }
}

/// An input block as `outer × t_in × inner`, C order.
struct Layout {
    outer: usize,
    t_in: usize,
    inner: usize,
    /// Whether NumPy sums a bin pairwise (its values are contiguous: time is the last axis).
    pairwise: bool,
}

/// The element types the kernels compute in: NumPy computes a float32 reduction in float32.
trait Real: Copy + PartialOrd + std::fmt::Debug {
    const ZERO: Self;
    fn is_nan(self) -> bool;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn sqrt(self) -> Self;
    fn half(self) -> Self;
    fn f64(self) -> f64;
    fn of(x: f64) -> Self;
}

macro_rules! real {
    ($t:ty) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn add(self, o: Self) -> Self {
                self + o
            }
            fn sub(self, o: Self) -> Self {
                self - o
            }
            fn mul(self, o: Self) -> Self {
                self * o
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn half(self) -> Self {
                self / 2.0
            }
            fn f64(self) -> f64 {
                f64::from(self)
            }
            #[allow(clippy::cast_possible_truncation)]
            fn of(x: f64) -> Self {
                x as $t
            }
        }
    };
}
real!(f32);
real!(f64);

/// NumPy's pairwise sum (`pairwise_sum` of its add loops): blocks of up to 128 values summed
/// in eight lanes, larger runs split in halves at multiples of 8.
fn pairwise<T: Real>(a: &[T]) -> T {
    let n = a.len();
    if n < 8 {
        return a.iter().fold(T::ZERO, |r, x| r.add(*x));
    }
    if n <= 128 {
        let mut r = [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]];
        let whole = n - n % 8;
        let mut i = 8;
        while i < whole {
            for (j, lane) in r.iter_mut().enumerate() {
                *lane = lane.add(a[i + j]);
            }
            i += 8;
        }
        let mut res = r[0]
            .add(r[1])
            .add(r[2].add(r[3]))
            .add(r[4].add(r[5]).add(r[6].add(r[7])));
        for x in &a[whole..] {
            res = res.add(*x);
        }
        return res;
    }
    let mut n2 = n / 2;
    n2 -= n2 % 8;
    pairwise(&a[..n2]).add(pairwise(&a[n2..]))
}

/// The sums of one bin's values, NaN as 0, at each of `inner` positions, in NumPy's order.
fn bin_sums<T: Real>(x: &[T], base: usize, n: usize, inner: usize, pairwise_sum: bool) -> Vec<T> {
    let zero_nan = |v: T| if v.is_nan() { T::ZERO } else { v };
    if pairwise_sum {
        // inner == 1: the bin's values are contiguous.
        let vals: Vec<T> = x[base..base + n].iter().map(|v| zero_nan(*v)).collect();
        return vec![pairwise(&vals)];
    }
    let mut acc: Vec<T> = x[base..base + inner].iter().map(|v| zero_nan(*v)).collect();
    for t in 1..n {
        let row = &x[base + t * inner..base + (t + 1) * inner];
        for (a, v) in acc.iter_mut().zip(row) {
            *a = a.add(zero_nan(*v));
        }
    }
    acc
}

/// The counts of values that are not NaN of one bin.
fn bin_counts<T: Real>(x: &[T], base: usize, n: usize, inner: usize) -> Vec<u64> {
    let mut cnt = vec![0u64; inner];
    for t in 0..n {
        for (c, v) in cnt
            .iter_mut()
            .zip(&x[base + t * inner..base + (t + 1) * inner])
        {
            *c += u64::from(!v.is_nan());
        }
    }
    cnt
}

/// `how` of every bin, for every outer and inner position: `outer × bins × inner` values.
fn reduce_bins<T: Real>(
    x: &[T],
    l: &Layout,
    bins: &[(usize, usize)],
    how: ResampleHow,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(l.outer * bins.len() * l.inner);
    for o in 0..l.outer {
        for &(s, e) in bins {
            let n = e - s;
            if n == 0 {
                out.extend(std::iter::repeat_n(f64::NAN, l.inner));
                continue;
            }
            let base = (o * l.t_in + s) * l.inner;
            reduce_bin(x, (base, n), l, how, &mut out);
        }
    }
    out
}

/// `how` of one bin of `n` samples from `base`, appended to `out` (`inner` values).
#[allow(clippy::cast_precision_loss)]
fn reduce_bin<T: Real>(
    x: &[T],
    (base, n): (usize, usize),
    l: &Layout,
    how: ResampleHow,
    out: &mut Vec<f64>,
) {
    let inner = l.inner;
    let at = |t: usize, i: usize| x[base + t * inner + i];
    match how {
        ResampleHow::Count => out.extend(bin_counts(x, base, n, inner).iter().map(|c| *c as f64)),
        ResampleHow::Sum => out.extend(
            bin_sums(x, base, n, inner, l.pairwise)
                .iter()
                .map(|v| v.f64()),
        ),
        ResampleHow::Mean | ResampleHow::Std => {
            let sums = bin_sums(x, base, n, inner, l.pairwise);
            let cnt = bin_counts(x, base, n, inner);
            let means: Vec<T> = sums
                .iter()
                .zip(&cnt)
                .map(|(s, c)| T::of(s.f64() / *c as f64))
                .collect();
            if how == ResampleHow::Mean {
                out.extend(means.iter().map(|m| m.f64()));
                return;
            }
            // NumPy's nanvar: deviations from the mean in the type, NaN as 0, squared, summed
            // in the same order, divided by the count; then the square root in the type.
            let mut dev = vec![T::ZERO; n * inner];
            for t in 0..n {
                for i in 0..inner {
                    let v = at(t, i);
                    dev[t * inner + i] = if v.is_nan() {
                        T::ZERO
                    } else {
                        let d = v.sub(means[i]);
                        d.mul(d)
                    };
                }
            }
            let sq = bin_sums(&dev, 0, n, inner, l.pairwise);
            out.extend(sq.iter().zip(&cnt).map(|(s, c)| {
                if *c == 0 {
                    f64::NAN
                } else {
                    T::of(s.f64() / *c as f64).sqrt().f64()
                }
            }));
        }
        ResampleHow::Min | ResampleHow::Max => {
            for i in 0..inner {
                let mut best: Option<T> = None;
                for t in 0..n {
                    let v = at(t, i);
                    if v.is_nan() {
                        continue;
                    }
                    best = Some(match best {
                        Some(b) if (how == ResampleHow::Min) == (b <= v) => b,
                        _ => v,
                    });
                }
                out.push(best.map_or(f64::NAN, Real::f64));
            }
        }
        ResampleHow::First | ResampleHow::Last => {
            for i in 0..inner {
                let mut ts: Box<dyn Iterator<Item = usize>> = if how == ResampleHow::First {
                    Box::new(0..n)
                } else {
                    Box::new((0..n).rev())
                };
                let v = ts
                    .find(|t| !at(*t, i).is_nan())
                    .map_or(f64::NAN, |t| at(t, i).f64());
                out.push(v);
            }
        }
        ResampleHow::Median => {
            let mut buf: Vec<T> = Vec::with_capacity(n);
            for i in 0..inner {
                buf.clear();
                buf.extend((0..n).map(|t| at(t, i)).filter(|v| !v.is_nan()));
                out.push(median(&mut buf));
            }
        }
    }
}

/// The median of `v` (no NaN): the middle value, or the mean of the middle two computed as
/// NumPy does (their sum in the type, halved); NaN when empty.
fn median<T: Real>(v: &mut [T]) -> f64 {
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    let cmp = |a: &T, b: &T| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal);
    let (_, hi, _) = v.select_nth_unstable_by(n / 2, cmp);
    let hi = *hi;
    if n % 2 == 1 {
        return hi.f64();
    }
    let lo = v[..n / 2]
        .iter()
        .copied()
        .fold(None, |m: Option<T>, x| match m {
            Some(m) if m >= x => Some(m),
            _ => Some(x),
        })
        .unwrap_or(hi);
    lo.add(hi).half().f64()
}

/// `how` of boolean values: `min` is all, `max` any, the others of 0 and 1.
fn reduce_bools(x: &[bool], l: &Layout, bins: &[(usize, usize)], how: ResampleHow) -> Vec<f64> {
    let ones: Vec<f64> = x.iter().map(|b| f64::from(u8::from(*b))).collect();
    reduce_bins(&ones, l, bins, how)
}

/// A variable's values held whole (a resample's `time_bnds`), read by window.
#[derive(Debug)]
pub struct Held {
    values: Arc<Vec<f64>>,
}

impl Held {
    /// The values of the node it is held by, whole, C order.
    #[must_use]
    pub fn new(values: Vec<f64>) -> Held {
        Held {
            values: Arc::new(values),
        }
    }
}

impl WindowOp for Held {
    fn name(&self) -> &'static str {
        "values"
    }

    fn inputs(&self) -> &[NodeRef] {
        &[]
    }

    fn input_window(&self, _out: &Node, _i: usize, window: &Window) -> Window {
        window.clone()
    }

    fn eval(&self, out: &Node, window: &Window, _inputs: Vec<Block>) -> Result<Data> {
        let shape: Vec<usize> = out
            .shape
            .iter()
            .map(|n| usize::try_from(*n).unwrap_or(0))
            .collect();
        let strides = crate::plan::strides_in(&out.dims, &out.dims, &shape);
        let mut idx: Vec<u64> = window.iter().map(|r| r.start).collect();
        let count: u64 = window.iter().map(|r| r.end - r.start).product();
        let mut values = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for _ in 0..count {
            let flat: usize = idx
                .iter()
                .zip(&strides)
                .map(|(i, s)| usize::try_from(*i).unwrap_or(0) * s)
                .sum();
            values.push(self.values.get(flat).copied().unwrap_or(f64::NAN));
            for a in (0..idx.len()).rev() {
                idx[a] += 1;
                if idx[a] < window[a].end {
                    break;
                }
                idx[a] = window[a].start;
            }
        }
        Ok(Data::F64(values).convert_if_needed(out.vtype))
    }

    fn value_dims(&self, out: &Node) -> Vec<String> {
        out.dims.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cf::CfDecoding;
    use crate::dtype::DType;
    use crate::exec::Exec;
    use crate::formats::memory::MemorySource;
    use crate::plan::{Op, SourceRef, Window};
    use crate::source::Sources;
    use crate::testkit::source_node;

    const NAN: f64 = f64::NAN;
    const HOWS: [ResampleHow; 9] = [
        ResampleHow::Mean,
        ResampleHow::Sum,
        ResampleHow::Min,
        ResampleHow::Max,
        ResampleHow::Count,
        ResampleHow::First,
        ResampleHow::Last,
        ResampleHow::Median,
        ResampleHow::Std,
    ];

    /// `a (time 7, x 2)` float32 with NaNs and `i (time 7)` int16, in memory, chunks of 2 x 1.
    fn inputs(sources: &mut Sources) -> (NodeRef, NodeRef) {
        #[rustfmt::skip]
        let a = [1.5, NAN, NAN, NAN, 2.25, NAN, 7.0, 4.0, NAN, 4.0, 3.5, 0.1, -1.0, 2.2];
        let a = MemorySource::from_f64(
            "memory://resample-a",
            DType::Float32,
            (&[7, 2], &[2, 1]),
            &a,
        )
        .expect("a");
        let a = source_node(sources, Arc::new(a), &["time", "x"]);
        let i = [3.0, -2.0, 7.0, 100.0, 5.0, 5.0, -8.0];
        let i = MemorySource::from_f64("memory://resample-i", DType::Int16, (&[7], &[3]), &i)
            .expect("i");
        let decoding =
            CfDecoding::from_attrs(&serde_json::Map::new(), DType::Int16, None).expect("decoding");
        let source = SourceRef {
            index: sources.add(Arc::new(i)),
            location: "memory://resample-i".into(),
            dtype: DType::Int16,
        };
        let i = Node::new(
            Op::Source {
                source,
                decoding: Box::new(decoding),
            },
            vec!["time".into()],
            vec![7],
            VType::Int(DType::Int16),
        );
        (a, i)
    }

    fn resampled(x: &NodeRef, ranges: &[(u64, u64)], how: ResampleHow) -> NodeRef {
        let empty = ranges.iter().any(|(s, e)| s == e);
        let mut shape = x.shape.clone();
        shape[0] = ranges.len() as u64;
        Node::new(
            Op::Window(Arc::new(Resample::new(
                x.clone(),
                0,
                Arc::new(ranges.to_vec()),
                how,
                "1D".into(),
            ))),
            x.dims.clone(),
            shape,
            result_type(x.vtype, how, empty),
        )
    }

    fn same(got: &[f64], want: &[f64]) -> bool {
        got.len() == want.len()
            && got
                .iter()
                .zip(want)
                .all(|(g, w)| g == w || (g.is_nan() && w.is_nan()))
    }

    // The expectations are xarray 2026.9's (numpy 2.4, no flox) for
    //   t = pd.to_datetime([f"{d}T{h:02d}:00" for d, h in zip(DAYS, [5, 6, 7, 0, 1, 2, 3])])
    //   ds = xr.Dataset({"a": (("time", "x"), A), "i": ("time", I)}, coords={"time": t})
    //   getattr(ds.resample(time="1D"), how)()
    // with A the float32 values of `inputs` and I = int16 [3, -2, 7, 100, 5, 5, -8]; DAYS puts
    // the first three samples on 2000-01-01 and the last four on 2000-01-03 (the day between
    // empty) or on 2000-01-02 (no bin empty).

    #[test]
    fn every_how_agrees_with_xarray_with_an_empty_bin() {
        let mut sources = Sources::default();
        let (a, i) = inputs(&mut sources);
        let ex = Exec::new(sources, 1 << 20);
        let f = |v: f32| f64::from(v);
        #[rustfmt::skip]
        let want: [(&[f64], VType, &[f64], VType); 9] = [
            (&[1.875, NAN, NAN, NAN, f(3.166_666_7), f(2.575)], VType::F32,
             &[2.666_666_666_666_666_5, NAN, 25.5], VType::F64),
            (&[3.75, 0.0, NAN, NAN, 9.5, f(10.3)], VType::F32, &[8.0, NAN, 102.0], VType::F64),
            (&[1.5, NAN, NAN, NAN, -1.0, f(0.1)], VType::F32, &[-2.0, NAN, -8.0], VType::F32),
            (&[2.25, NAN, NAN, NAN, 7.0, 4.0], VType::F32, &[7.0, NAN, 100.0], VType::F32),
            (&[2.0, 0.0, NAN, NAN, 3.0, 4.0], VType::F64, &[3.0, NAN, 4.0], VType::F64),
            (&[1.5, NAN, NAN, NAN, 7.0, 4.0], VType::F32, &[3.0, NAN, 100.0], VType::F32),
            (&[2.25, NAN, NAN, NAN, -1.0, f(2.2)], VType::F32, &[7.0, NAN, -8.0], VType::F32),
            (&[1.875, NAN, NAN, NAN, 3.5, f(3.1)], VType::F32, &[3.0, NAN, 5.0], VType::F64),
            (&[0.375, NAN, NAN, NAN, f(3.274_480_6), f(1.606_821_4)], VType::F32,
             &[3.681_787_005_729_087, NAN, 43.338_781_708_765_19], VType::F64),
        ];
        let ranges = [(0, 3), (3, 3), (3, 7)];
        for (how, (wa, ta, wi, ti)) in HOWS.into_iter().zip(want) {
            let na = resampled(&a, &ranges, how);
            assert_eq!(na.vtype, ta, "{how:?}");
            let got = ex.eval(&na, &vec![0..3, 0..2]).expect("a").data.to_f64();
            assert!(same(&got, wa), "{how:?}: {got:?} != {wa:?}");
            let ni = resampled(&i, &ranges, how);
            assert_eq!(ni.vtype, ti, "{how:?}");
            let got = ex
                .eval(&ni, &std::iter::once(0..3).collect())
                .expect("i")
                .data
                .to_f64();
            assert!(same(&got, wi), "{how:?}: {got:?} != {wi:?}");
            // A window of one bin reads that bin alone, and agrees.
            let last = ex.eval(&na, &vec![2..3, 1..2]).expect("a").data.to_f64();
            assert!(same(&last, &wa[5..]), "{how:?}");
        }
    }

    #[test]
    fn a_window_of_bins_reads_the_chunks_of_their_samples_only() {
        let mut sources = Sources::default();
        let (a, _) = inputs(&mut sources);
        let ex = Exec::new(sources, 1 << 20);
        // `a` is stored in chunks of 2 time steps; bin 2 holds samples 3..7: chunks 1..=3.
        let node = resampled(&a, &[(0, 3), (3, 3), (3, 7)], ResampleHow::Mean);
        let chunks = |window: Window| {
            let mut needed = Vec::new();
            ex.chunks_needed(&node, &window, &mut needed);
            let mut along_time: Vec<u64> = needed.iter().map(|n| n.key.1[0]).collect();
            along_time.dedup();
            along_time
        };
        assert_eq!(chunks(vec![2..3, 0..2]), vec![1, 2, 3]);
        assert_eq!(chunks(vec![0..1, 0..1]), vec![0, 1]);
        // An empty bin alone reads one sample, not the axis.
        assert_eq!(chunks(vec![1..2, 0..1]).len(), 1);
    }

    #[test]
    fn integers_keep_their_type_when_no_bin_is_empty() {
        let mut sources = Sources::default();
        let (a, i) = inputs(&mut sources);
        let ex = Exec::new(sources, 1 << 20);
        let int = |d| VType::Int(d);
        #[rustfmt::skip]
        let want: [(&[f64], VType); 9] = [
            (&[2.666_666_666_666_666_5, 25.5], VType::F64),
            (&[8.0, 102.0], int(DType::Int64)),
            (&[-2.0, -8.0], int(DType::Int16)),
            (&[7.0, 100.0], int(DType::Int16)),
            (&[3.0, 4.0], int(DType::Int64)),
            (&[3.0, 100.0], int(DType::Int16)),
            (&[7.0, -8.0], int(DType::Int16)),
            (&[3.0, 5.0], VType::F64),
            (&[3.681_787_005_729_087, 43.338_781_708_765_19], VType::F64),
        ];
        for (how, (w, t)) in HOWS.into_iter().zip(want) {
            let n = resampled(&i, &[(0, 3), (3, 7)], how);
            assert_eq!(n.vtype, t, "{how:?}");
            let got = ex
                .eval(&n, &std::iter::once(0..2).collect())
                .expect("i")
                .data
                .to_f64();
            assert!(same(&got, w), "{how:?}: {got:?} != {w:?}");
        }
        // The float32 count of a bin of NaNs only is 0, its sum 0, its mean NaN.
        let count = resampled(&a, &[(0, 3), (3, 7)], ResampleHow::Count);
        assert_eq!(count.vtype, int(DType::Int64));
        let got = ex
            .eval(&count, &vec![0..2, 0..2])
            .expect("count")
            .data
            .to_f64();
        assert_eq!(got, vec![2.0, 0.0, 3.0, 4.0]);
    }

    #[test]
    fn result_types_follow_xarray() {
        use ResampleHow as H;
        let int = |d| VType::Int(d);
        // xarray: uint8 sums are uint64, booleans sum to int64 and keep their type in min/max.
        assert_eq!(
            result_type(int(DType::UInt8), H::Sum, false),
            int(DType::UInt64)
        );
        assert_eq!(result_type(VType::Bool, H::Sum, false), int(DType::Int64));
        assert_eq!(result_type(VType::Bool, H::Max, false), VType::Bool);
        assert_eq!(result_type(VType::Bool, H::Mean, false), VType::F64);
        // An empty bin: int8/16 and uint8/16 become float32, wider ones and booleans float64.
        assert_eq!(result_type(int(DType::UInt16), H::Min, true), VType::F32);
        assert_eq!(result_type(int(DType::Int32), H::First, true), VType::F64);
        assert_eq!(result_type(VType::Bool, H::Min, true), VType::F64);
        assert_eq!(result_type(VType::F32, H::Count, true), VType::F64);
        assert_eq!(result_type(VType::F32, H::Sum, true), VType::F32);
    }

    #[test]
    fn pairwise_sums_are_numpys() {
        // v = (np.float32(1) / np.arange(1, 301, dtype=np.float32)) * np.float32(1000):
        // np.sum(v) is 6282.664 (float32 bits 1170494800, pairwise), a running float32 sum
        // 6282.662.
        #[allow(clippy::cast_precision_loss)]
        let v: Vec<f32> = (1..=300).map(|k| (1.0f32 / k as f32) * 1000.0).collect();
        let seq = v.iter().fold(0f32, |a, x| a + x);
        assert_ne!(pairwise(&v), seq);
        assert_eq!(pairwise(&v).to_bits(), 1_170_494_800);
    }
}
