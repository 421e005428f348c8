//! One function per recipe operation, each changing the [`State`]: selections become takes along
//! a dimension, `assign` compiles expressions, `mask` and `season` build nodes of their own.

use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::labels::{label_slice, label_time};
use super::{depth_problem, op_err, State, Var};
use crate::cf::time::day_of_year;
use crate::cf::Decoded;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::expr;
use crate::ops::rename_dims::RenameDims;
use crate::plan::{self, Node, Op, Reduction, UnOp, VType, Window};
use crate::recipe::{DropAllNan, IndexSlice, Label, LabelSlice, Mask, Operation, Season};

impl State<'_> {
    /// Apply operation `i` of the recipe.
    pub(super) fn apply(&mut self, i: usize, op: &Operation, ex: Option<&Exec>) -> Result<()> {
        match op {
            Operation::Keep(names) => self.keep(i, op, names, true),
            Operation::Drop(names) => self.keep(i, op, names, false),
            Operation::Rename(map) => self.rename(i, op, map),
            Operation::Sel(map) => self.sel(i, op, map),
            Operation::Isel(map) => self.isel(i, op, map),
            Operation::DropAllNan(d) => self.drop_all_nan(i, op, d, ex),
            Operation::Sortby(dim) => self.sortby(i, op, dim),
            Operation::Assign(map) => self.assign(i, op, map),
            Operation::Mask(m) => self.mask(i, op, m),
            Operation::Season(s) => self.season(i, op, s),
            Operation::Astype(map) => self.astype(i, op, map),
            Operation::Attrs(map) => self.set_attrs(i, op, map),
            Operation::RenameDims(map) => self.rename_dims(i, op, map),
            Operation::Resample(r) => self.resample(i, op, r),
            Operation::Regrid(r) => self.regrid(i, op, r),
            Operation::Expand(e) => self.expand(i, op, e),
        }
    }

    /// `keep` (or, when `keep` is false, `drop`) the named variables.
    fn keep(&mut self, i: usize, op: &Operation, names: &[String], keep: bool) -> Result<()> {
        for n in names {
            if self.texts.contains_key(n) {
                continue;
            }
            // Dropping a variable that cannot be read is how a recipe builds without it.
            if keep || self.unreadable_reason(n).is_none() {
                self.var_or_err(i, op, n)?;
            }
        }
        self.vars.retain(|k, _| names.contains(k) == keep);
        self.pruned |= keep;
        // A dimension's coordinate stays with its dimension, whatever is kept.
        let dims = &self.dims;
        self.unreadable
            .retain(|k, _| dims.contains_key(k) || names.contains(k) == keep);
        self.texts
            .retain(|k, _| dims.contains_key(k) || names.contains(k) == keep);
        Ok(())
    }

    /// `rename` variables (not dimensions).
    fn rename(&mut self, i: usize, op: &Operation, map: &IndexMap<String, String>) -> Result<()> {
        let doc = self.doc;
        for (from, to) in map {
            if self.dims.contains_key(from) {
                return Err(op_err(
                    doc,
                    i,
                    op,
                    format!("'{from}' is a dimension; rename dimensions with rename_dims"),
                ));
            }
            if !self.texts.contains_key(from) {
                self.var_or_err(i, op, from)?;
            }
            if self.vars.contains_key(to)
                || self.dims.contains_key(to)
                || self.texts.contains_key(to)
            {
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
        let old = std::mem::take(&mut self.texts);
        self.texts = old
            .into_iter()
            .map(|(k, v)| (map.get(&k).cloned().unwrap_or(k), v))
            .collect();
        Ok(())
    }

    /// `rename_dims`: dimensions renamed with their coordinates, in every variable (as
    /// xarray's `ds.rename({old: new})` of dimensions).
    fn rename_dims(
        &mut self,
        i: usize,
        op: &Operation,
        map: &IndexMap<String, String>,
    ) -> Result<()> {
        let doc = self.doc;
        let err = |m: String| op_err(doc, i, op, m);
        let mut targets: IndexMap<&str, &str> = IndexMap::new();
        for (from, to) in map {
            if !self.dims.contains_key(from) {
                return Err(err(format!(
                    "'{from}' is not a dimension (dimensions: {})",
                    self.dim_names()
                )));
            }
            if let Some(other) = targets.insert(to.as_str(), from.as_str()) {
                return Err(err(format!(
                    "'{other}' and '{from}' are both renamed to '{to}'"
                )));
            }
        }
        for (from, to) in map.iter().filter(|(f, t)| f != t) {
            if self.dims.contains_key(to) {
                return Err(err(format!(
                    "cannot rename dimension '{from}' to '{to}': dimension '{to}' exists"
                )));
            }
            if self.vars.contains_key(to) {
                return Err(err(format!(
                    "cannot rename dimension '{from}' to '{to}': variable '{to}' exists"
                )));
            }
        }
        let rename = |d: &String| map.get(d).cloned().unwrap_or_else(|| d.clone());
        self.dims = std::mem::take(&mut self.dims)
            .into_iter()
            .map(|(k, d)| (rename(&k), d))
            .collect();
        self.unreadable = std::mem::take(&mut self.unreadable)
            .into_iter()
            .map(|(k, r)| (rename(&k), r))
            .collect();
        self.input_chunks = std::mem::take(&mut self.input_chunks)
            .into_iter()
            .map(|(k, c)| (rename(&k), c))
            .collect();
        self.rename_text_dims(&rename);
        for v in self.vars.values_mut() {
            if !v.node.dims.iter().any(|d| map.contains_key(d)) {
                continue;
            }
            // A source variable is the same source under other names (keeping the executor's
            // fast paths for plain sources); anything computed is wrapped.
            let op = match &v.node.op {
                Op::Source { source, decoding } => Op::Source {
                    source: source.clone(),
                    decoding: decoding.clone(),
                },
                _ => Op::Window(Arc::new(RenameDims::new(v.node.clone()))),
            };
            v.node = Node::new(
                op,
                v.node.dims.iter().map(rename).collect(),
                v.node.shape.clone(),
                v.node.vtype,
            );
        }
        Ok(())
    }

    /// `sel`: label slices, inclusive at both ends, as xarray's `.sel(dim=slice(a, b))`.
    fn sel(&mut self, i: usize, op: &Operation, map: &IndexMap<String, LabelSlice>) -> Result<()> {
        let doc = self.doc;
        for (dim, slice) in map {
            if !self.dims.contains_key(dim) {
                return Err(op_err(
                    doc,
                    i,
                    op,
                    format!(
                        "'{dim}' is not a dimension (dimensions: {})",
                        self.dim_names()
                    ),
                ));
            }
            if self.dims[dim].coord.is_none() {
                return Err(op_err(
                    doc,
                    i,
                    op,
                    format!("dimension '{dim}' has no coordinate to select labels on; use isel"),
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
        Ok(())
    }

    /// `isel`: positional slices.
    fn isel(&mut self, i: usize, op: &Operation, map: &IndexMap<String, IndexSlice>) -> Result<()> {
        for (dim, s) in map {
            let Some(d) = self.dims.get(dim) else {
                return Err(op_err(
                    self.doc,
                    i,
                    op,
                    format!("'{dim}' is not a dimension"),
                ));
            };
            let start = s.start.unwrap_or(0).min(d.len);
            let stop = s.stop.unwrap_or(d.len).min(d.len);
            if start >= stop {
                return Err(op_err(
                    self.doc,
                    i,
                    op,
                    format!("{dim}: the slice selects nothing"),
                ));
            }
            let sub: Vec<u64> = (start..stop).collect();
            self.take(dim, &sub);
        }
        Ok(())
    }

    /// `drop_all_nan`: drop the positions along `dim` where the variable is NaN over all its
    /// other dimensions, found by a streaming scan now, because it fixes the output shape (a dry
    /// run only bounds the length).
    fn drop_all_nan(
        &mut self,
        i: usize,
        op: &Operation,
        d: &DropAllNan,
        ex: Option<&Exec>,
    ) -> Result<()> {
        let doc = self.doc;
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
        let ex = ex.ok_or_else(|| {
            Error::Other("internal: a drop_all_nan scan without an executor".into())
        })?;
        ex.check_memory([&*v.node])?;
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
        let len = v.node.size_of(&d.dim).unwrap_or(0);
        let any = if other.is_empty() {
            notnull
        } else {
            Node::new(
                Op::Reduce {
                    child: notnull,
                    dims: other,
                    kind: Reduction::Any,
                },
                vec![d.dim.clone()],
                vec![len],
                VType::Bool,
            )
        };
        let window: Window = std::iter::once(0..len).collect();
        tracing::info!(variable = %d.variable, dim = %d.dim, "pass: drop_all_nan scan");
        let plan::Data::Bool(keep) = ex.eval(&any, &window)?.data else {
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
        Ok(())
    }

    /// `sortby`: sort along a dimension by its coordinate, ascending, stable, NaN last.
    fn sortby(&mut self, i: usize, op: &Operation, dim: &str) -> Result<()> {
        if !self.dims.contains_key(dim) {
            return Err(op_err(
                self.doc,
                i,
                op,
                format!("'{dim}' is not a dimension"),
            ));
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
        Ok(())
    }

    /// `assign`: variables computed from expressions.
    fn assign(&mut self, i: usize, op: &Operation, map: &IndexMap<String, String>) -> Result<()> {
        for (name, text) in map {
            // At the line of the variable's own key, as the recipe's validation says.
            let doc = self.doc;
            let err = |m: String| {
                doc.error_at(
                    doc.key_line(i, name),
                    &format!("{}.{name}", doc.op_field(i, "assign")),
                    m,
                )
            };
            let e = expr::parse(text).map_err(|e| err(e.to_string()))?;
            let cannot =
                |n: &str| self.unreadable_reason(n).is_some() || self.texts.contains_key(n);
            if let Some(used) = unreadable_in(&e, &cannot) {
                self.var_or_err(i, op, &used)?;
            }
            let node = self.compile(&e).map_err(err)?;
            if let Some(problem) = depth_problem(&node) {
                return Err(err(problem));
            }
            self.set_computed(name, node);
        }
        Ok(())
    }

    /// `mask`: `xr.where(cond, x, nan)` for each variable, keeping its dimension order.
    fn mask(&mut self, i: usize, op: &Operation, m: &Mask) -> Result<()> {
        let cond = self.var_or_err(i, op, &m.condition)?.node.clone();
        for name in &m.variables {
            let v = self.var_or_err(i, op, name)?.clone();
            for d in &cond.dims {
                if !v.node.dims.contains(d) {
                    return Err(op_err(
                        self.doc,
                        i,
                        op,
                        format!("'{}' has dimension '{d}' that '{name}' lacks", m.condition),
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
        Ok(())
    }

    /// `season`: sine and cosine of `2π · day of year / 365.25` of the time coordinate, float32,
    /// broadcast like the variable `like`.
    fn season(&mut self, i: usize, op: &Operation, s: &Season) -> Result<()> {
        let doc = self.doc;
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
        Ok(())
    }

    /// `astype`: casts, keeping the variables' attributes.
    fn astype(&mut self, i: usize, op: &Operation, map: &IndexMap<String, String>) -> Result<()> {
        for (name, dt) in map {
            let v = self.var_or_err(i, op, name)?.clone();
            let to = VType::of(
                DType::from_name(dt)
                    .ok_or_else(|| op_err(self.doc, i, op, format!("unknown dtype '{dt}'")))?,
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
        Ok(())
    }

    /// `attrs`: set variable attributes, or global ones under `_global`.
    fn set_attrs(
        &mut self,
        i: usize,
        op: &Operation,
        map: &IndexMap<String, Map<String, Value>>,
    ) -> Result<()> {
        for (name, set) in map {
            let target = if name == "_global" {
                &mut self.attrs
            } else if let Some(t) = self.texts.get_mut(name) {
                &mut t.attrs
            } else {
                self.var_or_err(i, op, name)?;
                &mut self.vars[name].attrs
            };
            for (k, v) in set {
                target.insert(k.clone(), v.clone());
            }
        }
        Ok(())
    }
}

/// The first variable `e` names for which `unreadable` holds.
fn unreadable_in(e: &expr::Expr, unreadable: &dyn Fn(&str) -> bool) -> Option<String> {
    use expr::Expr as E;
    match e {
        E::Var(n) if unreadable(n) => Some(n.clone()),
        E::Neg(x) | E::Not(x) => unreadable_in(x, unreadable),
        E::Binary(_, a, b) => unreadable_in(a, unreadable).or_else(|| unreadable_in(b, unreadable)),
        E::Call(_, args) => args.iter().find_map(|a| unreadable_in(a, unreadable)),
        _ => None,
    }
}
