//! `cubeforge build`: a recipe becomes a plan (see [`crate::plan`]), which is executed chunk by
//! chunk into a Zarr store.
//!
//! Execution: `drop_all_nan` scans run while planning, because they decide the output shape.
//! Then streaming passes (see [`plan_passes`]) each compute the reductions whose inputs are ready
//! together with the output arrays that need no reduction still pending: every output chunk is
//! computed independently, in parallel, in an order that keeps the work sharing input chunks
//! together, through a bounded cache of decoded input chunks, and written as soon as it is ready.
//! Array and group metadata are written last, consolidated metadata last of all, so a reader never
//! opens a half-written cube.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use indexmap::IndexMap;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::cf::time::{day_of_year, TimeEncoding};
use crate::cf::{CfDecoding, Decoded};
use crate::dataset::Dataset;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::expr::{self, Expr};
use crate::plan::{self, ChunkCache, Node, NodeRef, Op, Reduction, UnOp, VType, Window};
use crate::recipe::{Compressor, Label, Operation, RecipeDoc};
use crate::store::{Location, Store};
use crate::write_behind::WriteBehind;
use crate::zarr::ZarrArray;

/// Options of a build, from the command line.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Replaces the recipe's (single) input URL.
    pub input: Option<String>,
    /// Replaces the recipe's output URL.
    pub output: Option<String>,
    /// Plan only.
    pub dry_run: bool,
    /// Remove an existing destination first.
    pub overwrite: bool,
    /// Keep chunks already written and verified; compute the rest.
    pub resume: bool,
    /// Bytes of decoded input chunks to cache.
    pub memory_limit: usize,
}

/// One coordinate (index) variable of a dimension.
#[derive(Debug, Clone)]
struct Coord {
    array: ZarrArray,
    /// Raw attributes to write back (units, calendar, …).
    attrs: Map<String, Value>,
    decoding: CfDecoding,
}

#[derive(Debug, Clone)]
struct Dim {
    len: u64,
    /// Positions into the source coordinate (or source dimension).
    index: Arc<Vec<u64>>,
    coord: Option<Coord>,
    /// Whether the length is only an upper bound (dry run before a data-dependent selection).
    bound_only: bool,
}

#[derive(Debug, Clone)]
struct Var {
    node: NodeRef,
    attrs: Map<String, Value>,
}

/// The state of the dataset while operations are applied.
struct State<'a> {
    doc: &'a RecipeDoc,
    dims: IndexMap<String, Dim>,
    vars: IndexMap<String, Var>,
    attrs: Map<String, Value>,
    cache: Arc<ChunkCache>,
    dry_run: bool,
    inputs: Vec<String>,
}

/// What a dry run prints and a build reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlanSummary {
    /// Output location.
    pub output: String,
    /// Zarr format.
    pub zarr_format: u8,
    /// Dimensions (a `<=` length is an upper bound known after the first pass).
    pub dims: IndexMap<String, String>,
    /// Output variables.
    pub variables: Vec<PlanVar>,
    /// Bytes of input chunks the plan reads (upper bound: whole chunks of the arrays it uses).
    pub bytes_to_read: u64,
    /// Uncompressed bytes the output holds.
    pub bytes_to_write: u64,
    /// Streaming passes: the `drop_all_nan` scans, then one per level of reductions that depend on
    /// each other, plus one for the outputs that need the last of them.
    pub passes: usize,
    /// Estimated peak memory of the executor.
    pub estimated_peak_memory: u64,
}

/// One output variable of a plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlanVar {
    /// Name.
    pub name: String,
    /// Dimensions.
    pub dims: Vec<String>,
    /// Shape.
    pub shape: Vec<u64>,
    /// dtype.
    pub dtype: String,
    /// Chunk shape.
    pub chunks: Vec<u64>,
    /// Whether it is a coordinate.
    pub coordinate: bool,
}

/// What a finished build reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildReport {
    /// The plan.
    pub plan: PlanSummary,
    /// Output chunks computed and written (absent all-NaN chunks included).
    pub chunks_computed: u64,
    /// Output chunks kept from an interrupted build (`--resume`).
    pub chunks_resumed: u64,
    /// Input chunks decoded (each once, ideally), counting each part of a chunk decoded in parts
    /// (see `ZarrArray::unit_rows`).
    pub input_chunks_decoded: u64,
    /// Buffers for decoded chunks newly mapped rather than reused from the cache's pool.
    pub decode_buffers_mapped: u64,
}

fn op_err(doc: &RecipeDoc, i: usize, op: &Operation, msg: impl Into<String>) -> Error {
    doc.error_at(
        doc.op_line(i),
        &format!("operations[{i}].{}", op.name()),
        msg,
    )
}

impl State<'_> {
    /// Set a computed variable (computed values carry no attributes, as in xarray).
    fn set_computed(&mut self, name: &str, node: NodeRef) {
        self.vars.insert(
            name.to_string(),
            Var {
                node,
                attrs: Map::new(),
            },
        );
    }

    fn var_or_err(&self, i: usize, op: &Operation, name: &str) -> Result<&Var> {
        self.vars.get(name).ok_or_else(|| {
            op_err(
                self.doc,
                i,
                op,
                format!(
                    "variable '{name}' not found (available: {})",
                    self.vars.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }

    /// Apply a selection of positions `sub` (relative to the current positions) along `dim`.
    fn take(&mut self, dim: &str, sub: &[u64]) {
        let Some(d) = self.dims.get_mut(dim) else {
            return;
        };
        let new_index: Vec<u64> = sub
            .iter()
            .map(|p| d.index[usize::try_from(*p).unwrap_or(0)])
            .collect();
        d.index = Arc::new(new_index);
        d.len = sub.len() as u64;
        let sub = Arc::new(sub.to_vec());
        for v in self.vars.values_mut() {
            if let Some(axis) = v.node.dims.iter().position(|x| x == dim) {
                let mut shape = v.node.shape.clone();
                shape[axis] = sub.len() as u64;
                v.node = Node::new(
                    Op::Take {
                        child: v.node.clone(),
                        dim: dim.to_string(),
                        index: sub.clone(),
                    },
                    v.node.dims.clone(),
                    shape,
                    v.node.vtype,
                );
            }
        }
    }

    /// Current coordinate values of a dimension, as numbers (raw, for numeric labels) and, for
    /// time coordinates, the decoding.
    fn coord_values(&self, dim: &str) -> Result<(Vec<f64>, Option<TimeEncoding>)> {
        let d = &self.dims[dim];
        let Some(c) = &d.coord else {
            return Ok((d.index.iter().map(|p| *p as f64).collect(), None));
        };
        let raw = c.array.read_all()?;
        let vals: Vec<f64> = d
            .index
            .iter()
            .map(|p| raw.get_f64(usize::try_from(*p).unwrap_or(0)))
            .collect();
        let enc = match &c.decoding.decoded {
            Decoded::Time(e) => Some(e.clone()),
            _ => None,
        };
        Ok((vals, enc))
    }

    #[allow(clippy::too_many_lines)]
    fn apply(&mut self, i: usize, op: &Operation) -> Result<()> {
        let doc = self.doc;
        match op {
            Operation::Keep(names) => {
                for n in names {
                    self.var_or_err(i, op, n)?;
                }
                self.vars.retain(|k, _| names.contains(k));
            }
            Operation::Drop(names) => {
                for n in names {
                    self.var_or_err(i, op, n)?;
                }
                self.vars.retain(|k, _| !names.contains(k));
            }
            Operation::Rename(map) => {
                for (from, to) in map {
                    if self.dims.contains_key(from) {
                        return Err(op_err(
                            doc,
                            i,
                            op,
                            format!(
                                "'{from}' is a dimension; renaming dimensions is not supported yet"
                            ),
                        ));
                    }
                    self.var_or_err(i, op, from)?;
                    if self.vars.contains_key(to) || self.dims.contains_key(to) {
                        return Err(op_err(
                            doc,
                            i,
                            op,
                            format!("cannot rename '{from}' to '{to}': '{to}' exists"),
                        ));
                    }
                }
                let old = std::mem::take(&mut self.vars);
                self.vars = old
                    .into_iter()
                    .map(|(k, v)| (map.get(&k).cloned().unwrap_or(k), v))
                    .collect();
            }
            Operation::Sel(map) => {
                for (dim, slice) in map {
                    if !self.dims.contains_key(dim) {
                        return Err(op_err(
                            doc,
                            i,
                            op,
                            format!(
                                "'{dim}' is not a dimension (dimensions: {})",
                                self.dims.keys().cloned().collect::<Vec<_>>().join(", ")
                            ),
                        ));
                    }
                    if self.dims[dim].coord.is_none() {
                        return Err(op_err(
                            doc,
                            i,
                            op,
                            format!(
                                "dimension '{dim}' has no coordinate to select labels on; use isel"
                            ),
                        ));
                    }
                    let (vals, enc) = self.coord_values(dim)?;
                    let to_num = |l: &Label| -> Result<f64> {
                        match (l, &enc) {
                            (Label::Number(x), _) => Ok(*x),
                            (Label::Text(t), Some(e)) => label_time(t, e).ok_or_else(|| {
                                op_err(
                                    doc,
                                    i,
                                    op,
                                    format!("'{t}' is not a date-time in the calendar of '{dim}'"),
                                )
                            }),
                            (Label::Text(t), None) => Err(op_err(
                                doc,
                                i,
                                op,
                                format!("'{t}' is text but coordinate '{dim}' is numeric"),
                            )),
                        }
                    };
                    let start = slice.start.as_ref().map(to_num).transpose()?;
                    let stop = slice.stop.as_ref().map(to_num).transpose()?;
                    let sub = label_slice(&vals, start, stop)
                        .map_err(|m| op_err(doc, i, op, format!("{dim}: {m}")))?;
                    if sub.is_empty() {
                        return Err(op_err(
                            doc,
                            i,
                            op,
                            format!(
                                "{dim}: the slice selects nothing (coordinate runs from {} to {})",
                                vals.first().copied().unwrap_or(f64::NAN),
                                vals.last().copied().unwrap_or(f64::NAN)
                            ),
                        ));
                    }
                    self.take(dim, &sub);
                }
            }
            Operation::Isel(map) => {
                for (dim, s) in map {
                    let Some(d) = self.dims.get(dim) else {
                        return Err(op_err(doc, i, op, format!("'{dim}' is not a dimension")));
                    };
                    let start = s.start.unwrap_or(0).min(d.len);
                    let stop = s.stop.unwrap_or(d.len).min(d.len);
                    if start >= stop {
                        return Err(op_err(
                            doc,
                            i,
                            op,
                            format!("{dim}: the slice selects nothing"),
                        ));
                    }
                    let sub: Vec<u64> = (start..stop).collect();
                    self.take(dim, &sub);
                }
            }
            Operation::DropAllNan(d) => {
                let v = self.var_or_err(i, op, &d.variable)?.clone();
                if !v.node.dims.contains(&d.dim) {
                    return Err(op_err(
                        doc,
                        i,
                        op,
                        format!("variable '{}' has no dimension '{}'", d.variable, d.dim),
                    ));
                }
                if self.dry_run {
                    if let Some(dim) = self.dims.get_mut(&d.dim) {
                        dim.bound_only = true;
                    }
                    return Ok(());
                }
                // any(notnull(v)) over the other dimensions, in one streaming pass
                let other: Vec<String> = v
                    .node
                    .dims
                    .iter()
                    .filter(|x| **x != d.dim)
                    .cloned()
                    .collect();
                let notnull = Node::new(
                    Op::Unary(UnOp::NotNull, v.node.clone()),
                    v.node.dims.clone(),
                    v.node.shape.clone(),
                    VType::Bool,
                );
                let keep_dims = vec![d.dim.clone()];
                let len = v.node.size_of(&d.dim).unwrap_or(0);
                let any = if other.is_empty() {
                    notnull
                } else {
                    Node::new(
                        Op::Reduce {
                            child: notnull,
                            dims: other,
                            kind: Reduction::Any,
                            result: OnceLock::new(),
                        },
                        keep_dims,
                        vec![len],
                        VType::Bool,
                    )
                };
                let window: Window = std::iter::once(0..len).collect();
                tracing::info!(variable = %d.variable, dim = %d.dim, "pass: drop_all_nan scan");
                let b = any.eval(&window)?;
                let plan::Data::Bool(keep) = b.data else {
                    return Err(Error::Other(
                        "internal: drop_all_nan mask is not boolean".into(),
                    ));
                };
                let sub: Vec<u64> = keep
                    .iter()
                    .enumerate()
                    .filter(|(_, k)| **k)
                    .map(|(p, _)| p as u64)
                    .collect();
                if sub.is_empty() {
                    return Err(op_err(
                        doc,
                        i,
                        op,
                        format!(
                            "'{}' is NaN everywhere: nothing would remain along '{}'",
                            d.variable, d.dim
                        ),
                    ));
                }
                self.take(&d.dim, &sub);
            }
            Operation::Sortby(dim) => {
                if !self.dims.contains_key(dim) {
                    return Err(op_err(doc, i, op, format!("'{dim}' is not a dimension")));
                }
                if self.dry_run && self.dims[dim].bound_only {
                    return Ok(());
                }
                let (vals, _) = self.coord_values(dim)?;
                let mut order: Vec<u64> = (0..vals.len() as u64).collect();
                // Stable, NaN last: as numpy's argsort (kind="stable") used by xarray's sortby.
                order.sort_by(|a, b| {
                    let (x, y) = (
                        vals[usize::try_from(*a).unwrap_or(0)],
                        vals[usize::try_from(*b).unwrap_or(0)],
                    );
                    x.partial_cmp(&y)
                        .unwrap_or_else(|| x.is_nan().cmp(&y.is_nan()))
                });
                if order.iter().enumerate().any(|(p, o)| p as u64 != *o) {
                    self.take(dim, &order);
                }
            }
            Operation::Assign(map) => {
                for (name, text) in map {
                    let e = expr::parse(text)
                        .map_err(|e| op_err(doc, i, op, format!("{name}: {e}")))?;
                    let node = self
                        .compile(&e)
                        .map_err(|m| op_err(doc, i, op, format!("{name}: {m}")))?;
                    self.set_computed(name, node);
                }
            }
            Operation::Mask(m) => {
                let cond = self.var_or_err(i, op, &m.condition)?.node.clone();
                for name in &m.variables {
                    let v = self.var_or_err(i, op, name)?.clone();
                    for d in &cond.dims {
                        if !v.node.dims.contains(d) {
                            return Err(op_err(
                                doc,
                                i,
                                op,
                                format!(
                                    "'{}' has dimension '{d}' that '{name}' lacks",
                                    m.condition
                                ),
                            ));
                        }
                    }
                    let vtype = plan::promote(v.node.vtype, false, VType::F64, true);
                    let nan = Node::new(
                        Op::Const(plan::Data::F64(vec![f64::NAN])),
                        vec![],
                        vec![],
                        VType::F64,
                    );
                    let node = Node::new(
                        Op::Where(plan::simplify_nan_mask(&cond, &v.node), v.node.clone(), nan),
                        v.node.dims.clone(),
                        v.node.shape.clone(),
                        vtype,
                    );
                    self.set_computed(name, node);
                }
            }
            Operation::Season(s) => {
                let like = self.var_or_err(i, op, &s.like)?.node.clone();
                if !like.dims.contains(&s.time) {
                    return Err(op_err(
                        doc,
                        i,
                        op,
                        format!("'{}' has no dimension '{}'", s.like, s.time),
                    ));
                }
                let Some(coord) = self.dims.get(&s.time).and_then(|d| d.coord.clone()) else {
                    return Err(op_err(
                        doc,
                        i,
                        op,
                        format!("dimension '{}' has no time coordinate", s.time),
                    ));
                };
                let Decoded::Time(enc) = &coord.decoding.decoded else {
                    return Err(op_err(
                        doc,
                        i,
                        op,
                        format!("coordinate '{}' is not a CF time", s.time),
                    ));
                };
                let (vals, _) = if self.dry_run && self.dims[&s.time].bound_only {
                    (
                        vec![0.0; usize::try_from(self.dims[&s.time].len).unwrap_or(0)],
                        None,
                    )
                } else {
                    self.coord_values(&s.time)?
                };
                let mut angles = Vec::with_capacity(vals.len());
                for v in &vals {
                    #[allow(clippy::cast_possible_truncation)]
                    let t = if v.fract() == 0.0 {
                        enc.decode_i64(*v as i64).map(Some)
                    } else {
                        enc.decode_f64(*v)
                    };
                    let t = t.map_err(|e| op_err(doc, i, op, e.to_string()))?;
                    let doy = t.map_or(f64::NAN, |t| f64::from(day_of_year(&t, enc.calendar)));
                    angles.push(2.0 * std::f64::consts::PI * (doy / 365.25));
                }
                for (name, f) in [(&s.sin, f64::sin as fn(f64) -> f64), (&s.cos, f64::cos)] {
                    let values: Vec<f64> = angles.iter().map(|a| f(*a)).collect();
                    let node = Node::new(
                        Op::Along {
                            dim: s.time.clone(),
                            values: Arc::new(values),
                        },
                        like.dims.clone(),
                        like.shape.clone(),
                        VType::F32,
                    );
                    self.set_computed(name, node);
                }
            }
            Operation::Astype(map) => {
                for (name, dt) in map {
                    let v = self.var_or_err(i, op, name)?.clone();
                    let to = VType::of(
                        DType::from_name(dt)
                            .ok_or_else(|| op_err(doc, i, op, format!("unknown dtype '{dt}'")))?,
                    );
                    let node = Node::new(
                        Op::Cast(v.node.clone()),
                        v.node.dims.clone(),
                        v.node.shape.clone(),
                        to,
                    );
                    self.vars.insert(
                        name.clone(),
                        Var {
                            node,
                            attrs: v.attrs,
                        },
                    );
                }
            }
            Operation::Attrs(map) => {
                for (name, set) in map {
                    let target = if name == "_global" {
                        &mut self.attrs
                    } else {
                        self.var_or_err(i, op, name)?;
                        &mut self.vars[name].attrs
                    };
                    for (k, v) in set {
                        target.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        Ok(())
    }

    /// Compile an expression into a node.
    fn compile(&self, e: &Expr) -> std::result::Result<NodeRef, String> {
        let konst = |d: plan::Data, t: VType| Node::new(Op::Const(d), vec![], vec![], t);
        match e {
            Expr::Number(x) => Ok(konst(plan::Data::F64(vec![*x]), VType::F64)),
            Expr::Bool(b) => Ok(konst(plan::Data::Bool(vec![*b]), VType::Bool)),
            Expr::Var(n) => self.vars.get(n).map(|v| v.node.clone()).ok_or_else(|| {
                format!(
                    "variable '{n}' not found (available: {})",
                    self.vars.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            }),
            Expr::Dims(_) => {
                Err("a quoted dimension name can only be the second argument of a reduction".into())
            }
            Expr::Neg(x) => {
                let c = self.compile(x)?;
                let t = if c.vtype == VType::Bool {
                    VType::F64
                } else {
                    c.vtype
                };
                Ok(Node::new(
                    Op::Unary(UnOp::Neg, c.clone()),
                    c.dims.clone(),
                    c.shape.clone(),
                    t,
                ))
            }
            Expr::Not(x) => {
                let c = self.compile(x)?;
                Ok(Node::new(
                    Op::Unary(UnOp::Not, c.clone()),
                    c.dims.clone(),
                    c.shape.clone(),
                    VType::Bool,
                ))
            }
            Expr::Binary(op, a, b) => {
                let (x, y) = (self.compile(a)?, self.compile(b)?);
                let (dims, shape) = broadcast(&[&x, &y])?;
                let t = if op.is_comparison() || op.is_logical() {
                    VType::Bool
                } else {
                    plan::promote(x.vtype, is_const(a), y.vtype, is_const(b))
                };
                Ok(Node::new(Op::Binary(*op, x, y), dims, shape, t))
            }
            Expr::Call(name, args) => self.compile_call(name, args),
        }
    }

    fn compile_call(&self, name: &str, args: &[Expr]) -> std::result::Result<NodeRef, String> {
        if let Some(kind) = Reduction::parse(name) {
            let [x, Expr::Dims(dims)] = args else {
                return Err(format!(
                    "{name}(x, 'dim') takes an array and a dimension name or list"
                ));
            };
            let c = self.compile(x)?;
            for d in dims {
                if !c.dims.contains(d) {
                    return Err(format!("{name}: dimension '{d}' is not among {:?}", c.dims));
                }
            }
            let keep: Vec<(String, u64)> = c
                .dims
                .iter()
                .zip(&c.shape)
                .filter(|(d, _)| !dims.contains(d))
                .map(|(d, n)| (d.clone(), *n))
                .collect();
            let t = match kind {
                Reduction::All | Reduction::Any => VType::Bool,
                Reduction::Count => VType::Int(DType::Int64),
                _ => {
                    if c.vtype == VType::F32 {
                        VType::F32
                    } else {
                        VType::F64
                    }
                }
            };
            return Ok(Node::new(
                Op::Reduce {
                    child: c,
                    dims: dims.clone(),
                    kind,
                    result: OnceLock::new(),
                },
                keep.iter().map(|(d, _)| d.clone()).collect(),
                keep.iter().map(|(_, n)| *n).collect(),
                t,
            ));
        }
        let arity = expr::ELEMENTWISE
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
            .ok_or_else(|| {
                format!(
                    "unknown function '{name}' (known: {}, {})",
                    expr::ELEMENTWISE
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", "),
                    expr::REDUCTIONS.join(", ")
                )
            })?;
        if args.len() != arity {
            return Err(format!(
                "{name} takes {arity} argument(s), got {}",
                args.len()
            ));
        }
        let c: Vec<NodeRef> = args
            .iter()
            .map(|a| self.compile(a))
            .collect::<std::result::Result<_, _>>()?;
        let refs: Vec<&NodeRef> = c.iter().collect();
        let (dims, shape) = broadcast(&refs)?;
        let unary = |op: UnOp, t: VType| {
            Node::new(Op::Unary(op, c[0].clone()), dims.clone(), shape.clone(), t)
        };
        let float_of = |t: VType| {
            if t == VType::F32 {
                VType::F32
            } else {
                VType::F64
            }
        };
        Ok(match name {
            "log" => unary(UnOp::Log, float_of(c[0].vtype)),
            "log10" => unary(UnOp::Log10, float_of(c[0].vtype)),
            "exp" => unary(UnOp::Exp, float_of(c[0].vtype)),
            "sqrt" => unary(UnOp::Sqrt, float_of(c[0].vtype)),
            "sin" => unary(UnOp::Sin, float_of(c[0].vtype)),
            "cos" => unary(UnOp::Cos, float_of(c[0].vtype)),
            "abs" => unary(UnOp::Abs, c[0].vtype),
            "isnan" => unary(UnOp::IsNan, VType::Bool),
            "notnull" => unary(UnOp::NotNull, VType::Bool),
            "where" => {
                let t = plan::promote(
                    c[1].vtype,
                    is_const(&args[1]),
                    c[2].vtype,
                    is_const(&args[2]),
                );
                // where(cond, x, nan): see `plan::simplify_nan_mask`.
                let cond = if matches!(args[2], Expr::Number(v) if v.is_nan()) {
                    plan::simplify_nan_mask(&c[0], &c[1])
                } else {
                    c[0].clone()
                };
                Node::new(Op::Where(cond, c[1].clone(), c[2].clone()), dims, shape, t)
            }
            _ => Node::new(
                Op::Clip(c[0].clone(), c[1].clone(), c[2].clone()),
                dims,
                shape,
                c[0].vtype,
            ),
        })
    }
}

fn is_const(e: &Expr) -> bool {
    matches!(e, Expr::Number(_) | Expr::Bool(_))
        || matches!(e, Expr::Neg(x) if matches!(**x, Expr::Number(_)))
}

/// Dimensions of an elementwise result: each operand's dimensions in order of first appearance.
fn broadcast(nodes: &[&NodeRef]) -> std::result::Result<(Vec<String>, Vec<u64>), String> {
    let mut dims: Vec<String> = Vec::new();
    let mut shape = Vec::new();
    for n in nodes {
        for (d, s) in n.dims.iter().zip(&n.shape) {
            match dims.iter().position(|x| x == d) {
                Some(p) if shape[p] != *s => {
                    return Err(format!("dimension '{d}' has sizes {} and {s}", shape[p]))
                }
                Some(_) => {}
                None => {
                    dims.push(d.clone());
                    shape.push(*s);
                }
            }
        }
    }
    Ok((dims, shape))
}

/// xarray's `.sel(dim=slice(start, stop))` on a monotonic coordinate: positions of labels between
/// start and stop inclusive, in coordinate order; on a descending coordinate start is the larger.
fn label_slice(
    vals: &[f64],
    start: Option<f64>,
    stop: Option<f64>,
) -> std::result::Result<Vec<u64>, String> {
    let asc = vals.windows(2).all(|w| w[0] <= w[1]);
    let desc = vals.windows(2).all(|w| w[0] >= w[1]);
    if !asc && !desc {
        return Err(
            "cannot slice by label on a coordinate that is not sorted; add a sortby first".into(),
        );
    }
    let inside = |v: f64| {
        if asc {
            start.is_none_or(|s| v >= s) && stop.is_none_or(|e| v <= e)
        } else {
            start.is_none_or(|s| v <= s) && stop.is_none_or(|e| v >= e)
        }
    };
    Ok(vals
        .iter()
        .enumerate()
        .filter(|(_, v)| inside(**v))
        .map(|(p, _)| p as u64)
        .collect())
}

/// A date-time label as a raw coordinate value of `enc`'s units (fractional when needed).
fn label_time(text: &str, enc: &TimeEncoding) -> Option<f64> {
    let probe =
        TimeEncoding::parse(&format!("seconds since {text}"), Some(enc.calendar.name())).ok()?;
    let t = probe.reference;
    let ns_since = |e: &TimeEncoding| -> Option<i128> {
        let unit_ns = e.unit.nanos();
        let days = TimeEncoding {
            unit: crate::cf::time::TimeUnit::Nanoseconds,
            reference: e.reference,
            calendar: e.calendar,
        };
        let n = days.encode_i64(&t).ok()??;
        let _ = unit_ns;
        Some(i128::from(n))
    };
    let ns = ns_since(enc)?;
    #[allow(clippy::cast_precision_loss)]
    Some(ns as f64 / enc.unit.nanos() as f64)
}

fn compressor_json(c: &Compressor) -> Value {
    match c {
        Compressor::Blosc {
            cname,
            clevel,
            shuffle,
        } => {
            json!({"id": "blosc", "cname": cname, "clevel": clevel, "shuffle": shuffle, "blocksize": 0})
        }
        Compressor::Zstd { level } => json!({"id": "zstd", "level": level, "checksum": false}),
        Compressor::Zlib { level } => json!({"id": "zlib", "level": level}),
        Compressor::None => Value::Null,
    }
}

fn v3_codecs(c: &Compressor, dtype: DType) -> Vec<Value> {
    let mut codecs = vec![if dtype.size() == 1 {
        json!({"name": "bytes"})
    } else {
        json!({"name": "bytes", "configuration": {"endian": "little"}})
    }];
    match c {
        Compressor::Blosc { cname, clevel, shuffle } => codecs.push(json!({"name": "blosc", "configuration": {
            "cname": cname, "clevel": clevel, "shuffle": match shuffle { 0 => "noshuffle", 2 => "bitshuffle", _ => "shuffle" },
            "typesize": dtype.size(), "blocksize": 0}})),
        Compressor::Zstd { level } => codecs.push(json!({"name": "zstd", "configuration": {"level": level, "checksum": false}})),
        Compressor::Zlib { level } => codecs.push(json!({"name": "gzip", "configuration": {"level": level}})),
        Compressor::None => {}
    }
    codecs
}

fn v2_dtype(d: DType) -> String {
    let code = match d {
        DType::Bool => return "|b1".into(),
        DType::Int8 => return "|i1".into(),
        DType::UInt8 => return "|u1".into(),
        DType::Int16 => "i2",
        DType::Int32 => "i4",
        DType::Int64 => "i8",
        DType::UInt16 => "u2",
        DType::UInt32 => "u4",
        DType::UInt64 => "u8",
        DType::Float16 => "f2",
        DType::Float32 => "f4",
        DType::Float64 => "f8",
    };
    format!("<{code}")
}

/// An output array: its metadata documents and the `zarrs` array chunks are written through.
struct OutArray {
    name: String,
    dims: Vec<String>,
    shape: Vec<u64>,
    dtype: DType,
    /// The chunk-grid shape written per task (the shard shape for sharded arrays).
    write_chunks: Vec<u64>,
    meta_key: String,
    meta: Value,
    attrs: Value,
    array: crate::zarr::ZArray,
    source: OutSource,
    /// For a variable that does not vary along some of its dimensions: its chunks encoded once.
    repeats: Option<Repeats>,
}

enum OutSource {
    Node(NodeRef),
    Values(Vec<u8>),
}

#[allow(clippy::too_many_arguments)]
fn out_array(
    store: &Store,
    fmt: u8,
    name: &str,
    dims: &[String],
    shape: &[u64],
    chunks: &[u64],
    shards: Option<&[u64]>,
    dtype: DType,
    compressor: &Compressor,
    mut attrs: Map<String, Value>,
    source: OutSource,
) -> Result<OutArray> {
    let fill = if dtype.is_float() {
        json!("NaN")
    } else {
        Value::Null
    };
    let (meta_key, meta) = if fmt == 2 {
        attrs.insert("_ARRAY_DIMENSIONS".into(), json!(dims));
        (
            format!("{name}/.zarray"),
            json!({
                "zarr_format": 2, "shape": shape, "chunks": chunks, "dtype": v2_dtype(dtype),
                "compressor": compressor_json(compressor), "fill_value": fill, "order": "C", "filters": null,
                "dimension_separator": ".",
            }),
        )
    } else {
        if dtype.is_float() {
            attrs.insert(
                "_FillValue".into(),
                json!(crate::cf::xarray_fill_value(f64::NAN)),
            );
        }
        let fill3 = if dtype.is_float() {
            json!("NaN")
        } else if dtype == DType::Bool {
            json!(false)
        } else {
            json!(0)
        };
        let (grid, codecs) = match shards {
            Some(s) => (
                s.to_vec(),
                vec![json!({"name": "sharding_indexed", "configuration": {
                "chunk_shape": chunks, "codecs": v3_codecs(compressor, dtype),
                "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
                "index_location": "end"}})],
            ),
            None => (chunks.to_vec(), v3_codecs(compressor, dtype)),
        };
        (
            format!("{name}/zarr.json"),
            json!({
                "zarr_format": 3, "node_type": "array", "shape": shape, "data_type": dtype.name(),
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": grid}},
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                "fill_value": fill3, "codecs": codecs, "attributes": Value::Object(attrs.clone()), "dimension_names": dims,
            }),
        )
    };
    let zmeta = if fmt == 2 {
        let mut m: zarrs::array::ArrayMetadataV2 = serde_json::from_value(meta.clone())
            .map_err(|e| Error::Other(format!("internal: {name}: {e}")))?;
        m.attributes = attrs.clone();
        zarrs::array::ArrayMetadata::V2(m)
    } else {
        zarrs::array::ArrayMetadata::V3(
            serde_json::from_value(meta.clone())
                .map_err(|e| Error::Other(format!("internal: {name}: {e}")))?,
        )
    };
    let array =
        zarrs::array::Array::new_with_metadata(store.storage().clone(), &format!("/{name}"), zmeta)
            .map_err(|e| Error::Other(format!("{}: {e}", store.location().join(name))))?;
    Ok(OutArray {
        name: name.to_string(),
        dims: dims.to_vec(),
        shape: shape.to_vec(),
        dtype,
        write_chunks: shards.map_or_else(|| chunks.to_vec(), <[u64]>::to_vec),
        meta_key,
        meta,
        attrs: Value::Object(attrs),
        repeats: match &source {
            OutSource::Node(n) => Repeats::of(n),
            OutSource::Values(_) => None,
        },
        array,
        source,
    })
}

/// The encoded chunks of a variable whose values do not change along some of its dimensions (a
/// broadcast feature, such as a day-of-year sine over `time × lat × lon`): two chunks that
/// differ only in their place along those dimensions, and have the same shape before padding,
/// hold the same bytes. Each is computed and encoded once, by the first worker that needs it
/// (another that needs it meanwhile waits for it), and written wherever it belongs.
struct Repeats {
    /// Per dimension of the variable: whether its values change along it.
    varying: Vec<bool>,
    /// The latest chunks, by (chunk index along the varying dimensions, shape before padding);
    /// `None` is a chunk of fill values only, which is not written.
    recent: std::sync::Mutex<std::collections::VecDeque<(RepeatKey, RepeatCell)>>,
}

type RepeatKey = (Vec<u64>, Vec<u64>);
type RepeatCell = Arc<OnceLock<std::result::Result<Option<zarrs_storage::Bytes>, String>>>;

/// How many encoded chunks [`Repeats`] keeps: tasks are taken in order along the outermost
/// dimension, so the chunks that repeat one another are written close together.
const REPEATS_KEPT: usize = 8;

impl Repeats {
    fn of(node: &NodeRef) -> Option<Repeats> {
        let value_dims = node.value_dims();
        (value_dims.len() < node.dims.len()).then(|| Repeats {
            varying: node.dims.iter().map(|d| value_dims.contains(d)).collect(),
            recent: std::sync::Mutex::default(),
        })
    }

    /// The cell holding chunk `idx`'s bytes, of shape `got` before padding: shared with every
    /// chunk that repeats it.
    fn cell(&self, idx: &[u64], got: &[u64]) -> RepeatCell {
        let key: RepeatKey = (
            idx.iter()
                .zip(&self.varying)
                .map(|(i, v)| if *v { *i } else { 0 })
                .collect(),
            got.to_vec(),
        );
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, cell)) = recent.iter().find(|(k, _)| *k == key) {
            return cell.clone();
        }
        let cell = RepeatCell::default();
        recent.push_back((key, cell.clone()));
        if recent.len() > REPEATS_KEPT {
            recent.pop_front();
        }
        cell
    }
}

/// `data` as stored values of `dtype` (native endian): borrowed when the block already holds them.
fn encode(data: &plan::Data, dtype: DType) -> std::borrow::Cow<'_, [u8]> {
    let vals = |i: usize| -> f64 {
        match data {
            plan::Data::Bool(v) => f64::from(u8::from(v[i])),
            plan::Data::F32(v) => f64::from(v[i]),
            plan::Data::F64(v) => v[i],
        }
    };
    let n = match data {
        plan::Data::Bool(v) => v.len(),
        plan::Data::F32(v) => v.len(),
        plan::Data::F64(v) => v.len(),
    };
    match (data, dtype) {
        (plan::Data::F32(v), DType::Float32) => {
            return std::borrow::Cow::Borrowed(bytemuck::cast_slice(v))
        }
        (plan::Data::F64(v), DType::Float64) => {
            return std::borrow::Cow::Borrowed(bytemuck::cast_slice(v))
        }
        _ => {}
    }
    let mut out = Vec::with_capacity(n * dtype.size());
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    for i in 0..n {
        let x = vals(i);
        match dtype {
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
    std::borrow::Cow::Owned(out)
}

/// Plan (and unless `dry_run`, execute) a recipe.
///
/// `progress(pass, done, total)` is called as work proceeds.
///
/// # Errors
/// Recipe errors naming the field and line, read errors naming the chunk, write errors naming the
/// key; nothing readable is left at the destination after an error.
#[allow(clippy::too_many_lines)]
pub fn build(
    doc: &RecipeDoc,
    opts: &BuildOptions,
    progress: &(dyn Fn(&str, u64, u64) + Sync),
) -> Result<(PlanSummary, Option<BuildReport>)> {
    let r = &doc.recipe;
    if opts.input.is_some() && r.inputs.len() != 1 {
        return Err(doc.error_at(
            doc.line_of("inputs"),
            "inputs",
            "--input replaces the single input; this recipe has several",
        ));
    }
    let (input_name, input_spec) = r
        .inputs
        .first()
        .ok_or_else(|| doc.error_at(doc.line_of("inputs"), "inputs", "no input"))?;
    if r.inputs.len() > 1 {
        return Err(doc.error_at(
            doc.line_of("inputs"),
            "inputs",
            "recipes with several inputs are not supported yet",
        ));
    }
    let input_url = opts.input.clone().unwrap_or_else(|| input_spec.url.clone());
    let output_url = opts.output.clone().unwrap_or_else(|| r.output.url.clone());
    let in_loc = Location::parse(&input_url)?;
    let out_loc = Location::parse(&output_url)?;
    if same_location(&in_loc, &out_loc) {
        return Err(doc.error_at(
            doc.line_of("url"),
            "output.url",
            format!("output {out_loc} is the input; write the cube somewhere else"),
        ));
    }
    let in_store = Store::open(&in_loc)?;
    let ds = Dataset::open(&in_store, &input_spec.group)?;
    let _ = input_name;
    let cache = Arc::new(ChunkCache::new(opts.memory_limit));

    // The starting state: every readable variable of the input.
    let mut dims: IndexMap<String, Dim> = IndexMap::new();
    for (name, len) in &ds.dims {
        let coord = ds
            .variables
            .iter()
            .find(|v| &v.name == name && v.dims.len() == 1)
            .and_then(|v| {
                let array = v.array(&ds.store).ok()?.clone();
                Some(Coord {
                    array,
                    attrs: v.meta.attrs.clone(),
                    decoding: v.decoding.clone()?,
                })
            });
        dims.insert(
            name.clone(),
            Dim {
                len: *len,
                index: Arc::new((0..*len).collect()),
                coord,
                bound_only: false,
            },
        );
    }
    let mut vars = IndexMap::new();
    for v in ds.variables.iter().filter(|v| !dims.contains_key(&v.name)) {
        let (Ok(array), Some(decoding)) = (v.array(&ds.store), v.decoding.clone()) else {
            continue;
        };
        let vtype = match &decoding.decoded {
            Decoded::Numeric(d) => VType::of(*d),
            _ => continue, // time-valued data variables are not computed on yet
        };
        let node = Node::new(
            Op::Source {
                array: Arc::new(array.clone()),
                decoding: Box::new(decoding),
                cache: cache.clone(),
            },
            v.dims.clone(),
            v.shape().to_vec(),
            vtype,
        );
        vars.insert(
            v.name.clone(),
            Var {
                node,
                attrs: v.attrs(),
            },
        );
    }
    let mut state = State {
        doc,
        dims,
        vars,
        attrs: ds.attrs.clone(),
        cache: cache.clone(),
        dry_run: opts.dry_run,
        inputs: vec![in_loc.to_string()],
    };
    for (i, op) in r.operations.iter().enumerate() {
        state.apply(i, op)?;
    }
    for (k, v) in &r.output.attrs {
        state.attrs.insert(k.clone(), v.clone());
    }

    // Output layout.
    let fmt = r.output.zarr_format;
    for d in r.output.chunks.keys() {
        if !state.dims.contains_key(d) {
            return Err(doc.error_at(
                doc.line_of("chunks"),
                &format!("output.chunks.{d}"),
                format!(
                    "'{d}' is not a dimension of the result (dimensions: {})",
                    state.dims.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    let used_dims: BTreeSet<String> = state
        .vars
        .values()
        .flat_map(|v| v.node.dims.clone())
        .collect();
    let chunk_of = |d: &str, len: u64| {
        r.output
            .chunks
            .get(d)
            .copied()
            .unwrap_or(len)
            .min(len.max(1))
    };
    let compressor = r.output.compressor.clone().unwrap_or(if fmt == 2 {
        Compressor::Blosc {
            cname: "lz4".into(),
            clevel: 5,
            shuffle: 1,
        }
    } else {
        Compressor::Zstd { level: 0 }
    });
    let chunks_of_node = |n: &Node| -> Vec<u64> {
        n.dims
            .iter()
            .zip(&n.shape)
            .map(|(d, len)| chunk_of(d, *len))
            .collect()
    };
    let mut summary_vars = Vec::new();
    let mut bytes_to_write = 0u64;
    for (name, d) in state.dims.iter().filter(|(n, _)| used_dims.contains(*n)) {
        if let Some(c) = &d.coord {
            summary_vars.push(PlanVar {
                name: name.clone(),
                dims: vec![name.clone()],
                shape: vec![d.len],
                dtype: c.array.dtype().name().into(),
                chunks: vec![d.len],
                coordinate: true,
            });
            bytes_to_write += d.len * c.array.dtype().size() as u64;
        }
    }
    for (name, v) in &state.vars {
        let chunks = chunks_of_node(&v.node);
        summary_vars.push(PlanVar {
            name: name.clone(),
            dims: v.node.dims.clone(),
            shape: v.node.shape.clone(),
            dtype: v.node.vtype.dtype().name().into(),
            chunks,
            coordinate: false,
        });
        bytes_to_write += v.node.shape.iter().product::<u64>() * v.node.vtype.dtype().size() as u64;
    }
    let mut sources = Vec::new();
    for v in state.vars.values() {
        v.node.sources(&mut sources);
    }
    let stages = plan_passes(
        &state
            .vars
            .values()
            .map(|v| Some(&v.node))
            .collect::<Vec<_>>(),
    );
    let mut passes = stages.len();
    // Each worker keeps an accumulator per reduction of its pass (`plan::Acc`: five 8-byte
    // and two 1-byte values per output element).
    let accumulator_bytes = stages
        .iter()
        .map(|(reductions, _)| {
            reductions
                .iter()
                .map(|r| r.shape.iter().fold(42u64, |a, n| a.saturating_mul(*n)))
                .fold(0u64, u64::saturating_add)
        })
        .max()
        .unwrap_or(0);
    passes += r
        .operations
        .iter()
        .filter(|o| matches!(o, Operation::DropAllNan(_)))
        .count();
    let source_vars = || {
        ds.variables
            .iter()
            .filter(|v| sources.contains(&ds.store.location().join(&v.name)))
    };
    let bytes_to_read: u64 = source_vars()
        .map(|v| v.meta.len() * v.meta.dtype.map_or(0, |d| d.size() as u64))
        .sum();
    let max_input_chunk_bytes = source_vars()
        .map(|v| {
            v.meta
                .chunks
                .iter()
                .fold(1u64, |a, c| a.saturating_mul(*c))
                .saturating_mul(v.meta.dtype.map_or(0, |d| d.size() as u64))
        })
        .max()
        .unwrap_or(0);
    let workers = rayon::current_num_threads() as u64;
    let repeating = state
        .vars
        .values()
        .filter(|v| v.node.value_dims().len() < v.node.dims.len())
        .count() as u64;
    let max_chunk_bytes = summary_vars
        .iter()
        .map(|v| v.chunks.iter().fold(8u64, |a, c| a.saturating_mul(*c)))
        .max()
        .unwrap_or(0);
    let summary = PlanSummary {
        output: out_loc.to_string(),
        zarr_format: fmt,
        dims: state
            .dims
            .iter()
            .filter(|(n, _)| used_dims.contains(*n))
            .map(|(n, d)| {
                (
                    n.clone(),
                    if d.bound_only {
                        format!("<={}", d.len)
                    } else {
                        d.len.to_string()
                    },
                )
            })
            .collect(),
        variables: summary_vars,
        bytes_to_read,
        bytes_to_write,
        passes,
        // The cache, the one chunk of slack its buffer pool keeps (`ChunkCache`), each
        // worker's blocks and reduction accumulators, the encoded chunks waiting to be
        // written, those kept for broadcast variables (`Repeats`), and the program itself.
        estimated_peak_memory: (opts.memory_limit as u64)
            .saturating_add(max_input_chunk_bytes)
            .saturating_add(workers.saturating_mul(max_chunk_bytes).saturating_mul(4))
            .saturating_add(workers.saturating_mul(accumulator_bytes))
            .saturating_add(WRITE_BEHIND_BYTES as u64)
            .saturating_add(
                repeating
                    .saturating_mul(REPEATS_KEPT as u64)
                    .saturating_mul(max_chunk_bytes),
            )
            .saturating_add(64 * 1024 * 1024),
    };
    if opts.dry_run {
        return Ok((summary, None));
    }

    // Destination.
    let out_store = Store::open(&out_loc)?;
    if out_store.exists()? {
        // A reader must never take what follows for a finished cube: the group metadata goes
        // first, both before an overwrite empties the destination and before a resume rewrites
        // chunks of a cube that may have been committed already.
        if opts.overwrite || opts.resume {
            withdraw_group_metadata(&out_store)?;
        }
        if opts.overwrite {
            remove_all(&out_store)?;
        } else if !opts.resume {
            return Err(Error::DestinationNotEmpty {
                location: out_loc.to_string(),
            });
        }
    }
    if opts.resume {
        remove_partial_files(&out_store)?;
    }
    // Chunks are written by background threads while the workers compute the next ones.
    let writer = Arc::new(
        WriteBehind::new(
            out_store.storage().clone(),
            WRITE_THREADS,
            WRITE_BEHIND_BYTES,
        )
        .map_err(|e| Error::Other(format!("cannot start the writer threads: {e}")))?,
    );
    let chunk_store = out_store.with_storage(writer.clone());
    let write_failure = |(key, msg): (zarrs_storage::StoreKey, String)| {
        Error::Other(format!(
            "{}: cannot write chunk: {msg}",
            out_store.location().join(key.as_str())
        ))
    };
    let shard_of = |dims: &[String], chunks: &[u64]| -> Option<Vec<u64>> {
        r.output.shards.as_ref().map(|s| {
            dims.iter()
                .zip(chunks)
                .map(|(d, c)| s.get(d).copied().unwrap_or(*c))
                .collect()
        })
    };
    let mut outs: Vec<OutArray> = Vec::new();
    for (name, d) in state.dims.iter().filter(|(n, _)| used_dims.contains(*n)) {
        let Some(c) = &d.coord else { continue };
        let raw = c.array.read_all()?;
        let s = c.array.dtype().size();
        let mut bytes = Vec::with_capacity(d.index.len() * s);
        for p in d.index.iter() {
            let p = usize::try_from(*p).unwrap_or(0);
            bytes.extend_from_slice(&raw.bytes[p * s..(p + 1) * s]);
        }
        let attrs = c.attrs.clone();
        outs.push(out_array(
            &chunk_store,
            fmt,
            name,
            std::slice::from_ref(name),
            &[d.len],
            &[d.len],
            None,
            c.array.dtype(),
            &compressor,
            attrs,
            OutSource::Values(bytes),
        )?);
    }
    for (name, v) in &state.vars {
        let chunks = chunks_of_node(&v.node);
        let shards = shard_of(&v.node.dims, &chunks);
        outs.push(out_array(
            &chunk_store,
            fmt,
            name,
            &v.node.dims,
            &v.node.shape,
            &chunks,
            shards.as_deref(),
            v.node.vtype.dtype(),
            &compressor,
            v.attrs.clone(),
            OutSource::Node(v.node.clone()),
        )?);
    }

    tracing::info!(output = %out_loc, arrays = outs.len(), "plan ready");
    let stages = plan_passes(
        &outs
            .iter()
            .map(|o| match &o.source {
                OutSource::Node(n) => Some(n),
                OutSource::Values(_) => None,
            })
            .collect::<Vec<_>>(),
    );
    // Output tasks: one per chunk (or shard) of each array.
    let tasks_of = |ai: usize| -> Vec<(usize, Vec<u64>)> {
        let o = &outs[ai];
        let grid: Vec<u64> = o
            .shape
            .iter()
            .zip(&o.write_chunks)
            .map(|(n, c)| n.div_ceil((*c).max(1)).max(1))
            .collect();
        let total: u64 = grid.iter().product();
        (0..total)
            .filter_map(|flat| zarrs::array::unravel_index(flat, &grid))
            .map(|idx| (ai, idx))
            .collect()
    };
    // Tasks are ordered along the outermost dimension of the largest output variable (time, in a
    // time × lat × lon cube): the tasks that need the same input chunks then run together, with
    // the reduction blocks of their pass that read them.
    let first_dim = outs
        .iter()
        .max_by_key(|o| o.shape.iter().product::<u64>())
        .and_then(|o| o.dims.first().cloned())
        .unwrap_or_default();
    let position = |(ai, idx): &(usize, Vec<u64>)| -> f64 {
        let o = &outs[*ai];
        o.dims
            .iter()
            .position(|d| *d == first_dim)
            .map_or(0.0, |p| {
                (idx[p] * o.write_chunks[p]) as f64 / o.shape[p].max(1) as f64
            })
    };
    let needs = |(ai, idx): &(usize, Vec<u64>), keys: &mut Vec<plan::Needed>| {
        let o = &outs[*ai];
        if let OutSource::Node(n) = &o.source {
            n.chunks_needed(&chunk_window(idx, &o.write_chunks, &o.shape), keys);
        }
    };
    let resumed = AtomicU64::new(0);
    let write = |(ai, idx): &(usize, Vec<u64>)| -> Result<()> {
        let o = &outs[*ai];
        if opts.resume && chunk_is_good(&out_store, o, idx)? {
            resumed.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        // A write refused because an earlier one failed: report the earlier one.
        write_chunk(&out_store, o, idx).map_err(|e| writer.failure().map_or(e, write_failure))
    };
    let n_passes = stages.len();
    let mut total = 0u64;
    for (p, (reductions, arrays)) in stages.iter().enumerate() {
        let tasks: Vec<(usize, Vec<u64>)> = arrays.iter().flat_map(|ai| tasks_of(*ai)).collect();
        total += tasks.len() as u64;
        // Passes alternate direction, the last one backwards: each starts where the previous
        // one ended, with the input chunks it left in the cache.
        let backwards = (n_passes - 1 - p) % 2 == 0;
        tracing::info!(
            pass = p + 1,
            of = n_passes,
            reductions = reductions.len(),
            chunks = tasks.len(),
            order = %first_dim,
            "pass"
        );
        let label = if n_passes == 1 {
            "writing".to_string()
        } else {
            format!("pass {} of {n_passes}", p + 1)
        };
        plan::run_pass(
            &cache,
            reductions,
            &tasks,
            position,
            needs,
            write,
            backwards,
            |done, of| progress(&label, done, of),
        )?;
    }

    writer.finish().map_err(write_failure)?;
    tracing::info!(
        decoded = cache.decoded(),
        "chunks written; committing metadata"
    );
    // Metadata last: arrays, group, then consolidated metadata.
    let mut consolidated = Map::new();
    let recipe_sha = format!("{:x}", Sha256::digest(doc.text.as_bytes()));
    let mut gattrs = state.attrs.clone();
    gattrs.insert("cubeforge_version".into(), json!(crate::VERSION));
    gattrs.insert("cubeforge_recipe_sha256".into(), json!(recipe_sha));
    gattrs.insert("cubeforge_inputs".into(), json!(state.inputs));
    gattrs.insert("cubeforge_created".into(), json!(utc_now()));
    for o in &outs {
        if fmt == 2 {
            crate::example::put_json(&out_store, &o.meta_key, &o.meta)?;
            crate::example::put_json(&out_store, &format!("{}/.zattrs", o.name), &o.attrs)?;
            consolidated.insert(o.meta_key.clone(), o.meta.clone());
            consolidated.insert(format!("{}/.zattrs", o.name), o.attrs.clone());
        } else {
            crate::example::put_json(&out_store, &o.meta_key, &o.meta)?;
            consolidated.insert(o.name.clone(), o.meta.clone());
        }
    }
    if fmt == 2 {
        crate::example::put_json(&out_store, ".zattrs", &Value::Object(gattrs.clone()))?;
        crate::example::put_json(&out_store, ".zgroup", &json!({"zarr_format": 2}))?;
        consolidated.insert(".zattrs".into(), Value::Object(gattrs));
        consolidated.insert(".zgroup".into(), json!({"zarr_format": 2}));
        crate::example::put_json(
            &out_store,
            ".zmetadata",
            &json!({"metadata": consolidated, "zarr_consolidated_format": 1}),
        )?;
    } else {
        crate::example::put_json(
            &out_store,
            "zarr.json",
            &json!({
                "zarr_format": 3, "node_type": "group", "attributes": gattrs,
                "consolidated_metadata": {"kind": "inline", "must_understand": false, "metadata": consolidated},
            }),
        )?;
    }
    let _ = &state.cache;
    let report = BuildReport {
        plan: summary.clone(),
        chunks_computed: total - resumed.load(Ordering::Relaxed),
        chunks_resumed: resumed.load(Ordering::Relaxed),
        input_chunks_decoded: cache.decoded(),
        decode_buffers_mapped: cache.buffers_mapped(),
    };
    Ok((summary, Some(report)))
}

/// The window of output chunk `idx` for chunks of `chunks` in an array of `shape`.
fn chunk_window(idx: &[u64], chunks: &[u64], shape: &[u64]) -> Window {
    idx.iter()
        .zip(chunks)
        .zip(shape)
        .map(|((i, c), n)| (i * c)..((i + 1) * c).min(*n))
        .collect()
}

/// The passes of a build: per pass, the pending reductions it computes and the output arrays
/// (indices into `outs`: `None` for coordinates, written from their values) it writes.
///
/// A reduction that needs no other pending one runs in pass 0; one that reads the result of a
/// reduction of pass k runs in pass k + 1. An output array runs in the pass after the last
/// reduction it needs (pass 0 when it needs none), together with the reductions of that pass,
/// so that they share the input chunks they decode. Coordinates are written in the last pass.
fn plan_passes(outs: &[Option<&NodeRef>]) -> Vec<(Vec<NodeRef>, Vec<usize>)> {
    /// Adds the pending reductions under `n` to `found` (with their pass) and returns the last
    /// pass among them.
    fn visit(n: &NodeRef, found: &mut Vec<(NodeRef, usize)>) -> Option<usize> {
        let below = n
            .children()
            .into_iter()
            .filter_map(|c| visit(c, found))
            .max();
        if !n.is_pending_reduction() {
            return below;
        }
        if let Some((_, p)) = found.iter().find(|(r, _)| Arc::ptr_eq(r, n)) {
            return Some(*p);
        }
        let p = below.map_or(0, |b| b + 1);
        found.push((n.clone(), p));
        Some(p)
    }
    let mut found = Vec::new();
    let pass_of: Vec<Option<usize>> = outs
        .iter()
        .map(|o| o.map(|n| visit(n, &mut found).map_or(0, |p| p + 1)))
        .collect();
    let last = pass_of.iter().flatten().copied().max().unwrap_or(0);
    let mut stages: Vec<(Vec<NodeRef>, Vec<usize>)> =
        (0..=last).map(|_| (Vec::new(), Vec::new())).collect();
    for (r, p) in found {
        stages[p].0.push(r);
    }
    for (ai, p) in pass_of.iter().enumerate() {
        stages[p.unwrap_or(last)].1.push(ai);
    }
    stages
}

/// Threads writing finished chunks ([`WriteBehind`]): enough to keep a local disk's queue or a
/// few uploads busy while the workers compute.
const WRITE_THREADS: usize = 4;

/// The most encoded chunk bytes waiting for a writer thread; a worker with a chunk to write
/// waits while the queue is full.
const WRITE_BEHIND_BYTES: usize = 32 * 1024 * 1024;

/// Compute output chunk `idx` of `o` and write it.
fn write_chunk(out_store: &Store, o: &OutArray, idx: &[u64]) -> Result<()> {
    thread_local! {
        /// Each worker's buffer for padded edge chunks, reused: a fresh chunk-sized buffer per
        /// chunk costs the kernel page faults and zeroing.
        static PADDED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let failed = |e: &dyn std::fmt::Display| {
        Error::Other(format!(
            "{}: cannot write chunk: {e}",
            out_store.location().join(o.array.chunk_key(idx).as_str())
        ))
    };
    let put = |encoded: Option<zarrs_storage::Bytes>| match encoded {
        Some(bytes) => o
            .array
            .storage()
            .set(&o.array.chunk_key(idx), bytes)
            .map_err(|e| failed(&e)),
        None => o.array.erase_chunk(idx).map_err(|e| failed(&e)),
    };
    let n = match &o.source {
        OutSource::Values(b) => return put(encode_chunk(o, idx, b).map_err(|e| failed(&e))?),
        OutSource::Node(n) => n,
    };
    let window = chunk_window(idx, &o.write_chunks, &o.shape);
    let got: Vec<u64> = window.iter().map(|r| r.end - r.start).collect();
    // The chunk's values, padded with the fill value to the full chunk shape at the edges,
    // encoded.
    let compute = || -> Result<Option<zarrs_storage::Bytes>> {
        if got != o.write_chunks && vtype_is(n.vtype, o.dtype) {
            // An edge chunk computed in the padded block itself where the node allows it.
            let full: Vec<usize> = o
                .write_chunks
                .iter()
                .map(|c| usize::try_from(*c).unwrap_or(0))
                .collect();
            if let Some(data) = n.eval_padded(&window, &full)? {
                let encoded = encode_chunk(o, idx, &encode(&data, o.dtype));
                plan::recycle(data);
                return encoded.map_err(|e| failed(&e));
            }
        }
        let block = n.eval(&window)?;
        let bytes = encode(&block.data, o.dtype);
        let encoded = if got == o.write_chunks {
            encode_chunk(o, idx, &bytes)
        } else {
            let fill_value = plan::Data::F64(vec![if o.dtype.is_float() { f64::NAN } else { 0.0 }]);
            let fill = encode(&fill_value, o.dtype);
            PADDED.with(|padded| {
                let mut padded = padded.borrow_mut();
                pad_chunk(&mut padded, &bytes, &got, &o.write_chunks, &fill);
                encode_chunk(o, idx, &padded)
            })
        };
        drop(bytes);
        plan::recycle(block.data);
        encoded.map_err(|e| failed(&e))
    };
    let encoded = match &o.repeats {
        None => compute()?,
        Some(repeats) => repeats
            .cell(idx, &got)
            .get_or_init(|| compute().map_err(|e| e.to_string()))
            .clone()
            .map_err(Error::Other)?,
    };
    put(encoded)
}

/// Whether values of type `vtype` are stored as `dtype` byte for byte (see [`encode`]).
fn vtype_is(vtype: VType, dtype: DType) -> bool {
    matches!(
        (vtype, dtype),
        (VType::F32, DType::Float32) | (VType::F64, DType::Float64)
    )
}

/// Chunk `idx` of `o` with the values `bytes` (the full chunk shape), encoded as
/// `zarrs::array::Array::store_chunk` encodes it; `None` for a chunk of fill values only, which
/// is not written (as zarr-python does not write them). The writer stores the bytes itself
/// (`store_chunk` would encode again, and `store_encoded_chunk` is `unsafe`), so that a chunk
/// repeated by a broadcast variable is encoded once ([`Repeats`]).
fn encode_chunk(
    o: &OutArray,
    idx: &[u64],
    bytes: &[u8],
) -> std::result::Result<Option<zarrs_storage::Bytes>, zarrs::array::ArrayError> {
    use zarrs::array::ArrayToBytesCodecTraits as _;
    let options = zarrs::array::CodecOptions::default();
    let bytes = zarrs::array::ArrayBytes::new_flen(bytes);
    if !options.store_empty_chunks() && bytes.is_fill_value(o.array.fill_value()) {
        return Ok(None);
    }
    let shape = o.array.chunk_shape(idx)?;
    let encoded = o
        .array
        .codecs()
        .encode(
            bytes,
            &shape,
            o.array.data_type(),
            o.array.fill_value(),
            &options,
        )
        .map_err(zarrs::array::ArrayError::CodecError)?;
    Ok(Some(zarrs_storage::Bytes::from(encoded.into_owned())))
}

/// `bytes`, a C-order array of shape `got`, padded to `full` (each dimension at least as long)
/// with the element `fill`, into `out` (replacing what it held). Every byte of the result is
/// written once, row by row.
fn pad_chunk(out: &mut Vec<u8>, bytes: &[u8], got: &[u64], full: &[u64], fill: &[u8]) {
    let to_usize = |n: u64| usize::try_from(n).unwrap_or(0);
    out.clear();
    let Some((&last, outer)) = full.split_last() else {
        out.extend_from_slice(bytes);
        return;
    };
    let row = to_usize(last) * fill.len();
    let got_row = to_usize(got.last().copied().unwrap_or(0)) * fill.len();
    let fill_row = fill.repeat(to_usize(last));
    let rows: usize = outer.iter().map(|n| to_usize(*n)).product();
    out.reserve(rows * row);
    let mut idx = vec![0u64; outer.len()];
    let mut src = 0;
    for _ in 0..rows {
        if idx.iter().zip(got).all(|(i, g)| i < g) {
            out.extend_from_slice(&bytes[src..src + got_row]);
            out.extend_from_slice(&fill_row[got_row..]);
            src += got_row;
        } else {
            out.extend_from_slice(&fill_row);
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

/// Whether an output chunk from an interrupted build exists and decodes (absent all-fill chunks
/// are recomputed, which is cheap and writes nothing).
fn chunk_is_good(store: &Store, o: &OutArray, idx: &[u64]) -> Result<bool> {
    use zarrs_storage::ReadableStorageTraits as _;
    let key = o.array.chunk_key(idx);
    let present = store
        .storage()
        .size_key(&key)
        .map_err(|e| store.storage_error(key.as_str(), e))?
        .is_some();
    Ok(present
        && o.array
            .retrieve_chunk::<zarrs::array::ArrayBytes<'static>>(idx)
            .is_ok())
}

/// Remove the temporary files an interrupted build leaves behind (see `store::LocalStore`).
fn remove_partial_files(store: &Store) -> Result<()> {
    fn walk(dir: &std::path::Path) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path)?;
            } else if path.extension().is_some_and(|e| e == "partial") {
                std::fs::remove_file(&path)?;
            }
        }
        Ok(())
    }
    match store.location() {
        Location::Local(p) if p.is_dir() => walk(p).map_err(|e| Error::Io {
            path: p.display().to_string(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Removes a cube's group and consolidated metadata (Zarr v2 and v3), consolidated metadata
/// first, so that readers refuse the store from then on; keys that do not exist are skipped.
fn withdraw_group_metadata(store: &Store) -> Result<()> {
    use zarrs_storage::WritableStorageTraits as _;
    for key in [".zmetadata", ".zgroup", ".zattrs", "zarr.json"] {
        let k = zarrs_storage::StoreKey::new(key).map_err(|e| Error::Other(e.to_string()))?;
        store
            .storage()
            .erase(&k)
            .map_err(|e| store.storage_error(key, e))?;
    }
    Ok(())
}

fn remove_all(store: &Store) -> Result<()> {
    match store.location() {
        Location::Local(p) => std::fs::remove_dir_all(p).map_err(|e| Error::Io {
            path: p.display().to_string(),
            source: e,
        }),
        _ => crate::zarr::erase_prefix(store, ""),
    }
}

fn same_location(a: &Location, b: &Location) -> bool {
    match (a, b) {
        (Location::Local(x), Location::Local(y)) => {
            let cx = std::fs::canonicalize(x).unwrap_or_else(|_| x.clone());
            let cy = std::fs::canonicalize(y).unwrap_or_else(|_| y.clone());
            cx == cy
        }
        _ => a.to_string().trim_end_matches('/') == b.to_string().trim_end_matches('/'),
    }
}

fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    TimeEncoding::parse("seconds since 1970-01-01", Some("proleptic_gregorian"))
        .and_then(|e| e.decode_i64(i64::try_from(secs).unwrap_or(0)))
        .map(|t| format!("{}Z", t.to_iso()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_chunks_are_padded_with_the_fill_value() {
        // A 2 x 3 x 2 block of u16 values 1..=12 in a 3 x 4 x 3 chunk, fill 0xFFFF.
        let got = [2u64, 3, 2];
        let full = [3u64, 4, 3];
        let bytes: Vec<u8> = (1u16..=12).flat_map(u16::to_le_bytes).collect();
        let pad = |bytes: &[u8], got: &[u64], full: &[u64], fill: &[u8]| {
            // A reused buffer: what it held before is replaced.
            let mut out = vec![7u8; 100];
            pad_chunk(&mut out, bytes, got, full, fill);
            out
        };
        let padded = pad(&bytes, &got, &full, &[0xFF, 0xFF]);
        let values: Vec<u16> = padded
            .chunks(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        let mut want = vec![u16::MAX; 36];
        for t in 0..2 {
            for y in 0..3 {
                for x in 0..2 {
                    want[(t * 4 + y) * 3 + x] = u16::try_from(1 + (t * 3 + y) * 2 + x).unwrap();
                }
            }
        }
        assert_eq!(values, want);
        // One dimension; and nothing to pad.
        assert_eq!(pad(&[1, 2], &[2], &[3], &[9]), [1, 2, 9]);
        assert_eq!(pad(&bytes, &got, &got, &[0, 0]), bytes);
    }

    #[test]
    fn label_slices_follow_xarray() {
        let desc = [32.0, 31.75, 31.5, 31.25];
        assert_eq!(
            label_slice(&desc, Some(31.6), Some(31.2)).unwrap(),
            vec![2, 3]
        );
        assert_eq!(
            label_slice(&desc, Some(35.0), None).unwrap(),
            vec![0, 1, 2, 3]
        );
        assert!(label_slice(&desc, Some(31.2), Some(31.6))
            .unwrap()
            .is_empty());
        let asc = [42.0, 42.25, 42.5];
        assert_eq!(
            label_slice(&asc, Some(42.1), Some(45.0)).unwrap(),
            vec![1, 2]
        );
        assert!(label_slice(&[1.0, 3.0, 2.0], None, None).is_err());
    }

    #[test]
    fn chunks_of_a_broadcast_feature_share_their_encoding() {
        let t = plan::Node::new(
            Op::Along {
                dim: "time".into(),
                values: Arc::new(vec![0.5; 10]),
            },
            vec!["time".into()],
            vec![10],
            VType::F32,
        );
        let dims: Vec<String> = ["time", "lat", "lon"].map(String::from).to_vec();
        let feature = plan::Node::new(Op::Unary(UnOp::Sin, t), dims, vec![10, 5, 5], VType::F32);
        let repeats = Repeats::of(&feature).expect("constant along lat and lon");
        assert_eq!(repeats.varying, [true, false, false]);
        let same = |a: &RepeatCell, b: &RepeatCell| Arc::ptr_eq(a, b);
        // Tiles of one time chunk and one shape share a cell; another shape (an edge tile) or
        // another time chunk do not.
        let first = repeats.cell(&[0, 0, 0], &[4, 3, 3]);
        assert!(same(&first, &repeats.cell(&[0, 0, 1], &[4, 3, 3])));
        assert!(same(&first, &repeats.cell(&[0, 1, 0], &[4, 3, 3])));
        assert!(!same(&first, &repeats.cell(&[0, 1, 1], &[4, 2, 2])));
        assert!(!same(&first, &repeats.cell(&[1, 0, 0], &[4, 3, 3])));
        // Only the latest few are kept.
        for i in 2..20 {
            repeats.cell(&[i, 0, 0], &[4, 3, 3]);
        }
        assert_eq!(repeats.recent.lock().unwrap().len(), REPEATS_KEPT);
        assert!(!same(&first, &repeats.cell(&[0, 0, 0], &[4, 3, 3])));
    }

    #[test]
    fn each_output_runs_in_the_pass_after_the_reductions_it_needs() {
        let constant = || {
            Node::new(
                Op::Const(plan::Data::F64(vec![1.0])),
                vec![],
                vec![],
                VType::F64,
            )
        };
        let reduce = |child: NodeRef| {
            Node::new(
                Op::Reduce {
                    child,
                    dims: vec![],
                    kind: plan::Reduction::Max,
                    result: OnceLock::new(),
                },
                vec![],
                vec![],
                VType::F64,
            )
        };
        let binary = |a: &NodeRef, b: &NodeRef| {
            Node::new(
                Op::Binary(expr::BinOp::Add, a.clone(), b.clone()),
                vec![],
                vec![],
                VType::F64,
            )
        };
        // r1 reads r0's result; out2 needs both, out1 only r0, out0 none.
        let r0 = reduce(constant());
        let r1 = reduce(binary(&r0, &constant()));
        let out0 = constant();
        let out1 = binary(&r0, &constant());
        let out2 = binary(&r1, &r0);
        let stages = plan_passes(&[Some(&out2), None, Some(&out1), Some(&out0)]);
        assert_eq!(stages.len(), 3);
        let arrays: Vec<&Vec<usize>> = stages.iter().map(|(_, a)| a).collect();
        // Coordinates (None) in the last pass.
        assert_eq!(arrays, [&vec![3], &vec![2], &vec![0, 1]]);
        let reductions: Vec<Vec<*const Node>> = stages
            .iter()
            .map(|(r, _)| r.iter().map(Arc::as_ptr).collect())
            .collect();
        assert_eq!(
            reductions,
            [vec![Arc::as_ptr(&r0)], vec![Arc::as_ptr(&r1)], vec![]]
        );
        // A reduction already computed constrains nothing.
        let w: Window = vec![];
        r0.eval(&w).expect("eval");
        let stages = plan_passes(&[Some(&out2), Some(&out1), Some(&out0)]);
        assert_eq!(stages.len(), 2);
        assert_eq!(stages[0].1, vec![1, 2]);
        assert_eq!(stages[1].1, vec![0]);
    }
}
