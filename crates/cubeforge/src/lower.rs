//! Lowering: a recipe's operations, applied in order to an input's variables, become the plan's
//! nodes ([`crate::plan`]). What lowering keeps per dimension (its length, the positions of the
//! input it holds, its coordinate) and per variable (its node, its attributes) is the
//! [`State`]; each recipe operation is one function (in `lower/ops.rs`) changing it.
//!
//! | file | what |
//! |---|---|
//! | `lower/input.rs` | [`Input`]: the variables, dimensions and coordinates lowering starts from |
//! | `lower/ops.rs` | one function per recipe operation |
//! | `lower/resample.rs` | `resample`: the time bins, the new time coordinate and its bounds |
//! | `lower/regrid.rs` | `regrid`: the source grid, methods per variable, the grid's dimensions |
//! | `lower/expand.rs` | `expand`: static variables along another variable's dimension |
//! | `lower/expr.rs` | `assign` expressions to nodes: broadcasting, type promotion, functions |
//! | `lower/labels.rs` | xarray's label semantics: slices on sorted coordinates, dates as labels |
//! | `lower/concat.rs` | many files as one input, joined along a dimension by its coordinate |
//! | `lower/time_from.rs` | a file's time from its name, an attribute, a metadata item or a tag |
//! | `lower/merge.rs` | several inputs' states merged into one, as `xarray.merge(join="exact")` |
//! | `lower/text.rs` | text variables: selected, renamed, dropped with a replaced dimension, joined |

use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::cf::time::TimeEncoding;
use crate::cf::{CfDecoding, Decoded};
use crate::coord::Coord;
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::plan::{self, Node, NodeRef, Op, SourceRef, VType};
use crate::recipe::{Operation, RecipeDoc};
use crate::source::Sources;
use crate::text::TextVar;

pub mod concat;
mod expand;
mod expr;
mod input;
mod labels;
pub mod merge;
mod ops;
mod regrid;
mod resample;
mod text;
pub mod time_from;

pub use input::{Input, InputDim, InputVar};
pub use regrid::grid_of_input;

/// A dimension of the dataset being built.
#[derive(Debug, Clone)]
pub struct Dim {
    /// Its length.
    pub len: u64,
    /// Positions into the input's dimension (and its coordinate) that it holds, in order.
    pub index: Arc<Vec<u64>>,
    /// Its coordinate, when it has one.
    pub coord: Option<Coord>,
    /// Whether the length is only an upper bound (dry run before a data-dependent selection).
    pub bound_only: bool,
}

/// The grid of the input a recipe's `grid: {like: NAME}` names: the variables regridded onto
/// it take that input's dimension names and coordinates as they are, so they merge with it.
#[derive(Debug, Clone)]
pub struct LikeGrid {
    /// The grid.
    pub geobox: crate::geo::GeoBox,
    /// The input's dimensions of rows and columns.
    pub dims: [String; 2],
    /// Their coordinates.
    pub coords: [Option<Coord>; 2],
}

/// A variable of the dataset being built.
#[derive(Debug, Clone)]
pub struct Var {
    /// What computes it.
    pub node: NodeRef,
    /// Its attributes.
    pub attrs: Map<String, Value>,
}

/// The dataset while operations are applied: dimensions, variables, global attributes.
#[derive(Debug)]
pub struct State<'a> {
    doc: &'a RecipeDoc,
    /// Dimensions, in order of appearance.
    pub dims: IndexMap<String, Dim>,
    /// Variables, in order.
    pub vars: IndexMap<String, Var>,
    /// Global attributes.
    pub attrs: Map<String, Value>,
    dry_run: bool,
    /// The inputs' locations, for the cube's provenance.
    pub inputs: Vec<String>,
    /// Input variables that cannot be read, with the reason: using one is an error, and so is
    /// keeping one to the end (the cube would silently lack it).
    unreadable: IndexMap<String, String>,
    /// The inputs' chunk length along each dimension (the largest any variable has), for
    /// outputs that keep the input's chunking (`chunks_default: input`).
    pub input_chunks: IndexMap<String, u64>,
    /// Whether a `keep` chose the variables: the coordinates of dimensions no variable uses
    /// then go with them (as `ds[[...]]` drops them); otherwise they stay, as in xarray.
    pub pruned: bool,
    /// Variables left out because they cannot be read ([`State::skip_unreadable`]), with why.
    pub skipped: Vec<(String, String)>,
    /// Text variables, held in memory and carried as they are (`lower/text.rs`); one named
    /// after a dimension is its coordinate.
    pub texts: IndexMap<String, TextVar>,
    /// The target grid, once a `regrid` has put variables on it.
    pub grid: Option<crate::geo::GeoBox>,
    /// The grid of the input `grid.like` names, when the recipe's grid is one.
    pub like: Option<LikeGrid>,
}

/// What is wrong with a plan deeper than [`plan::MAX_DEPTH`] or larger, unfolded, than
/// [`plan::MAX_UNFOLDED`]; `None` when it is neither.
fn depth_problem(node: &Node) -> Option<String> {
    let problem = if node.depth() > plan::MAX_DEPTH {
        format!(
            "its computation is nested deeper than {} levels (a long chain of operations, each \
             using the one before)",
            plan::MAX_DEPTH
        )
    } else if node.unfolded() > plan::MAX_UNFOLDED {
        format!(
            "its computation unfolds into more than {} operations (a variable used more than \
             once at each of many steps)",
            plan::MAX_UNFOLDED
        )
    } else {
        return None;
    };
    Some(format!("{problem}; compute it in fewer steps"))
}

/// A time-valued variable as its stored values: their type, no decoding, and its attributes
/// with the `units` and `calendar` (or a duration's `dtype`) that decode them.
fn time_as_stored(v: &InputVar) -> (VType, CfDecoding, Map<String, Value>) {
    let stored = v.source.dtype();
    let mut attrs = v.attrs.clone();
    match &v.decoding.decoded {
        Decoded::Time(enc) => {
            attrs.insert("units".into(), Value::String(enc.units_string()));
            attrs.insert("calendar".into(), Value::String(enc.calendar.name().into()));
        }
        Decoded::Timedelta(unit, dtype) => {
            attrs.insert("units".into(), Value::String(unit.name().into()));
            attrs.insert("dtype".into(), Value::String(dtype.clone()));
        }
        Decoded::Numeric(_) => {}
    }
    let plain = CfDecoding {
        stored,
        fill_values: Vec::new(),
        scale_factor: None,
        add_offset: None,
        unsigned: false,
        decoded: Decoded::Numeric(stored),
        missing_value_only: false,
        written: serde_json::Map::new(),
    };
    (VType::of(stored), plain, attrs)
}

/// The chunk length along each dimension of `input`: the largest any of its variables has.
#[must_use]
pub fn input_chunks(input: &Input) -> IndexMap<String, u64> {
    let mut out: IndexMap<String, u64> = IndexMap::new();
    for v in &input.variables {
        for (d, c) in v.dims.iter().zip(v.source.chunk_shape()) {
            let e = out.entry(d.clone()).or_insert(0);
            *e = (*e).max(*c);
        }
    }
    out
}

/// An error at operation `i` of the recipe, naming its line and field.
fn op_err(doc: &RecipeDoc, i: usize, op: &Operation, msg: impl Into<String>) -> Error {
    doc.error_at(doc.op_line(i), &doc.op_field(i, op.name()), msg)
}

impl<'a> State<'a> {
    /// The starting state: every variable of `input` that can be computed on (numbers, not
    /// times), each a source node whose reader is added to `sources`. In a dry run, operations
    /// whose result depends on the data only bound the shape.
    pub fn new(
        doc: &'a RecipeDoc,
        input: &Input,
        sources: &mut Sources,
        dry_run: bool,
    ) -> State<'a> {
        let dims = input
            .dims
            .iter()
            .map(|d| {
                let dim = Dim {
                    len: d.len,
                    index: Arc::new((0..d.len).collect()),
                    coord: d.coord.clone(),
                    bound_only: false,
                };
                (d.name.clone(), dim)
            })
            .collect();
        let mut vars = IndexMap::new();
        for v in &input.variables {
            let (vtype, decoding, attrs) = match &v.decoding.decoded {
                Decoded::Numeric(d) => (VType::of(*d), v.decoding.clone(), v.attrs.clone()),
                // Times and durations are not computed on: their stored values are copied with
                // the units (and calendar) that decode them, so a reader decodes them as before.
                _ => time_as_stored(v),
            };
            let source = SourceRef {
                index: sources.add(v.source.clone()),
                location: v.source.id().to_string(),
                dtype: v.source.dtype(),
            };
            let node = Node::new(
                Op::Source {
                    source,
                    decoding: Box::new(decoding),
                },
                v.dims.clone(),
                v.source.shape().to_vec(),
                vtype,
            );
            vars.insert(v.name.clone(), Var { node, attrs });
        }
        State {
            doc,
            dims,
            vars,
            attrs: input.attrs.clone(),
            dry_run,
            inputs: vec![input.location.clone()],
            unreadable: input.unreadable.iter().cloned().collect(),
            input_chunks: input_chunks(input),
            pruned: false,
            skipped: Vec::new(),
            texts: input.texts.iter().cloned().collect(),
            grid: None,
            like: None,
        }
    }

    /// Leave out the input's variables that cannot be read (strings, compound types) instead
    /// of refusing a cube that holds them, as `convert` does; returns them with the reason.
    pub fn skip_unreadable(&mut self) -> Vec<(String, String)> {
        let dims = &self.dims;
        let (coords, skipped): (Vec<_>, Vec<_>) = std::mem::take(&mut self.unreadable)
            .into_iter()
            .partition(|(k, _)| dims.contains_key(k));
        self.unreadable = coords.into_iter().collect();
        self.skipped.extend(skipped.iter().cloned());
        skipped
    }

    /// Apply the recipe's operations in order, then its output attributes. `ex` computes what
    /// an operation needs of the data (`drop_all_nan`'s scan); a dry run has none.
    ///
    /// # Errors
    /// Recipe errors naming the operation and its line; read errors of the scans.
    pub fn apply_all(&mut self, ex: Option<&Exec>) -> Result<()> {
        self.apply_operations(ex)?;
        self.add_grid_mapping();
        let doc = self.doc;
        let out = &doc.recipe.output;
        let var_of = |dim: &str| {
            self.vars
                .iter()
                .find(|(_, v)| v.node.dims.iter().any(|d| d == dim))
                .map(|(k, _)| k.clone())
        };
        if let Err((dim, message)) =
            crate::recipe::check_batch(&out.batch, &out.chunks, Some(&var_of))
        {
            return Err(doc.error_at(
                doc.line_of("batch").max(1),
                &format!("output.batch.{dim}"),
                message,
            ));
        }
        if let Some(dim) = doc
            .recipe
            .output
            .batch
            .keys()
            .find(|d| !self.vars.values().any(|v| v.node.dims.contains(*d)))
        {
            return Err(doc.error_at(
                doc.line_of("batch").max(1),
                &format!("output.batch.{dim}"),
                format!(
                    "no variable of the cube has dimension '{dim}' (dimensions: {})",
                    self.dim_names()
                ),
            ));
        }
        for (k, v) in &doc.recipe.output.attrs {
            self.attrs.insert(k.clone(), v.clone());
        }
        match self.unreadable.first() {
            Some((name, reason)) => Err(Error::Other(format!(
                "{}: variable '{name}': {reason} (it is in the cube this recipe builds; drop it \
                 to build without it)",
                self.inputs.join(", ")
            ))),
            None => Ok(()),
        }
    }

    /// Apply the operations of this state's recipe (the top-level ones, or in the view of one
    /// input, [`RecipeDoc::for_input`], that input's own) in order, and nothing else: an
    /// input's state is then merged ([`State::merge`]) before the recipe's own apply.
    ///
    /// # Errors
    /// As [`State::apply_all`].
    pub fn apply_operations(&mut self, ex: Option<&Exec>) -> Result<()> {
        let doc = self.doc;
        for (i, op) in doc.recipe.operations.iter().enumerate() {
            self.apply(i, op, ex)?;
            for (name, v) in &self.vars {
                self.check_depth(i, op, name, &v.node)?;
            }
        }
        Ok(())
    }

    /// Why input variable `name` cannot be read, when it cannot.
    fn unreadable_reason(&self, name: &str) -> Option<&str> {
        self.unreadable.get(name).map(String::as_str)
    }

    /// Refuse a variable whose plan is deeper than [`plan::MAX_DEPTH`] (evaluating it would
    /// recurse that deep) or unfolds into more than [`plan::MAX_UNFOLDED`] nodes (evaluating
    /// it would take that many steps per chunk).
    fn check_depth(&self, i: usize, op: &Operation, name: &str, node: &Node) -> Result<()> {
        match depth_problem(node) {
            Some(problem) => Err(op_err(self.doc, i, op, format!("{name}: {problem}"))),
            None => Ok(()),
        }
    }

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
        if let Some(reason) = self.unreadable_reason(name) {
            return Err(op_err(
                self.doc,
                i,
                op,
                format!("variable '{name}' cannot be read: {reason}"),
            ));
        }
        if let Some(reason) = self.text_reason(name) {
            return Err(op_err(self.doc, i, op, reason));
        }
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
        self.take_texts(dim, sub);
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
        let raw = c.raw()?;
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

    /// The names of the dimensions, for messages.
    fn dim_names(&self) -> String {
        self.dims.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use crate::build::{build_input, BuildOptions};
    use crate::dataset::Dataset;
    use crate::error::Result;
    use crate::lower::Input;
    use crate::plan::{MAX_DEPTH, MAX_UNFOLDED};
    use crate::recipe::RecipeDoc;
    use crate::store::{Location, Store};
    use crate::testkit::blosc_2d;

    /// Build `operations` (YAML list items) over the 10 x 6 array `a` of `testkit::blosc_2d`
    /// into `memory://{name}-out`; the output's variable `x`.
    fn build_x(name: &str, operations: &str) -> Result<Vec<f32>> {
        let _ = blosc_2d(name);
        let store = Store::open_str(&format!("memory://{name}"))?;
        let input = Input::from_dataset(&Dataset::open(&store, "")?, format!("memory://{name}"));
        let text = format!(
            "version: 1\ninputs:\n  i: {{url: x}}\noutput: {{url: y}}\noperations:\n  - keep: [a]\n{operations}"
        );
        let doc = RecipeDoc::parse("chain.yaml", &text)?;
        let output = Location::parse(&format!("memory://{name}-out"))?;
        let opts = BuildOptions {
            memory_limit: 1 << 20,
            ..BuildOptions::default()
        };
        build_input(&doc, &input, &output, &opts, &|_, _, _| {})?;
        let ds = Dataset::open(&Store::open(&output)?, "")?;
        let v = ds.variable("x").expect("x");
        Ok(bytemuck::pod_collect_to_vec(
            &v.array(&ds.store)?.read_all()?.bytes,
        ))
    }

    /// `x = a`, then `n` times `x = x + 1`, each an operation of its own.
    fn chain(n: usize) -> String {
        let mut ops = String::from("  - assign: {x: a}\n");
        for _ in 0..n {
            ops.push_str("  - assign: {x: \"x + 1\"}\n");
        }
        ops
    }

    #[test]
    fn a_chain_of_assigns_up_to_the_limit_builds_and_a_longer_one_is_refused() {
        // `a` is 100 * row + col, chunk (1, 1) absent (NaN); plan depth 1 + n.
        let n = MAX_DEPTH - 1;
        let x = build_x("lower-chain-ok", &chain(n)).expect("a chain at the limit builds");
        #[allow(clippy::cast_precision_loss)]
        let want = |r: usize, c: usize| (r * 100 + c) as f32 + n as f32;
        assert_eq!(x[0], want(0, 0));
        assert_eq!(x[9 * 6 + 5], want(9, 5));
        assert!(x[4 * 6 + 3].is_nan());

        // One more level, and a chain ten times longer: refused at the operation that goes
        // too deep, operation 1 + MAX_DEPTH (operation k is on line 6 + k).
        for n in [MAX_DEPTH, 10_000] {
            let e = build_x("lower-chain-long", &chain(n))
                .unwrap_err()
                .to_string();
            let line = 6 + 1 + MAX_DEPTH;
            assert!(e.contains(&format!("chain.yaml:{line}:")), "{e}");
            assert!(
                e.contains(&format!("deeper than {MAX_DEPTH} levels")),
                "{e}"
            );
            assert!(
                e.contains(&format!("operations[{}].assign", MAX_DEPTH + 1)),
                "{e}"
            );
        }
        // The same chain in one assign.
        let one: String = (1..=10_000)
            .map(|k| format!("x{k}: \"x{} + 1\", ", k - 1))
            .collect();
        let ops = format!("  - assign: {{x0: a, {one}x: x10000}}\n");
        let e = build_x("lower-chain-one", &ops).unwrap_err().to_string();
        assert!(
            e.contains("chain.yaml:7:") && e.contains(&format!("x{MAX_DEPTH}:")),
            "{e}"
        );
    }

    #[test]
    fn a_graph_that_doubles_at_each_step_is_refused_before_it_explodes() {
        // `x = x + x`, n times: 2^(n + 1) - 1 nodes on the paths from x down to `a`.
        let doubling = |n: usize| {
            let mut ops = String::from("  - assign: {x: a}\n");
            for _ in 0..n {
                ops.push_str("  - assign: {x: \"x + x\"}\n");
            }
            ops
        };
        let x = build_x("lower-doubling-ok", &doubling(10)).expect("builds");
        assert_eq!(x[6 + 1], 101.0 * 1024.0);
        let e = build_x("lower-doubling", &doubling(60))
            .unwrap_err()
            .to_string();
        // 2^17 - 1 > MAX_UNFOLDED: the 16th doubling, operation 17, line 6 + 17.
        assert!(
            e.contains("chain.yaml:23:") && e.contains("operations[17].assign"),
            "{e}"
        );
        assert!(
            e.contains(&format!("more than {MAX_UNFOLDED} operations")),
            "{e}"
        );
    }
}
