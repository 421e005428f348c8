//! Many files as one dataset: [`Input`]s joined along one dimension, ordered by its coordinate
//! (whatever the order of their names), as xarray's `open_mfdataset(combine="by_coords")` joins
//! them. Files without that coordinate take it from `time_from`; variables without the
//! dimension are taken once and must agree across files, and so must the other dimensions.

use std::sync::Arc;

use rayon::prelude::*;
use serde_json::json;

use super::input::{Input, InputDim, InputVar};
use super::time_from::{time_of, CALENDAR};
use crate::cf::time::{Calendar, CfDateTime, TimeEncoding};
use crate::cf::{CfDecoding, Decoded};
use crate::coord::Coord;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::formats::memory::MemorySource;
use crate::recipe::TimeFrom;
use crate::source::concat::{ConcatSource, WithAxis};
use crate::source::ChunkSource;

/// Variables up to this size are compared value for value across files; larger ones by their
/// dimensions, type and attributes.
pub const COMPARE_VALUES_BYTES: u64 = 1 << 20;

/// The labels of one file along the joined dimension.
#[derive(Debug, Clone, PartialEq)]
enum Labels {
    /// Times, as nanoseconds since 1970-01-01 in `Calendar`.
    Time(Vec<i128>, Calendar),
    /// Numbers, decoded.
    Number(Vec<f64>),
}

impl Labels {
    fn len(&self) -> usize {
        match self {
            Labels::Time(v, _) => v.len(),
            Labels::Number(v) => v.len(),
        }
    }

    /// Label `i`, as a number to order by (nanoseconds as f64 only orders; equality uses `cmp`).
    fn cmp(&self, i: usize, other: &Labels, j: usize) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Labels::Time(a, _), Labels::Time(b, _)) => Some(a[i].cmp(&b[j])),
            (Labels::Number(a), Labels::Number(b)) => a[i].partial_cmp(&b[j]),
            _ => None,
        }
    }

    /// Label `i` as text, for messages.
    fn show(&self, i: usize) -> String {
        match self {
            Labels::Time(v, cal) => ns_encoding(*cal)
                .ok()
                .and_then(|e| e.decode_i64(i64::try_from(v[i]).ok()?).ok())
                .map_or_else(|| format!("{} ns", v[i]), |t| t.to_short()),
            Labels::Number(v) => v[i].to_string(),
        }
    }
}

/// `nanoseconds since 1970-01-01` in `cal`.
fn ns_encoding(cal: Calendar) -> Result<TimeEncoding> {
    TimeEncoding::parse("nanoseconds since 1970-01-01", Some(cal.name()))
        .map_err(|e| Error::Other(format!("internal: {e}")))
}

/// `t` as nanoseconds since 1970-01-01 in `cal`.
fn ns_of(t: &CfDateTime, cal: Calendar, file: &str) -> Result<i128> {
    ns_encoding(cal)?
        .encode_i64(t)
        .ok()
        .flatten()
        .map(i128::from)
        .ok_or_else(|| Error::Combine {
            location: file.to_string(),
            reason: format!("time {t} is outside the years 1678..2262 a label can hold"),
        })
}

/// One file, opened, with its labels along the dimension.
struct Part {
    input: Input,
    labels: Labels,
    /// Whether the file has the dimension (else its variables get it, of length 1).
    has_dim: bool,
}

impl Part {
    fn file(&self) -> &str {
        &self.input.location
    }
}

/// The labels of `input` along `dim`: its coordinate's, or one from `time_from`.
fn labels_of(
    input: &Input,
    dim: &str,
    time_from: Option<&TimeFrom>,
    calendar: Calendar,
) -> Result<Part> {
    let file = &input.location;
    let fail = |reason: String| Error::Combine {
        location: file.clone(),
        reason,
    };
    let d = input.dims.iter().find(|d| d.name == dim);
    if let Some(coord) = d.and_then(|d| d.coord.as_ref()) {
        let raw = coord.raw()?;
        let labels = match &coord.decoding.decoded {
            Decoded::Time(enc) => {
                let mut out = Vec::with_capacity(raw.len());
                for i in 0..raw.len() {
                    let v = raw.get_f64(i);
                    let t = (!coord.decoding.fill_values.contains(&v))
                        .then(|| enc.decode_f64(v).ok().flatten())
                        .flatten()
                        .ok_or_else(|| {
                            fail(format!("coordinate '{dim}' has a missing value at {i}"))
                        })?;
                    out.push(ns_of(&t, enc.calendar, file)?);
                }
                Labels::Time(out, enc.calendar)
            }
            Decoded::Numeric(_) => Labels::Number(
                (0..raw.len())
                    .map(|i| {
                        coord
                            .decoding
                            .decode_number(raw.get_f64(i))
                            .unwrap_or(f64::NAN)
                    })
                    .collect(),
            ),
            Decoded::Timedelta(..) => {
                return Err(fail(format!(
                    "coordinate '{dim}' holds durations; files are joined along times or numbers"
                )))
            }
        };
        return Ok(Part {
            input: input.clone(),
            labels,
            has_dim: true,
        });
    }
    let len = d.map_or(1, |d| d.len);
    let Some(from) = time_from else {
        return Err(fail(format!(
            "no coordinate along '{dim}' to order the files by; give time_from (a file-name \
             pattern, an attribute, a metadata item or a TIFF tag)"
        )));
    };
    if len != 1 {
        return Err(fail(format!(
            "'{dim}' has {len} positions but no coordinate; time_from gives one time per file"
        )));
    }
    let t = time_of(from, file, input)?;
    Ok(Part {
        input: input.clone(),
        labels: Labels::Time(vec![ns_of(&t, calendar, file)?], calendar),
        has_dim: d.is_some(),
    })
}

/// `inputs` (one per file, in the order of their names) joined along `dim` into one input at
/// `location`, ordered by their labels along `dim`.
///
/// # Errors
/// [`Error::Combine`] naming the files: labels that repeat or overlap, or that are of different
/// kinds; a file missing a variable the others have; other dimensions, coordinates or
/// variables without `dim` that differ; `time_from` errors.
pub fn concat_inputs(
    inputs: &[Input],
    dim: &str,
    time_from: Option<&TimeFrom>,
    location: &str,
) -> Result<Input> {
    // Times from file names or attributes are in the calendar of the files that have a time
    // coordinate (the same dates after 1582), or proleptic_gregorian.
    let calendar = inputs
        .iter()
        .find_map(|i| match &i.dims.iter().find(|d| d.name == dim)?.coord {
            Some(c) => match &c.decoding.decoded {
                Decoded::Time(e) => Some(e.calendar),
                _ => None,
            },
            None => None,
        })
        .map_or_else(|| Calendar::parse(CALENDAR), Ok)
        .map_err(|e| Error::Other(format!("internal: {e}")))?;
    let mut parts: Vec<Part> = inputs
        .par_iter()
        .map(|i| labels_of(i, dim, time_from, calendar))
        .collect::<Result<_>>()?;
    if parts.is_empty() {
        return Err(Error::Combine {
            location: location.to_string(),
            reason: "no files to join".into(),
        });
    }
    order(&mut parts, dim)?;
    let coord = joined_coord(&parts, dim, location)?;
    // The variables along `dim`: those that have it in a file that has it (all of them when
    // no file has it: scenes, maps of a day).
    let template = parts.iter().find(|p| p.has_dim).unwrap_or(&parts[0]);
    let any_dim = parts.iter().any(|p| p.has_dim);
    // A scalar (a scene's `spatial_ref`) stays as it is.
    let along = |v: &InputVar| {
        if any_dim {
            v.dims.iter().any(|d| d == dim)
        } else {
            !v.dims.is_empty()
        }
    };
    check_other_dims(&parts, template, dim)?;
    let mut variables = Vec::new();
    for v in &template.input.variables {
        if along(v) {
            variables.push(join_variable(
                &parts,
                template.file(),
                v,
                dim,
                any_dim,
                location,
            )?);
        } else {
            check_same_everywhere(&parts, template, v)?;
            variables.push(v.clone());
        }
    }
    check_no_extra_variables(&parts, template)?;
    let mut dims: Vec<InputDim> = template
        .input
        .dims
        .iter()
        .filter(|d| d.name != dim)
        .cloned()
        .collect();
    let at = if any_dim {
        template
            .input
            .dims
            .iter()
            .position(|d| d.name == dim)
            .unwrap_or(0)
    } else {
        0
    };
    dims.insert(
        at,
        InputDim {
            name: dim.to_string(),
            len: coord.len(),
            coord: Some(coord),
        },
    );
    let mut unreadable: Vec<(String, String)> = Vec::new();
    for p in &parts {
        for (name, reason) in &p.input.unreadable {
            if !unreadable.iter().any(|(n, _)| n == name) {
                unreadable.push((name.clone(), format!("{}: {reason}", p.file())));
            }
        }
    }
    let inputs: Vec<&Input> = parts.iter().map(|p| &p.input).collect();
    let texts = super::text::concat_texts(&inputs, &template.input, dim, any_dim)?;
    Ok(Input {
        location: location.to_string(),
        dims,
        variables,
        attrs: parts[0].input.attrs.clone(),
        unreadable,
        texts,
    })
}

/// Order the files by their first label (the order of their names among equals), and refuse
/// labels that are not increasing within a file, repeat, or overlap between files.
fn order(parts: &mut [Part], dim: &str) -> Result<()> {
    let kind = |l: &Labels| matches!(l, Labels::Time(..));
    if let Some(p) = parts
        .iter()
        .find(|p| kind(&p.labels) != kind(&parts[0].labels))
    {
        return Err(Error::Combine {
            location: p.file().to_string(),
            reason: format!(
                "its '{dim}' labels are {} but those of {} are {}",
                if kind(&p.labels) { "times" } else { "numbers" },
                parts[0].file(),
                if kind(&parts[0].labels) {
                    "times"
                } else {
                    "numbers"
                },
            ),
        });
    }
    if let (Labels::Time(_, a), Some(p)) = (
        &parts[0].labels,
        parts.iter().find(|p| match (&p.labels, &parts[0].labels) {
            (Labels::Time(_, c), Labels::Time(_, d)) => c != d,
            _ => false,
        }),
    ) {
        return Err(Error::Combine {
            location: p.file().to_string(),
            reason: format!(
                "its '{dim}' calendar differs from the {} calendar of {}",
                a.name(),
                parts[0].file()
            ),
        });
    }
    for p in parts.iter() {
        for i in 1..p.labels.len() {
            if p.labels.cmp(i - 1, &p.labels, i) != Some(std::cmp::Ordering::Less) {
                return Err(Error::Combine {
                    location: p.file().to_string(),
                    reason: format!(
                        "its '{dim}' labels are not increasing: {} then {}",
                        p.labels.show(i - 1),
                        p.labels.show(i)
                    ),
                });
            }
        }
        if p.labels.len() == 0 {
            return Err(Error::Combine {
                location: p.file().to_string(),
                reason: format!("it has no position along '{dim}'"),
            });
        }
    }
    parts.sort_by(|a, b| {
        a.labels
            .cmp(0, &b.labels, 0)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    for w in parts.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let last = a.labels.len() - 1;
        if a.labels.cmp(last, &b.labels, 0) != Some(std::cmp::Ordering::Less) {
            let shared = (0..a.labels.len()).find_map(|i| {
                (0..b.labels.len())
                    .find(|j| a.labels.cmp(i, &b.labels, *j) == Some(std::cmp::Ordering::Equal))
            });
            let what = if let Some(j) = shared {
                format!("both hold {}", b.labels.show(j))
            } else {
                format!(
                    "{}..{} overlaps {}..{}",
                    a.labels.show(0),
                    a.labels.show(last),
                    b.labels.show(0),
                    b.labels.show(b.labels.len() - 1)
                )
            };
            return Err(Error::Combine {
                location: a.file().to_string(),
                reason: format!(
                    "its '{dim}' labels and those of {} overlap ({what}); each label must be in \
                     one file",
                    b.file()
                ),
            });
        }
    }
    Ok(())
}

/// The coordinate of the joined dimension, held in memory: times in the first file's units
/// when they hold every time exactly, else in the coarsest unit since 1970-01-01 that does;
/// numbers as the files store them.
fn joined_coord(parts: &[Part], dim: &str, location: &str) -> Result<Coord> {
    let template = parts
        .iter()
        .find_map(|p| p.input.dims.iter().find(|d| d.name == dim)?.coord.clone());
    let id = format!("{location}/{dim}");
    match &parts[0].labels {
        Labels::Time(_, cal) => {
            let cal = *cal;
            let ns: Vec<i128> = parts
                .iter()
                .flat_map(|p| match &p.labels {
                    Labels::Time(v, _) => v.clone(),
                    Labels::Number(_) => Vec::new(),
                })
                .collect();
            let ns_enc = ns_encoding(cal)?;
            let times: Vec<CfDateTime> = ns
                .iter()
                .map(|n| {
                    i64::try_from(*n)
                        .ok()
                        .and_then(|n| ns_enc.decode_i64(n).ok())
                        .ok_or_else(|| Error::Other(format!("internal: time {n} ns")))
                })
                .collect::<Result<_>>()?;
            let mut attrs = template
                .as_ref()
                .map(|c| c.attrs.clone())
                .unwrap_or_default();
            let from_template = template.as_ref().and_then(|c| match &c.decoding.decoded {
                Decoded::Time(enc) => Some(enc.clone()),
                _ => None,
            });
            let exact = |enc: &TimeEncoding| -> Option<Vec<i64>> {
                times
                    .iter()
                    .map(|t| enc.encode_i64(t).ok().flatten())
                    .collect()
            };
            let (enc, values) = match from_template
                .as_ref()
                .and_then(|e| Some((e.clone(), exact(e)?)))
            {
                Some(found) => found,
                None => coarsest(cal, &exact)?,
            };
            for k in [
                "_FillValue",
                "missing_value",
                "scale_factor",
                "add_offset",
                "dtype",
            ] {
                attrs.remove(k);
            }
            attrs.insert("units".into(), json!(enc.units_string()));
            attrs.insert("calendar".into(), json!(cal.name()));
            let n = values.len() as u64;
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
            let source = MemorySource::new(
                &id,
                DType::Int64,
                (&[n], &[n.max(1)]),
                bytes,
                0i64.to_ne_bytes().to_vec(),
            )?;
            let decoding = CfDecoding::from_attrs(&attrs, DType::Int64, None)
                .map_err(|e| Error::Other(format!("internal: {id}: {e}")))?;
            Ok(Coord::stored(Arc::new(source), attrs, decoding))
        }
        Labels::Number(_) => {
            let Some(template) = template else {
                return Err(Error::Other(format!("internal: no coordinate for '{dim}'")));
            };
            let mut bytes = Vec::new();
            for p in parts {
                let c = p
                    .input
                    .dims
                    .iter()
                    .find(|d| d.name == dim)
                    .and_then(|d| d.coord.as_ref())
                    .ok_or_else(|| Error::Other(format!("internal: no '{dim}' in {}", p.file())))?;
                if c.dtype != template.dtype || !same_decoding(&c.decoding, &template.decoding) {
                    return Err(Error::Combine {
                        location: p.file().to_string(),
                        reason: format!(
                            "its '{dim}' coordinate is stored as {} with other attributes than \
                             in {}",
                            c.dtype,
                            parts[0].file()
                        ),
                    });
                }
                bytes.extend_from_slice(&c.raw()?.bytes);
            }
            let n = (bytes.len() / template.dtype.size()) as u64;
            let mut fill = Vec::new();
            template.dtype.push_f64(0.0, &mut fill);
            let source = MemorySource::new(&id, template.dtype, (&[n], &[n.max(1)]), bytes, fill)?;
            Ok(Coord::stored(
                Arc::new(source),
                template.attrs.clone(),
                template.decoding.clone(),
            ))
        }
    }
}

/// The coarsest of days, hours, …, nanoseconds since 1970-01-01 in `cal` that holds every
/// time exactly.
fn coarsest(
    cal: Calendar,
    exact: &dyn Fn(&TimeEncoding) -> Option<Vec<i64>>,
) -> Result<(TimeEncoding, Vec<i64>)> {
    for unit in [
        "days",
        "hours",
        "minutes",
        "seconds",
        "milliseconds",
        "microseconds",
        "nanoseconds",
    ] {
        let enc = TimeEncoding::parse(&format!("{unit} since 1970-01-01"), Some(cal.name()))
            .map_err(|e| Error::Other(format!("internal: {e}")))?;
        if let Some(v) = exact(&enc) {
            return Ok((enc, v));
        }
    }
    Err(Error::Other(
        "internal: times not in whole nanoseconds".into(),
    ))
}

/// Refuse files whose dimensions other than `dim` differ from `template`'s in length or
/// coordinate values.
fn check_other_dims(parts: &[Part], template: &Part, dim: &str) -> Result<()> {
    let wanted: Vec<(&InputDim, Option<Vec<f64>>)> = template
        .input
        .dims
        .iter()
        .filter(|d| d.name != dim)
        .map(|d| Ok((d, d.coord.as_ref().map(decoded_values).transpose()?)))
        .collect::<Result<_>>()?;
    parts.par_iter().try_for_each(|p| {
        let fail = |reason: String| Error::Combine {
            location: p.file().to_string(),
            reason,
        };
        for (d, values) in &wanted {
            let Some(own) = p.input.dims.iter().find(|x| x.name == d.name) else {
                return Err(fail(format!(
                    "it has no dimension '{}', which {} has",
                    d.name,
                    template.file()
                )));
            };
            if own.len != d.len {
                return Err(fail(format!(
                    "dimension '{}' has {} positions here and {} in {}",
                    d.name,
                    own.len,
                    d.len,
                    template.file()
                )));
            }
            let own_values = own.coord.as_ref().map(decoded_values).transpose()?;
            if !same_values(own_values.as_deref(), values.as_deref()) {
                return Err(fail(format!(
                    "the coordinate of dimension '{}' differs from that of {}",
                    d.name,
                    template.file()
                )));
            }
        }
        if let Some(extra) = p
            .input
            .dims
            .iter()
            .find(|x| x.name != dim && !wanted.iter().any(|(d, _)| d.name == x.name))
        {
            return Err(fail(format!(
                "it has a dimension '{}' that {} has not",
                extra.name,
                template.file()
            )));
        }
        Ok(())
    })
}

/// A coordinate's values after decoding (times as nanoseconds since 1970, as floats).
fn decoded_values(c: &Coord) -> Result<Vec<f64>> {
    let raw = c.raw()?;
    Ok((0..raw.len())
        .map(|i| {
            let v = raw.get_f64(i);
            match &c.decoding.decoded {
                Decoded::Time(enc) => enc
                    .decode_f64(v)
                    .ok()
                    .flatten()
                    .and_then(|t| {
                        ns_encoding(enc.calendar)
                            .ok()?
                            .encode_i64(&t)
                            .ok()
                            .flatten()
                    })
                    .map_or(f64::NAN, |n| n as f64),
                _ => c.decoding.decode_number(v).unwrap_or(f64::NAN),
            }
        })
        .collect())
}

/// Equal values, NaN equal to NaN; two absent coordinates are equal.
fn same_values(a: Option<&[f64]>, b: Option<&[f64]>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
        }
        _ => false,
    }
}

/// Variable `v` of the template joined along `dim` from every file.
fn join_variable(
    parts: &[Part],
    template: &str,
    v: &InputVar,
    dim: &str,
    any_dim: bool,
    location: &str,
) -> Result<InputVar> {
    let dims: Vec<String> = if any_dim {
        v.dims.clone()
    } else {
        std::iter::once(dim.to_string())
            .chain(v.dims.iter().cloned())
            .collect()
    };
    let axis = dims.iter().position(|d| d == dim).unwrap_or(0);
    let mut sources: Vec<Arc<dyn ChunkSource>> = Vec::with_capacity(parts.len());
    for p in parts {
        let fail = |reason: String| Error::Combine {
            location: p.file().to_string(),
            reason,
        };
        let Some(own) = p.input.variables.iter().find(|x| x.name == v.name) else {
            return Err(fail(missing_variable(&v.name, parts)));
        };
        let own_dims: Vec<&String> = if p.has_dim {
            own.dims.iter().collect()
        } else {
            own.dims.iter().filter(|d| *d != dim).collect()
        };
        let want: Vec<&String> = if p.has_dim {
            dims.iter().collect()
        } else {
            dims.iter().filter(|d| *d != dim).collect()
        };
        if own_dims != want {
            return Err(fail(format!(
                "variable '{}' has dimensions ({}) here and ({}) in {template}",
                v.name,
                own.dims.join(", "),
                dims.join(", "),
            )));
        }
        if !same_decoding(&own.decoding, &v.decoding) {
            return Err(fail(format!(
                "variable '{}' is stored or packed differently ({}, scale/offset/fill) than in \
                 {template}",
                v.name,
                own.source.dtype(),
            )));
        }
        let source = if p.has_dim {
            own.source.clone()
        } else {
            Arc::new(WithAxis::new(own.source.clone(), axis)) as Arc<dyn ChunkSource>
        };
        sources.push(source);
    }
    let id = format!("{location}/{}", v.name);
    let source = ConcatSource::new(id, sources, axis).map_err(|e| Error::Combine {
        location: location.to_string(),
        reason: format!("variable '{}': {e}", v.name),
    })?;
    Ok(InputVar {
        name: v.name.clone(),
        dims,
        source: Arc::new(source),
        decoding: v.decoding.clone(),
        attrs: v.attrs.clone(),
    })
}

/// The message for a file without variable `name`, naming a file that has it.
fn missing_variable(name: &str, parts: &[Part]) -> String {
    let other = parts
        .iter()
        .find(|q| q.input.variables.iter().any(|x| x.name == name))
        .map_or("the others", Part::file);
    format!("it has no variable '{name}', which {other} has")
}

/// Refuse a file with a variable the template lacks.
fn check_no_extra_variables(parts: &[Part], template: &Part) -> Result<()> {
    for p in parts {
        if let Some(extra) = p
            .input
            .variables
            .iter()
            .find(|x| !template.input.variables.iter().any(|t| t.name == x.name))
        {
            return Err(Error::Combine {
                location: template.file().to_string(),
                reason: format!(
                    "it has no variable '{}', which {} has",
                    extra.name,
                    p.file()
                ),
            });
        }
    }
    Ok(())
}

/// Refuse files where variable `v` (without the joined dimension) differs from the template's:
/// its dimensions, shape, type, attributes, and its values when it is small.
fn check_same_everywhere(parts: &[Part], template: &Part, v: &InputVar) -> Result<()> {
    let bytes = v.source.shape().iter().product::<u64>() * v.source.dtype().size() as u64;
    let values = if bytes <= COMPARE_VALUES_BYTES {
        let shape = v.source.shape().to_vec();
        Some(v.source.read_region(&vec![0; shape.len()], &shape)?.bytes)
    } else {
        None
    };
    parts.par_iter().try_for_each(|p| {
        let fail = |reason: String| Error::Combine {
            location: p.file().to_string(),
            reason,
        };
        let Some(own) = p.input.variables.iter().find(|x| x.name == v.name) else {
            return Err(fail(missing_variable(&v.name, parts)));
        };
        let differs = |what: &str| {
            fail(format!(
                "variable '{}' differs ({what}) from that of {}; a variable without the joined \
                 dimension must be the same in every file",
                v.name,
                template.file()
            ))
        };
        if own.dims != v.dims || own.source.shape() != v.source.shape() {
            return Err(differs("dimensions or shape"));
        }
        if own.source.dtype() != v.source.dtype() || !same_decoding(&own.decoding, &v.decoding) {
            return Err(differs("type or encoding"));
        }
        if own.attrs != v.attrs {
            return Err(differs("attributes"));
        }
        if let Some(want) = &values {
            let shape = own.source.shape().to_vec();
            let got = own.source.read_region(&vec![0; shape.len()], &shape)?;
            if !same_bytes(&got.bytes, want, v.source.dtype()) {
                return Err(differs("values"));
            }
        }
        Ok(())
    })
}

/// The same decoding, a NaN fill value equal to NaN.
fn same_decoding(a: &CfDecoding, b: &CfDecoding) -> bool {
    let fills = a.fill_values.len() == b.fill_values.len()
        && a.fill_values
            .iter()
            .zip(&b.fill_values)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()));
    fills
        && a.stored == b.stored
        && a.scale_factor == b.scale_factor
        && a.add_offset == b.add_offset
        && a.unsigned == b.unsigned
        && a.decoded == b.decoded
}

/// Equal values, NaN equal to NaN for floats.
fn same_bytes(a: &[u8], b: &[u8], dtype: DType) -> bool {
    if a == b {
        return true;
    }
    if !dtype.is_float() || a.len() != b.len() {
        return false;
    }
    let s = dtype.size();
    a.chunks(s).zip(b.chunks(s)).all(|(x, y)| {
        let (x, y) = (dtype.element_to_f64(x), dtype.element_to_f64(y));
        x == y || (x.is_nan() && y.is_nan())
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use serde_json::{json, Map, Value};

    use super::*;
    use crate::cf::CfDecoding;

    fn attrs(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    /// A stored one-dimensional coordinate of `values` in `dtype` with `a` attributes.
    pub(crate) fn coord(id: &str, dtype: DType, values: &[f64], a: Value) -> Coord {
        let n = values.len() as u64;
        let source = MemorySource::from_f64(id, dtype, (&[n], &[n]), values).expect("coord");
        let a = attrs(a);
        let decoding = CfDecoding::from_attrs(&a, dtype, None).expect("decoding");
        Coord::stored(Arc::new(source), a, decoding)
    }

    /// The value of `chl` on day `day` (since 2020-01-01) at `(y, x)`.
    pub(crate) fn chl(day: i64, y: u64, x: u64) -> f64 {
        (day * 100) as f64 + (y * 10 + x) as f64 + 0.5
    }

    /// A float32 variable `name` over `dims` (`shape`), values by position.
    pub(crate) fn var(
        id: &str,
        name: &str,
        dims: &[&str],
        shape: &[u64],
        values: &[f64],
    ) -> InputVar {
        let chunks: Vec<u64> = shape.iter().map(|n| (*n).clamp(1, 2)).collect();
        let source =
            MemorySource::from_f64(id, DType::Float32, (shape, &chunks), values).expect("var");
        InputVar {
            name: name.into(),
            dims: dims.iter().map(|d| (*d).to_string()).collect(),
            source: Arc::new(source),
            decoding: CfDecoding::from_attrs(&Map::new(), DType::Float32, Some(f64::NAN))
                .expect("decoding"),
            attrs: attrs(json!({"units": "mg m-3"})),
        }
    }

    /// One daily file `file`: `chl (time, lat, lon)` on days `days` (in `units`, whose
    /// reference is `ref_day` days after 2020-01-01), `lat` of `lats`, `lon` of 3, and
    /// `depth (lat, lon)` equal to `depth`.
    pub(crate) fn daily(
        file: &str,
        units: &str,
        ref_day: i64,
        days: &[i64],
        lats: &[f64],
    ) -> Input {
        let (nt, ny, nx) = (days.len() as u64, lats.len() as u64, 3u64);
        let mut values = Vec::new();
        for d in days {
            for y in 0..ny {
                for x in 0..nx {
                    values.push(chl(ref_day + d, y, x));
                }
            }
        }
        let day_values: Vec<f64> = days.iter().map(|d| *d as f64).collect();
        Input {
            location: file.into(),
            dims: vec![
                InputDim {
                    name: "time".into(),
                    len: nt,
                    coord: Some(coord(
                        &format!("{file}/time"),
                        DType::Int64,
                        &day_values,
                        json!({"units": units, "calendar": "standard", "standard_name": "time"}),
                    )),
                },
                InputDim {
                    name: "lat".into(),
                    len: ny,
                    coord: Some(coord(
                        &format!("{file}/lat"),
                        DType::Float64,
                        lats,
                        json!({"units": "degrees_north"}),
                    )),
                },
                InputDim {
                    name: "lon".into(),
                    len: nx,
                    coord: None,
                },
            ],
            variables: vec![
                var(
                    &format!("{file}/chl"),
                    "chl",
                    &["time", "lat", "lon"],
                    &[nt, ny, nx],
                    &values,
                ),
                var(
                    &format!("{file}/depth"),
                    "depth",
                    &["lat", "lon"],
                    &[ny, nx],
                    &vec![7.0; (ny * nx) as usize],
                ),
            ],
            attrs: attrs(json!({"title": file})),
            unreadable: Vec::new(),
            texts: Vec::new(),
        }
    }

    /// The decoded times of the joined input's `time`, as ISO texts.
    fn times(input: &Input) -> Vec<String> {
        let d = input.dims.iter().find(|d| d.name == "time").expect("time");
        let c = d.coord.as_ref().expect("coordinate");
        let Decoded::Time(enc) = &c.decoding.decoded else {
            panic!("not a time: {:?}", c.decoding);
        };
        let raw = c.raw().expect("values");
        (0..raw.len())
            .map(|i| {
                enc.decode_f64(raw.get_f64(i))
                    .expect("t")
                    .expect("t")
                    .to_short()
            })
            .collect()
    }

    const LATS: [f64; 2] = [10.0, 10.5];

    #[test]
    fn files_join_in_the_order_of_their_times_whatever_their_names() {
        // Names in one order, times in another, and units that differ between files.
        let files = vec![
            daily("src/a.nc", "days since 2020-01-01", 0, &[4, 5], &LATS),
            daily("src/b.nc", "days since 2020-01-01", 0, &[0, 1, 2], &LATS),
            daily("src/c.nc", "hours since 2020-01-04", 3, &[0], &LATS),
        ];
        let joined = concat_inputs(&files, "time", None, "src/*.nc").expect("joined");
        assert_eq!(
            times(&joined),
            [
                "2020-01-01",
                "2020-01-02",
                "2020-01-03",
                "2020-01-04",
                "2020-01-05",
                "2020-01-06"
            ]
        );
        // The first file by time (b.nc) gives the units, which hold every time exactly.
        let c = joined.dims[0].coord.as_ref().expect("coord");
        assert_eq!(c.attrs["units"], json!("days since 2020-01-01 00:00:00"));
        assert_eq!(c.attrs["standard_name"], json!("time"));
        assert_eq!(
            c.raw().expect("raw").to_f64_vec(),
            vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        );
        let v = &joined.variables[0];
        assert_eq!(
            (v.name.as_str(), v.source.shape()),
            ("chl", &[6u64, 2, 3][..])
        );
        crate::source::contract::check(&*v.source).expect("contract");
        let all = v
            .source
            .read_region(&[0, 0, 0], &[6, 2, 3])
            .expect("read")
            .to_f64_vec();
        let mut k = 0;
        for day in 0..6 {
            for y in 0..2 {
                for x in 0..3 {
                    assert_eq!(all[k], chl(day, y, x) as f32 as f64, "{day} {y} {x}");
                    k += 1;
                }
            }
        }
        // Variables without the dimension are taken once; global attributes are the first's.
        assert_eq!(joined.variables[1].dims, vec!["lat", "lon"]);
        assert_eq!(joined.attrs["title"], json!("src/b.nc"));
        assert_eq!(
            joined
                .dims
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>(),
            ["time", "lat", "lon"]
        );
    }

    fn error(files: &[Input]) -> String {
        concat_inputs(files, "time", None, "src/*.nc")
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn files_that_do_not_join_are_refused_naming_them() {
        // The same day in two files.
        let e = error(&[
            daily("src/a.nc", "days since 2020-01-01", 0, &[3, 4], &LATS),
            daily("src/b.nc", "days since 2020-01-01", 0, &[4, 5], &LATS),
        ]);
        assert!(
            e.contains("src/a.nc") && e.contains("src/b.nc") && e.contains("2020-01-05"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        let e = error(&[
            daily("src/a.nc", "days since 2020-01-01", 0, &[3, 4], &LATS),
            daily("src/b.nc", "days since 2020-01-01", 0, &[4], &LATS),
        ]);
        assert!(e.contains("both hold 2020-01-05"), "{e}");
        // Another latitude grid in one file.
        let e = error(&[
            daily("src/a.nc", "days since 2020-01-01", 0, &[0], &LATS),
            daily("src/b.nc", "days since 2020-01-01", 0, &[1], &[10.0, 11.0]),
        ]);
        assert!(
            e.contains("src/b.nc") && e.contains("'lat'") && e.contains("src/a.nc"),
            "{e}"
        );
        let e = error(&[
            daily("src/a.nc", "days since 2020-01-01", 0, &[0], &LATS),
            daily(
                "src/b.nc",
                "days since 2020-01-01",
                0,
                &[1],
                &[10.0, 10.5, 11.0],
            ),
        ]);
        assert!(
            e.contains("'lat' has 3 positions here and 2 in src/a.nc"),
            "{e}"
        );
        // A variable missing from one file.
        let mut b = daily("src/b.nc", "days since 2020-01-01", 0, &[1], &LATS);
        b.variables.remove(0);
        let e = error(&[
            daily("src/a.nc", "days since 2020-01-01", 0, &[0], &LATS),
            b,
        ]);
        assert!(
            e.contains("src/b.nc") && e.contains("no variable 'chl'") && e.contains("src/a.nc"),
            "{e}"
        );
        // A variable without the dimension that differs.
        let mut b = daily("src/b.nc", "days since 2020-01-01", 0, &[1], &LATS);
        b.variables[1] = var(
            "src/b.nc/depth",
            "depth",
            &["lat", "lon"],
            &[2, 3],
            &[8.0; 6],
        );
        let e = error(&[
            daily("src/a.nc", "days since 2020-01-01", 0, &[0], &LATS),
            b,
        ]);
        assert!(
            e.contains("src/b.nc") && e.contains("'depth' differs (values)"),
            "{e}"
        );
        // Labels that go backwards within a file.
        let e = error(&[daily(
            "src/a.nc",
            "days since 2020-01-01",
            0,
            &[2, 1],
            &LATS,
        )]);
        assert!(e.contains("not increasing"), "{e}");
    }

    #[test]
    fn a_map_of_one_day_joins_files_with_a_time_coordinate() {
        // b.nc: the same variables without the time dimension, its day in its name.
        let mut map = daily(
            "src/oc_20200103.nc",
            "days since 2020-01-01",
            0,
            &[0],
            &LATS,
        );
        map.dims.remove(0);
        map.variables[0] = var(
            "src/oc_20200103.nc/chl",
            "chl",
            &["lat", "lon"],
            &[2, 3],
            &(0..6).map(|i| chl(2, i / 3, i % 3)).collect::<Vec<_>>(),
        );
        let files = [
            map,
            daily(
                "src/oc_20200101.nc",
                "days since 2020-01-01",
                0,
                &[0, 1],
                &LATS,
            ),
        ];
        let from = TimeFrom::Pattern("oc_%Y%m%d.nc".into());
        let joined = concat_inputs(&files, "time", Some(&from), "src/*.nc").expect("joined");
        assert_eq!(times(&joined), ["2020-01-01", "2020-01-02", "2020-01-03"]);
        let v = &joined.variables[0];
        assert_eq!(v.dims, vec!["time", "lat", "lon"]);
        crate::source::contract::check(&*v.source).expect("contract");
        let all = v
            .source
            .read_region(&[0, 0, 0], &[3, 2, 3])
            .expect("read")
            .to_f64_vec();
        for (k, got) in all.iter().enumerate() {
            let (day, y, x) = (k / 6, (k % 6) / 3, k % 3);
            assert_eq!(
                *got,
                chl(day as i64, y as u64, x as u64) as f32 as f64,
                "{k}"
            );
        }
        assert_eq!(joined.variables[1].dims, vec!["lat", "lon"]);
    }

    /// A scene without a time dimension: `band (y 2, x 2)` of `value`, with attributes.
    fn scene(file: &str, value: f64, a: Value) -> Input {
        Input {
            location: file.into(),
            dims: vec![
                InputDim {
                    name: "y".into(),
                    len: 2,
                    coord: None,
                },
                InputDim {
                    name: "x".into(),
                    len: 2,
                    coord: None,
                },
            ],
            variables: vec![var(
                &format!("{file}/band"),
                "band",
                &["y", "x"],
                &[2, 2],
                &[value; 4],
            )],
            attrs: attrs(a),
            unreadable: Vec::new(),
            texts: Vec::new(),
        }
    }

    #[test]
    fn scenes_take_their_time_from_their_names_or_metadata() {
        let scenes = [
            scene("s/S_20200103T101500.tif", 3.0, json!({})),
            scene("s/S_20200101T000000.tif", 1.0, json!({})),
            scene("s/S_20200102T120000.tif", 2.0, json!({})),
        ];
        let from = TimeFrom::Pattern("S_%Y%m%dT%H%M%S.tif".into());
        let joined = concat_inputs(&scenes, "time", Some(&from), "s/*.tif").expect("joined");
        assert_eq!(
            times(&joined),
            ["2020-01-01", "2020-01-02T12:00:00", "2020-01-03T10:15:00"]
        );
        let c = joined.dims[0].coord.as_ref().expect("coord");
        assert_eq!(c.attrs["units"], json!("minutes since 1970-01-01 00:00:00"));
        assert_eq!(c.attrs["calendar"], json!("proleptic_gregorian"));
        let v = &joined.variables[0];
        assert_eq!(v.dims, vec!["time", "y", "x"]);
        crate::source::contract::check(&*v.source).expect("contract");
        let all = v
            .source
            .read_region(&[0, 0, 0], &[3, 2, 2])
            .expect("read")
            .to_f64_vec();
        assert_eq!(all, [[1.0; 4], [2.0; 4], [3.0; 4]].concat());

        let e = concat_inputs(
            &[scene("s/S_2020.tif", 1.0, json!({}))],
            "time",
            Some(&from),
            "s/*.tif",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("s/S_2020.tif") && e.contains("does not match"),
            "{e}"
        );

        let by_item = [
            scene(
                "s/b.tif",
                2.0,
                json!({"ACQUISITION_START": "2021-06-02T10:00:00Z"}),
            ),
            scene(
                "s/a.tif",
                1.0,
                json!({"ACQUISITION_START": "2021-06-01T10:00:00Z"}),
            ),
        ];
        let from = TimeFrom::Metadata("ACQUISITION_START".into());
        let joined = concat_inputs(&by_item, "time", Some(&from), "s/*.tif").expect("joined");
        assert_eq!(
            times(&joined),
            ["2021-06-01T10:00:00", "2021-06-02T10:00:00"]
        );
        let from = TimeFrom::Attribute("date".into());
        let e = concat_inputs(&by_item, "time", Some(&from), "s/*.tif")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("s/b.tif") && e.contains("no attribute \"date\""),
            "{e}"
        );
        // Without time_from, files without the coordinate cannot be ordered.
        let e = concat_inputs(&by_item, "time", None, "s/*.tif")
            .unwrap_err()
            .to_string();
        assert!(e.contains("time_from"), "{e}");
    }
}
