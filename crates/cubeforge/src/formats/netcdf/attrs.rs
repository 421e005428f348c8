//! NetCDF attributes as JSON, the way xarray shows them: a one-element numeric attribute is a
//! number, longer ones lists; text (`NC_CHAR` and strings) is a string; NaN and infinities are
//! the strings `"NaN"`, `"Infinity"`, `"-Infinity"` (JSON has no such numbers).

use netcdf_reader::{NcAttrValue, NcAttribute};
use serde_json::{Map, Value};

use crate::dtype::DType;

/// Attributes netCDF-C keeps to itself (it reads them to rebuild dimensions and never shows
/// them); plain HDF5 files written through the dimension-scale API carry some of them too.
const HIDDEN: &[&str] = &[
    "_NCProperties",
    "_Netcdf4Dimid",
    "_Netcdf4Coordinates",
    "_nc3_strict",
    "DIMENSION_LIST",
    "REFERENCE_LIST",
    "CLASS",
    "NAME",
    "_SuperblockVersion",
    "_IsNetcdf4",
];

/// `attrs` as a JSON object, hidden attributes left out.
pub(crate) fn to_json(attrs: &[NcAttribute]) -> Map<String, Value> {
    attrs
        .iter()
        .filter(|a| !HIDDEN.contains(&a.name.as_str()))
        .filter_map(|a| {
            let name = a.name.split('\0').next().unwrap_or_default().to_string();
            Some((name, value(&a.value)?))
        })
        .collect()
}

/// The element type of a numeric attribute (`None` for text and user-defined types).
pub(crate) fn dtype(v: &NcAttrValue) -> Option<DType> {
    Some(match v {
        NcAttrValue::Bytes(_) => DType::Int8,
        NcAttrValue::UBytes(_) => DType::UInt8,
        NcAttrValue::Shorts(_) => DType::Int16,
        NcAttrValue::UShorts(_) => DType::UInt16,
        NcAttrValue::Ints(_) => DType::Int32,
        NcAttrValue::UInts(_) => DType::UInt32,
        NcAttrValue::Int64s(_) => DType::Int64,
        NcAttrValue::UInt64s(_) => DType::UInt64,
        NcAttrValue::Floats(_) => DType::Float32,
        NcAttrValue::Doubles(_) => DType::Float64,
        _ => return None,
    })
}

fn number(x: f64) -> Value {
    if x.is_nan() {
        Value::String("NaN".into())
    } else if x.is_infinite() {
        Value::String(if x > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

/// A list of values, or the value itself when there is exactly one.
fn list<T>(items: &[T], one: impl Fn(&T) -> Value) -> Value {
    match items {
        [x] => one(x),
        _ => Value::Array(items.iter().map(one).collect()),
    }
}

/// One attribute's value; `None` for user-defined types (not shown).
pub(crate) fn value(v: &NcAttrValue) -> Option<Value> {
    Some(match v {
        NcAttrValue::Bytes(x) => list(x, |v| Value::from(*v)),
        NcAttrValue::UBytes(x) => list(x, |v| Value::from(*v)),
        NcAttrValue::Shorts(x) => list(x, |v| Value::from(*v)),
        NcAttrValue::UShorts(x) => list(x, |v| Value::from(*v)),
        NcAttrValue::Ints(x) => list(x, |v| Value::from(*v)),
        NcAttrValue::UInts(x) => list(x, |v| Value::from(*v)),
        NcAttrValue::Int64s(x) => list(x, |v| Value::from(*v)),
        NcAttrValue::UInt64s(x) => list(x, |v| Value::from(*v)),
        NcAttrValue::Floats(x) => list(x, |v| number(f64::from(*v))),
        NcAttrValue::Doubles(x) => list(x, |v| number(*v)),
        // netCDF-C strips trailing NULs from text attributes.
        NcAttrValue::Chars(s) => Value::String(s.trim_end_matches('\0').to_string()),
        // An empty text attribute (netCDF-4 may store it as a list of no strings) is "".
        NcAttrValue::Strings(x) if x.is_empty() => Value::String(String::new()),
        NcAttrValue::Strings(x) => list(x, |s| Value::String(s.clone())),
        NcAttrValue::UserDefined { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attr(name: &str, value: NcAttrValue) -> NcAttribute {
        NcAttribute {
            name: name.into(),
            value,
        }
    }

    #[test]
    fn attributes_read_as_xarray_shows_them() {
        let attrs = vec![
            attr("scale", NcAttrValue::Floats(vec![0.5])),
            attr("range", NcAttrValue::Shorts(vec![0, -6])),
            attr("fill", NcAttrValue::Floats(vec![f32::NAN])),
            attr("title", NcAttrValue::Chars("air\0".into())),
            attr("names", NcAttrValue::Strings(vec!["a".into(), "b".into()])),
            attr("_NCProperties", NcAttrValue::Chars("version=2".into())),
            attr("big", NcAttrValue::UInt64s(vec![u64::MAX])),
        ];
        assert_eq!(
            Value::Object(to_json(&attrs)),
            json!({"scale": 0.5, "range": [0, -6], "fill": "NaN", "title": "air",
                   "names": ["a", "b"], "big": u64::MAX})
        );
    }
}
