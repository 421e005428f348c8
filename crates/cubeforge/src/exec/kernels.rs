//! Block kernels: the elementwise, selection and copying work of evaluation, on a block's
//! values, plus the float buffers each worker recycles from one block to the next.

use std::ops::Range;

use crate::cf::CfDecoding;
use crate::dtype::DType;
use crate::expr::BinOp;
use crate::plan::{Block, Data, UnOp, VType};

thread_local! {
    /// Float buffers of blocks a worker is done with ([`recycle`]), for the next blocks read from
    /// the chunk cache: a fresh allocation would be zeroed first (and, when the allocator takes
    /// it from the kernel, faulted in), only to be overwritten.
    pub(crate) static RECYCLED_F32: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
    pub(crate) static RECYCLED_F64: std::cell::RefCell<Vec<Vec<f64>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How many buffers of each float type a worker keeps for reuse.
pub(crate) const RECYCLED_KEPT: usize = 4;

/// A buffer of `n` values, taken from `recycled` where one is large enough (its values are
/// whatever it held: the caller overwrites them all), else a new one.
pub(crate) fn reuse<T: Copy + Default>(recycled: &mut Vec<Vec<T>>, n: usize) -> Vec<T> {
    let best = recycled
        .iter()
        .enumerate()
        .filter(|(_, v)| v.capacity() >= n)
        .min_by_key(|(_, v)| (v.len() != n, v.capacity()))
        .map(|(i, _)| i);
    let mut v = best.map_or_else(Vec::new, |i| recycled.swap_remove(i));
    // Only values past the old length are written: the caller overwrites them all anyway.
    v.resize(n, T::default());
    v
}

/// Give the float buffer of a block the calling worker is done with to the next block it reads.
pub fn recycle(data: Data) {
    match data {
        Data::F32(v) => RECYCLED_F32.with(|r| keep_recycled(&mut r.borrow_mut(), v)),
        Data::F64(v) => RECYCLED_F64.with(|r| keep_recycled(&mut r.borrow_mut(), v)),
        Data::Bool(_) | Data::I64(_) | Data::U64(_) => {}
    }
}

/// Keep `v` among a worker's `recycled` buffers, unless it has enough of them.
pub(crate) fn keep_recycled<T>(recycled: &mut Vec<Vec<T>>, v: Vec<T>) {
    if recycled.len() < RECYCLED_KEPT {
        recycled.push(v);
    }
}

pub(crate) fn slice_block(b: &Block, start: &[u64], shape: &[usize]) -> Block {
    let s: Vec<u64> = b.shape.iter().map(|n| *n as u64).collect();
    let bytes = match &b.data {
        Data::Bool(v) => v.iter().map(|x| u8::from(*x)).collect::<Vec<u8>>(),
        _ => Vec::new(),
    };
    let shape64: Vec<u64> = shape.iter().map(|n| *n as u64).collect();
    let data = match &b.data {
        Data::Bool(_) => {
            let mut out = vec![0u8; shape.iter().product()];
            crate::region::copy_region(&bytes, &s, &vec![0; s.len()], &mut out, &shape64, start, 1);
            Data::Bool(out.into_iter().map(|x| x != 0).collect())
        }
        Data::F32(v) => {
            let mut out = vec![0f32; shape.iter().product()];
            copy_typed(v, &s, &mut out, &shape64, start);
            Data::F32(out)
        }
        Data::F64(v) => {
            let mut out = vec![0f64; shape.iter().product()];
            copy_typed(v, &s, &mut out, &shape64, start);
            Data::F64(out)
        }
        Data::I64(v) => {
            let mut out = vec![0i64; shape.iter().product()];
            copy_typed(v, &s, &mut out, &shape64, start);
            Data::I64(out)
        }
        Data::U64(v) => {
            let mut out = vec![0u64; shape.iter().product()];
            copy_typed(v, &s, &mut out, &shape64, start);
            Data::U64(out)
        }
    };
    Block {
        dims: b.dims.clone(),
        shape: shape.to_vec(),
        data,
    }
}

fn copy_typed<T: Copy>(
    src: &[T],
    src_shape: &[u64],
    dst: &mut [T],
    dst_shape: &[u64],
    dst_start: &[u64],
) {
    // Row-wise copy through the generic byte copier would need unsafe casts; index directly.
    let nd = src_shape.len();
    if nd == 0 {
        dst[0] = src[0];
        return;
    }
    let mut sstr = vec![1usize; nd];
    for d in (0..nd - 1).rev() {
        sstr[d] = sstr[d + 1] * usize::try_from(src_shape[d + 1]).unwrap_or(0);
    }
    let n: usize = dst.len();
    let mut idx = vec![0u64; nd];
    for slot in dst.iter_mut().take(n) {
        let mut o = 0usize;
        for d in 0..nd {
            o += usize::try_from(idx[d] + dst_start[d]).unwrap_or(0) * sstr[d];
        }
        *slot = src[o];
        for d in (0..nd).rev() {
            idx[d] += 1;
            if idx[d] < dst_shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// The runs of consecutive positions in `positions` (each one more than the one before it), as
/// ranges of indices into `positions`, in order.
pub(crate) fn runs<T>(positions: &[T]) -> impl Iterator<Item = Range<usize>> + '_
where
    T: Copy + PartialEq + std::ops::Add<Output = T> + From<u8>,
{
    let mut j = 0;
    std::iter::from_fn(move || {
        if j >= positions.len() {
            return None;
        }
        let mut k = j + 1;
        while k < positions.len() && positions[k] == positions[k - 1] + T::from(1) {
            k += 1;
        }
        let run = j..k;
        j = k;
        Some(run)
    })
}

pub(crate) fn take_axis(b: &Block, axis: usize, rel: &[usize]) -> Block {
    /// Copy the positions `rel` of `axis` as runs of consecutive positions, each a block of
    /// contiguous memory.
    fn gather<T: Copy>(v: &[T], outer: usize, len: usize, inner: usize, rel: &[usize]) -> Vec<T> {
        let mut out = Vec::with_capacity(outer * rel.len() * inner);
        for o in 0..outer {
            for run in runs(rel) {
                let from = (o * len + rel[run.start]) * inner;
                out.extend_from_slice(&v[from..from + run.len() * inner]);
            }
        }
        out
    }
    let outer: usize = b.shape[..axis].iter().product();
    let inner: usize = b.shape[axis + 1..].iter().product();
    let len = b.shape[axis];
    let data = crate::plan::each_data!(&b.data, v => gather(v, outer, len, inner, rel));
    let mut shape = b.shape.clone();
    shape[axis] = rel.len();
    Block {
        dims: b.dims.clone(),
        shape,
        data,
    }
}

#[allow(clippy::cast_possible_truncation)]
pub(crate) fn decode_raw(raw: &crate::dtype::RawArray, dec: &CfDecoding, vtype: VType) -> Data {
    let n = raw.len();
    // Masking a NaN fill value in float data changes nothing: read it as it is.
    let plain = dec.is_identity() || dec.is_nan_mask_only();
    if plain && raw.dtype == DType::Float32 && vtype == VType::F32 {
        let mut out = Vec::with_capacity(n);
        for c in raw.bytes.chunks_exact(4) {
            out.push(f32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
        }
        return Data::F32(out);
    }
    if dec.is_identity() && raw.dtype == DType::Bool {
        return Data::Bool(raw.bytes.iter().map(|b| *b != 0).collect());
    }
    // 64-bit integers read as they are stay exact (an `f64` holds them only up to 2^53).
    if dec.is_identity() && vtype == VType::Int(raw.dtype) {
        let words = raw.bytes.chunks_exact(8).map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            a
        });
        match raw.dtype {
            DType::Int64 => return Data::I64(words.map(i64::from_ne_bytes).collect()),
            DType::UInt64 => return Data::U64(words.map(u64::from_ne_bytes).collect()),
            _ => {}
        }
    }
    if plain && raw.dtype == DType::Float64 && vtype == VType::F64 {
        return Data::F64(
            raw.bytes
                .chunks_exact(8)
                .map(|c| f64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        );
    }
    if vtype == VType::F32 {
        // Into a recycled buffer of the worker: a fresh one costs page faults and zeroing.
        let mut out = RECYCLED_F32.with(|r| reuse(&mut r.borrow_mut(), n));
        if plain {
            raw.map_f64_into(&mut out, |x| x as f32);
        } else if dec.scale_factor.is_some() || dec.add_offset.is_some() {
            // Packed values unpacked in single precision, as NumPy does for a float32 result.
            raw.map_f64_into(&mut out, |x| dec.decode_number_f32(x).unwrap_or(f32::NAN));
        } else {
            // One pass from the stored type (an `f64` decoded value rounded once).
            raw.map_f64_into(&mut out, |x| {
                dec.decode_number(x).map_or(f32::NAN, |v| v as f32)
            });
        }
        return Data::F32(out);
    }
    match (vtype, plain) {
        (VType::Bool, true) => Data::Bool(raw.map_f64(|x| x != 0.0)),
        (VType::Bool, false) => {
            Data::Bool(raw.map_f64(|x| dec.decode_number(x).is_none_or(|v| v != 0.0)))
        }
        (_, true) => Data::F64(raw.to_f64_vec()),
        (_, false) => Data::F64(raw.map_f64(|x| dec.decode_number(x).unwrap_or(f64::NAN))),
    }
}

pub(crate) fn unary(op: UnOp, d: Data, out: VType) -> Data {
    let nan_test = |d: &Data, want_nan: bool| -> Vec<bool> {
        match d {
            Data::F32(v) => v.iter().map(|x| x.is_nan() == want_nan).collect(),
            Data::F64(v) => v.iter().map(|x| x.is_nan() == want_nan).collect(),
            other => vec![!want_nan; other.len()],
        }
    };
    match op {
        // `~` of integers: bitwise, as NumPy's `invert`.
        UnOp::Not if matches!(out, VType::Int(_)) => {
            #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
            let v = d
                .into_f64()
                .into_iter()
                .map(|x| !(x as i128) as f64)
                .collect();
            Data::F64(v)
        }
        UnOp::Not => {
            let mut v = d.into_bool();
            v.iter_mut().for_each(|b| *b = !*b);
            Data::Bool(v)
        }
        UnOp::IsNan => Data::Bool(nan_test(&d, true)),
        UnOp::NotNull => Data::Bool(nan_test(&d, false)),
        // Float32 values are computed in single precision, as numpy does; the rest in double.
        _ => match d {
            Data::F32(mut v) => {
                unary_f32(op, &mut v);
                Data::F32(v)
            }
            other => {
                let mut v = other.into_f64();
                unary_f64(op, &mut v);
                Data::F64(v)
            }
        },
    }
    .convert_if_needed(out)
    .wrapped(out)
}

/// A float function `op` applied in place to float32 values (`log10`, `sin` and `cos` through
/// double precision). Not for the functions whose result is boolean, which leave `v` as it is.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn unary_f32(op: UnOp, v: &mut [f32]) {
    let map = |v: &mut [f32], f: fn(f32) -> f32| v.iter_mut().for_each(|x| *x = f(*x));
    match op {
        UnOp::Neg => map(v, |x| -x),
        UnOp::Abs => map(v, f32::abs),
        // NaN passes through as it is: libm's special-case path for it is a slow call.
        UnOp::Log => skip_nan_runs(v, f32::is_nan, f32::ln),
        UnOp::Exp => map(v, f32::exp),
        UnOp::Sqrt => map(v, f32::sqrt),
        UnOp::Log10 => map(v, |x| f64::from(x).log10() as f32),
        UnOp::Sin => map(v, |x| f64::from(x).sin() as f32),
        UnOp::Cos => map(v, |x| f64::from(x).cos() as f32),
        UnOp::Not | UnOp::IsNan | UnOp::NotNull => {}
    }
}

/// [`unary_f32`] for float64 values.
pub(crate) fn unary_f64(op: UnOp, v: &mut [f64]) {
    let map = |v: &mut [f64], f: fn(f64) -> f64| v.iter_mut().for_each(|x| *x = f(*x));
    match op {
        UnOp::Neg => map(v, |x| -x),
        UnOp::Abs => map(v, f64::abs),
        UnOp::Log => skip_nan_runs(v, f64::is_nan, f64::ln),
        UnOp::Exp => map(v, f64::exp),
        UnOp::Sqrt => map(v, f64::sqrt),
        UnOp::Log10 => map(v, f64::log10),
        UnOp::Sin => map(v, f64::sin),
        UnOp::Cos => map(v, f64::cos),
        UnOp::Not | UnOp::IsNan | UnOp::NotNull => {}
    }
}

/// `f` applied in place to the values that are not NaN, run by run. (A loop testing each value
/// would not do: the compiler, free to call `f` on any value, calls it on four at a time, NaNs
/// included, and keeps the NaNs afterwards.)
fn skip_nan_runs<T: Copy>(v: &mut [T], is_nan: impl Fn(T) -> bool, f: impl Fn(T) -> T) {
    let mut i = 0;
    while i < v.len() {
        while i < v.len() && is_nan(v[i]) {
            i += 1;
        }
        let start = i;
        while i < v.len() && !is_nan(v[i]) {
            i += 1;
        }
        v[start..i].iter_mut().for_each(|x| *x = f(*x));
    }
}

/// Element `i` of an operand of `n` elements, or its single value when it is a scalar.
#[inline]
fn at<T: Copy>(v: &[T], i: usize) -> T {
    if v.len() == 1 {
        v[0]
    } else {
        v[i]
    }
}

/// `f(x[i], y[i])` for `n` elements, either operand possibly a single value.
fn zip_map<A: Copy, B: Copy, R>(x: &[A], y: &[B], n: usize, f: impl Fn(A, B) -> R) -> Vec<R> {
    match (x.len() == n, y.len() == n) {
        (true, true) => x.iter().zip(y).map(|(a, b)| f(*a, *b)).collect(),
        (true, false) => {
            let b = at(y, 0);
            x.iter().map(|a| f(*a, b)).collect()
        }
        (false, true) => {
            let a = at(x, 0);
            y.iter().map(|b| f(a, *b)).collect()
        }
        (false, false) => (0..n).map(|i| f(at(x, i), at(y, i))).collect(),
    }
}

#[allow(clippy::float_cmp)]
pub(crate) fn binary(
    op: BinOp,
    x: &Data,
    y: &Data,
    tx: VType,
    ty: VType,
    out: VType,
    n: usize,
) -> Data {
    let _ = (tx, ty);
    let and = op == BinOp::And;
    if op.is_logical() && out == VType::Bool {
        let (a, b) = (x.to_bool(), y.to_bool());
        return Data::Bool(zip_map(&a, &b, n, |p, q| if and { p && q } else { p || q }));
    }
    if op.is_logical() {
        // Integers: bitwise, in two's complement, as NumPy.
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let f = |a: f64, b: f64| {
            let (a, b) = (a as i128, b as i128);
            (if and { a & b } else { a | b }) as f64
        };
        return Data::F64(zip_map(&x.to_f64(), &y.to_f64(), n, f)).wrapped(out);
    }
    if op.is_comparison() {
        let cmp = |a: f64, b: f64| match op {
            BinOp::Eq => a == b,
            BinOp::Ne => a != b,
            BinOp::Lt => a < b,
            BinOp::Le => a <= b,
            BinOp::Gt => a > b,
            _ => a >= b,
        };
        // Compare float32 with float32 when both sides are single precision.
        if let (Data::F32(a), Data::F32(b)) = (x, y) {
            return Data::Bool(zip_map(a, b, n, |p, q| cmp(f64::from(p), f64::from(q))));
        }
        return Data::Bool(zip_map(&x.to_f64(), &y.to_f64(), n, cmp));
    }
    if out == VType::F32 {
        let g = |p: f32, q: f32| match op {
            BinOp::Add => p + q,
            BinOp::Sub => p - q,
            BinOp::Mul => p * q,
            _ => p / q,
        };
        return Data::F32(zip_map(&x.to_f32(), &y.to_f32(), n, g));
    }
    let f = |a: f64, b: f64| match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        _ => a / b,
    };
    Data::F64(zip_map(&x.to_f64(), &y.to_f64(), n, f))
        .convert_if_needed(out)
        .wrapped(out)
}

/// `cond ? x : y`, elementwise; `y` may be a single value.
///
/// A condition shorter than `x` covers its trailing dimensions: it applies to each slab of
/// `cond.len()` values in turn (a mask over lat × lon for every time step), without being
/// repeated first.
pub(crate) fn select(cond: &[bool], x: Data, y: &Data) -> Data {
    fn pick<T: Copy>(cond: &[bool], mut a: Vec<T>, b: &[T]) -> Vec<T> {
        let slab = cond.len().max(1);
        if b.len() == 1 && a.len() != 1 {
            let drop = false_runs(cond);
            for part in a.chunks_mut(slab) {
                let n = part.len();
                if n == slab {
                    fill_runs(part, &drop, b[0]);
                } else {
                    fill_runs(part, &false_runs(&cond[..n]), b[0]);
                }
            }
        } else {
            for (part, bs) in a.chunks_mut(slab).zip(b.chunks(slab)) {
                for ((slot, c), v) in part.iter_mut().zip(cond).zip(bs) {
                    *slot = if *c { *slot } else { *v };
                }
            }
        }
        a
    }
    match (x, y) {
        (Data::F32(a), Data::F32(b)) => Data::F32(pick(cond, a, b)),
        (Data::F64(a), Data::F64(b)) => Data::F64(pick(cond, a, b)),
        (Data::Bool(a), Data::Bool(b)) => Data::Bool(pick(cond, a, b)),
        (Data::I64(a), Data::I64(b)) => Data::I64(pick(cond, a, b)),
        (Data::U64(a), Data::U64(b)) => Data::U64(pick(cond, a, b)),
        (a, b) => Data::F64(pick(cond, a.into_f64(), &b.to_f64())),
    }
}

/// The runs of consecutive `false` in `keep`: a mask applied to many slabs of values sets only
/// these (a mask of mostly `true`, as an ocean mask is, then costs next to nothing).
pub(crate) fn false_runs(keep: &[bool]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < keep.len() {
        while i < keep.len() && keep[i] {
            i += 1;
        }
        let start = i;
        while i < keep.len() && !keep[i] {
            i += 1;
        }
        if start < i {
            out.push(start..i);
        }
    }
    out
}

/// Set the runs `drop` of `values` to `other`.
pub(crate) fn fill_runs<T: Copy>(values: &mut [T], drop: &[Range<usize>], other: T) {
    for r in drop {
        values[r.clone()].fill(other);
    }
}

/// Set the elements of a C-ordered buffer of shape `full` that lie outside the block of shape
/// `got` at its start (each of `got`'s dimensions at most `full`'s) to `fill`.
pub(crate) fn fill_outside<T: Copy>(buf: &mut [T], got: &[usize], full: &[usize], fill: T) {
    let Some((&last, outer)) = full.split_last() else {
        return;
    };
    if got == full || last == 0 {
        return;
    }
    let got_row = got.last().copied().unwrap_or(0);
    let mut idx = vec![0usize; outer.len()];
    for row in buf.chunks_exact_mut(last) {
        if idx.iter().zip(got).all(|(i, g)| i < g) {
            row[got_row..].fill(fill);
        } else {
            row.fill(fill);
        }
        for d in (0..outer.len()).rev() {
            idx[d] += 1;
            if idx[d] < outer[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// Call `f(row, offset)` for each row (along the last dimension) of a block of shape `got` held
/// at the start of each dimension of a C-ordered buffer of shape `full`, in order: `row` counts
/// the block's rows, `offset` is where the row starts in the buffer.
pub(crate) fn padded_rows(got: &[usize], full: &[usize], mut f: impl FnMut(usize, usize)) {
    let Some((_, outer)) = got.split_last() else {
        f(0, 0);
        return;
    };
    if got.contains(&0) {
        return;
    }
    let mut strides = vec![0usize; outer.len()];
    let mut stride = full.last().copied().unwrap_or(1);
    for d in (0..outer.len()).rev() {
        strides[d] = stride;
        stride *= full[d];
    }
    let mut idx = vec![0usize; outer.len()];
    for r in 0..outer.iter().product() {
        f(r, idx.iter().zip(&strides).map(|(i, s)| i * s).sum());
        for d in (0..outer.len()).rev() {
            idx[d] += 1;
            if idx[d] < outer[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(stored: DType) -> CfDecoding {
        CfDecoding {
            stored,
            fill_values: Vec::new(),
            scale_factor: None,
            add_offset: None,
            unsigned: false,
            decoded: crate::cf::Decoded::Numeric(stored),
            missing_value_only: false,
            written: serde_json::Map::new(),
        }
    }

    #[test]
    fn sixty_four_bit_integers_decode_and_move_exactly() {
        let big = [i64::MAX, (1 << 62) + 1, -(1 << 60) - 3];
        let raw = crate::dtype::RawArray {
            dtype: DType::Int64,
            shape: vec![3],
            bytes: big.iter().flat_map(|x| x.to_ne_bytes()).collect(),
        };
        let d = decode_raw(&raw, &plain(DType::Int64), VType::Int(DType::Int64));
        assert_eq!(d, Data::I64(big.to_vec()));
        let unsigned = [u64::MAX, (1 << 63) + 5];
        let raw = crate::dtype::RawArray {
            dtype: DType::UInt64,
            shape: vec![2],
            bytes: unsigned.iter().flat_map(|x| x.to_ne_bytes()).collect(),
        };
        let d = decode_raw(&raw, &plain(DType::UInt64), VType::Int(DType::UInt64));
        assert_eq!(d, Data::U64(unsigned.to_vec()));
        // Moved: a selection along an axis, a slice, a broadcast and a choice keep every bit.
        let b = Block {
            dims: vec!["t".into()],
            shape: vec![2],
            data: d,
        };
        assert_eq!(
            take_axis(&b, 0, &[1, 0]).data,
            Data::U64(vec![(1 << 63) + 5, u64::MAX])
        );
        assert_eq!(
            slice_block(&b, &[1], &[1]).data,
            Data::U64(vec![(1 << 63) + 5])
        );
        let wide = b.expand(&["s".to_string(), "t".to_string()], &[2, 2]);
        assert_eq!(
            wide,
            Data::U64(vec![u64::MAX, (1 << 63) + 5, u64::MAX, (1 << 63) + 5])
        );
        let picked = select(
            &[true, false],
            Data::I64(vec![1 << 62, 1]),
            &Data::I64(vec![7, (1 << 62) + 1]),
        );
        assert_eq!(picked, Data::I64(vec![1 << 62, (1 << 62) + 1]));
        // Computed on: as `f64`, as before.
        assert_eq!(Data::I64(vec![3]).convert(VType::F64), Data::F64(vec![3.0]));
    }

    #[test]
    fn recycled_buffers_are_reused_by_size() {
        let mut pool = vec![vec![1f32; 8], vec![2f32; 4], Vec::with_capacity(16)];
        // The one of the right length, as it is.
        assert_eq!(reuse(&mut pool, 4), vec![2f32; 4]);
        // Else the smallest large enough, resized.
        let v = reuse(&mut pool, 6);
        assert_eq!((v.len(), v.capacity() >= 6), (6, true));
        assert_eq!(pool.len(), 1);
        // None large enough: a new one.
        assert_eq!(reuse(&mut pool, 32), vec![0f32; 32]);
        assert_eq!(pool.len(), 1);
        // A worker keeps a few.
        for _ in 0..10 {
            recycle(Data::F32(vec![0.0; 3]));
        }
        RECYCLED_F32.with(|r| assert_eq!(r.borrow().len(), RECYCLED_KEPT));
    }

    #[test]
    fn scalar_operands_agree_with_broadcast_ones() {
        let x = Data::F32(vec![1.0, f32::NAN, 3.0, -2.0]);
        let c = Data::F32(vec![2.0]);
        let c4 = Data::F32(vec![2.0; 4]);
        for op in [BinOp::Add, BinOp::Div, BinOp::Lt, BinOp::Eq] {
            let out = if op.is_comparison() {
                VType::Bool
            } else {
                VType::F32
            };
            let (tx, tc) = (VType::F32, VType::F32);
            // compared as text, where NaN equals NaN
            assert_eq!(
                format!("{:?}", binary(op, &x, &c, tx, tc, out, 4)),
                format!("{:?}", binary(op, &x, &c4, tx, tc, out, 4))
            );
            assert_eq!(
                format!("{:?}", binary(op, &c, &x, tc, tx, out, 4)),
                format!("{:?}", binary(op, &c4, &x, tc, tx, out, 4))
            );
        }
        let cond = [true, false, false, true];
        let nan = Data::F32(vec![f32::NAN]);
        let Data::F32(v) = select(&cond, x.clone(), &nan) else {
            panic!("type changed")
        };
        assert_eq!(v[0].to_bits(), 1f32.to_bits());
        assert!(v[1].is_nan() && v[2].is_nan());
        assert_eq!(v[3].to_bits(), (-2f32).to_bits());
    }

    #[test]
    fn log_keeps_each_nan_and_takes_the_log_of_the_rest() {
        let payload = f32::from_bits(0x7fc0_1234);
        let x: Vec<f32> = vec![
            f32::NAN,
            1.0,
            2.5,
            payload,
            f32::NAN,
            10.0,
            0.0,
            -1.0,
            f32::INFINITY,
            f32::NAN,
            7.0,
        ];
        let Data::F32(got) = unary(UnOp::Log, Data::F32(x.clone()), VType::F32) else {
            panic!("float32 in, float32 out");
        };
        for (a, b) in x.iter().zip(&got) {
            if a.is_nan() {
                assert_eq!(a.to_bits(), b.to_bits(), "a NaN passes through as it is");
            } else {
                assert_eq!(a.ln().to_bits(), b.to_bits(), "log({a})");
            }
        }
        let x64: Vec<f64> = x.iter().map(|v| f64::from(*v)).collect();
        let Data::F64(got) = unary(UnOp::Log, Data::F64(x64.clone()), VType::F64) else {
            panic!("float64 in, float64 out");
        };
        for (a, b) in x64.iter().zip(&got) {
            let want = if a.is_nan() { *a } else { a.ln() };
            assert_eq!(want.to_bits(), b.to_bits(), "log({a})");
        }
    }

    #[test]
    fn a_condition_over_trailing_dimensions_applies_to_every_slab() {
        // cond over (lat, lon) = 2 values, x over (time, lat, lon) = 3 x 2 values.
        let cond = [true, false];
        let x = Data::F32(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let Data::F32(v) = select(&cond, x.clone(), &Data::F32(vec![f32::NAN])) else {
            panic!("type changed")
        };
        assert_eq!(v[0], 1.0);
        assert!(v[1].is_nan());
        assert_eq!(v[2], 3.0);
        assert!(v[3].is_nan());
        assert_eq!(v[4], 5.0);
        assert!(v[5].is_nan());
        let other = Data::F32(vec![-1.0, -2.0, -3.0, -4.0, -5.0, -6.0]);
        let Data::F32(v) = select(&cond, x, &other) else {
            panic!("type changed")
        };
        assert_eq!(v, vec![1.0, -2.0, 3.0, -4.0, 5.0, -6.0]);
        // A last slab cut short, and a condition of runs.
        let cond = [false, true, true, false, false];
        let x = Data::F32((1..=12).map(|i| i as f32).collect());
        let Data::F32(v) = select(&cond, x, &Data::F32(vec![0.0])) else {
            panic!("type changed")
        };
        let want = [0, 2, 3, 0, 0, 0, 7, 8, 0, 0, 0, 12];
        assert_eq!(v, want.map(|i| i as f32).to_vec());
    }

    #[test]
    fn take_copies_runs_of_positions() {
        let b = Block {
            dims: vec!["t".into(), "x".into()],
            shape: vec![5, 2],
            data: Data::F64((0..10).map(f64::from).collect()),
        };
        let t = take_axis(&b, 0, &[0, 1, 3, 4, 2]);
        assert_eq!(t.shape, vec![5, 2]);
        assert_eq!(
            t.data,
            Data::F64(vec![0.0, 1.0, 2.0, 3.0, 6.0, 7.0, 8.0, 9.0, 4.0, 5.0])
        );
        let t = take_axis(&b, 1, &[1]);
        assert_eq!(t.data, Data::F64(vec![1.0, 3.0, 5.0, 7.0, 9.0]));
    }
}
