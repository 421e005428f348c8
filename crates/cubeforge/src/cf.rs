//! CF conventions: decoding of packed and masked values (`_FillValue`, `missing_value`,
//! `scale_factor`, `add_offset`, `_Unsigned`) and of time coordinates (see [`time`]), following
//! the rules xarray applies when it opens a Zarr store, so that cubeforge and xarray agree on
//! every decoded value and dtype.

pub mod time;

use serde_json::{Map, Value};

use crate::dtype::DType;
use time::{TimeEncoding, TimeError};

/// Attributes consumed by decoding (xarray moves them from `attrs` to `encoding`).
pub const CODING_ATTRS: [&str; 7] = [
    "_FillValue",
    "missing_value",
    "scale_factor",
    "add_offset",
    "_Unsigned",
    "units",
    "calendar",
];

/// `attrs` without the attributes that code values (`_FillValue`, `missing_value`,
/// `scale_factor`, `add_offset`, `_Unsigned`): those of values written decoded. `units` and
/// `calendar` stay.
#[must_use]
pub fn without_value_coding(attrs: &Map<String, Value>) -> Map<String, Value> {
    attrs
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "_FillValue" | "missing_value" | "scale_factor" | "add_offset" | "_Unsigned"
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// What decoding a variable produces.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// Numbers of this type.
    Numeric(DType),
    /// Date-times (`datetime64[ns]` in xarray, cftime objects for non-standard calendars).
    Time(TimeEncoding),
    /// Durations in a time unit, as xarray writes timedeltas (`units` plus a `dtype` attribute
    /// such as `timedelta64[ns]`); the string is that dtype.
    Timedelta(time::TimeUnit, String),
}

/// How to turn stored values into the values a user sees.
#[derive(Debug, Clone, PartialEq)]
pub struct CfDecoding {
    /// Stored element type.
    pub stored: DType,
    /// Raw values (after `_Unsigned` reinterpretation) that mean "missing".
    pub fill_values: Vec<f64>,
    /// Multiplier, if packed.
    pub scale_factor: Option<f64>,
    /// Offset, if packed.
    pub add_offset: Option<f64>,
    /// Whether signed integers are to be read as unsigned (`_Unsigned = "true"`).
    pub unsigned: bool,
    /// The result of decoding.
    pub decoded: Decoded,
    /// The fill values come from `missing_value` alone (no `_FillValue`, no Zarr fill value):
    /// xarray then keeps the attribute under that name.
    pub missing_value_only: bool,
    /// The coding attributes ([`CODING_ATTRS`]) as the file writes them: decoding reads them
    /// into the fields above, which normalise them (time units and calendar names, integer
    /// fill values through `f64`, `_Unsigned = "false"`); the Python package presents them as
    /// written, as the reference engines do.
    pub written: Map<String, Value>,
}

/// A number from a JSON attribute (numbers, `"NaN"`, `"Infinity"`, `"-Infinity"`, a
/// one-element list, or the base64 of a little-endian float64, which is how xarray writes a float
/// `_FillValue` in Zarr v3).
#[must_use]
pub fn json_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.trim() {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "inf" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            other => other.parse().ok().or_else(|| {
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(other)
                    .ok()?;
                Some(f64::from_le_bytes(bytes.as_slice().try_into().ok()?))
            }),
        },
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Array(items) if items.len() == 1 => json_number(&items[0]),
        _ => None,
    }
}

fn json_numbers(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().filter_map(json_number).collect(),
        other => json_number(other).into_iter().collect(),
    }
}

/// Reinterpret a signed raw value as its unsigned counterpart of the same width.
#[must_use]
pub fn to_unsigned(stored: DType, v: f64) -> f64 {
    if v >= 0.0 {
        return v;
    }
    let bits = match stored {
        DType::Int8 => 8,
        DType::Int16 => 16,
        DType::Int32 => 32,
        DType::Int64 => 64,
        _ => return v,
    };
    v + 2f64.powi(bits)
}

impl CfDecoding {
    /// No decoding: values of `dtype` are what they are.
    #[must_use]
    pub fn identity(dtype: DType) -> CfDecoding {
        CfDecoding {
            stored: dtype,
            fill_values: Vec::new(),
            scale_factor: None,
            add_offset: None,
            unsigned: false,
            decoded: Decoded::Numeric(dtype),
            missing_value_only: false,
            written: Map::new(),
        }
    }

    /// Work out the decoding of a variable from its attributes.
    ///
    /// `zarr_fill` is the array's Zarr `fill_value`, which xarray treats as `_FillValue` for
    /// Zarr format 2 stores (and ignores for format 3, where `_FillValue` is an attribute).
    ///
    /// # Errors
    /// A [`TimeError`] when `units` look like CF time (`… since …`) but cannot be decoded
    /// (unsupported calendar, ambiguous unit, invalid reference date).
    pub fn from_attrs(
        attrs: &Map<String, Value>,
        stored: DType,
        zarr_fill: Option<f64>,
    ) -> Result<CfDecoding, TimeError> {
        let unsigned = stored.is_integer()
            && !matches!(
                stored,
                DType::UInt8 | DType::UInt16 | DType::UInt32 | DType::UInt64
            )
            && attrs.get("_Unsigned").is_some_and(|v| {
                v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("true"))
                    || v == &Value::Bool(true)
            });
        let mut fill_values: Vec<f64> = Vec::new();
        let missing_value_only = attrs.get("_FillValue").is_none()
            && zarr_fill.is_none()
            && attrs.contains_key("missing_value");
        match attrs.get("_FillValue") {
            Some(v) => fill_values.extend(json_numbers(v)),
            None => fill_values.extend(zarr_fill),
        }
        if let Some(v) = attrs.get("missing_value") {
            for m in json_numbers(v) {
                if !fill_values.iter().any(|f| same_value(*f, m)) {
                    fill_values.push(m);
                }
            }
        }
        if unsigned {
            for f in &mut fill_values {
                *f = to_unsigned(stored, *f);
            }
        }
        // Booleans are never masked by xarray.
        if stored == DType::Bool {
            fill_values.clear();
        }
        let scale_factor = attrs.get("scale_factor").and_then(json_number);
        let add_offset = attrs.get("add_offset").and_then(json_number);

        let base = if unsigned {
            stored.to_unsigned()
        } else {
            stored
        };
        let units = attrs.get("units").and_then(Value::as_str).unwrap_or("");
        let timedelta = attrs
            .get("dtype")
            .and_then(Value::as_str)
            .filter(|d| d.starts_with("timedelta64"));
        let decoded = if units.contains(" since ") && stored != DType::Bool {
            let calendar = attrs.get("calendar").and_then(Value::as_str);
            Decoded::Time(TimeEncoding::parse(units, calendar)?)
        } else if let (Some(dt), Ok(unit)) = (timedelta, time::TimeUnit::parse(units)) {
            Decoded::Timedelta(unit, dt.to_string())
        } else if scale_factor.is_some() || add_offset.is_some() {
            // xarray's `_choose_float_dtype`: floats stay as they are; integers take the type of
            // the attributes, which JSON gives as float64.
            Decoded::Numeric(if base.is_float() {
                base
            } else {
                DType::Float64
            })
        } else if !fill_values.is_empty() {
            // xarray's `maybe_promote`: integers become floats able to hold NaN.
            Decoded::Numeric(match base {
                DType::Int8 | DType::UInt8 | DType::Int16 | DType::UInt16 => DType::Float32,
                DType::Int32 | DType::UInt32 | DType::Int64 | DType::UInt64 => DType::Float64,
                other => other,
            })
        } else {
            Decoded::Numeric(base)
        };
        let written = attrs
            .iter()
            .filter(|(k, _)| CODING_ATTRS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(CfDecoding {
            stored,
            fill_values,
            scale_factor,
            add_offset,
            unsigned,
            decoded,
            missing_value_only,
            written,
        })
    }

    /// `decode(attrs)`; or, when the attributes' time encoding cannot be decoded (months, a
    /// calendar such as `none`, an invalid reference date), `decode` of them without `units`
    /// and `calendar`: the values as stored, as xarray gives them with `decode_times=False`.
    /// The variable keeps both attributes (a reader of the cube then decodes them as it decodes
    /// the source, and [`CfDecoding::written`] has them), and the reason comes back beside.
    ///
    /// # Errors
    /// What `decode` says of the attributes without a time encoding.
    pub fn or_time_undecoded(
        attrs: &Map<String, Value>,
        decode: impl Fn(&Map<String, Value>) -> Result<CfDecoding, TimeError>,
    ) -> Result<(CfDecoding, Option<TimeError>), TimeError> {
        match decode(attrs) {
            Ok(d) => Ok((d, None)),
            Err(why) => {
                let mut plain = attrs.clone();
                plain.remove("units");
                plain.remove("calendar");
                let mut d = decode(&plain)?;
                for key in ["units", "calendar"] {
                    if let Some(v) = attrs.get(key) {
                        d.written.insert(key.into(), v.clone());
                    }
                }
                Ok((d, Some(why)))
            }
        }
    }

    /// [`CfDecoding::from_attrs`] for a format whose attributes keep their types (NetCDF,
    /// HDF5): `scale_type` and `offset_type` are the element types of the `scale_factor` and
    /// `add_offset` attributes, which decide the decoded type as xarray's `_choose_float_dtype`
    /// decides it, with or without a mask (its mask coder uses the same rule for packed data):
    /// both attributes of one float type give that type (for a 4-byte integer, float64); an
    /// `add_offset` otherwise float64; a `scale_factor` alone its type (float64 for an integer
    /// `scale_factor`, which xarray would keep as an integer type).
    ///
    /// # Errors
    /// As [`CfDecoding::from_attrs`].
    pub fn from_attrs_typed(
        attrs: &Map<String, Value>,
        stored: DType,
        fill: Option<f64>,
        scale_type: Option<DType>,
        offset_type: Option<DType>,
    ) -> Result<CfDecoding, TimeError> {
        let mut d = CfDecoding::from_attrs(attrs, stored, fill)?;
        let packed = d.scale_factor.is_some() || d.add_offset.is_some();
        if !packed || !matches!(d.decoded, Decoded::Numeric(_)) {
            return Ok(d);
        }
        let base = if d.unsigned {
            stored.to_unsigned()
        } else {
            stored
        };
        let scale_type = scale_type.filter(|_| d.scale_factor.is_some());
        let offset_type = offset_type.filter(|_| d.add_offset.is_some());
        let decoded = match (scale_type, offset_type) {
            (Some(s), Some(o)) if s == o && s.is_float() => {
                if base.size() == 4 && base.is_integer() {
                    DType::Float64
                } else {
                    s
                }
            }
            (Some(s), None) if s.is_float() => s,
            _ => DType::Float64,
        };
        d.decoded = Decoded::Numeric(decoded);
        Ok(d)
    }

    /// Whether decoding changes anything at all.
    #[must_use]
    pub fn is_identity(&self) -> bool {
        self.fill_values.is_empty()
            && self.scale_factor.is_none()
            && self.add_offset.is_none()
            && !self.unsigned
            && matches!(self.decoded, Decoded::Numeric(_))
    }

    /// Whether the only decoding is masking NaN fill values of float data (a no-op on values).
    #[must_use]
    pub fn is_nan_mask_only(&self) -> bool {
        self.stored.is_float()
            && self.scale_factor.is_none()
            && self.add_offset.is_none()
            && self.fill_values.iter().all(|f| f.is_nan())
            && matches!(self.decoded, Decoded::Numeric(d) if d == self.stored)
    }

    /// Whether decoded values are exact integers of the stored type (no masking, no packing).
    #[must_use]
    pub fn keeps_integers(&self) -> bool {
        self.is_identity() && (self.stored.is_integer() || self.stored == DType::Bool)
    }

    /// A raw value read as `_Unsigned` says, `None` when it is one of the fill values.
    fn unmasked(&self, raw: f64) -> Option<f64> {
        let v = if self.unsigned {
            to_unsigned(self.stored, raw)
        } else {
            raw
        };
        (!self.fill_values.iter().any(|f| same_value(*f, v))).then_some(v)
    }

    /// Decode one raw value (as read, in `f64`): `None` when it is missing.
    #[must_use]
    pub fn decode_number(&self, raw: f64) -> Option<f64> {
        let v = self.unmasked(raw)?;
        let v = match self.scale_factor {
            Some(s) => v * s,
            None => v,
        };
        let v = match self.add_offset {
            Some(o) => v + o,
            None => v,
        };
        if v.is_nan() {
            None
        } else {
            Some(v)
        }
    }

    /// Decode one raw value into single precision, as NumPy computes a float32 result
    /// (`data.astype(float32) * scale_factor + add_offset`, each step rounded to float32):
    /// `None` when it is missing.
    #[must_use]
    #[allow(clippy::cast_possible_truncation)]
    pub fn decode_number_f32(&self, raw: f64) -> Option<f32> {
        let v = self.unmasked(raw)?;
        let mut x = v as f32;
        if let Some(s) = self.scale_factor {
            x *= s as f32;
        }
        if let Some(o) = self.add_offset {
            x += o as f32;
        }
        if x.is_nan() {
            None
        } else {
            Some(x)
        }
    }

    /// The decoded dtype as xarray names it (`float32`, `datetime64[ns]`, …).
    #[must_use]
    pub fn decoded_dtype_name(&self) -> String {
        match &self.decoded {
            Decoded::Numeric(d) => d.name().to_string(),
            Decoded::Time(enc) => match enc.calendar {
                time::Calendar::Standard | time::Calendar::ProlepticGregorian => {
                    "datetime64[ns]".into()
                }
                _ => "object".into(),
            },
            Decoded::Timedelta(_, dtype) => dtype.clone(),
        }
    }

    /// The attributes a user sees after decoding (coding attributes removed).
    #[must_use]
    pub fn visible_attrs(&self, attrs: &Map<String, Value>) -> Map<String, Value> {
        let decoded_time = !matches!(self.decoded, Decoded::Numeric(_));
        attrs
            .iter()
            .filter(|(k, _)| {
                let k = k.as_str();
                let time_attr = matches!(k, "units" | "calendar")
                    || (k == "dtype" && matches!(self.decoded, Decoded::Timedelta(..)));
                let coding = CODING_ATTRS.contains(&k) && !time_attr;
                // xarray moves `coordinates` to the encoding once it has used it.
                !(coding || k == "coordinates" || (time_attr && decoded_time))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// A float `_FillValue` attribute as xarray writes it for Zarr v3: base64 of the little-endian
/// float64.
#[must_use]
pub fn xarray_fill_value(v: f64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(v.to_le_bytes())
}

fn same_value(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    /// The decoded types xarray 2026.9 gives (netCDF4 and h5netcdf engines alike) for packed
    /// variables written with typed attributes, with and without a `_FillValue`.
    #[test]
    fn typed_packing_attributes_decode_as_xarray_chooses() {
        use DType::{Float32 as F4, Float64 as F8, Int16 as I2, Int32 as I4, Int8 as I1};
        let cases = [
            (I1, Some(F4), None, F4),
            (I1, Some(F4), Some(F4), F4),
            (I1, Some(F4), Some(F8), F8),
            (I1, Some(F8), Some(F4), F8),
            (I1, None, Some(F4), F8),
            (I2, Some(F4), Some(F4), F4),
            (I2, Some(F8), None, F8),
            (I4, Some(F4), None, F4),
            (I4, Some(F4), Some(F4), F8),
            (I4, Some(F8), Some(F8), F8),
            (DType::Int64, Some(F4), Some(F4), F4),
            (DType::UInt16, Some(F4), Some(F4), F4),
        ];
        for (stored, scale, offset, want) in cases {
            for fill in [false, true] {
                let mut a = Map::new();
                if scale.is_some() {
                    a.insert("scale_factor".into(), json!(0.1));
                }
                if offset.is_some() {
                    a.insert("add_offset".into(), json!(1.3));
                }
                if fill {
                    a.insert("_FillValue".into(), json!(7));
                }
                let d = CfDecoding::from_attrs_typed(&a, stored, None, scale, offset).unwrap();
                assert_eq!(
                    d.decoded,
                    Decoded::Numeric(want),
                    "{stored:?} {scale:?} {offset:?} fill={fill}"
                );
            }
        }
    }

    #[test]
    fn packed_int16_decodes_to_float() {
        let d = CfDecoding::from_attrs(&attrs(json!({"scale_factor": 0.01})), DType::Int16, None)
            .unwrap();
        assert_eq!(d.decoded, Decoded::Numeric(DType::Float64));
        assert!((d.decode_number(25820.0).unwrap() - 258.2).abs() < 1e-9);
    }

    #[test]
    fn unsigned_fill_and_scale() {
        let d = CfDecoding::from_attrs(
            &attrs(json!({"_Unsigned": "true", "_FillValue": -1, "scale_factor": 0.5, "add_offset": 1.0})),
            DType::Int16,
            None,
        )
        .unwrap();
        assert_eq!(d.decode_number(-1.0), None);
        assert_eq!(d.decode_number(-2.0), Some(65534.0 * 0.5 + 1.0));
    }

    #[test]
    fn undecodable_times_are_read_as_stored_with_their_attributes() {
        let a = attrs(
            json!({"units": "months since 2000-01-01", "calendar": "360_day",
                             "_FillValue": -1, "long_name": "time"}),
        );
        let decode = |a: &Map<String, Value>| CfDecoding::from_attrs(a, DType::Int32, None);
        let (d, why) = CfDecoding::or_time_undecoded(&a, decode).unwrap();
        assert!(
            matches!(why, Some(TimeError::UnsupportedUnit(_))),
            "{why:?}"
        );
        assert_eq!(d.decoded, Decoded::Numeric(DType::Float64));
        assert_eq!(d.decode_number(13.0), Some(13.0));
        assert_eq!(d.decode_number(-1.0), None);
        assert_eq!(d.written["units"], json!("months since 2000-01-01"));
        let visible = d.visible_attrs(&a);
        assert_eq!(visible["units"], json!("months since 2000-01-01"));
        assert_eq!(visible["calendar"], json!("360_day"));
        assert!(!visible.contains_key("_FillValue"));
        let days = attrs(json!({"units": "days since 2000-01-01"}));
        let (d, why) = CfDecoding::or_time_undecoded(&days, decode).unwrap();
        assert!(why.is_none() && matches!(d.decoded, Decoded::Time(_)));
    }

    #[test]
    fn zarr_fill_masks_unless_attribute_given() {
        let d = CfDecoding::from_attrs(&Map::new(), DType::Float32, Some(f64::NAN)).unwrap();
        assert_eq!(d.decode_number(f64::NAN), None);
        assert_eq!(d.decoded, Decoded::Numeric(DType::Float32));
        let d = CfDecoding::from_attrs(&Map::new(), DType::Int32, Some(0.0)).unwrap();
        assert_eq!(d.decoded, Decoded::Numeric(DType::Float64));
        assert_eq!(d.decode_number(0.0), None);
    }

    #[test]
    fn base64_fill_values_as_xarray_writes_them_in_v3() {
        assert!(json_number(&json!("AAAAAAAA+H8=")).unwrap().is_nan());
        assert_eq!(
            json_number(&json!(xarray_fill_value(-9999.0))),
            Some(-9999.0)
        );
    }

    #[test]
    fn time_units_are_recognised() {
        let a = attrs(
            json!({"units": "days since 1979-01-01", "calendar": "proleptic_gregorian", "long_name": "time"}),
        );
        let d = CfDecoding::from_attrs(&a, DType::Int64, None).unwrap();
        assert!(matches!(d.decoded, Decoded::Time(_)));
        assert_eq!(d.decoded_dtype_name(), "datetime64[ns]");
        let vis = d.visible_attrs(&a);
        assert_eq!(vis.len(), 1);
        assert!(vis.contains_key("long_name"));
        let bad = attrs(json!({"units": "days since 2000-01-01", "calendar": "none"}));
        assert!(CfDecoding::from_attrs(&bad, DType::Int64, None).is_err());
    }
}
