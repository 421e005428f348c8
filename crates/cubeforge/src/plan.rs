//! The plan layer: a lazy graph of named-dimension operations, as plain data.
//!
//! Every variable of a recipe's result is a [`Node`]: a source variable, a positional take along a
//! dimension (what `sel`, `isel`, `drop_all_nan` and `sortby` become), elementwise math broadcast
//! by dimension name, a reduction over named dimensions, a generated feature, a cast, or a
//! [`WindowOp`] (an operation whose input window is not a per-dimension map of its output
//! window). A node says what it computes and from what: never an open array, a cache or a
//! computed result, which the executor ([`crate::exec`]) owns. So a plan can be built, printed
//! ([`describe()`]) and tested without opening anything.
//!
//! Nodes are evaluated for a *window* (a range per dimension), so any output chunk can be computed
//! on its own, reading only the input chunks that window needs.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::cf::CfDecoding;
use crate::dtype::DType;
use crate::expr::BinOp;

mod describe;
mod rewrite;
mod value;
mod window_op;

pub use describe::{describe, Graph, GraphNode};
pub use rewrite::simplify_nan_mask;
pub(crate) use value::{each_data, strides_in};
pub use value::{promote, Block, Data, VType};
pub use window_op::WindowOp;

/// Unary elementwise functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    /// Negation.
    Neg,
    /// Logical not.
    Not,
    /// Natural logarithm.
    Log,
    /// Base-10 logarithm.
    Log10,
    /// Exponential.
    Exp,
    /// Square root.
    Sqrt,
    /// Absolute value.
    Abs,
    /// Sine.
    Sin,
    /// Cosine.
    Cos,
    /// `isnan`.
    IsNan,
    /// `notnull` (not NaN).
    NotNull,
}

/// Reductions over named dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// All true (NaN counts as true, as numpy).
    All,
    /// Any true.
    Any,
    /// NaN-skipping mean.
    Mean,
    /// NaN-skipping population standard deviation (xarray's default ddof 0).
    Std,
    /// NaN-skipping minimum.
    Min,
    /// NaN-skipping maximum.
    Max,
    /// Number of non-NaN values.
    Count,
    /// NaN-skipping sum.
    Sum,
}

impl Reduction {
    /// Parse a reduction name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Reduction> {
        Some(match name {
            "all" => Reduction::All,
            "any" => Reduction::Any,
            "mean" => Reduction::Mean,
            "std" => Reduction::Std,
            "min" => Reduction::Min,
            "max" => Reduction::Max,
            "count" => Reduction::Count,
            "sum" => Reduction::Sum,
            _ => return None,
        })
    }
}

/// A source variable, as the plan names it: the build's reader at `index` (see
/// [`crate::source::Sources`]), where it is, and what it stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    /// The reader's index among the build's sources.
    pub index: usize,
    /// The reader's id: its full location.
    pub location: String,
    /// The stored element type.
    pub dtype: DType,
}

/// What a node computes.
#[derive(Debug)]
pub enum Op {
    /// A source variable, decoded with its CF encoding.
    Source {
        /// Which source.
        source: SourceRef,
        /// CF decoding.
        decoding: Box<CfDecoding>,
    },
    /// Positions `index` of the child's dimension `dim` (in the child's coordinates).
    Take {
        /// Child.
        child: NodeRef,
        /// Dimension.
        dim: String,
        /// Positions.
        index: Arc<Vec<u64>>,
    },
    /// A constant.
    Const(Data),
    /// Unary function.
    Unary(UnOp, NodeRef),
    /// Binary operation.
    Binary(BinOp, NodeRef, NodeRef),
    /// `where(cond, a, b)`.
    Where(NodeRef, NodeRef, NodeRef),
    /// Reduction over `dims`, computed once, in a pass over its child, by the executor.
    Reduce {
        /// Child.
        child: NodeRef,
        /// Reduced dimensions.
        dims: Vec<String>,
        /// Kind.
        kind: Reduction,
    },
    /// Values given along one dimension (generated coordinates-based features), broadcast.
    Along {
        /// The dimension.
        dim: String,
        /// One value per position.
        values: Arc<Vec<f64>>,
    },
    /// A cast.
    Cast(NodeRef),
    /// Reorder dimensions.
    Transpose(NodeRef),
    /// An operation reading windows of its inputs it chooses itself (see [`WindowOp`]).
    Window(Arc<dyn WindowOp>),
}

/// A node's identity: unique within the process, for the executor's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u64);

/// How deep a plan may be: the longest path from a variable down to a source or constant, in
/// nodes. Evaluation, planning and printing walk the graph recursively, so lowering refuses a
/// recipe whose plan is deeper (a long chain of `assign`s, each using the one before) with an
/// error naming the operation, rather than overflowing the stack.
pub const MAX_DEPTH: usize = 1000;

/// How large a plan may be once its shared nodes are counted on every path that reaches them
/// (`x + x` counts `x` twice). Evaluation and planning walk every path, so lowering refuses a
/// recipe whose plan unfolds into more nodes (`x = x + x`, twenty times over, is a million)
/// rather than running for ever.
pub const MAX_UNFOLDED: u64 = 100_000;

/// A node: an operation plus the dimensions, sizes and value type it produces.
#[derive(Debug)]
pub struct Node {
    /// Identity (see [`Node::id`]).
    id: NodeId,
    /// The longest path down to a leaf, in nodes (a leaf is 1).
    depth: usize,
    /// The number of nodes on all paths down from here (see [`MAX_UNFOLDED`]), saturating.
    unfolded: u64,
    /// What it computes.
    pub op: Op,
    /// Dimension names.
    pub dims: Vec<String>,
    /// Sizes.
    pub shape: Vec<u64>,
    /// Value type.
    pub vtype: VType,
}

/// Shared node handle.
pub type NodeRef = Arc<Node>;

/// A window: a range per dimension of the node being evaluated.
pub type Window = Vec<Range<u64>>;

impl Node {
    /// Wrap an op with its dims, shape and type.
    #[must_use]
    pub fn new(op: Op, dims: Vec<String>, shape: Vec<u64>, vtype: VType) -> NodeRef {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let children = children_of(&op);
        let depth = 1 + children.iter().map(|c| c.depth).max().unwrap_or(0);
        let unfolded = children
            .iter()
            .fold(1u64, |n, c| n.saturating_add(c.unfolded));
        Arc::new(Node {
            id: NodeId(NEXT.fetch_add(1, Ordering::Relaxed)),
            depth,
            unfolded,
            op,
            dims,
            shape,
            vtype,
        })
    }

    /// Its identity: unique within the process, given by [`Node::new`] (the executor keeps a
    /// reduction's result under it).
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The longest path from this node down to a source or a constant, in nodes (see
    /// [`MAX_DEPTH`]).
    #[must_use]
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The number of nodes on all paths down from this one (see [`MAX_UNFOLDED`]).
    #[must_use]
    pub fn unfolded(&self) -> u64 {
        self.unfolded
    }

    /// The size of a dimension of this node.
    #[must_use]
    pub fn size_of(&self, dim: &str) -> Option<u64> {
        self.dims
            .iter()
            .position(|d| d == dim)
            .map(|i| self.shape[i])
    }

    /// Source variables this node reads (their locations, for planning and dry runs).
    pub fn sources(&self, out: &mut Vec<String>) {
        if let Op::Source { source, .. } = &self.op {
            if !out.contains(&source.location) {
                out.push(source.location.clone());
            }
        }
        for c in self.children() {
            c.sources(out);
        }
    }

    /// Whether this node reads a source variable (itself or below).
    #[must_use]
    pub fn reads_sources(&self) -> bool {
        matches!(self.op, Op::Source { .. }) || self.children().iter().any(|c| c.reads_sources())
    }

    /// Whether this is a reduction (computed by the executor in a pass of its own).
    #[must_use]
    pub fn is_reduction(&self) -> bool {
        matches!(self.op, Op::Reduce { .. })
    }

    /// For a `Take` along `dim`: the axis, the positions `window` selects, the lowest of them,
    /// and the child's window (their bounding range along the axis).
    pub(crate) fn take_window<'a>(
        &self,
        dim: &str,
        index: &'a [u64],
        window: &Window,
    ) -> (usize, &'a [u64], u64, Window) {
        let axis = self.dims.iter().position(|d| d == dim).unwrap_or(0);
        let r = &window[axis];
        let sel =
            &index[usize::try_from(r.start).unwrap_or(0)..usize::try_from(r.end).unwrap_or(0)];
        let lo = sel.iter().copied().min().unwrap_or(0);
        let hi = sel.iter().copied().max().map_or(0, |m| m + 1);
        let mut cw = window.clone();
        cw[axis] = lo..hi;
        (axis, sel, lo, cw)
    }

    /// The dimensions along which this node's values may change: a value depends on the
    /// position along these only (a broadcast feature such as a day-of-year sine varies along
    /// `time` only, whatever its dimensions). In the order of [`Node::dims`].
    #[must_use]
    pub fn value_dims(&self) -> Vec<String> {
        let varying: std::collections::BTreeSet<String> = match &self.op {
            Op::Source { .. } => return self.dims.clone(),
            Op::Const(_) => std::collections::BTreeSet::new(),
            Op::Along { dim, .. } => std::iter::once(dim.clone()).collect(),
            Op::Window(op) => return op.value_dims(self),
            // A selection only picks positions of what the child varies along; a reduction's
            // result varies along what its child varies along and it keeps.
            _ => self
                .children()
                .iter()
                .flat_map(|c| c.value_dims())
                .collect(),
        };
        self.dims
            .iter()
            .filter(|d| varying.contains(*d))
            .cloned()
            .collect()
    }

    /// The nodes this one computes from.
    #[must_use]
    pub fn children(&self) -> Vec<&NodeRef> {
        children_of(&self.op)
    }

    /// The window of `child` (one of this node's inputs) that this node's `window` reads: the
    /// same range along each dimension they share, the whole of a dimension `child` has alone.
    #[must_use]
    pub fn window_of(&self, child: &Node, window: &Window) -> Window {
        child
            .dims
            .iter()
            .zip(&child.shape)
            .map(|(d, n)| {
                self.dims
                    .iter()
                    .position(|x| x == d)
                    .map_or(0..*n, |i| window[i].clone())
            })
            .collect()
    }
}

/// The nodes `op` computes from.
fn children_of(op: &Op) -> Vec<&NodeRef> {
    match op {
        Op::Take { child, .. }
        | Op::Unary(_, child)
        | Op::Cast(child)
        | Op::Transpose(child)
        | Op::Reduce { child, .. } => vec![child],
        Op::Binary(_, a, b) => vec![a, b],
        Op::Where(a, b, c) => vec![a, b, c],
        Op::Window(op) => op.inputs().iter().collect(),
        Op::Source { .. } | Op::Const(_) | Op::Along { .. } => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{along, source_ref};

    #[test]
    fn value_dims_are_the_dimensions_values_change_along() {
        let dims = |v: &[&str]| v.iter().map(|d| (*d).to_string()).collect::<Vec<_>>();
        let node = |op: Op, d: &[&str], shape: Vec<u64>| Node::new(op, dims(d), shape, VType::F32);
        let t = along("t", vec![1.0, 2.0], VType::F32);
        let y = along("y", vec![1.0, 2.0, 3.0], VType::F32);
        // sin(t) broadcast over (t, y, x): varies along t only.
        let feature = node(
            Op::Unary(UnOp::Sin, t.clone()),
            &["t", "y", "x"],
            vec![2, 3, 4],
        );
        assert_eq!(feature.value_dims(), dims(&["t"]));
        // A constant varies along nothing; t + y along both, in the node's order.
        let c = node(Op::Const(Data::F32(vec![1.0])), &["y", "x"], vec![3, 4]);
        assert!(c.value_dims().is_empty());
        let sum = node(
            Op::Binary(BinOp::Add, t.clone(), y),
            &["x", "y", "t"],
            vec![4, 3, 2],
        );
        assert_eq!(sum.value_dims(), dims(&["y", "t"]));
        // A selection along x of something constant along x stays constant along x.
        let take = node(
            Op::Take {
                child: feature.clone(),
                dim: "x".into(),
                index: Arc::new(vec![3, 0]),
            },
            &["t", "y", "x"],
            vec![2, 3, 2],
        );
        assert_eq!(take.value_dims(), dims(&["t"]));
        // A reduction over t of the feature varies along nothing it keeps.
        let reduced = node(
            Op::Reduce {
                child: feature,
                dims: dims(&["t"]),
                kind: Reduction::Max,
            },
            &["y", "x"],
            vec![3, 4],
        );
        assert!(reduced.value_dims().is_empty());
        // A source varies along all its dimensions. (The plan names it: nothing is opened.)
        let source = Node::new(
            Op::Source {
                source: source_ref(0, "memory://nowhere/a", DType::Float32),
                decoding: Box::new(
                    CfDecoding::from_attrs(&serde_json::Map::new(), DType::Float32, None)
                        .expect("decoding"),
                ),
            },
            dims(&["a"]),
            vec![3],
            VType::F32,
        );
        assert_eq!(source.value_dims(), dims(&["a"]));
    }
}
