//! Element types cubeforge computes with, and raw decoded array data.

use serde::Serialize;

/// A numeric element type, named as numpy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// `bool` (one byte, 0 or 1).
    Bool,
    /// `int8`.
    Int8,
    /// `int16`.
    Int16,
    /// `int32`.
    Int32,
    /// `int64`.
    Int64,
    /// `uint8`.
    UInt8,
    /// `uint16`.
    UInt16,
    /// `uint32`.
    UInt32,
    /// `uint64`.
    UInt64,
    /// `float16`.
    Float16,
    /// `float32`.
    Float32,
    /// `float64`.
    Float64,
}

impl DType {
    /// All types, for look-ups.
    pub const ALL: [DType; 12] = [
        DType::Bool,
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::UInt8,
        DType::UInt16,
        DType::UInt32,
        DType::UInt64,
        DType::Float16,
        DType::Float32,
        DType::Float64,
    ];

    /// numpy's name (`float32`, `uint8`, …).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::Int8 => "int8",
            DType::Int16 => "int16",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::UInt8 => "uint8",
            DType::UInt16 => "uint16",
            DType::UInt32 => "uint32",
            DType::UInt64 => "uint64",
            DType::Float16 => "float16",
            DType::Float32 => "float32",
            DType::Float64 => "float64",
        }
    }

    /// Parse numpy's name; also accepts the short forms `f4`, `i2`, `u1`, `b1`, … .
    #[must_use]
    pub fn from_name(name: &str) -> Option<DType> {
        let n = name.trim().trim_start_matches(['<', '>', '|', '=']);
        let by_code = match n {
            "b1" | "?" => Some(DType::Bool),
            "i1" => Some(DType::Int8),
            "i2" => Some(DType::Int16),
            "i4" => Some(DType::Int32),
            "i8" => Some(DType::Int64),
            "u1" => Some(DType::UInt8),
            "u2" => Some(DType::UInt16),
            "u4" => Some(DType::UInt32),
            "u8" => Some(DType::UInt64),
            "f2" => Some(DType::Float16),
            "f4" => Some(DType::Float32),
            "f8" => Some(DType::Float64),
            _ => None,
        };
        by_code.or_else(|| DType::ALL.into_iter().find(|d| d.name() == n))
    }

    /// Bytes per element.
    #[must_use]
    pub const fn size(self) -> usize {
        match self {
            DType::Bool | DType::Int8 | DType::UInt8 => 1,
            DType::Int16 | DType::UInt16 | DType::Float16 => 2,
            DType::Int32 | DType::UInt32 | DType::Float32 => 4,
            DType::Int64 | DType::UInt64 | DType::Float64 => 8,
        }
    }

    /// Whether this is a floating-point type.
    #[must_use]
    pub const fn is_float(self) -> bool {
        matches!(self, DType::Float16 | DType::Float32 | DType::Float64)
    }

    /// Whether this is a signed or unsigned integer type.
    #[must_use]
    pub const fn is_integer(self) -> bool {
        !self.is_float() && !matches!(self, DType::Bool)
    }

    /// The smallest and largest value of an integer type; `None` for the others.
    #[must_use]
    pub const fn int_range(self) -> Option<(i128, i128)> {
        Some(match self {
            DType::Int8 => (i8::MIN as i128, i8::MAX as i128),
            DType::Int16 => (i16::MIN as i128, i16::MAX as i128),
            DType::Int32 => (i32::MIN as i128, i32::MAX as i128),
            DType::Int64 => (i64::MIN as i128, i64::MAX as i128),
            DType::UInt8 => (0, u8::MAX as i128),
            DType::UInt16 => (0, u16::MAX as i128),
            DType::UInt32 => (0, u32::MAX as i128),
            DType::UInt64 => (0, u64::MAX as i128),
            _ => return None,
        })
    }

    /// `v`, an integer held as a float, wrapped into this integer type's range as NumPy's
    /// integer arithmetic wraps (`uint8` 200 × 2 is 144); other types leave it as it is.
    #[must_use]
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    pub fn wrap(self, v: f64) -> f64 {
        if !v.is_finite() {
            return v;
        }
        let i = v as i128;
        match self {
            DType::Int8 => f64::from(i as i8),
            DType::Int16 => f64::from(i as i16),
            DType::Int32 => f64::from(i as i32),
            DType::Int64 => (i as i64) as f64,
            DType::UInt8 => f64::from(i as u8),
            DType::UInt16 => f64::from(i as u16),
            DType::UInt32 => f64::from(i as u32),
            DType::UInt64 => (i as u64) as f64,
            _ => v,
        }
    }

    /// The unsigned type of the same width (for CF `_Unsigned = "true"`).
    #[must_use]
    pub const fn to_unsigned(self) -> DType {
        match self {
            DType::Int8 => DType::UInt8,
            DType::Int16 => DType::UInt16,
            DType::Int32 => DType::UInt32,
            DType::Int64 => DType::UInt64,
            other => other,
        }
    }

    /// The `zarrs` data type.
    #[must_use]
    pub fn to_zarrs(self) -> zarrs::array::DataType {
        use zarrs::array::data_type as dt;
        match self {
            DType::Bool => dt::bool(),
            DType::Int8 => dt::int8(),
            DType::Int16 => dt::int16(),
            DType::Int32 => dt::int32(),
            DType::Int64 => dt::int64(),
            DType::UInt8 => dt::uint8(),
            DType::UInt16 => dt::uint16(),
            DType::UInt32 => dt::uint32(),
            DType::UInt64 => dt::uint64(),
            DType::Float16 => dt::float16(),
            DType::Float32 => dt::float32(),
            DType::Float64 => dt::float64(),
        }
    }

    /// The cubeforge type of a `zarrs` data type, if it is numeric.
    #[must_use]
    pub fn from_zarrs(data_type: &zarrs::array::DataType) -> Option<DType> {
        DType::ALL.into_iter().find(|d| &d.to_zarrs() == data_type)
    }

    /// Decode one native-endian element at `bytes[0..size]` as `f64` (exact for all but
    /// 64-bit integers beyond 2^53).
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn element_to_f64(self, bytes: &[u8]) -> f64 {
        fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
            let mut out = [0u8; N];
            out.copy_from_slice(&b[..N]);
            out
        }
        match self {
            DType::Bool => f64::from(u8::from(bytes[0] != 0)),
            DType::Int8 => f64::from(i8::from_ne_bytes(arr(bytes))),
            DType::Int16 => f64::from(i16::from_ne_bytes(arr(bytes))),
            DType::Int32 => f64::from(i32::from_ne_bytes(arr(bytes))),
            DType::Int64 => i64::from_ne_bytes(arr(bytes)) as f64,
            DType::UInt8 => f64::from(bytes[0]),
            DType::UInt16 => f64::from(u16::from_ne_bytes(arr(bytes))),
            DType::UInt32 => f64::from(u32::from_ne_bytes(arr(bytes))),
            DType::UInt64 => u64::from_ne_bytes(arr(bytes)) as f64,
            DType::Float16 => f64::from(half::f16::from_ne_bytes(arr(bytes))),
            DType::Float32 => f64::from(f32::from_ne_bytes(arr(bytes))),
            DType::Float64 => f64::from_ne_bytes(arr(bytes)),
        }
    }

    /// Append `x` as one native-endian element to `out`, cast as Rust's `as` casts (toward
    /// zero and saturating for integers, NaN as 0; the nearest `f16` for half floats).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub fn push_f64(self, x: f64, out: &mut Vec<u8>) {
        match self {
            DType::Bool => out.push(u8::from(x != 0.0)),
            DType::Int8 => out.extend((x as i8).to_ne_bytes()),
            DType::UInt8 => out.push(x as u8),
            DType::Int16 => out.extend((x as i16).to_ne_bytes()),
            DType::UInt16 => out.extend((x as u16).to_ne_bytes()),
            DType::Int32 => out.extend((x as i32).to_ne_bytes()),
            DType::UInt32 => out.extend((x as u32).to_ne_bytes()),
            DType::Int64 => out.extend((x as i64).to_ne_bytes()),
            DType::UInt64 => out.extend((x as u64).to_ne_bytes()),
            DType::Float16 => out.extend(half::f16::from_f64(x).to_ne_bytes()),
            DType::Float32 => out.extend((x as f32).to_ne_bytes()),
            DType::Float64 => out.extend(x.to_ne_bytes()),
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `N` bytes of an element as an array (`c` is exactly `N` long).
#[inline]
fn element<const N: usize>(c: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(c);
    a
}

/// `$typed!(rust type, bytes, conversion to f64)` for the element type `$dtype`: one match, the
/// loop inside each arm monomorphised.
macro_rules! for_stored_type {
    ($dtype:expr, $typed:ident) => {
        #[allow(clippy::cast_precision_loss)]
        match $dtype {
            DType::Bool => $typed!(u8, 1, |v: u8| f64::from(u8::from(v != 0))),
            DType::Int8 => $typed!(i8, 1, f64::from),
            DType::UInt8 => $typed!(u8, 1, f64::from),
            DType::Int16 => $typed!(i16, 2, f64::from),
            DType::UInt16 => $typed!(u16, 2, f64::from),
            DType::Int32 => $typed!(i32, 4, f64::from),
            DType::UInt32 => $typed!(u32, 4, f64::from),
            DType::Int64 => $typed!(i64, 8, |v: i64| v as f64),
            DType::UInt64 => $typed!(u64, 8, |v: u64| v as f64),
            DType::Float16 => $typed!(half::f16, 2, f64::from),
            DType::Float32 => $typed!(f32, 4, f64::from),
            DType::Float64 => $typed!(f64, 8, |v: f64| v),
        }
    };
}
/// Decoded array data: element type, shape and native-endian bytes in C order.
#[derive(Debug, Clone, PartialEq)]
pub struct RawArray {
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<u64>,
    /// `product(shape) * dtype.size()` bytes, C order, native endian.
    pub bytes: Vec<u8>,
}

impl RawArray {
    /// Number of elements.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes.len() / self.dtype.size()
    }

    /// Whether there are no elements.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Element `i` (C order) as `f64`.
    #[must_use]
    pub fn get_f64(&self, i: usize) -> f64 {
        let s = self.dtype.size();
        self.dtype.element_to_f64(&self.bytes[i * s..(i + 1) * s])
    }

    /// All elements as `f64`.
    #[must_use]
    pub fn to_f64_vec(&self) -> Vec<f64> {
        self.map_f64(|x| x)
    }

    /// `f` of every element (C order, as `f64`), in one typed pass over the bytes: the element
    /// type is matched once, not per element, so the loop is a plain conversion the compiler can
    /// vectorise (this is the decode step of every chunk read).
    pub fn map_f64<T>(&self, mut f: impl FnMut(f64) -> T) -> Vec<T> {
        macro_rules! typed {
            ($t:ty, $n:literal, $conv:expr) => {
                self.bytes
                    .chunks_exact($n)
                    .map(|c| f($conv(<$t>::from_ne_bytes(element::<$n>(c)))))
                    .collect()
            };
        }
        for_stored_type!(self.dtype, typed)
    }

    /// As [`RawArray::map_f64`], into `out` (as long as the array) instead of a new vector: a
    /// caller's recycled buffer is written once, without the page faults of a fresh one.
    pub fn map_f64_into<T>(&self, out: &mut [T], mut f: impl FnMut(f64) -> T) {
        macro_rules! typed {
            ($t:ty, $n:literal, $conv:expr) => {
                for (o, c) in out.iter_mut().zip(self.bytes.chunks_exact($n)) {
                    *o = f($conv(<$t>::from_ne_bytes(element::<$n>(c))));
                }
            };
        }
        for_stored_type!(self.dtype, typed);
    }

    /// The bytes as little-endian element bytes (identical on little-endian machines).
    #[must_use]
    pub fn to_le_bytes(&self) -> Vec<u8> {
        if cfg!(target_endian = "little") || self.dtype.size() == 1 {
            return self.bytes.clone();
        }
        let s = self.dtype.size();
        let mut out = self.bytes.clone();
        for c in out.chunks_exact_mut(s) {
            c.reverse();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_name(d.name()), Some(d));
            assert_eq!(DType::from_zarrs(&d.to_zarrs()), Some(d));
        }
        assert_eq!(DType::from_name("<f4"), Some(DType::Float32));
        assert_eq!(DType::from_name("|u1"), Some(DType::UInt8));
        assert_eq!(DType::from_name("complex64"), None);
    }

    #[test]
    fn element_decoding() {
        assert_eq!(DType::Int16.element_to_f64(&(-5i16).to_ne_bytes()), -5.0);
        assert_eq!(DType::UInt64.element_to_f64(&7u64.to_ne_bytes()), 7.0);
        assert!(DType::Float32
            .element_to_f64(&f32::NAN.to_ne_bytes())
            .is_nan());
        assert_eq!(
            DType::Float16.element_to_f64(&half::f16::from_f32(1.5).to_ne_bytes()),
            1.5
        );
    }
}
