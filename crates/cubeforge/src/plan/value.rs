//! Values: their types ([`VType`]), a block's values ([`Data`]) and values over named
//! dimensions ([`Block`]), with broadcasting by dimension name and NumPy's type promotion.

use crate::dtype::DType;

/// The type of values a node produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VType {
    /// Booleans.
    Bool,
    /// Integers of a stored type (computed in `f64`, exactly up to 2^53; 64-bit integers that are
    /// only read and moved stay exact, as [`Data::I64`] / [`Data::U64`]).
    Int(DType),
    /// 32-bit floats.
    F32,
    /// 64-bit floats.
    F64,
}

impl VType {
    /// The dtype written to Zarr.
    #[must_use]
    pub fn dtype(self) -> DType {
        match self {
            VType::Bool => DType::Bool,
            VType::Int(d) => d,
            VType::F32 => DType::Float32,
            VType::F64 => DType::Float64,
        }
    }

    /// The value type of a dtype.
    #[must_use]
    pub fn of(d: DType) -> VType {
        match d {
            DType::Bool => VType::Bool,
            DType::Float16 | DType::Float32 => VType::F32,
            DType::Float64 => VType::F64,
            other => VType::Int(other),
        }
    }

    /// Whether values of this type are floats.
    #[must_use]
    pub fn is_float(self) -> bool {
        matches!(self, VType::F32 | VType::F64)
    }
}

/// Block data.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// Booleans.
    Bool(Vec<bool>),
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 64-bit floats (and integers computed on).
    F64(Vec<f64>),
    /// 64-bit signed integers as stored, exact beyond 2^53 (read and moved, not computed on:
    /// arithmetic takes them as `f64`).
    I64(Vec<i64>),
    /// 64-bit unsigned integers as stored, exact beyond 2^53 (as [`Data::I64`]).
    U64(Vec<u64>),
}

/// `$e` applied to the values of every variant of `$data`, keeping the variant: `$v` is the
/// variant's vector (or a reference to it), so `$e` is written once for every element type.
macro_rules! each_data {
    ($data:expr, $v:ident => $e:expr) => {
        match $data {
            Data::Bool($v) => Data::Bool($e),
            Data::F32($v) => Data::F32($e),
            Data::F64($v) => Data::F64($e),
            Data::I64($v) => Data::I64($e),
            Data::U64($v) => Data::U64($e),
        }
    };
}
pub(crate) use each_data;

impl Data {
    /// Number of values.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Data::Bool(v) => v.len(),
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::U64(v) => v.len(),
        }
    }

    /// Whether there are no values.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i` as `f64`.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn get_f64(&self, i: usize) -> f64 {
        match self {
            Data::Bool(v) => f64::from(u8::from(v[i])),
            Data::F32(v) => f64::from(v[i]),
            Data::F64(v) => v[i],
            Data::I64(v) => v[i] as f64,
            Data::U64(v) => v[i] as f64,
        }
    }

    /// The values as booleans (non-zero is true, NaN included).
    #[must_use]
    pub fn to_bool(&self) -> Vec<bool> {
        match self {
            Data::Bool(v) => v.clone(),
            Data::F32(v) => v.iter().map(|x| *x != 0.0).collect(),
            Data::F64(v) => v.iter().map(|x| *x != 0.0).collect(),
            Data::I64(v) => v.iter().map(|x| *x != 0).collect(),
            Data::U64(v) => v.iter().map(|x| *x != 0).collect(),
        }
    }

    /// The values as `f32`.
    #[must_use]
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            Data::Bool(v) => v.iter().map(|x| f32::from(u8::from(*x))).collect(),
            Data::F32(v) => v.clone(),
            Data::F64(v) => v.iter().map(|x| *x as f32).collect(),
            Data::I64(v) => v.iter().map(|x| *x as f32).collect(),
            Data::U64(v) => v.iter().map(|x| *x as f32).collect(),
        }
    }

    /// The values as `f64`.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            Data::Bool(v) => v.iter().map(|x| f64::from(u8::from(*x))).collect(),
            Data::F32(v) => v.iter().map(|x| f64::from(*x)).collect(),
            Data::F64(v) => v.clone(),
            Data::I64(v) => v.iter().map(|x| *x as f64).collect(),
            Data::U64(v) => v.iter().map(|x| *x as f64).collect(),
        }
    }

    /// The values as booleans, without copying when they already are.
    #[must_use]
    pub fn into_bool(self) -> Vec<bool> {
        match self {
            Data::Bool(v) => v,
            other => other.to_bool(),
        }
    }

    /// The values as `f64`, without copying when they already are.
    #[must_use]
    pub fn into_f64(self) -> Vec<f64> {
        match self {
            Data::F64(v) => v,
            other => other.to_f64(),
        }
    }

    /// The values as type `to` (integers truncated toward zero and clamped, NaN as 0).
    #[must_use]
    pub fn convert(&self, to: VType) -> Data {
        match (self, to) {
            (Data::I64(v), VType::Int(DType::Int64)) => return Data::I64(v.clone()),
            (Data::U64(v), VType::Int(DType::UInt64)) => return Data::U64(v.clone()),
            _ => {}
        }
        match to {
            VType::Bool => Data::Bool(self.to_bool()),
            VType::F32 => Data::F32(self.to_f32()),
            VType::F64 => Data::F64(self.to_f64()),
            VType::Int(d) => {
                // numpy's astype: truncation toward zero, NaN to the type's minimum is undefined;
                // cubeforge writes 0 for NaN.
                Data::F64(
                    self.to_f64()
                        .into_iter()
                        .map(|x| {
                            if x.is_nan() {
                                0.0
                            } else {
                                clamp_int(x.trunc(), d)
                            }
                        })
                        .collect(),
                )
            }
        }
    }
}

#[allow(clippy::cast_precision_loss)]
fn clamp_int(x: f64, d: DType) -> f64 {
    let (lo, hi) = match d {
        DType::Int8 => (f64::from(i8::MIN), f64::from(i8::MAX)),
        DType::Int16 => (f64::from(i16::MIN), f64::from(i16::MAX)),
        DType::Int32 => (f64::from(i32::MIN), f64::from(i32::MAX)),
        DType::UInt8 => (0.0, f64::from(u8::MAX)),
        DType::UInt16 => (0.0, f64::from(u16::MAX)),
        DType::UInt32 => (0.0, f64::from(u32::MAX)),
        DType::UInt64 => (0.0, u64::MAX as f64),
        _ => (i64::MIN as f64, i64::MAX as f64),
    };
    x.clamp(lo, hi)
}

/// Values over named dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// Dimension names.
    pub dims: Vec<String>,
    /// Sizes.
    pub shape: Vec<usize>,
    /// Values, C order.
    pub data: Data,
}

impl Block {
    /// A single value without dimensions.
    #[must_use]
    pub fn scalar(data: Data) -> Block {
        Block {
            dims: vec![],
            shape: vec![],
            data,
        }
    }

    /// Whether this is a single value without dimensions.
    #[must_use]
    pub fn is_scalar(&self) -> bool {
        self.dims.is_empty()
    }

    /// Expand to `dims` (a superset of this block's dimensions, in any order) and `shape`,
    /// without copying when the block already has them.
    #[must_use]
    pub fn into_expanded(self, dims: &[String], shape: &[usize]) -> Data {
        if self.dims == dims {
            return self.data;
        }
        self.expand(dims, shape)
    }

    /// Expand to `dims` (a superset of this block's dimensions, in any order) and `shape`.
    #[must_use]
    pub fn expand(&self, dims: &[String], shape: &[usize]) -> Data {
        if self.dims == dims {
            return self.data.clone();
        }
        // Fast paths: the block's dimensions are the trailing (a mask over lat × lon broadcast
        // along time) or the leading (a series along time broadcast over lat × lon) dimensions of
        // the result, in the same order.
        let k = self.dims.len();
        let nd = dims.len();
        if k <= nd && dims[nd - k..] == self.dims[..] {
            let outer: usize = shape[..nd - k].iter().product();
            return repeat_block(&self.data, outer, 1);
        }
        if k <= nd && dims[..k] == self.dims[..] {
            let inner: usize = shape[k..].iter().product();
            return repeat_block(&self.data, 1, inner);
        }
        let n: usize = shape.iter().product();
        // stride of each output axis in this block (0 when the block lacks the dimension)
        let strides = strides_in(dims, &self.dims, &self.shape);
        let mut idx = vec![0usize; dims.len()];
        let mut src = 0usize;
        let mut map = Vec::with_capacity(n);
        for _ in 0..n {
            map.push(src);
            // increment odometer
            for a in (0..dims.len()).rev() {
                idx[a] += 1;
                src += strides[a];
                if idx[a] < shape[a] {
                    break;
                }
                src -= strides[a] * idx[a];
                idx[a] = 0;
            }
        }
        each_data!(&self.data, v => map.iter().map(|&i| v[i]).collect())
    }
}

/// The block repeated `outer` times, each element repeated `inner` times.
fn repeat_block(data: &Data, outer: usize, inner: usize) -> Data {
    fn rep<T: Copy>(v: &[T], outer: usize, inner: usize) -> Vec<T> {
        let mut out = Vec::with_capacity(v.len() * outer * inner);
        for _ in 0..outer {
            if inner == 1 {
                out.extend_from_slice(v);
            } else {
                for x in v {
                    out.extend(std::iter::repeat_n(*x, inner));
                }
            }
        }
        out
    }
    each_data!(data, v => rep(v, outer, inner))
}

impl Block {
    /// This block expanded to `dims` and `shape` (see [`Block::expand`]).
    #[must_use]
    pub fn with_expand(self, dims: &[String], shape: &[usize]) -> Block {
        let data = self.expand(dims, shape);
        Block {
            dims: dims.to_vec(),
            shape: shape.to_vec(),
            data,
        }
    }
}

/// The stride, in a C-ordered block with dimensions `block_dims` and shape `block_shape`, of
/// each of `dims` (0 for a dimension the block lacks).
pub(crate) fn strides_in(
    dims: &[String],
    block_dims: &[String],
    block_shape: &[usize],
) -> Vec<usize> {
    let mut own = vec![1usize; block_dims.len()];
    for d in (0..block_dims.len().saturating_sub(1)).rev() {
        own[d] = own[d + 1] * block_shape[d + 1];
    }
    dims.iter()
        .map(|d| block_dims.iter().position(|x| x == d).map_or(0, |p| own[p]))
        .collect()
}

impl Data {
    /// Values of type `to`: moved when they already are (integers are always truncated and
    /// clamped, as a cast does).
    #[must_use]
    pub fn into_vtype(self, to: VType) -> Data {
        match (&self, to) {
            (Data::Bool(_), VType::Bool)
            | (Data::F32(_), VType::F32)
            | (Data::F64(_), VType::F64)
            | (Data::I64(_), VType::Int(DType::Int64))
            | (Data::U64(_), VType::Int(DType::UInt64)) => self,
            _ => self.convert(to),
        }
    }

    /// Integer values (held as `f64`) wrapped into the range of `to`, as NumPy's integer
    /// arithmetic wraps; values of other types as they are.
    #[must_use]
    pub fn wrapped(self, to: VType) -> Data {
        match (self, to) {
            (Data::F64(mut v), VType::Int(d)) => {
                if let Some((lo, hi)) = d.int_range() {
                    #[allow(clippy::cast_precision_loss)]
                    let (lo, hi) = (lo as f64, hi as f64);
                    if v.iter().any(|x| *x < lo || *x > hi) {
                        v.iter_mut().for_each(|x| *x = d.wrap(*x));
                    }
                }
                Data::F64(v)
            }
            (data, _) => data,
        }
    }

    /// Values of type `to`, moved when their representation already is that type's (booleans,
    /// `f32`, or `f64` for floats and integers alike: integer results are held as `f64` and
    /// truncated only by a cast or the writer).
    #[must_use]
    pub fn convert_if_needed(self, to: VType) -> Data {
        let ok = matches!(
            (&self, to),
            (Data::Bool(_), VType::Bool)
                | (Data::F32(_), VType::F32)
                | (Data::F64(_), VType::F64 | VType::Int(_))
                | (Data::I64(_), VType::Int(DType::Int64))
                | (Data::U64(_), VType::Int(DType::UInt64))
        );
        if ok {
            self
        } else {
            self.convert(to)
        }
    }
}

/// The type numpy gives an elementwise result of `a` and `b`, where a literal constant is "weak"
/// (NumPy 2 / NEP 50): it takes the type of the array it meets unless it is of a higher kind. A
/// literal's type says its kind: `Bool` a Python bool, `Int` a Python int, a float a Python
/// float. So `uint8 * 2` is `uint8`, `uint8 * 2.5` and `bool + 1.5` `float64`, `float32 * 2`
/// `float32`, `bool + 1` `int64`.
#[must_use]
pub fn promote(a: VType, a_const: bool, b: VType, b_const: bool) -> VType {
    match (a_const, b_const) {
        (true, false) => weak(a, b),
        (false, true) => weak(b, a),
        _ => strong(a, b),
    }
}

/// The type of an array of type `array` with a literal of type `literal`.
fn weak(literal: VType, array: VType) -> VType {
    match literal {
        VType::Bool => array,
        VType::Int(_) if array == VType::Bool => VType::Int(DType::Int64),
        VType::Int(_) => array,
        VType::F32 | VType::F64 if array.is_float() => array,
        VType::F32 | VType::F64 => VType::F64,
    }
}

/// NumPy's promotion of two array types.
fn strong(a: VType, b: VType) -> VType {
    use VType as V;
    match (a, b) {
        (V::F64, _) | (_, V::F64) => V::F64,
        (V::F32, V::F32 | V::Bool) | (V::Bool, V::F32) => V::F32,
        (V::F32, V::Int(d)) | (V::Int(d), V::F32) => {
            if d.size() <= 2 {
                V::F32
            } else {
                V::F64
            }
        }
        (V::Int(x), V::Int(y)) => promote_ints(x, y),
        (V::Int(x), V::Bool) | (V::Bool, V::Int(x)) => V::Int(x),
        (V::Bool, V::Bool) => V::Bool,
    }
}

/// Two integer types: the wider of the same signedness; a signed type wide enough for both
/// otherwise (`uint8` and `int8` give `int16`), `float64` when none is (`uint64` and `int64`).
fn promote_ints(x: DType, y: DType) -> VType {
    let signed = |d: DType| d.int_range().is_some_and(|(lo, _)| lo < 0);
    let (s, u) = match (signed(x), signed(y)) {
        (a, b) if a == b => return VType::Int(if x.size() >= y.size() { x } else { y }),
        (true, _) => (x, y),
        _ => (y, x),
    };
    if s.size() > u.size() {
        return VType::Int(s);
    }
    match u.size() {
        1 => VType::Int(DType::Int16),
        2 => VType::Int(DType::Int32),
        4 => VType::Int(DType::Int64),
        _ => VType::F64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_fast_paths_agree_with_the_general_one() {
        let b = Block {
            dims: vec!["y".into(), "x".into()],
            shape: vec![2, 2],
            data: Data::F64(vec![1.0, 2.0, 3.0, 4.0]),
        };
        let dims = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        // trailing: repeated along t
        assert_eq!(
            b.expand(&dims(&["t", "y", "x"]), &[2, 2, 2]),
            Data::F64(vec![1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0])
        );
        // leading: each element repeated along t
        assert_eq!(
            b.expand(&dims(&["y", "x", "t"]), &[2, 2, 2]),
            Data::F64(vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0])
        );
        // general: a transpose
        assert_eq!(
            b.expand(&dims(&["x", "y"]), &[2, 2]),
            Data::F64(vec![1.0, 3.0, 2.0, 4.0])
        );
    }

    #[test]
    fn promotion_follows_numpy() {
        assert_eq!(promote(VType::F32, false, VType::F64, true), VType::F32);
        assert_eq!(
            promote(VType::Int(DType::UInt8), false, VType::F64, true),
            VType::F64
        );
        assert_eq!(promote(VType::F32, false, VType::F64, false), VType::F64);
        let int = |d| VType::Int(d);
        let lit = int(DType::Int64);
        assert_eq!(
            promote(int(DType::UInt8), false, lit, true),
            int(DType::UInt8)
        );
        assert_eq!(promote(lit, true, VType::F32, false), VType::F32);
        assert_eq!(promote(VType::Bool, false, lit, true), lit);
        assert_eq!(promote(VType::Bool, false, VType::F64, true), VType::F64);
        assert_eq!(promote(VType::Bool, false, VType::Bool, true), VType::Bool);
        assert_eq!(
            promote(int(DType::UInt8), false, int(DType::Int8), false),
            int(DType::Int16)
        );
        assert_eq!(
            promote(int(DType::Int32), false, int(DType::UInt16), false),
            int(DType::Int32)
        );
        assert_eq!(
            promote(int(DType::UInt32), false, int(DType::Int32), false),
            lit
        );
        assert_eq!(
            promote(int(DType::UInt64), false, int(DType::Int8), false),
            VType::F64
        );
        assert_eq!(
            promote(int(DType::UInt16), false, int(DType::UInt32), false),
            int(DType::UInt32)
        );
        assert_eq!(
            promote(VType::Int(DType::Int16), false, VType::F32, false),
            VType::F32
        );
    }
}
