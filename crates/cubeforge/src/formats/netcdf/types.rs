//! NetCDF types: the element types cubeforge reads, the reason for those it does not, and the
//! fill value of each (the `_FillValue` attribute, else netCDF-C's default fill).

use netcdf_reader::{NcAttrValue, NcType};

use crate::dtype::DType;

/// The element type of a variable of type `t`, or why it cannot be read.
pub(crate) fn dtype_of(t: &NcType) -> Result<DType, String> {
    Ok(match t {
        NcType::Byte => DType::Int8,
        NcType::UByte => DType::UInt8,
        NcType::Short => DType::Int16,
        NcType::UShort => DType::UInt16,
        NcType::Int => DType::Int32,
        NcType::UInt => DType::UInt32,
        NcType::Int64 => DType::Int64,
        NcType::UInt64 => DType::UInt64,
        NcType::Float => DType::Float32,
        NcType::Double => DType::Float64,
        other => return Err(format!("{} is not supported", describe(other))),
    })
}

/// A type as its reason names it: `compound type {i1: int32, i2: int32}`.
pub(crate) fn describe(t: &NcType) -> String {
    let name = |t: &NcType| dtype_of(t).map_or_else(|_| describe(t), |d| d.name().to_string());
    match t {
        NcType::Char => "NC_CHAR text (a character array)".into(),
        NcType::String => "variable-length string type".into(),
        NcType::Compound { fields, .. } => format!(
            "compound type {{{}}}",
            fields
                .iter()
                .map(|f| format!("{}: {}", f.name, name(&f.dtype)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        NcType::Enum { base, members } => {
            format!("enum type of {} ({} members)", name(base), members.len())
        }
        NcType::Opaque { size, tag } => format!("opaque type of {size} bytes ('{tag}')"),
        NcType::Array { base, dims } => format!("array type {dims:?} of {}", name(base)),
        NcType::VLen { base } => format!("variable-length type of {}", name(base)),
        other => dtype_of(other).map_or("unknown type".into(), |d| d.name().into()),
    }
}

/// One element of netCDF-C's default fill value for `dtype` (native endian).
pub(crate) fn default_fill(dtype: DType) -> Vec<u8> {
    match dtype {
        DType::Int8 => (-127i8).to_ne_bytes().to_vec(),
        DType::UInt8 | DType::Bool => vec![255],
        DType::Int16 => (-32767i16).to_ne_bytes().to_vec(),
        DType::UInt16 => 65535u16.to_ne_bytes().to_vec(),
        DType::Int32 => (-2_147_483_647i32).to_ne_bytes().to_vec(),
        DType::UInt32 => 4_294_967_295u32.to_ne_bytes().to_vec(),
        DType::Int64 => (-9_223_372_036_854_775_806i64).to_ne_bytes().to_vec(),
        DType::UInt64 => 18_446_744_073_709_551_614u64.to_ne_bytes().to_vec(),
        DType::Float32 => 9.969_21e36_f32.to_ne_bytes().to_vec(),
        _ => 9.969_209_968_386_869e36_f64.to_ne_bytes().to_vec(),
    }
}

/// One element of the fill value `attr` (a `_FillValue` attribute) as `dtype`: its bytes when
/// it has the variable's type (64-bit integers exactly), else its first value cast.
pub(crate) fn fill_from(attr: &NcAttrValue, dtype: DType) -> Option<Vec<u8>> {
    let exact: Option<Vec<u8>> = match (attr, dtype) {
        (NcAttrValue::Int64s(v), DType::Int64) => v.first().map(|x| x.to_ne_bytes().to_vec()),
        (NcAttrValue::UInt64s(v), DType::UInt64) => v.first().map(|x| x.to_ne_bytes().to_vec()),
        _ => None,
    };
    if exact.is_some() {
        return exact;
    }
    let x = attr.as_f64()?;
    let mut out = Vec::with_capacity(dtype.size());
    dtype.push_f64(x, &mut out);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netcdf_reader::NcCompoundField;

    #[test]
    fn unreadable_types_are_named() {
        let t = NcType::Compound {
            size: 8,
            fields: vec![
                NcCompoundField {
                    name: "i1".into(),
                    offset: 0,
                    dtype: NcType::Int,
                },
                NcCompoundField {
                    name: "i2".into(),
                    offset: 4,
                    dtype: NcType::Int,
                },
            ],
        };
        assert_eq!(
            dtype_of(&t).unwrap_err(),
            "compound type {i1: int32, i2: int32} is not supported"
        );
        assert!(dtype_of(&NcType::Char).unwrap_err().contains("NC_CHAR"));
        assert_eq!(dtype_of(&NcType::UInt64).unwrap(), DType::UInt64);
    }

    #[test]
    fn fill_values_keep_64_bit_integers_exact() {
        let f = fill_from(&NcAttrValue::Int64s(vec![i64::MAX - 1]), DType::Int64).unwrap();
        assert_eq!(i64::from_ne_bytes(f.try_into().unwrap()), i64::MAX - 1);
        let f = fill_from(&NcAttrValue::Doubles(vec![-1.0]), DType::Int16).unwrap();
        assert_eq!(i16::from_ne_bytes(f.try_into().unwrap()), -1);
        assert_eq!(default_fill(DType::Float32), 9.969_21e36_f32.to_ne_bytes());
    }
}
