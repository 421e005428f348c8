//! The dataset model, in the terms xarray users think in: named dimensions, coordinate variables,
//! data variables and attributes, with CF decoding attached to each variable.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::cf::time::CfDateTime;
use crate::cf::{CfDecoding, Decoded};
use crate::dtype::RawArray;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::zarr::{self, ArrayEntry, ArrayMeta, ZarrArray};

/// One variable of a dataset.
#[derive(Debug, Clone)]
pub struct Variable {
    /// Name.
    pub name: String,
    /// Dimension names, one per axis.
    pub dims: Vec<String>,
    /// Metadata summary of the underlying array.
    pub meta: ArrayMeta,
    /// Whether this is a coordinate (an index coordinate, or named in a `coordinates` attribute).
    pub is_coord: bool,
    /// CF decoding, for numeric variables.
    pub decoding: Option<CfDecoding>,
    entry: ArrayEntry,
    array: Option<ZarrArray>,
    problem: Option<String>,
}

impl Variable {
    /// Shape.
    #[must_use]
    pub fn shape(&self) -> &[u64] {
        &self.meta.shape
    }

    /// The opened array.
    ///
    /// # Errors
    /// The reason the array cannot be read (an unsupported data type or codec), naming it.
    pub fn array(&self, store: &Store) -> Result<&ZarrArray> {
        match &self.array {
            Some(a) => Ok(a),
            None => Err(ZarrArray::open(store, &self.entry)
                .err()
                .unwrap_or_else(|| Error::Other(self.problem.clone().unwrap_or_default()))),
        }
    }

    /// Why the variable cannot be read, if it cannot.
    #[must_use]
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    /// The dtype a user sees after decoding (`float32`, `datetime64[ns]`), or the stored type text
    /// for types cubeforge does not read.
    #[must_use]
    pub fn decoded_dtype(&self) -> String {
        match (&self.decoding, self.meta.dtype) {
            (Some(d), _) => d.decoded_dtype_name(),
            (None, Some(d)) => d.name().to_string(),
            (None, None) => self.meta.dtype_text.clone(),
        }
    }

    /// Attributes after decoding (CF coding attributes removed).
    #[must_use]
    pub fn attrs(&self) -> Map<String, Value> {
        match &self.decoding {
            Some(d) => d.visible_attrs(&self.meta.attrs),
            None => self.meta.attrs.clone(),
        }
    }
}

/// A decoded scalar value.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// A floating-point number.
    Number(f64),
    /// An integer, exact (64-bit values included).
    Integer(i128),
    /// A boolean.
    Bool(bool),
    /// A duration in nanoseconds.
    Duration(i128),
    /// A date-time.
    Time(CfDateTime),
    /// Missing (NaN, NaT, masked).
    Missing,
}

/// A group of a Zarr store seen as a dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The store.
    pub store: Store,
    /// Group path within the store (`""` for the root).
    pub group: String,
    /// Zarr format of the group.
    pub zarr_format: u8,
    /// Whether its metadata was read from consolidated metadata.
    pub consolidated: bool,
    /// Dimensions and sizes, in order of first appearance (coordinates first).
    pub dims: Vec<(String, u64)>,
    /// Variables sorted by name.
    pub variables: Vec<Variable>,
    /// Group attributes.
    pub attrs: Map<String, Value>,
    /// Names of sub-groups.
    pub groups: Vec<String>,
}

impl Dataset {
    /// Open the group at `group` (`""` for the root) of `store`.
    ///
    /// # Errors
    /// Anything [`zarr::list_group`] reports; [`Error::InvalidMetadata`] for conflicting
    /// dimension sizes; [`Error::Unsupported`] for time units or calendars that cannot be decoded.
    pub fn open(store: &Store, group: &str) -> Result<Dataset> {
        Dataset::open_with(store, group, false)
    }

    /// [`Dataset::open`]; with `undecoded_times`, a variable whose time encoding cannot be
    /// decoded is read as stored, its `units` and `calendar` kept
    /// ([`CfDecoding::or_time_undecoded`]), instead of being an error.
    ///
    /// # Errors
    /// As [`Dataset::open`].
    pub fn open_with(store: &Store, group: &str, undecoded_times: bool) -> Result<Dataset> {
        let listing = zarr::list_group(store, group)?;
        let mut variables = Vec::new();
        let mut phony = PhonyDims::default();
        for entry in &listing.arrays {
            let dims = match &entry.meta.dimension_names {
                Some(names) if names.len() == entry.meta.shape.len() => names
                    .iter()
                    .zip(&entry.meta.shape)
                    .map(|(n, size)| n.clone().unwrap_or_else(|| phony.name_for(*size, &[])))
                    .collect(),
                _ => phony.names_for(&entry.meta.shape),
            };
            let (array, problem) = match ZarrArray::open(store, entry) {
                Ok(a) => (Some(a), None),
                Err(e) => (None, Some(e.to_string())),
            };
            let decoding = match (&array, entry.meta.dtype) {
                (Some(a), Some(dtype)) => {
                    let zarr_fill =
                        if entry.meta.zarr_format == 2 && !entry.meta.fill_value.is_null() {
                            Some(a.fill_value_f64())
                        } else {
                            None
                        };
                    let location = store.location().join(&entry.path);
                    let decode = |a: &serde_json::Map<String, serde_json::Value>| {
                        CfDecoding::from_attrs(a, dtype, zarr_fill)
                    };
                    let decoded = if undecoded_times {
                        CfDecoding::or_time_undecoded(&entry.meta.attrs, decode)
                    } else {
                        decode(&entry.meta.attrs).map(|d| (d, None))
                    };
                    let (d, undecoded) = decoded.map_err(|e| Error::Unsupported {
                        location: location.clone(),
                        feature: time_feature(&e),
                        detail: e.to_string(),
                    })?;
                    if let Some(why) = undecoded {
                        tracing::debug!("{location}: times not decoded ({why}): read as stored");
                    }
                    Some(d)
                }
                _ => None,
            };
            variables.push(Variable {
                name: entry.name.clone(),
                dims,
                meta: entry.meta.clone(),
                is_coord: false,
                decoding,
                entry: entry.clone(),
                array,
                problem,
            });
        }
        // Coordinates: index coordinates and names listed in `coordinates` attributes.
        let mut coord_names: BTreeSet<String> = BTreeSet::new();
        for text in variables
            .iter()
            .filter_map(|v| v.meta.attrs.get("coordinates"))
            .chain(listing.attrs.get("coordinates"))
            .filter_map(Value::as_str)
        {
            coord_names.extend(text.split_whitespace().map(str::to_string));
        }
        for v in &mut variables {
            v.is_coord =
                (v.dims.len() == 1 && v.dims[0] == v.name) || coord_names.contains(&v.name);
        }
        check_dimension_coords(store, &variables)?;
        // Dimension sizes must agree.
        let mut dims: Vec<(String, u64)> = Vec::new();
        let ordered = variables
            .iter()
            .filter(|v| v.is_coord)
            .chain(variables.iter().filter(|v| !v.is_coord));
        for v in ordered {
            for (d, size) in v.dims.iter().zip(v.shape()) {
                match dims.iter().find(|(n, _)| n == d) {
                    Some((_, s)) if s != size => {
                        return Err(Error::InvalidMetadata {
                            location: store.location().join(&v.entry.path),
                            reason: format!(
                            "dimension '{d}' has size {size} here but {s} elsewhere in the group"
                        ),
                        })
                    }
                    Some(_) => {}
                    None => dims.push((d.clone(), *size)),
                }
            }
        }
        Ok(Dataset {
            store: store.clone(),
            group: group.trim_matches('/').to_string(),
            zarr_format: listing.zarr_format,
            consolidated: listing.consolidated,
            dims,
            variables,
            attrs: listing.attrs,
            groups: listing.groups,
        })
    }

    /// The variable called `name`.
    ///
    /// # Errors
    /// [`Error::Missing`] listing the available names.
    pub fn variable(&self, name: &str) -> Result<&Variable> {
        self.variables
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| Error::Missing {
                location: self.location(),
                what: format!("variable '{name}'"),
                hint: format!(
                    "; available: {}",
                    self.variables
                        .iter()
                        .map(|v| v.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    /// The dataset's location (store plus group), for messages.
    #[must_use]
    pub fn location(&self) -> String {
        self.store.location().join(&self.group)
    }

    /// Read and decode one element of a variable at a C-order flat index.
    ///
    /// # Errors
    /// Read errors of the underlying array.
    pub fn read_scalar(&self, var: &Variable, flat_index: u64) -> Result<Scalar> {
        let array = var.array(&self.store)?;
        let shape = var.shape();
        let start = zarrs::array::unravel_index(flat_index, shape).ok_or_else(|| {
            Error::Other(format!(
                "{}/{}: element {flat_index} is outside shape {shape:?}",
                self.location(),
                var.name
            ))
        })?;
        let raw = array.read_region(&start, &vec![1; shape.len()])?;
        decode_scalar(var, &raw, 0, &self.location())
    }
}

/// A variable named like a dimension (its own, or one of the group's) is that dimension's
/// coordinate, and must be one-dimensional over it, as xarray requires.
fn check_dimension_coords(store: &Store, variables: &[Variable]) -> Result<()> {
    let all_dims: BTreeSet<&str> = variables
        .iter()
        .flat_map(|v| v.dims.iter().map(String::as_str))
        .collect();
    for v in variables {
        if all_dims.contains(v.name.as_str()) && v.dims != [v.name.as_str()] {
            return Err(Error::InvalidMetadata {
                location: store.location().join(&v.entry.path),
                reason: format!(
                    "'{}' is named like dimension '{}' but has dimensions ({}); a dimension's \
                     coordinate must be one-dimensional over it",
                    v.name,
                    v.name,
                    v.dims.join(", ")
                ),
            });
        }
    }
    Ok(())
}

fn decode_scalar(var: &Variable, raw: &RawArray, i: usize, location: &str) -> Result<Scalar> {
    decode_value(var.decoding.as_ref(), &var.name, raw, i, location)
}

/// Element `i` of `raw`, decoded by `decoding` (the stored value itself without one), as
/// xarray shows it; `name` and `location` name the variable in errors.
///
/// # Errors
/// [`Error::Unsupported`] for a time value that cannot be decoded.
pub fn decode_value(
    decoding: Option<&CfDecoding>,
    name: &str,
    raw: &RawArray,
    i: usize,
    location: &str,
) -> Result<Scalar> {
    let v = raw.get_f64(i);
    let exact = || -> Scalar {
        match raw.dtype {
            crate::dtype::DType::Bool => Scalar::Bool(v != 0.0),
            crate::dtype::DType::UInt64 => {
                let s = raw.dtype.size();
                let b: [u8; 8] = raw.bytes[i * s..(i + 1) * s].try_into().unwrap_or([0; 8]);
                Scalar::Integer(i128::from(u64::from_ne_bytes(b)))
            }
            d if d.is_integer() => {
                raw_i64(raw, i).map_or(Scalar::Number(v), |x| Scalar::Integer(i128::from(x)))
            }
            _ => Scalar::Number(v),
        }
    };
    let Some(d) = decoding else {
        return Ok(exact());
    };
    match &d.decoded {
        Decoded::Numeric(_) if d.keeps_integers() => Ok(exact()),
        Decoded::Numeric(_) => Ok(d.decode_number(v).map_or(Scalar::Missing, Scalar::Number)),
        Decoded::Timedelta(unit, _) => {
            if d.decode_number(v).is_none() {
                return Ok(Scalar::Missing);
            }
            #[allow(clippy::cast_possible_truncation)]
            let count = raw_i64(raw, i)
                .map_or_else(|| (v * 1e9).round() as i128 / 1_000_000_000, i128::from);
            Ok(Scalar::Duration(count * unit.nanos()))
        }
        Decoded::Time(enc) => {
            let unpacked = d.decode_number(v);
            let Some(x) = unpacked else {
                return Ok(Scalar::Missing);
            };
            let t = if raw.dtype.is_integer() && d.scale_factor.is_none() && d.add_offset.is_none()
            {
                // Exact integer path (avoid f64 rounding of large int64 offsets).
                let exact = raw_i64(raw, i).unwrap_or(0);
                enc.decode_i64(exact).map(Some)
            } else {
                enc.decode_f64(x)
            };
            match t {
                Ok(Some(t)) => Ok(Scalar::Time(t)),
                Ok(None) => Ok(Scalar::Missing),
                Err(e) => Err(Error::Unsupported {
                    location: format!("{location}/{name}"),
                    feature: time_feature(&e),
                    detail: e.to_string(),
                }),
            }
        }
    }
}

fn raw_i64(raw: &RawArray, i: usize) -> Option<i64> {
    let s = raw.dtype.size();
    let b = &raw.bytes[i * s..(i + 1) * s];
    use crate::dtype::DType as D;
    Some(match raw.dtype {
        D::Int8 => i64::from(i8::from_ne_bytes([b[0]])),
        D::UInt8 => i64::from(b[0]),
        D::Int16 => i64::from(i16::from_ne_bytes(b.try_into().ok()?)),
        D::UInt16 => i64::from(u16::from_ne_bytes(b.try_into().ok()?)),
        D::Int32 => i64::from(i32::from_ne_bytes(b.try_into().ok()?)),
        D::UInt32 => i64::from(u32::from_ne_bytes(b.try_into().ok()?)),
        D::Int64 => i64::from_ne_bytes(b.try_into().ok()?),
        D::UInt64 => i64::try_from(u64::from_ne_bytes(b.try_into().ok()?)).ok()?,
        _ => return None,
    })
}

fn time_feature(e: &crate::cf::time::TimeError) -> String {
    use crate::cf::time::TimeError as T;
    match e {
        T::UnsupportedCalendar(c) => format!("calendar '{c}'"),
        T::UnsupportedUnit(u) => format!("time unit '{u}'"),
        T::NotATimeUnit(u) => format!("time units '{u}'"),
        T::InvalidDate(d) => format!("reference date '{d}'"),
        T::OutOfRange(r) => format!("time value {r}"),
    }
}

/// Names for axes without dimension names, as netCDF-C does for HDF5 datasets: one
/// `phony_dim_N` per distinct size, reused across arrays, distinct within one array.
#[derive(Debug, Default)]
struct PhonyDims {
    dims: Vec<(String, u64)>,
}

impl PhonyDims {
    fn name_for(&mut self, size: u64, used: &[String]) -> String {
        if let Some((n, _)) = self
            .dims
            .iter()
            .find(|(n, s)| *s == size && !used.contains(n))
        {
            return n.clone();
        }
        let name = format!("phony_dim_{}", self.dims.len());
        self.dims.push((name.clone(), size));
        name
    }

    fn names_for(&mut self, shape: &[u64]) -> Vec<String> {
        let mut used = Vec::new();
        for &s in shape {
            let n = self.name_for(s, &used);
            used.push(n);
        }
        used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phony_dims_reuse_sizes_but_not_within_an_array() {
        let mut p = PhonyDims::default();
        assert_eq!(p.names_for(&[3, 3]), vec!["phony_dim_0", "phony_dim_1"]);
        assert_eq!(p.names_for(&[3]), vec!["phony_dim_0"]);
        assert_eq!(p.names_for(&[5, 3]), vec!["phony_dim_2", "phony_dim_0"]);
    }
}
