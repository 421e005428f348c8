//! `resample`: the time bins of a dimension's CF time coordinate, a new coordinate of bin labels
//! and a `DIM_bnds (DIM, nv)` variable of each bin's edges (both encoded in the input's units and
//! calendar where they are whole numbers of its unit, in a finer unit otherwise), and every
//! variable along the dimension reduced per bin ([`crate::ops::resample`]).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{op_err, Dim, State, Var};
use crate::cf::time::{CfDateTime, TimeEncoding, TimeUnit};
use crate::cf::{CfDecoding, Decoded};
use crate::coord::Coord;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::formats::memory::MemorySource;
use crate::ops::resample::{bins, result_type, Bins, Freq, Held, Resample as ResampleOp};
use crate::plan::{Node, Op, VType};
use crate::recipe::{Operation, Resample};

/// The name of the bounds' second dimension (CF's customary `nv`).
const NV: &str = "nv";

/// Attributes of the input coordinate that do not describe the new one.
const DROPPED: [&str; 6] = [
    "_FillValue",
    "missing_value",
    "scale_factor",
    "add_offset",
    "_Unsigned",
    "dtype",
];

/// The bin labels and edges as whole numbers of one unit since the input's reference date:
/// the input's unit when it can, a finer one otherwise.
struct Encoded {
    enc: TimeEncoding,
    labels: Vec<i64>,
    bounds: Vec<i64>,
}

fn encode(input: &TimeEncoding, b: &Bins) -> std::result::Result<Encoded, String> {
    let finer = [
        TimeUnit::Days,
        TimeUnit::Hours,
        TimeUnit::Minutes,
        TimeUnit::Seconds,
        TimeUnit::Milliseconds,
        TimeUnit::Microseconds,
        TimeUnit::Nanoseconds,
    ];
    let units = std::iter::once(input.unit)
        .chain(finer.into_iter().filter(|u| u.nanos() < input.unit.nanos()));
    let mut last_error = String::new();
    for unit in units {
        let enc = TimeEncoding {
            unit,
            ..input.clone()
        };
        let all = |ts: &mut dyn Iterator<Item = &CfDateTime>| -> std::result::Result<Option<Vec<i64>>, String> {
            let mut out = Vec::new();
            for t in ts {
                match enc.encode_i64(t).map_err(|e| e.to_string())? {
                    Some(v) => out.push(v),
                    None => return Ok(None),
                }
            }
            Ok(Some(out))
        };
        let labels = all(&mut b.labels.iter());
        let bounds = all(&mut b.bounds.iter().flat_map(|(lo, hi)| [lo, hi]));
        match (labels, bounds) {
            (Ok(Some(labels)), Ok(Some(bounds))) => {
                return Ok(Encoded {
                    enc,
                    labels,
                    bounds,
                })
            }
            (Err(e), _) | (_, Err(e)) => last_error = e,
            _ => {}
        }
    }
    Err(format!("the bins cannot be encoded: {last_error}"))
}

impl State<'_> {
    /// `resample`: every variable along `r.dim` reduced per time bin, the dimension's
    /// coordinate replaced by the bins' labels, and `DIM_bnds` added.
    pub(super) fn resample(&mut self, i: usize, op: &Operation, r: &Resample) -> Result<()> {
        let doc = self.doc;
        let err = |m: String| op_err(doc, i, op, m);
        let dim = &r.dim;
        let Some(d) = self.dims.get(dim) else {
            return Err(err(format!(
                "'{dim}' is not a dimension (dimensions: {})",
                self.dim_names()
            )));
        };
        let bound_only = d.bound_only;
        let Some(coord) = d.coord.clone() else {
            return Err(err(format!("dimension '{dim}' has no coordinate to bin")));
        };
        let Decoded::Time(enc) = coord.decoding.decoded.clone() else {
            return Err(err(format!(
                "coordinate '{dim}' is not a CF time (its units are not '<unit> since <date>')"
            )));
        };
        let freq = Freq::parse(&r.freq).map_err(|m| {
            doc.error_at(
                doc.key_line(i, "freq"),
                &format!("operations[{i}].resample.freq"),
                m,
            )
        })?;
        let times = self.times(dim, &coord, &enc).map_err(&err)?;
        let b = bins(&times, enc.calendar, freq, r.closed, r.label)
            .map_err(|m| err(format!("{dim}: {m}")))?;
        let e = encode(&enc, &b).map_err(|m| err(format!("{dim}: {m}")))?;
        let bnds = format!("{dim}_bnds");
        if self.dims.contains_key(&bnds) {
            return Err(err(format!(
                "the bounds variable '{bnds}' would clash with dimension '{bnds}'"
            )));
        }
        match self.dims.get(NV) {
            Some(nv) if nv.len != 2 => {
                return Err(err(format!(
                    "the bounds need a dimension '{NV}' of length 2, and '{NV}' has length {}",
                    nv.len
                )))
            }
            _ => {}
        }
        let nbins = b.ranges.len() as u64;
        let ranges = Arc::new(b.ranges.clone());
        let empty = b.any_empty();
        for v in self.vars.values_mut() {
            let Some(axis) = v.node.dims.iter().position(|x| x == dim) else {
                continue;
            };
            let mut shape = v.node.shape.clone();
            shape[axis] = nbins;
            let vtype = result_type(v.node.vtype, r.how, empty);
            v.node = Node::new(
                Op::Window(Arc::new(ResampleOp::new(
                    v.node.clone(),
                    axis,
                    ranges.clone(),
                    r.how,
                    r.freq.clone(),
                ))),
                v.node.dims.clone(),
                shape,
                vtype,
            );
        }
        let units = if e.enc.unit == enc.unit {
            coord
                .attrs
                .get("units")
                .cloned()
                .unwrap_or_else(|| Value::from(enc.units_string()))
        } else {
            Value::from(e.enc.units_string())
        };
        let mut attrs: Map<String, Value> = coord
            .attrs
            .iter()
            .filter(|(k, _)| !DROPPED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        attrs.insert("units".into(), units.clone());
        attrs.insert("bounds".into(), Value::from(bnds.clone()));
        let new_coord = labels_coord(&format!("{}#resample", coord.origin()), &e.labels, attrs)?;
        self.drop_texts_along(dim);
        self.dims.insert(
            dim.clone(),
            Dim {
                len: nbins,
                index: Arc::new((0..nbins).collect()),
                coord: Some(new_coord),
                bound_only,
            },
        );
        self.dims.entry(NV.to_string()).or_insert_with(|| Dim {
            len: 2,
            index: Arc::new(vec![0, 1]),
            coord: None,
            bound_only: false,
        });
        self.add_bounds(&bnds, dim, &e, units, &coord.attrs)
            .map_err(err)
    }

    /// The decoded date-times of the current positions of `dim`.
    fn times(
        &self,
        dim: &str,
        coord: &Coord,
        enc: &TimeEncoding,
    ) -> std::result::Result<Vec<CfDateTime>, String> {
        let raw = coord.raw().map_err(|e| e.to_string())?;
        let d = &self.dims[dim];
        let mut times = Vec::with_capacity(d.index.len());
        for p in d.index.iter() {
            let p = usize::try_from(*p).unwrap_or(0);
            let stored = &raw.bytes[p * raw.dtype.size()..(p + 1) * raw.dtype.size()];
            let value = coord
                .decoding
                .decode_number(raw.dtype.element_to_f64(stored));
            let t = match (raw.dtype, value) {
                (_, None) => None,
                // Whole int64 offsets exactly, beyond what a float64 holds.
                (DType::Int64, Some(_)) if coord.decoding.is_identity() => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(stored);
                    Some(enc.decode_i64(i64::from_ne_bytes(b)))
                }
                (_, Some(v)) => enc.decode_f64(v).transpose(),
            };
            match t {
                Some(Ok(t)) => times.push(t),
                Some(Err(e)) => return Err(format!("{dim}: {e}")),
                None => {
                    return Err(format!(
                        "coordinate '{dim}' is missing (NaT) at position {p}; select it away \
                         first"
                    ))
                }
            }
        }
        Ok(times)
    }

    /// The variable `name (dim, nv)` of the bins' edges, in the encoding `e`.
    fn add_bounds(
        &mut self,
        name: &str,
        dim: &str,
        e: &Encoded,
        units: Value,
        coord_attrs: &Map<String, Value>,
    ) -> std::result::Result<(), String> {
        const EXACT: i64 = 1 << 53;
        if e.bounds
            .iter()
            .any(|v| v.unsigned_abs() > EXACT.unsigned_abs())
        {
            return Err(format!(
                "the bounds of '{dim}' in {} exceed 2^53 and cannot be held exactly",
                e.enc.units_string()
            ));
        }
        #[allow(clippy::cast_precision_loss)]
        let values: Vec<f64> = e.bounds.iter().map(|v| *v as f64).collect();
        let nbins = (e.bounds.len() / 2) as u64;
        let node = Node::new(
            Op::Window(Arc::new(Held::new(values))),
            vec![dim.to_string(), NV.to_string()],
            vec![nbins, 2],
            VType::Int(DType::Int64),
        );
        let mut attrs = Map::new();
        attrs.insert("units".into(), units);
        if let Some(c) = coord_attrs.get("calendar") {
            attrs.insert("calendar".into(), c.clone());
        }
        self.vars.insert(name.to_string(), Var { node, attrs });
        Ok(())
    }
}

/// A coordinate of int64 `labels` held in memory, with `attrs`.
fn labels_coord(id: &str, labels: &[i64], attrs: Map<String, Value>) -> Result<Coord> {
    let n = labels.len() as u64;
    let bytes: Vec<u8> = labels.iter().flat_map(|v| v.to_ne_bytes()).collect();
    let source = MemorySource::new(
        id,
        DType::Int64,
        (&[n], &[n.max(1)]),
        bytes,
        0i64.to_ne_bytes().to_vec(),
    )?;
    let decoding = CfDecoding::from_attrs(&attrs, DType::Int64, None)
        .map_err(|e| Error::Other(format!("{id}: {e}")))?;
    Ok(Coord::stored(Arc::new(source), attrs, decoding))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::build::{build_input, BuildOptions};
    use crate::dataset::Dataset;
    use crate::lower::{Input, InputDim, InputVar};
    use crate::recipe::RecipeDoc;
    use crate::store::{Location, Store};

    fn attrs(v: &Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    /// `t2m (valid_time 50, latitude 3)` float32, hourly from 2000-01-01T05:00 (`hours since
    /// 2000-01-01`), value `t + 0.5 * y` (NaN where `t % 5 == 0`), and `level (latitude)`
    /// without time.
    fn input(name: &str) -> Input {
        let mut values = Vec::new();
        for t in 0..50u32 {
            for y in 0..3u32 {
                values.push(if t % 5 == 0 {
                    f64::NAN
                } else {
                    f64::from(t) + 0.5 * f64::from(y)
                });
            }
        }
        let t2m = MemorySource::from_f64(
            &format!("memory://{name}/t2m"),
            DType::Float32,
            (&[50, 3], &[7, 2]),
            &values,
        )
        .expect("t2m");
        let level = MemorySource::from_f64(
            &format!("memory://{name}/level"),
            DType::Float64,
            (&[3], &[3]),
            &[1.0, 2.0, 3.0],
        )
        .expect("level");
        let float = |d| CfDecoding::from_attrs(&Map::new(), d, Some(f64::NAN)).expect("decoding");
        let time_attrs =
            attrs(&json!({"units": "hours since 2000-01-01", "standard_name": "time"}));
        let time = Coord::computed(
            5.0,
            1.0,
            50,
            DType::Int64,
            time_attrs.clone(),
            CfDecoding::from_attrs(&time_attrs, DType::Int64, None).expect("time"),
        );
        Input {
            location: format!("memory://{name}"),
            dims: vec![
                InputDim {
                    name: "valid_time".into(),
                    len: 50,
                    coord: Some(time),
                },
                InputDim {
                    name: "latitude".into(),
                    len: 3,
                    coord: None,
                },
            ],
            variables: vec![
                InputVar {
                    name: "t2m".into(),
                    dims: vec!["valid_time".into(), "latitude".into()],
                    source: Arc::new(t2m),
                    decoding: float(DType::Float32),
                    attrs: attrs(&json!({"units": "K"})),
                },
                InputVar {
                    name: "level".into(),
                    dims: vec!["latitude".into()],
                    source: Arc::new(level),
                    decoding: float(DType::Float64),
                    attrs: Map::new(),
                },
            ],
            attrs: Map::new(),
            unreadable: Vec::new(),
            texts: Vec::new(),
        }
    }

    fn build(name: &str, operations: &str) -> Result<Dataset> {
        let text = format!(
            "version: 1\ninputs:\n  i: {{url: x}}\noutput: {{url: y, chunks: {{time: 2}}}}\noperations:\n{operations}"
        );
        let doc = RecipeDoc::parse("r.yaml", &text)?;
        let output = Location::parse(&format!("memory://{name}-out"))?;
        let opts = BuildOptions {
            memory_limit: 1 << 20,
            ..BuildOptions::default()
        };
        build_input(&doc, &input(name), &output, &opts, &|_, _, _| {})?;
        Dataset::open(&Store::open(&output)?, "")
    }

    fn read(ds: &Dataset, name: &str) -> Vec<f64> {
        let v = ds.variable(name).expect("variable");
        v.array(&ds.store)
            .expect("array")
            .read_all()
            .expect("values")
            .to_f64_vec()
    }

    #[test]
    fn renamed_and_resampled_to_daily_means_with_bounds() {
        let ds = build(
            "lower-resample",
            "  - rename_dims: {valid_time: time, latitude: lat}\n  - resample: {dim: time, freq: 1D, how: mean}\n",
        )
        .expect("build");
        // Days 2000-01-01 (hours 5..23), 01-02 (24..47), 01-03 (48..54).
        assert_eq!(read(&ds, "time"), vec![0.0, 24.0, 48.0]);
        let time = ds.variable("time").expect("time");
        assert_eq!(time.dims, vec!["time".to_string()]);
        let time_attrs = &time.meta.attrs;
        assert_eq!(time_attrs["units"], json!("hours since 2000-01-01"));
        assert_eq!(time_attrs["bounds"], json!("time_bnds"));
        assert_eq!(time_attrs["standard_name"], json!("time"));
        assert_eq!(
            read(&ds, "time_bnds"),
            vec![0.0, 24.0, 24.0, 48.0, 48.0, 72.0]
        );
        let bnds = ds.variable("time_bnds").expect("bounds");
        assert_eq!(bnds.dims, vec!["time".to_string(), "nv".to_string()]);
        assert_eq!(bnds.meta.attrs["units"], json!("hours since 2000-01-01"));
        // The mean of each day's hours that are not NaN (hour h holds h - 5 + 0.5 * lat).
        let t2m = read(&ds, "t2m");
        let t2m_var = ds.variable("t2m").expect("t2m");
        assert_eq!(t2m_var.dims, vec!["time".to_string(), "lat".to_string()]);
        assert_eq!(t2m_var.meta.attrs["units"], json!("K"));
        for (day, hours) in [(0usize, 5..24u32), (1, 24..48), (2, 48..55)] {
            for y in 0..3u32 {
                let valid: Vec<f64> = hours
                    .clone()
                    .map(|h| h - 5)
                    .filter(|t| t % 5 != 0)
                    .map(|t| f64::from(t) + 0.5 * f64::from(y))
                    .collect();
                #[allow(clippy::cast_precision_loss)]
                let want = valid.iter().sum::<f64>() / valid.len() as f64;
                let got = t2m[day * 3 + y as usize];
                assert!(
                    (got - want).abs() < 1e-4,
                    "day {day} lat {y}: {got} vs {want}"
                );
            }
        }
        // Without time: unchanged.
        assert_eq!(read(&ds, "level"), vec![1.0, 2.0, 3.0]);
        assert_eq!(
            ds.variable("level").expect("level").dims,
            vec!["lat".to_string()]
        );
    }

    #[test]
    fn computed_variables_are_renamed_too() {
        // `d` is computed (a rename_dims window operation over it), `t2m` a source renamed.
        let ds = build(
            "lower-rename-computed",
            "  - assign: {d: \"t2m * 2\"}\n  - rename_dims: {valid_time: time, latitude: lat}\n",
        )
        .expect("build");
        let (t2m, d) = (read(&ds, "t2m"), read(&ds, "d"));
        assert_eq!(t2m.len(), 150);
        for (a, b) in t2m.iter().zip(&d) {
            assert!(*b == a * 2.0 || (a.is_nan() && b.is_nan()), "{a} {b}");
        }
        for name in ["t2m", "d"] {
            let dims = &ds.variable(name).expect("variable").dims;
            assert_eq!(dims, &vec!["time".to_string(), "lat".to_string()]);
        }
    }

    #[test]
    fn three_hour_sums_in_a_finer_unit_than_days() {
        // 3-hour bins from midnight: 03:00 holds hours 5 (NaN); 06:00 holds 6, 7, 8; ...
        let ds = build(
            "lower-resample-3h",
            "  - rename_dims: {valid_time: time}\n  - resample: {dim: time, freq: 3H, how: count}\n",
        )
        .expect("build");
        let time = read(&ds, "time");
        assert_eq!(time.first(), Some(&3.0));
        assert_eq!(time.len(), 18);
        let count = read(&ds, "t2m");
        // Bin 03:00..06:00 holds hour 5 only, NaN (t = 0): count 0; 06:00 holds t = 1, 2, 3.
        assert_eq!(&count[..6], &[0.0, 0.0, 0.0, 3.0, 3.0, 3.0]);
    }

    #[test]
    fn errors_name_the_operation_and_its_line() {
        let e = |ops: &str| build("lower-resample-err", ops).unwrap_err().to_string();
        let msg = e("  - resample: {dim: latitude, freq: 1D, how: mean}\n");
        assert!(
            msg.contains("r.yaml:6:") && msg.contains("has no coordinate"),
            "{msg}"
        );
        let msg = e("  - resample: {dim: depth, freq: 1D, how: mean}\n");
        assert!(msg.contains("'depth' is not a dimension"), "{msg}");
        let msg = e("  - keep: [t2m]\n  - resample: {dim: valid_time, freq: 1M, how: mean}\n");
        assert!(
            msg.contains("r.yaml:7:") && msg.contains("resample.freq") && msg.contains("'1M'"),
            "{msg}"
        );
        let msg = e("  - resample: {dim: valid_time, freq: 1D, how: mode}\n");
        assert!(msg.contains("r.yaml:6") && msg.contains("mode"), "{msg}");
        let msg = e(
            "  - sortby: latitude\n  - isel: {valid_time: {start: 3}}\n  - assign: {x: \"t2m * 2\"}\n  - rename_dims: {valid_time: x}\n",
        );
        assert!(
            msg.contains("r.yaml:9:")
                && msg.contains("operations[3].rename_dims")
                && msg.contains("variable 'x' exists"),
            "{msg}"
        );
        for (ops, want) in [
            ("{valid_time: time, depth: z}", "'depth' is not a dimension"),
            ("{valid_time: latitude}", "dimension 'latitude' exists"),
            ("{valid_time: a, latitude: a}", "both renamed to 'a'"),
        ] {
            let msg = e(&format!("  - rename_dims: {ops}\n"));
            assert!(msg.contains("r.yaml:6:") && msg.contains(want), "{msg}");
        }
    }
}
