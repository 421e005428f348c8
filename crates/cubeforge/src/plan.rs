//! The plan layer: a lazy graph of named-dimension operations.
//!
//! Every variable of a recipe's result is a [`Node`]: a source array, a positional take along a
//! dimension (what `sel`, `isel`, `drop_all_nan` and `sortby` become), elementwise math broadcast
//! by dimension name, a reduction over named dimensions (materialised once, in its own streaming
//! pass), a generated feature, or a cast. Nodes are evaluated for a *window* (a range per
//! dimension), so any output chunk can be computed on its own, reading only the input chunks
//! that window needs, through a bounded cache of decoded chunks.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

use crate::cf::CfDecoding;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::expr::BinOp;
use crate::zarr::ZarrArray;

/// The type of values a node produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VType {
    /// Booleans.
    Bool,
    /// Integers of a stored type (computed exactly in `f64`, up to 2^53).
    Int(DType),
    /// 32-bit floats.
    F32,
    /// 64-bit floats.
    F64,
}

impl VType {
    /// The dtype written to Zarr.
    #[must_use]
    pub fn dtype(self) -> DType {
        match self {
            VType::Bool => DType::Bool,
            VType::Int(d) => d,
            VType::F32 => DType::Float32,
            VType::F64 => DType::Float64,
        }
    }

    /// The value type of a dtype.
    #[must_use]
    pub fn of(d: DType) -> VType {
        match d {
            DType::Bool => VType::Bool,
            DType::Float16 | DType::Float32 => VType::F32,
            DType::Float64 => VType::F64,
            other => VType::Int(other),
        }
    }

    fn is_float(self) -> bool {
        matches!(self, VType::F32 | VType::F64)
    }
}

/// Block data.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// Booleans.
    Bool(Vec<bool>),
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 64-bit floats (and integers).
    F64(Vec<f64>),
}

impl Data {
    fn len(&self) -> usize {
        match self {
            Data::Bool(v) => v.len(),
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
        }
    }

    fn get_f64(&self, i: usize) -> f64 {
        match self {
            Data::Bool(v) => f64::from(u8::from(v[i])),
            Data::F32(v) => f64::from(v[i]),
            Data::F64(v) => v[i],
        }
    }

    fn to_bool(&self) -> Vec<bool> {
        match self {
            Data::Bool(v) => v.clone(),
            Data::F32(v) => v.iter().map(|x| *x != 0.0).collect(),
            Data::F64(v) => v.iter().map(|x| *x != 0.0).collect(),
        }
    }

    #[allow(clippy::cast_possible_truncation)]
    fn to_f32(&self) -> Vec<f32> {
        match self {
            Data::Bool(v) => v.iter().map(|x| f32::from(u8::from(*x))).collect(),
            Data::F32(v) => v.clone(),
            Data::F64(v) => v.iter().map(|x| *x as f32).collect(),
        }
    }

    fn to_f64(&self) -> Vec<f64> {
        match self {
            Data::Bool(v) => v.iter().map(|x| f64::from(u8::from(*x))).collect(),
            Data::F32(v) => v.iter().map(|x| f64::from(*x)).collect(),
            Data::F64(v) => v.clone(),
        }
    }

    /// The values as booleans, without copying when they already are.
    fn into_bool(self) -> Vec<bool> {
        match self {
            Data::Bool(v) => v,
            other => other.to_bool(),
        }
    }

    /// The values as `f64`, without copying when they already are.
    fn into_f64(self) -> Vec<f64> {
        match self {
            Data::F64(v) => v,
            other => other.to_f64(),
        }
    }

    fn convert(&self, to: VType) -> Data {
        match to {
            VType::Bool => Data::Bool(self.to_bool()),
            VType::F32 => Data::F32(self.to_f32()),
            VType::F64 => Data::F64(self.to_f64()),
            VType::Int(d) => {
                // numpy's astype: truncation toward zero, NaN to the type's minimum is undefined;
                // cubeforge writes 0 for NaN.
                Data::F64(
                    self.to_f64()
                        .into_iter()
                        .map(|x| {
                            if x.is_nan() {
                                0.0
                            } else {
                                clamp_int(x.trunc(), d)
                            }
                        })
                        .collect(),
                )
            }
        }
    }
}

#[allow(clippy::cast_precision_loss)]
fn clamp_int(x: f64, d: DType) -> f64 {
    let (lo, hi) = match d {
        DType::Int8 => (f64::from(i8::MIN), f64::from(i8::MAX)),
        DType::Int16 => (f64::from(i16::MIN), f64::from(i16::MAX)),
        DType::Int32 => (f64::from(i32::MIN), f64::from(i32::MAX)),
        DType::UInt8 => (0.0, f64::from(u8::MAX)),
        DType::UInt16 => (0.0, f64::from(u16::MAX)),
        DType::UInt32 => (0.0, f64::from(u32::MAX)),
        DType::UInt64 => (0.0, u64::MAX as f64),
        _ => (i64::MIN as f64, i64::MAX as f64),
    };
    x.clamp(lo, hi)
}

/// Values over named dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// Dimension names.
    pub dims: Vec<String>,
    /// Sizes.
    pub shape: Vec<usize>,
    /// Values, C order.
    pub data: Data,
}

impl Block {
    fn scalar(data: Data) -> Block {
        Block {
            dims: vec![],
            shape: vec![],
            data,
        }
    }

    /// Whether this is a single value without dimensions.
    fn is_scalar(&self) -> bool {
        self.dims.is_empty()
    }

    /// Expand to `dims` (a superset of this block's dimensions, in any order) and `shape`,
    /// without copying when the block already has them.
    fn into_expanded(self, dims: &[String], shape: &[usize]) -> Data {
        if self.dims == dims {
            return self.data;
        }
        self.expand(dims, shape)
    }

    /// Expand to `dims` (a superset of this block's dimensions, in any order) and `shape`.
    fn expand(&self, dims: &[String], shape: &[usize]) -> Data {
        if self.dims == dims {
            return self.data.clone();
        }
        // Fast paths: the block's dimensions are the trailing (a mask over lat × lon broadcast
        // along time) or the leading (a series along time broadcast over lat × lon) dimensions of
        // the result, in the same order.
        let k = self.dims.len();
        let nd = dims.len();
        if k <= nd && dims[nd - k..] == self.dims[..] {
            let outer: usize = shape[..nd - k].iter().product();
            return repeat_block(&self.data, outer, 1);
        }
        if k <= nd && dims[..k] == self.dims[..] {
            let inner: usize = shape[k..].iter().product();
            return repeat_block(&self.data, 1, inner);
        }
        let n: usize = shape.iter().product();
        // stride of each output axis in this block (0 when the block lacks the dimension)
        let strides = strides_in(dims, &self.dims, &self.shape);
        let mut idx = vec![0usize; dims.len()];
        let mut src = 0usize;
        let mut map = Vec::with_capacity(n);
        for _ in 0..n {
            map.push(src);
            // increment odometer
            for a in (0..dims.len()).rev() {
                idx[a] += 1;
                src += strides[a];
                if idx[a] < shape[a] {
                    break;
                }
                src -= strides[a] * idx[a];
                idx[a] = 0;
            }
        }
        match &self.data {
            Data::Bool(v) => Data::Bool(map.iter().map(|&i| v[i]).collect()),
            Data::F32(v) => Data::F32(map.iter().map(|&i| v[i]).collect()),
            Data::F64(v) => Data::F64(map.iter().map(|&i| v[i]).collect()),
        }
    }
}

thread_local! {
    /// Float buffers of blocks a worker is done with ([`recycle`]), for the next blocks read from
    /// the chunk cache: a fresh allocation would be zeroed first (and, when the allocator takes
    /// it from the kernel, faulted in), only to be overwritten.
    static RECYCLED_F32: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
    static RECYCLED_F64: std::cell::RefCell<Vec<Vec<f64>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How many buffers of each float type a worker keeps for reuse.
const RECYCLED_KEPT: usize = 4;

/// A buffer of `n` values, taken from `recycled` where one is large enough (its values are
/// whatever it held: the caller overwrites them all), else a new one.
fn reuse<T: Copy + Default>(recycled: &mut Vec<Vec<T>>, n: usize) -> Vec<T> {
    let best = recycled
        .iter()
        .enumerate()
        .filter(|(_, v)| v.capacity() >= n)
        .min_by_key(|(_, v)| (v.len() != n, v.capacity()))
        .map(|(i, _)| i);
    let mut v = best.map_or_else(Vec::new, |i| recycled.swap_remove(i));
    // Only values past the old length are written: the caller overwrites them all anyway.
    v.resize(n, T::default());
    v
}

/// Give the float buffer of a block the calling worker is done with to the next block it reads.
pub fn recycle(data: Data) {
    match data {
        Data::F32(v) => RECYCLED_F32.with(|r| keep_recycled(&mut r.borrow_mut(), v)),
        Data::F64(v) => RECYCLED_F64.with(|r| keep_recycled(&mut r.borrow_mut(), v)),
        Data::Bool(_) => {}
    }
}

/// Keep `v` among a worker's `recycled` buffers, unless it has enough of them.
fn keep_recycled<T>(recycled: &mut Vec<Vec<T>>, v: Vec<T>) {
    if recycled.len() < RECYCLED_KEPT {
        recycled.push(v);
    }
}

/// The block repeated `outer` times, each element repeated `inner` times.
fn repeat_block(data: &Data, outer: usize, inner: usize) -> Data {
    fn rep<T: Copy>(v: &[T], outer: usize, inner: usize) -> Vec<T> {
        let mut out = Vec::with_capacity(v.len() * outer * inner);
        for _ in 0..outer {
            if inner == 1 {
                out.extend_from_slice(v);
            } else {
                for x in v {
                    out.extend(std::iter::repeat_n(*x, inner));
                }
            }
        }
        out
    }
    match data {
        Data::Bool(v) => Data::Bool(rep(v, outer, inner)),
        Data::F32(v) => Data::F32(rep(v, outer, inner)),
        Data::F64(v) => Data::F64(rep(v, outer, inner)),
    }
}

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

/// What a node computes.
#[derive(Debug)]
pub enum Op {
    /// A source variable, decoded with its CF encoding.
    Source {
        /// The array.
        array: Arc<ZarrArray>,
        /// CF decoding.
        decoding: Box<CfDecoding>,
        /// Shared cache of decoded chunks.
        cache: Arc<ChunkCache>,
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
    /// `clip(x, lo, hi)`.
    Clip(NodeRef, NodeRef, NodeRef),
    /// Reduction over `dims`, materialised once.
    Reduce {
        /// Child.
        child: NodeRef,
        /// Reduced dimensions.
        dims: Vec<String>,
        /// Kind.
        kind: Reduction,
        /// The materialised result.
        result: OnceLock<std::result::Result<Arc<Block>, String>>,
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
}

/// A node: an operation plus the dimensions, sizes and value type it produces.
#[derive(Debug)]
pub struct Node {
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
        Arc::new(Node {
            op,
            dims,
            shape,
            vtype,
        })
    }

    /// The size of a dimension of this node.
    #[must_use]
    pub fn size_of(&self, dim: &str) -> Option<u64> {
        self.dims
            .iter()
            .position(|d| d == dim)
            .map(|i| self.shape[i])
    }

    /// Source arrays this node reads (for planning and dry runs).
    pub fn sources(&self, out: &mut Vec<String>) {
        if let Op::Source { array, .. } = &self.op {
            let l = array.location();
            if !out.contains(&l) {
                out.push(l);
            }
        }
        for c in self.children() {
            c.sources(out);
        }
    }

    /// The stored input chunks that evaluating `window` reads, as the cache names them: what
    /// [`Node::eval`] will ask the cache for (reductions are materialised apart and not included).
    pub fn chunks_needed(&self, window: &Window, out: &mut Vec<Needed>) {
        match &self.op {
            Op::Source { array, .. } => {
                let start: Vec<u64> = window.iter().map(|r| r.start).collect();
                let shape: Vec<u64> = window.iter().map(|r| r.end - r.start).collect();
                if shape.contains(&0) {
                    return;
                }
                if let Ok(units) = array.units_in(&start, &shape) {
                    let location = array.location();
                    for (idx, _) in units {
                        out.push(Needed {
                            path: array.chunk_path(&array.unit_chunk(&idx).0),
                            key: (location.clone(), idx),
                            array: Some(array.clone()),
                            values: true,
                        });
                    }
                }
            }
            Op::Take { child, dim, index } => {
                let (_, _, _, cw) = self.take_window(dim, index, window);
                child.chunks_needed(&cw, out);
            }
            Op::Unary(_, c) | Op::Cast(c) | Op::Transpose(c) => {
                c.chunks_needed(&self.window_of(c, window), out);
            }
            Op::Binary(_, a, b) => {
                a.chunks_needed(&self.window_of(a, window), out);
                b.chunks_needed(&self.window_of(b, window), out);
            }
            Op::Where(a, b, c) | Op::Clip(a, b, c) => {
                a.chunks_needed(&self.window_of(a, window), out);
                b.chunks_needed(&self.window_of(b, window), out);
                c.chunks_needed(&self.window_of(c, window), out);
            }
            Op::Reduce { .. } | Op::Const(_) | Op::Along { .. } => {}
        }
    }

    /// For a `Take` along `dim`: the axis, the positions `window` selects, the lowest of them,
    /// and the child's window (their bounding range along the axis).
    fn take_window<'a>(
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

    /// Whether [`Node::visit_rows`] can read this node's values where the chunk cache holds
    /// them: a float source without decoding, possibly below selections.
    fn visitable(&self) -> bool {
        match &self.op {
            Op::Source {
                array, decoding, ..
            } => {
                !self.dims.is_empty()
                    && (decoding.is_identity() || decoding.is_nan_mask_only())
                    && matches!(
                        (array.dtype(), self.vtype),
                        (DType::Float32, VType::F32) | (DType::Float64, VType::F64)
                    )
            }
            Op::Take { child, .. } => child.dims == self.dims && child.visitable(),
            _ => false,
        }
    }

    /// Whether visiting the rows of `window` stays cheap: no selection below picks scattered
    /// positions along the last dimension, which would make every value a row of its own.
    fn runs_are_long(&self, window: &Window) -> bool {
        match &self.op {
            Op::Source { .. } => true,
            Op::Take { child, dim, index } => {
                let (axis, sel, _, cw) = self.take_window(dim, index, window);
                let runs = 1 + sel.windows(2).filter(|w| w[1] != w[0] + 1).count();
                (axis + 1 < self.dims.len() || runs * 4 <= sel.len() + 4)
                    && child.runs_are_long(&cw)
            }
            _ => false,
        }
    }

    /// Call `f(offset, row)` for every run of values of `window` along its last dimension,
    /// `offset` being where the run starts in the window (C order), without copying the values
    /// out of the chunk cache. Only for nodes that are [`Node::visitable`].
    fn visit_rows(&self, window: &Window, f: &mut dyn FnMut(usize, Row<'_>)) -> Result<()> {
        match &self.op {
            Op::Source { array, cache, .. } => cache.visit_rows(array, window, f),
            Op::Take { child, dim, index } => {
                let axis = self.dims.iter().position(|d| d == dim).unwrap_or(0);
                let r = &window[axis];
                let sel = &index
                    [usize::try_from(r.start).unwrap_or(0)..usize::try_from(r.end).unwrap_or(0)];
                let inner: usize = window[axis + 1..]
                    .iter()
                    .map(|r| usize::try_from(r.end - r.start).unwrap_or(0))
                    .product();
                let block = sel.len() * inner;
                // Each run of consecutive positions is one window of the child.
                for run in runs(sel) {
                    let (j, k) = (run.start, run.end);
                    let mut cw = window.clone();
                    cw[axis] = sel[j]..sel[j] + (k - j) as u64;
                    let run_block = (k - j) * inner;
                    if run_block == block {
                        // One run: the child's window has this one's shape.
                        child.visit_rows(&cw, f)?;
                    } else if axis == 0 {
                        let shift = j * inner;
                        child.visit_rows(&cw, &mut |off, row| f(off + shift, row))?;
                    } else {
                        child.visit_rows(&cw, &mut |off, row| {
                            f(off / run_block * block + j * inner + off % run_block, row);
                        })?;
                    }
                }
                Ok(())
            }
            _ => Err(Error::Other(
                "internal: visiting the rows of a computed node".into(),
            )),
        }
    }

    /// Read `window` of this [`Node::visitable`] node from the chunk cache into `out` (C order,
    /// the node's float type as bytes), a buffer of shape `layout` (each dimension at least the
    /// window's) that holds the window at the start of each dimension, copying only the
    /// positions selections below keep: each run of consecutive positions along the first
    /// dimension is a contiguous part of `out`. The rest of `out` is left as it is. `Ok(false)`
    /// for a selection of scattered positions along another dimension, which [`Node::eval`]
    /// gathers instead; `out` is then left partly written.
    fn read_plain_into(&self, window: &Window, out: &mut [u8], layout: &[u64]) -> Result<bool> {
        match &self.op {
            Op::Source { array, cache, .. } => {
                let start: Vec<u64> = window.iter().map(|r| r.start).collect();
                let sizes: Vec<u64> = window.iter().map(|r| r.end - r.start).collect();
                cache.read_region_into(array, &start, &sizes, out, layout)?;
                Ok(true)
            }
            Op::Take { child, dim, index } => {
                let (axis, sel, _, cw) = self.take_window(dim, index, window);
                if sel.windows(2).all(|w| w[1] == w[0] + 1) {
                    return child.read_plain_into(&cw, out, layout);
                }
                if axis != 0 {
                    return Ok(false);
                }
                let per_position = out.len() / usize::try_from(layout[0]).unwrap_or(1).max(1);
                let mut run_layout = layout.to_vec();
                for run in runs(sel) {
                    let mut rw = window.clone();
                    rw[0] = sel[run.start]..sel[run.start] + run.len() as u64;
                    run_layout[0] = run.len() as u64;
                    let part = &mut out[run.start * per_position..run.end * per_position];
                    if !child.read_plain_into(&rw, part, &run_layout)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            _ => Ok(false),
        }
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
        match &self.op {
            Op::Take { child, .. }
            | Op::Unary(_, child)
            | Op::Cast(child)
            | Op::Transpose(child)
            | Op::Reduce { child, .. } => vec![child],
            Op::Binary(_, a, b) => vec![a, b],
            Op::Where(a, b, c) | Op::Clip(a, b, c) => vec![a, b, c],
            Op::Source { .. } | Op::Const(_) | Op::Along { .. } => vec![],
        }
    }

    /// Compute the reductions below this node that are not computed yet, innermost first, each
    /// in a pass of its own. A pass calls this before its blocks read a reduction, so that no
    /// reduction is computed inside a worker of another pass (a worker waiting in a nested pass
    /// could pick up a task that waits for the same reduction, on the same thread).
    ///
    /// # Errors
    /// Read and decode errors of the sources.
    pub fn materialise_below(&self) -> Result<()> {
        for c in self.children() {
            c.materialise_below()?;
            if c.is_pending_reduction() {
                let w: Window = c.shape.iter().map(|n| 0..(*n).min(1)).collect();
                c.eval(&w)?;
            }
        }
        Ok(())
    }

    /// The chunk cache the sources below this node read through (the first one found).
    fn cache(&self) -> Option<Arc<ChunkCache>> {
        match &self.op {
            Op::Source { cache, .. } => Some(cache.clone()),
            _ => self.children().into_iter().find_map(|c| c.cache()),
        }
    }

    fn window_of(&self, child: &Node, window: &Window) -> Window {
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

    /// This [`Node::visitable`] float node's `window`, read from the chunk cache into a recycled
    /// buffer of shape `layout` (each dimension at least the window's) that holds the window at
    /// the start of each dimension and NaN everywhere else. `None` for a selection of scattered
    /// positions (see [`Node::read_plain_into`]) or a node that is not a float.
    fn read_plain(&self, window: &Window, layout: &[usize]) -> Result<Option<Data>> {
        fn read<T: bytemuck::Pod + Default>(
            node: &Node,
            window: &Window,
            layout: &[usize],
            fill: T,
            recycled: &'static std::thread::LocalKey<std::cell::RefCell<Vec<Vec<T>>>>,
        ) -> Result<Option<Vec<T>>> {
            let got: Vec<usize> = window
                .iter()
                .map(|r| usize::try_from(r.end - r.start).unwrap_or(0))
                .collect();
            let layout64: Vec<u64> = layout.iter().map(|n| *n as u64).collect();
            // Every value is overwritten: a recycled buffer's old values never show.
            let mut out = recycled.with(|r| reuse(&mut r.borrow_mut(), layout.iter().product()));
            fill_outside(&mut out, &got, layout, fill);
            if node.read_plain_into(window, bytemuck::cast_slice_mut(&mut out), &layout64)? {
                Ok(Some(out))
            } else {
                recycled.with(|r| keep_recycled(&mut r.borrow_mut(), out));
                Ok(None)
            }
        }
        Ok(match self.vtype {
            VType::F32 => read(self, window, layout, f32::NAN, &RECYCLED_F32)?.map(Data::F32),
            VType::F64 => read(self, window, layout, f64::NAN, &RECYCLED_F64)?.map(Data::F64),
            _ => None,
        })
    }

    /// Whether [`Node::eval_padded`] computes this node's values in the padded block itself
    /// (short of a selection of scattered positions, found only when read).
    fn pads(&self) -> bool {
        let same_floats = |child: &Node| {
            child.dims == self.dims
                && child.vtype == self.vtype
                && matches!(self.vtype, VType::F32 | VType::F64)
        };
        match &self.op {
            _ if self.visitable() => matches!(self.vtype, VType::F32 | VType::F64),
            Op::Unary(op, child) => {
                !matches!(op, UnOp::Not | UnOp::IsNan | UnOp::NotNull)
                    && same_floats(child)
                    && child.pads()
            }
            Op::Where(c, a, b) => {
                let (k, nd) = (c.dims.len(), self.dims.len());
                same_floats(a)
                    && b.dims.is_empty()
                    && k > 0
                    && k <= nd
                    && self.dims[nd - k..] == c.dims[..]
                    && a.pads()
            }
            _ => false,
        }
    }

    /// The values of `window` laid out as an edge chunk is stored: in a block of shape `full`
    /// (each dimension at least the window's) that holds them at the start of each dimension,
    /// NaN everywhere else. Computed in that block, without a second copy, for a float node
    /// read from the chunk cache ([`Node::visitable`]) and for float functions and masks of one
    /// (a `where` with a scalar `other` and a condition over trailing dimensions); `None` for
    /// any other node, which the caller evaluates and pads.
    ///
    /// # Errors
    /// Read and decode errors of the sources, naming the chunk.
    pub fn eval_padded(&self, window: &Window, full: &[usize]) -> Result<Option<Data>> {
        let got: Vec<usize> = window
            .iter()
            .map(|r| usize::try_from(r.end - r.start).unwrap_or(0))
            .collect();
        let fits = got.len() == full.len() && got.iter().zip(full).all(|(g, f)| g <= f);
        if !fits || !self.pads() {
            return Ok(None);
        }
        if self.visitable() {
            return self.read_plain(window, full);
        }
        let row = got.last().copied().unwrap_or(0);
        match &self.op {
            Op::Unary(op, child) => {
                let Some(mut data) = child.eval_padded(window, full)? else {
                    return Ok(None);
                };
                padded_rows(&got, full, |_, off| match &mut data {
                    Data::F32(v) => unary_f32(*op, &mut v[off..off + row]),
                    Data::F64(v) => unary_f64(*op, &mut v[off..off + row]),
                    Data::Bool(_) => unreachable!("a float function of a float block"),
                });
                Ok(Some(data))
            }
            Op::Where(c, a, b) => {
                // The condition's dimensions are the trailing ones (see `pads`): one slab of
                // it applies to each position along the leading ones.
                let cond = c.eval(&self.window_of(c, window))?.data.into_bool();
                let other = b
                    .eval(&self.window_of(b, window))?
                    .data
                    .into_vtype(self.vtype);
                let slab: usize = got[got.len() - c.dims.len()..].iter().product();
                if cond.len() != slab || other.len() != 1 || row == 0 {
                    return Ok(None);
                }
                let Some(mut data) = a.eval_padded(window, full)? else {
                    return Ok(None);
                };
                // The positions each row of the condition drops.
                let drop: Vec<Vec<Range<usize>>> = cond.chunks(row).map(false_runs).collect();
                padded_rows(&got, full, |r, off| {
                    let drop = &drop[r % drop.len()];
                    match (&mut data, &other) {
                        (Data::F32(v), Data::F32(o)) => {
                            fill_runs(&mut v[off..off + row], drop, o[0])
                        }
                        (Data::F64(v), Data::F64(o)) => {
                            fill_runs(&mut v[off..off + row], drop, o[0])
                        }
                        _ => unreachable!("a float mask of a float block"),
                    }
                });
                Ok(Some(data))
            }
            _ => Ok(None),
        }
    }

    /// Evaluate over `window` (one range per dimension of this node).
    ///
    /// # Errors
    /// Read and decode errors of the sources, naming the chunk.
    #[allow(clippy::too_many_lines)]
    pub fn eval(&self, window: &Window) -> Result<Block> {
        let shape: Vec<usize> = window
            .iter()
            .map(|r| usize::try_from(r.end - r.start).unwrap_or(0))
            .collect();
        if self.visitable() {
            // Plain floats are copied from the cached chunks straight into the block, only the
            // selected positions.
            if let Some(data) = self.read_plain(window, &shape)? {
                return Ok(Block {
                    dims: self.dims.clone(),
                    shape,
                    data,
                });
            }
        }
        let data = match &self.op {
            Op::Source {
                array,
                decoding,
                cache,
            } => {
                let start: Vec<u64> = window.iter().map(|r| r.start).collect();
                let sizes: Vec<u64> = window.iter().map(|r| r.end - r.start).collect();
                let raw = cache.read_region(array, &start, &sizes)?;
                decode_raw(&raw, decoding, self.vtype)
            }
            Op::Take { child, dim, index } => {
                let (axis, sel, lo, cw) = self.take_window(dim, index, window);
                let inner = child.eval(&cw)?;
                // A run of consecutive positions is the child's window itself.
                if sel.windows(2).all(|w| w[1] == w[0] + 1) {
                    return Ok(inner);
                }
                let rel: Vec<usize> = sel
                    .iter()
                    .map(|p| usize::try_from(p - lo).unwrap_or(0))
                    .collect();
                return Ok(take_axis(&inner, axis, &rel));
            }
            Op::Const(d) => return Ok(Block::scalar(d.clone()).with_expand(&self.dims, &shape)),
            Op::Along { dim, values } => {
                let axis = self.dims.iter().position(|d| d == dim).unwrap_or(0);
                let r = &window[axis];
                let vals: Vec<f64> = values
                    [usize::try_from(r.start).unwrap_or(0)..usize::try_from(r.end).unwrap_or(0)]
                    .to_vec();
                let b = Block {
                    dims: vec![dim.clone()],
                    shape: vec![vals.len()],
                    data: Data::F64(vals).convert(self.vtype),
                };
                b.into_expanded(&self.dims, &shape)
            }
            Op::Unary(op, child) => {
                let b = child.eval(&self.window_of(child, window))?;
                unary(*op, b.data, self.vtype)
            }
            Op::Binary(op, a, b) => {
                let x = a.eval(&self.window_of(a, window))?;
                let y = b.eval(&self.window_of(b, window))?;
                let n: usize = shape.iter().product();
                // A scalar operand is used as it is, not broadcast to the block first.
                let x = if x.is_scalar() && n > 1 {
                    x.data
                } else {
                    x.into_expanded(&self.dims, &shape)
                };
                let y = if y.is_scalar() && n > 1 {
                    y.data
                } else {
                    y.into_expanded(&self.dims, &shape)
                };
                binary(*op, &x, &y, a.vtype, b.vtype, self.vtype, n)
            }
            Op::Where(c, a, b) => {
                let cond = c.eval(&self.window_of(c, window))?;
                // A condition over the trailing dimensions is applied slab by slab.
                let k = cond.dims.len();
                let trailing = k > 0
                    && k <= self.dims.len()
                    && self.dims[self.dims.len() - k..] == cond.dims[..];
                let cond = if trailing {
                    cond.data.into_bool()
                } else {
                    cond.into_expanded(&self.dims, &shape).into_bool()
                };
                let x = a
                    .eval(&self.window_of(a, window))?
                    .into_expanded(&self.dims, &shape)
                    .into_vtype(self.vtype);
                let y = b.eval(&self.window_of(b, window))?;
                let y = if y.is_scalar() {
                    y.data.into_vtype(self.vtype)
                } else {
                    y.into_expanded(&self.dims, &shape).into_vtype(self.vtype)
                };
                select(&cond, x, &y)
            }
            Op::Clip(x, lo, hi) => {
                let v = x
                    .eval(&self.window_of(x, window))?
                    .into_expanded(&self.dims, &shape)
                    .into_f64();
                let l = lo
                    .eval(&self.window_of(lo, window))?
                    .into_expanded(&self.dims, &shape)
                    .into_f64();
                let h = hi
                    .eval(&self.window_of(hi, window))?
                    .into_expanded(&self.dims, &shape)
                    .into_f64();
                Data::F64(
                    v.iter()
                        .zip(&l)
                        .zip(&h)
                        .map(|((v, l), h)| if v.is_nan() { *v } else { v.max(*l).min(*h) })
                        .collect(),
                )
                .convert(self.vtype)
            }
            Op::Reduce { result, .. } => {
                let full = result
                    .get_or_init(|| self.materialise().map(Arc::new).map_err(|e| e.to_string()))
                    .clone()
                    .map_err(Error::Other)?;
                let start: Vec<u64> = window.iter().map(|r| r.start).collect();
                return Ok(slice_block(&full, &start, &shape));
            }
            Op::Cast(child) => child
                .eval(&self.window_of(child, window))?
                .into_expanded(&self.dims, &shape)
                .into_vtype(self.vtype),
            Op::Transpose(child) => child
                .eval(&self.window_of(child, window))?
                .into_expanded(&self.dims, &shape),
        };
        Ok(Block {
            dims: self.dims.clone(),
            shape,
            data,
        })
    }

    /// Compute a reduction over its child's full extent, in parallel blocks along its child's
    /// first dimension (see [`ReductionJob`]), in a pass of its own.
    fn materialise(&self) -> Result<Block> {
        self.materialise_below()?;
        let job = ReductionJob::new(self)?;
        let cache = self.cache();
        let no_tasks: [(); 0] = [];
        let mut blocks = run_jobs(
            cache.as_deref(),
            std::slice::from_ref(&job),
            &no_tasks,
            |()| 0.0,
            |(), _| {},
            |()| Ok(()),
            false,
            |_, _| {},
        )?;
        blocks
            .pop()
            .ok_or_else(|| Error::Other("internal: a reduction pass without its result".into()))
    }

    /// Whether this is a reduction whose result is not computed yet.
    #[must_use]
    pub fn is_pending_reduction(&self) -> bool {
        matches!(&self.op, Op::Reduce { result, .. } if result.get().is_none())
    }
}

/// Whether `a` and `b` compute the same values: the same node, the same source variable, or the
/// same positions of the same values.
fn same_values(a: &Node, b: &Node) -> bool {
    if std::ptr::eq(a, b) {
        return true;
    }
    if a.dims != b.dims || a.shape != b.shape || a.vtype != b.vtype {
        return false;
    }
    match (&a.op, &b.op) {
        (Op::Source { array: x, .. }, Op::Source { array: y, .. }) => x.location() == y.location(),
        (
            Op::Take {
                child: x,
                dim: dx,
                index: ix,
            },
            Op::Take {
                child: y,
                dim: dy,
                index: iy,
            },
        ) => dx == dy && (Arc::ptr_eq(ix, iy) || ix == iy) && same_values(x, y),
        _ => false,
    }
}

/// The condition of `where(cond, x, NaN)`, simplified. Where `all(isnan(x), dims)` holds, `x`
/// is NaN at every position along `dims`, so the result is NaN whatever the condition says
/// there: inside the condition, `all(isnan(x), ..)` may be read as false and
/// `any(notnull(x), ..)` as true. The simplified condition no longer needs the reduction, so
/// the masked `x` can be computed in the same pass as that reduction instead of after it. (The
/// tutorial's `sst.where(ocean)`, with the ocean mask built from `isnan(sst).all('time')`.)
///
/// Only the NaN that such a position holds may differ: `x`'s own NaN where the condition had
/// put the canonical one.
#[must_use]
pub fn simplify_nan_mask(cond: &NodeRef, x: &Node) -> NodeRef {
    assume_not_all_nan(cond, x).unwrap_or_else(|| cond.clone())
}

/// `n` with `all(isnan(x))` read as false and `any(notnull(x))` as true, constants folded;
/// `None` when `n` has neither.
fn assume_not_all_nan(n: &NodeRef, x: &Node) -> Option<NodeRef> {
    let constant = |b: bool| Node::new(Op::Const(Data::Bool(vec![b])), vec![], vec![], VType::Bool);
    let as_bool = |c: &Node| match &c.op {
        Op::Const(Data::Bool(v)) if v.len() == 1 && c.dims.is_empty() => Some(v[0]),
        _ => None,
    };
    // A rebuilt node keeps `n`'s dimensions and type; its operands keep theirs (a folded operand
    // is broadcast back to the form of the one it replaces), as evaluation expects.
    let rebuilt = |op: Op| Node::new(op, n.dims.clone(), n.shape.clone(), n.vtype);
    let simplified = |m: &NodeRef| assume_not_all_nan(m, x);
    match &n.op {
        Op::Reduce { child, kind, .. } => match (kind, &child.op) {
            (Reduction::All, Op::Unary(UnOp::IsNan, y)) if same_values(y, x) => {
                Some(constant(false))
            }
            (Reduction::Any, Op::Unary(UnOp::NotNull, y)) if same_values(y, x) => {
                Some(constant(true))
            }
            _ => None,
        },
        Op::Unary(op, a) => {
            let a2 = simplified(a)?;
            Some(match (op, as_bool(&a2)) {
                (UnOp::Not, Some(b)) => constant(!b),
                _ => rebuilt(Op::Unary(*op, conform(a2, a))),
            })
        }
        Op::Binary(op, a, b) => {
            let (a2, b2) = (simplified(a), simplified(b));
            if a2.is_none() && b2.is_none() {
                return None;
            }
            let a2 = a2.unwrap_or_else(|| a.clone());
            let b2 = b2.unwrap_or_else(|| b.clone());
            // A folded result may have fewer dimensions than `n`: the parent broadcasts it.
            Some(match (op, as_bool(&a2), as_bool(&b2)) {
                (BinOp::And, Some(true), _) | (BinOp::Or, Some(false), _) => b2,
                (BinOp::And, _, Some(true)) | (BinOp::Or, _, Some(false)) => a2,
                (BinOp::And, Some(false), _) | (BinOp::And, _, Some(false)) => constant(false),
                (BinOp::Or, Some(true), _) | (BinOp::Or, _, Some(true)) => constant(true),
                _ => rebuilt(Op::Binary(*op, conform(a2, a), conform(b2, b))),
            })
        }
        Op::Where(c, a, b) => {
            let changed = [c, a, b].map(simplified);
            if changed.iter().all(Option::is_none) {
                return None;
            }
            let [c2, a2, b2] = changed;
            let c2 = c2.unwrap_or_else(|| c.clone());
            let a2 = a2.unwrap_or_else(|| a.clone());
            let b2 = b2.unwrap_or_else(|| b.clone());
            // The branch taken, in `n`'s type (a `where` promotes its branches).
            Some(match as_bool(&c2) {
                Some(true) => conform_type(a2, n),
                Some(false) => conform_type(b2, n),
                None => rebuilt(Op::Where(conform(c2, c), conform(a2, a), conform(b2, b))),
            })
        }
        Op::Cast(a) => Some(rebuilt(Op::Cast(conform(simplified(a)?, a)))),
        Op::Transpose(a) => Some(rebuilt(Op::Transpose(conform(simplified(a)?, a)))),
        _ => None,
    }
}

/// `new` in the form of `old` (dimensions, shape and type): broadcast and cast when they differ.
fn conform(new: NodeRef, old: &Node) -> NodeRef {
    if new.dims == old.dims && new.shape == old.shape && new.vtype == old.vtype {
        new
    } else {
        Node::new(
            Op::Cast(new),
            old.dims.clone(),
            old.shape.clone(),
            old.vtype,
        )
    }
}

/// `new` with the type of `old` (its dimensions may be fewer: the parent broadcasts them).
fn conform_type(new: NodeRef, old: &Node) -> NodeRef {
    if new.vtype == old.vtype {
        new
    } else {
        let (dims, shape) = (new.dims.clone(), new.shape.clone());
        Node::new(Op::Cast(new), dims, shape, old.vtype)
    }
}

/// A reduction computed block by block: the blocks split the child along its first dimension,
/// kept or reduced, so that each block covers whole rows of input chunks and every input chunk
/// is decoded about once. (Splitting along a reduced inner dimension would sweep the whole outer
/// axis once per block.) Each worker adds blocks into its own accumulator; the accumulators are
/// merged at the end.
struct ReductionJob<'a> {
    node: &'a Node,
    child: &'a NodeRef,
    kind: Reduction,
    /// Length of the child's first dimension, and block length along it.
    len: u64,
    step: u64,
    out_shape: Vec<usize>,
    n_out: usize,
    /// all/any of isnan/notnull over a float source: NaN-ness is read where the chunk cache
    /// holds the values, without copying them or building a boolean block. (`true`: isnan.)
    nan_scan: Option<(bool, &'a NodeRef)>,
}

impl<'a> ReductionJob<'a> {
    fn new(node: &'a Node) -> Result<ReductionJob<'a>> {
        let Op::Reduce { child, kind, .. } = &node.op else {
            return Err(Error::Other(
                "internal: materialise on a non-reduction".into(),
            ));
        };
        let len = child.shape.first().copied().unwrap_or(1);
        let plane: u64 = child.shape.iter().skip(1).product();
        // Blocks of about half a million elements: enough work per task, little memory, and
        // buffers small enough for the allocator to reuse rather than map afresh.
        let step = (524_288 / plane.max(1)).clamp(1, len.max(1));
        let out_shape: Vec<usize> = node
            .shape
            .iter()
            .map(|n| usize::try_from(*n).unwrap_or(0))
            .collect();
        let nan_scan = match (&child.op, kind) {
            (Op::Unary(op @ (UnOp::IsNan | UnOp::NotNull), x), Reduction::All | Reduction::Any)
                if x.dims == child.dims && x.visitable() =>
            {
                Some((*op == UnOp::IsNan, x))
            }
            _ => None,
        };
        Ok(ReductionJob {
            node,
            child,
            kind: *kind,
            len,
            step,
            n_out: out_shape.iter().product(),
            out_shape,
            nan_scan,
        })
    }

    /// Number of blocks.
    fn blocks(&self) -> usize {
        usize::try_from(self.len.div_ceil(self.step)).unwrap_or(0)
    }

    /// Where block `b` starts along the child's first dimension, as a fraction of its length.
    fn position(&self, b: usize) -> f64 {
        (b as u64 * self.step) as f64 / self.len.max(1) as f64
    }

    /// The child's window of block `b`.
    fn window(&self, b: usize) -> Window {
        let s = b as u64 * self.step;
        let mut w: Window = self.child.shape.iter().map(|n| 0..*n).collect();
        if let Some(first) = w.first_mut() {
            *first = s..(s + self.step).min(self.len);
        }
        w
    }

    /// The input chunks block `b` reads.
    fn needs(&self, b: usize, out: &mut Vec<Needed>) {
        let w = self.window(b);
        let from = out.len();
        self.child.chunks_needed(&w, out);
        if self.nan_scan.is_some_and(|(_, x)| x.runs_are_long(&w)) {
            for n in &mut out[from..] {
                n.values = false;
            }
        }
    }

    /// Add block `b` into `acc`.
    fn run(&self, acc: &mut Acc, b: usize) -> Result<()> {
        let w = self.window(b);
        if let Some((nan, x)) = self.nan_scan.filter(|(_, x)| x.runs_are_long(&w)) {
            let all = self.kind == Reduction::All;
            return acc.add_nan_rows(x, &w, nan, all, &self.node.dims, &self.out_shape);
        }
        let block = self.child.eval(&w)?;
        acc.add(
            &block,
            &self.node.dims,
            &self.out_shape,
            self.kind,
            usize::try_from(w.first().map_or(0, |r| r.start)).unwrap_or(0),
        );
        Ok(())
    }

    /// The result, from the accumulators of all workers.
    fn finish(&self, partials: &[Acc]) -> Block {
        let mut total = Acc::new(self.n_out);
        for p in partials {
            total.merge(p);
        }
        Block {
            dims: self.node.dims.clone(),
            shape: self.out_shape.clone(),
            data: total.finish(self.kind, self.node.vtype),
        }
    }
}

/// One streaming pass over the input: the blocks of `reductions` (computed here, each result
/// then kept by its node) and `tasks`, run together in one order so that the reductions and the
/// tasks reading the same input chunks run close together and each chunk is decoded about once.
///
/// Blocks and tasks are ordered by `position` (a task's place along the first dimension of what
/// it computes, as a fraction of its length; a block's along its reduction's child), backwards
/// when `backwards` (the chunks a previous forward pass left in the cache are the last ones).
/// The cache is told what each will read, in that order. Reductions already computed are
/// skipped; reductions inside another one's input are computed first, each in a pass of its own
/// ([`Node::materialise_below`]: [`crate::build`] plans them into earlier passes). The tasks must
/// read only reductions already computed.
///
/// # Errors
/// The first error of a block or of `run`.
#[allow(clippy::too_many_arguments)]
pub fn run_pass<T: Sync>(
    cache: &ChunkCache,
    reductions: &[NodeRef],
    tasks: &[T],
    position: impl Fn(&T) -> f64,
    needs: impl Fn(&T, &mut Vec<Needed>),
    run: impl Fn(&T) -> Result<()> + Sync,
    backwards: bool,
    progress: impl Fn(u64, u64) + Sync,
) -> Result<()> {
    let pending: Vec<&NodeRef> = reductions
        .iter()
        .filter(|n| n.is_pending_reduction())
        .collect();
    for n in &pending {
        n.materialise_below()?;
    }
    let jobs: Vec<ReductionJob> = pending
        .iter()
        .map(|n| ReductionJob::new(n))
        .collect::<Result<_>>()?;
    let blocks = run_jobs(
        Some(cache),
        &jobs,
        tasks,
        position,
        needs,
        run,
        backwards,
        progress,
    )?;
    for (job, block) in jobs.iter().zip(blocks) {
        if let Op::Reduce { result, .. } = &job.node.op {
            let _ = result.set(Ok(Arc::new(block)));
        }
    }
    Ok(())
}

/// The blocks of `jobs` and `tasks`, in [`run_pass`]'s order, under one schedule of `cache`
/// (none without a cache); returns the result of each job.
#[allow(clippy::too_many_arguments)]
fn run_jobs<T: Sync>(
    cache: Option<&ChunkCache>,
    jobs: &[ReductionJob],
    tasks: &[T],
    position: impl Fn(&T) -> f64,
    needs: impl Fn(&T, &mut Vec<Needed>),
    run: impl Fn(&T) -> Result<()> + Sync,
    backwards: bool,
    progress: impl Fn(u64, u64) + Sync,
) -> Result<Vec<Block>> {
    #[derive(Clone, Copy)]
    enum Item {
        Block(usize, usize),
        Task(usize),
    }
    let mut items: Vec<(f64, Item)> = Vec::new();
    for (j, job) in jobs.iter().enumerate() {
        items.extend((0..job.blocks()).map(|b| (job.position(b), Item::Block(j, b))));
    }
    items.extend(
        tasks
            .iter()
            .enumerate()
            .map(|(t, task)| (position(task), Item::Task(t))),
    );
    // Stable: at one position, reduction blocks first, tasks in the order given.
    items.sort_by(|a, b| a.0.total_cmp(&b.0));
    if backwards {
        items.reverse();
    }
    let items: Vec<(usize, Item)> = items
        .into_iter()
        .enumerate()
        .map(|(i, (_, item))| (i, item))
        .collect();
    let scheduled = cache.is_some_and(|c| {
        c.set_schedule(
            items
                .iter()
                .map(|(_, item)| {
                    let mut keys = Vec::new();
                    match *item {
                        Item::Block(j, b) => jobs[j].needs(b, &mut keys),
                        Item::Task(t) => needs(&tasks[t], &mut keys),
                    }
                    keys
                })
                .collect(),
        )
    });
    // Only a scheduled pass reports its tasks to the cache (a nested one keeps the outer's).
    let cache = cache.filter(|_| scheduled);
    let partials: Mutex<Vec<Vec<Acc>>> = Mutex::new((0..jobs.len()).map(|_| Vec::new()).collect());
    let total = items.len() as u64;
    let done = std::sync::atomic::AtomicU64::new(0);
    progress(0, total);
    let result = for_each_in_order_with(
        &items,
        || -> Vec<Option<Acc>> { (0..jobs.len()).map(|_| None).collect() },
        |accs, &(i, item)| {
            if let Some(c) = cache {
                c.started(i);
            }
            let r = match item {
                Item::Block(j, b) => {
                    let acc = accs[j].get_or_insert_with(|| Acc::new(jobs[j].n_out));
                    jobs[j].run(acc, b)
                }
                Item::Task(t) => run(&tasks[t]),
            };
            if let Some(c) = cache {
                c.finished(i);
            }
            r?;
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress(n, total);
            Ok(())
        },
        |accs| {
            if let Ok(mut p) = partials.lock() {
                for (j, acc) in accs.into_iter().enumerate() {
                    if let Some(acc) = acc {
                        p[j].push(acc);
                    }
                }
            }
        },
    );
    if let Some(c) = cache {
        c.clear_schedule();
    }
    result?;
    let partials = partials
        .into_inner()
        .map_err(|_| Error::Other("reduction state poisoned".into()))?;
    Ok(jobs
        .iter()
        .zip(&partials)
        .map(|(job, accs)| job.finish(accs))
        .collect())
}

impl Block {
    fn with_expand(self, dims: &[String], shape: &[usize]) -> Block {
        let data = self.expand(dims, shape);
        Block {
            dims: dims.to_vec(),
            shape: shape.to_vec(),
            data,
        }
    }
}

/// The stride, in a C-ordered block with dimensions `block_dims` and shape `block_shape`, of
/// each of `dims` (0 for a dimension the block lacks).
fn strides_in(dims: &[String], block_dims: &[String], block_shape: &[usize]) -> Vec<usize> {
    let mut own = vec![1usize; block_dims.len()];
    for d in (0..block_dims.len().saturating_sub(1)).rev() {
        own[d] = own[d + 1] * block_shape[d + 1];
    }
    dims.iter()
        .map(|d| block_dims.iter().position(|x| x == d).map_or(0, |p| own[p]))
        .collect()
}

/// Fold the NaN-ness of consecutive values into consecutive output elements: `all` keeps
/// those whose value's NaN-ness is `nan` every time, else `any` marks them.
fn fold_nan(target: &mut [bool], is_nan: impl Iterator<Item = bool>, nan: bool, all: bool) {
    if all {
        for (t, v) in target.iter_mut().zip(is_nan) {
            *t &= v == nan;
        }
    } else {
        for (t, v) in target.iter_mut().zip(is_nan) {
            *t |= v == nan;
        }
    }
}

/// Partial reduction state per output element.
struct Acc {
    count: Vec<u64>,
    sum: Vec<f64>,
    sumsq: Vec<f64>,
    min: Vec<f64>,
    max: Vec<f64>,
    all: Vec<bool>,
    any: Vec<bool>,
}

impl Acc {
    /// Reduce `window` of the visitable node `x` into `all` (`all_of`) or `any`: of "value is
    /// NaN" when `nan`, else of "value is not NaN". A row whose output element is already
    /// decided is skipped, and a row is read only until its answer is known.
    fn add_nan_rows(
        &mut self,
        x: &Node,
        window: &Window,
        nan: bool,
        all_of: bool,
        out_dims: &[String],
        out_shape: &[usize],
    ) -> Result<()> {
        let nd = x.dims.len();
        let out_stride = strides_in(&x.dims, out_dims, out_shape);
        let wshape: Vec<usize> = window
            .iter()
            .map(|r| usize::try_from(r.end - r.start).unwrap_or(0))
            .collect();
        let wstart: Vec<usize> = window
            .iter()
            .map(|r| usize::try_from(r.start).unwrap_or(0))
            .collect();
        let step = out_stride.last().copied().unwrap_or(0);
        let (all, any) = (&mut self.all, &mut self.any);
        x.visit_rows(window, &mut |off, row| {
            // The output element of the row's first value.
            let mut rest = off;
            let mut o = 0usize;
            for d in (0..nd).rev() {
                let i = rest % wshape[d].max(1);
                rest /= wshape[d].max(1);
                o += (wstart[d] + i) * out_stride[d];
            }
            if step == 0 {
                if all_of {
                    if all[o] && row.any_nan_is(!nan) {
                        all[o] = false;
                    }
                } else if !any[o] && row.any_nan_is(nan) {
                    any[o] = true;
                }
            } else if step == 1 {
                let n = row.len();
                let target = if all_of {
                    &mut all[o..o + n]
                } else {
                    &mut any[o..o + n]
                };
                match row {
                    Row::F32(v) => fold_nan(target, v.iter().map(|x| x.is_nan()), nan, all_of),
                    Row::F64(v) => fold_nan(target, v.iter().map(|x| x.is_nan()), nan, all_of),
                    Row::Fill(x, n) => {
                        fold_nan(target, std::iter::repeat_n(x.is_nan(), n), nan, all_of);
                    }
                    Row::Planes(_) => {
                        let flags = row.nan_flags().unwrap_or_default();
                        fold_nan(target, flags.into_iter(), nan, all_of);
                    }
                }
            } else {
                let flags = row.nan_flags();
                for i in 0..row.len() {
                    let is_nan = flags.as_ref().map_or_else(|| row.is_nan(i), |f| f[i]);
                    let hit = is_nan == nan;
                    let e = o + i * step;
                    if all_of {
                        all[e] &= hit;
                    } else {
                        any[e] |= hit;
                    }
                }
            }
        })
    }

    fn new(n: usize) -> Acc {
        Acc {
            count: vec![0; n],
            sum: vec![0.0; n],
            sumsq: vec![0.0; n],
            min: vec![f64::INFINITY; n],
            max: vec![f64::NEG_INFINITY; n],
            all: vec![true; n],
            any: vec![false; n],
        }
    }

    /// Add a block whose dims are the kept dims (`out_dims`) plus reduced ones.
    /// `block_start` is where the block starts along its first dimension (blocks are split there).
    fn add(
        &mut self,
        b: &Block,
        out_dims: &[String],
        out_shape: &[usize],
        kind: Reduction,
        block_start: usize,
    ) {
        let n_out = self.count.len().max(1);
        // When the split dimension is kept, this block's results start part-way into the output.
        let offset = b
            .dims
            .first()
            .and_then(|d0| out_dims.iter().position(|x| x == d0))
            .map_or(0, |p| {
                block_start * out_shape[p + 1..].iter().product::<usize>()
            });
        let kept: Vec<usize> = out_dims
            .iter()
            .filter_map(|d| b.dims.iter().position(|x| x == d))
            .collect();
        let k = kept.len();
        let nd = b.dims.len();
        // The output position of element i: fast for kept dimensions that trail or lead.
        let trailing = kept.iter().copied().eq(nd - k..nd);
        let leading = kept.iter().copied().eq(0..k);
        let inner: usize = b.shape[k.min(nd)..].iter().product::<usize>().max(1);
        let generic: Vec<usize> = if (trailing && offset == 0) || leading {
            Vec::new()
        } else {
            let strides = strides_in(&b.dims, out_dims, out_shape);
            let mut idx = vec![0usize; nd];
            let mut o = 0usize;
            let mut map = Vec::with_capacity(b.data.len());
            for _ in 0..b.data.len() {
                map.push(o);
                for a in (0..nd).rev() {
                    idx[a] += 1;
                    o += strides[a];
                    if idx[a] < b.shape[a] {
                        break;
                    }
                    o -= strides[a] * idx[a];
                    idx[a] = 0;
                }
            }
            map
        };
        let at = |i: usize| -> usize {
            if trailing && offset == 0 {
                i % n_out
            } else if leading {
                offset + i / inner
            } else {
                offset + generic[i]
            }
        };
        match (kind, &b.data) {
            // Boolean all/any, the masks' case, row by row when the kept dimensions lead or
            // trail.
            (Reduction::All | Reduction::Any, Data::Bool(v)) if leading => {
                let all = kind == Reduction::All;
                for (o, row) in v.chunks(inner).enumerate() {
                    if all {
                        self.all[offset + o] &= row.iter().all(|x| *x);
                    } else {
                        self.any[offset + o] |= row.iter().any(|x| *x);
                    }
                }
            }
            (Reduction::All | Reduction::Any, Data::Bool(v)) if trailing && offset == 0 => {
                let all = kind == Reduction::All;
                for row in v.chunks(n_out) {
                    if all {
                        self.all.iter_mut().zip(row).for_each(|(a, x)| *a &= *x);
                    } else {
                        self.any.iter_mut().zip(row).for_each(|(a, x)| *a |= *x);
                    }
                }
            }
            (Reduction::All, Data::Bool(v)) => {
                for (i, x) in v.iter().enumerate() {
                    self.all[at(i)] &= *x;
                }
            }
            (Reduction::Any, Data::Bool(v)) => {
                for (i, x) in v.iter().enumerate() {
                    self.any[at(i)] |= *x;
                }
            }
            (Reduction::All | Reduction::Any, data) => {
                // NaN is truthy, as in numpy.
                for i in 0..data.len() {
                    let t = data.get_f64(i) != 0.0;
                    let o = at(i);
                    self.all[o] &= t;
                    self.any[o] |= t;
                }
            }
            (_, data) => {
                for i in 0..data.len() {
                    let v = data.get_f64(i);
                    if !v.is_nan() {
                        let o = at(i);
                        self.count[o] += 1;
                        self.sum[o] += v;
                        self.sumsq[o] += v * v;
                        self.min[o] = self.min[o].min(v);
                        self.max[o] = self.max[o].max(v);
                    }
                }
            }
        }
    }

    fn merge(&mut self, other: &Acc) {
        for i in 0..self.count.len() {
            self.count[i] += other.count[i];
            self.sum[i] += other.sum[i];
            self.sumsq[i] += other.sumsq[i];
            self.min[i] = self.min[i].min(other.min[i]);
            self.max[i] = self.max[i].max(other.max[i]);
            self.all[i] &= other.all[i];
            self.any[i] |= other.any[i];
        }
    }

    #[allow(clippy::cast_precision_loss)]
    fn finish(&self, kind: Reduction, vtype: VType) -> Data {
        let n = self.count.len();
        let f = |g: &dyn Fn(usize) -> f64| Data::F64((0..n).map(g).collect()).convert(vtype);
        match kind {
            Reduction::All => Data::Bool(self.all.clone()),
            Reduction::Any => Data::Bool(self.any.clone()),
            Reduction::Count => f(&|i| self.count[i] as f64),
            Reduction::Sum => f(&|i| self.sum[i]),
            Reduction::Mean => f(&|i| {
                if self.count[i] == 0 {
                    f64::NAN
                } else {
                    self.sum[i] / self.count[i] as f64
                }
            }),
            Reduction::Std => f(&|i| {
                if self.count[i] == 0 {
                    return f64::NAN;
                }
                let c = self.count[i] as f64;
                let m = self.sum[i] / c;
                (self.sumsq[i] / c - m * m).max(0.0).sqrt()
            }),
            Reduction::Min => f(&|i| {
                if self.count[i] == 0 {
                    f64::NAN
                } else {
                    self.min[i]
                }
            }),
            Reduction::Max => f(&|i| {
                if self.count[i] == 0 {
                    f64::NAN
                } else {
                    self.max[i]
                }
            }),
        }
    }
}

fn slice_block(b: &Block, start: &[u64], shape: &[usize]) -> Block {
    let s: Vec<u64> = b.shape.iter().map(|n| *n as u64).collect();
    let bytes = match &b.data {
        Data::Bool(v) => v.iter().map(|x| u8::from(*x)).collect::<Vec<u8>>(),
        _ => Vec::new(),
    };
    let shape64: Vec<u64> = shape.iter().map(|n| *n as u64).collect();
    let data = match &b.data {
        Data::Bool(_) => {
            let mut out = vec![0u8; shape.iter().product()];
            crate::zarr::copy_region(&bytes, &s, &vec![0; s.len()], &mut out, &shape64, start, 1);
            Data::Bool(out.into_iter().map(|x| x != 0).collect())
        }
        Data::F32(v) => {
            let mut out = vec![0f32; shape.iter().product()];
            copy_typed(v, &s, &mut out, &shape64, start);
            Data::F32(out)
        }
        Data::F64(v) => {
            let mut out = vec![0f64; shape.iter().product()];
            copy_typed(v, &s, &mut out, &shape64, start);
            Data::F64(out)
        }
    };
    Block {
        dims: b.dims.clone(),
        shape: shape.to_vec(),
        data,
    }
}

fn copy_typed<T: Copy>(
    src: &[T],
    src_shape: &[u64],
    dst: &mut [T],
    dst_shape: &[u64],
    dst_start: &[u64],
) {
    // Row-wise copy through the generic byte copier would need unsafe casts; index directly.
    let nd = src_shape.len();
    if nd == 0 {
        dst[0] = src[0];
        return;
    }
    let mut sstr = vec![1usize; nd];
    for d in (0..nd - 1).rev() {
        sstr[d] = sstr[d + 1] * usize::try_from(src_shape[d + 1]).unwrap_or(0);
    }
    let n: usize = dst.len();
    let mut idx = vec![0u64; nd];
    for slot in dst.iter_mut().take(n) {
        let mut o = 0usize;
        for d in 0..nd {
            o += usize::try_from(idx[d] + dst_start[d]).unwrap_or(0) * sstr[d];
        }
        *slot = src[o];
        for d in (0..nd).rev() {
            idx[d] += 1;
            if idx[d] < dst_shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// The runs of consecutive positions in `positions` (each one more than the one before it), as
/// ranges of indices into `positions`, in order.
fn runs<T>(positions: &[T]) -> impl Iterator<Item = Range<usize>> + '_
where
    T: Copy + PartialEq + std::ops::Add<Output = T> + From<u8>,
{
    let mut j = 0;
    std::iter::from_fn(move || {
        if j >= positions.len() {
            return None;
        }
        let mut k = j + 1;
        while k < positions.len() && positions[k] == positions[k - 1] + T::from(1) {
            k += 1;
        }
        let run = j..k;
        j = k;
        Some(run)
    })
}

fn take_axis(b: &Block, axis: usize, rel: &[usize]) -> Block {
    /// Copy the positions `rel` of `axis` as runs of consecutive positions, each a block of
    /// contiguous memory.
    fn gather<T: Copy>(v: &[T], outer: usize, len: usize, inner: usize, rel: &[usize]) -> Vec<T> {
        let mut out = Vec::with_capacity(outer * rel.len() * inner);
        for o in 0..outer {
            for run in runs(rel) {
                let from = (o * len + rel[run.start]) * inner;
                out.extend_from_slice(&v[from..from + run.len() * inner]);
            }
        }
        out
    }
    let outer: usize = b.shape[..axis].iter().product();
    let inner: usize = b.shape[axis + 1..].iter().product();
    let len = b.shape[axis];
    let data = match &b.data {
        Data::Bool(v) => Data::Bool(gather(v, outer, len, inner, rel)),
        Data::F32(v) => Data::F32(gather(v, outer, len, inner, rel)),
        Data::F64(v) => Data::F64(gather(v, outer, len, inner, rel)),
    };
    let mut shape = b.shape.clone();
    shape[axis] = rel.len();
    Block {
        dims: b.dims.clone(),
        shape,
        data,
    }
}

#[allow(clippy::cast_possible_truncation)]
fn decode_raw(raw: &crate::dtype::RawArray, dec: &CfDecoding, vtype: VType) -> Data {
    let n = raw.len();
    // Masking a NaN fill value in float data changes nothing: read it as it is.
    let plain = dec.is_identity() || dec.is_nan_mask_only();
    if plain && raw.dtype == DType::Float32 && vtype == VType::F32 {
        let mut out = Vec::with_capacity(n);
        for c in raw.bytes.chunks_exact(4) {
            out.push(f32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
        }
        return Data::F32(out);
    }
    if dec.is_identity() && raw.dtype == DType::Bool {
        return Data::Bool(raw.bytes.iter().map(|b| *b != 0).collect());
    }
    if plain && raw.dtype == DType::Float64 && vtype == VType::F64 {
        return Data::F64(
            raw.bytes
                .chunks_exact(8)
                .map(|c| f64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        );
    }
    let vals: Vec<f64> = if plain {
        raw.to_f64_vec()
    } else {
        (0..n)
            .map(|i| dec.decode_number(raw.get_f64(i)).unwrap_or(f64::NAN))
            .collect()
    };
    match vtype {
        VType::F32 => Data::F32(vals.iter().map(|v| *v as f32).collect()),
        VType::Bool => Data::Bool(vals.iter().map(|v| *v != 0.0).collect()),
        _ => Data::F64(vals),
    }
}

fn unary(op: UnOp, d: Data, out: VType) -> Data {
    let nan_test = |d: &Data, want_nan: bool| -> Vec<bool> {
        match d {
            Data::F32(v) => v.iter().map(|x| x.is_nan() == want_nan).collect(),
            Data::F64(v) => v.iter().map(|x| x.is_nan() == want_nan).collect(),
            Data::Bool(v) => vec![!want_nan; v.len()],
        }
    };
    match op {
        UnOp::Not => {
            let mut v = d.into_bool();
            v.iter_mut().for_each(|b| *b = !*b);
            Data::Bool(v)
        }
        UnOp::IsNan => Data::Bool(nan_test(&d, true)),
        UnOp::NotNull => Data::Bool(nan_test(&d, false)),
        // Float32 values are computed in single precision, as numpy does; the rest in double.
        _ => match d {
            Data::F32(mut v) => {
                unary_f32(op, &mut v);
                Data::F32(v)
            }
            other => {
                let mut v = other.into_f64();
                unary_f64(op, &mut v);
                Data::F64(v)
            }
        },
    }
    .convert_if_needed(out)
}

/// A float function `op` applied in place to float32 values (`log10`, `sin` and `cos` through
/// double precision). Not for the functions whose result is boolean, which leave `v` as it is.
#[allow(clippy::cast_possible_truncation)]
fn unary_f32(op: UnOp, v: &mut [f32]) {
    let map = |v: &mut [f32], f: fn(f32) -> f32| v.iter_mut().for_each(|x| *x = f(*x));
    match op {
        UnOp::Neg => map(v, |x| -x),
        UnOp::Abs => map(v, f32::abs),
        // NaN passes through as it is: libm's special-case path for it is a slow call.
        UnOp::Log => skip_nan_runs(v, f32::is_nan, f32::ln),
        UnOp::Exp => map(v, f32::exp),
        UnOp::Sqrt => map(v, f32::sqrt),
        UnOp::Log10 => map(v, |x| f64::from(x).log10() as f32),
        UnOp::Sin => map(v, |x| f64::from(x).sin() as f32),
        UnOp::Cos => map(v, |x| f64::from(x).cos() as f32),
        UnOp::Not | UnOp::IsNan | UnOp::NotNull => {}
    }
}

/// [`unary_f32`] for float64 values.
fn unary_f64(op: UnOp, v: &mut [f64]) {
    let map = |v: &mut [f64], f: fn(f64) -> f64| v.iter_mut().for_each(|x| *x = f(*x));
    match op {
        UnOp::Neg => map(v, |x| -x),
        UnOp::Abs => map(v, f64::abs),
        UnOp::Log => skip_nan_runs(v, f64::is_nan, f64::ln),
        UnOp::Exp => map(v, f64::exp),
        UnOp::Sqrt => map(v, f64::sqrt),
        UnOp::Log10 => map(v, f64::log10),
        UnOp::Sin => map(v, f64::sin),
        UnOp::Cos => map(v, f64::cos),
        UnOp::Not | UnOp::IsNan | UnOp::NotNull => {}
    }
}

/// `f` applied in place to the values that are not NaN, run by run. (A loop testing each value
/// would not do: the compiler, free to call `f` on any value, calls it on four at a time, NaNs
/// included, and keeps the NaNs afterwards.)
fn skip_nan_runs<T: Copy>(v: &mut [T], is_nan: impl Fn(T) -> bool, f: impl Fn(T) -> T) {
    let mut i = 0;
    while i < v.len() {
        while i < v.len() && is_nan(v[i]) {
            i += 1;
        }
        let start = i;
        while i < v.len() && !is_nan(v[i]) {
            i += 1;
        }
        v[start..i].iter_mut().for_each(|x| *x = f(*x));
    }
}

impl Data {
    /// Values of type `to`: moved when they already are (integers are always truncated and
    /// clamped, as a cast does).
    fn into_vtype(self, to: VType) -> Data {
        match (&self, to) {
            (Data::Bool(_), VType::Bool)
            | (Data::F32(_), VType::F32)
            | (Data::F64(_), VType::F64) => self,
            _ => self.convert(to),
        }
    }

    fn convert_if_needed(self, to: VType) -> Data {
        let ok = matches!(
            (&self, to),
            (Data::Bool(_), VType::Bool)
                | (Data::F32(_), VType::F32)
                | (Data::F64(_), VType::F64 | VType::Int(_))
        );
        if ok {
            self
        } else {
            self.convert(to)
        }
    }
}

/// Element `i` of an operand of `n` elements, or its single value when it is a scalar.
#[inline]
fn at<T: Copy>(v: &[T], i: usize) -> T {
    if v.len() == 1 {
        v[0]
    } else {
        v[i]
    }
}

/// `f(x[i], y[i])` for `n` elements, either operand possibly a single value.
fn zip_map<A: Copy, B: Copy, R>(x: &[A], y: &[B], n: usize, f: impl Fn(A, B) -> R) -> Vec<R> {
    match (x.len() == n, y.len() == n) {
        (true, true) => x.iter().zip(y).map(|(a, b)| f(*a, *b)).collect(),
        (true, false) => {
            let b = at(y, 0);
            x.iter().map(|a| f(*a, b)).collect()
        }
        (false, true) => {
            let a = at(x, 0);
            y.iter().map(|b| f(a, *b)).collect()
        }
        (false, false) => (0..n).map(|i| f(at(x, i), at(y, i))).collect(),
    }
}

#[allow(clippy::float_cmp)]
fn binary(op: BinOp, x: &Data, y: &Data, tx: VType, ty: VType, out: VType, n: usize) -> Data {
    let _ = (tx, ty);
    if op.is_logical() {
        let (a, b) = (x.to_bool(), y.to_bool());
        let and = op == BinOp::And;
        return Data::Bool(zip_map(&a, &b, n, |p, q| if and { p && q } else { p || q }));
    }
    if op.is_comparison() {
        let cmp = |a: f64, b: f64| match op {
            BinOp::Eq => a == b,
            BinOp::Ne => a != b,
            BinOp::Lt => a < b,
            BinOp::Le => a <= b,
            BinOp::Gt => a > b,
            _ => a >= b,
        };
        // Compare float32 with float32 when both sides are single precision.
        if let (Data::F32(a), Data::F32(b)) = (x, y) {
            return Data::Bool(zip_map(a, b, n, |p, q| cmp(f64::from(p), f64::from(q))));
        }
        return Data::Bool(zip_map(&x.to_f64(), &y.to_f64(), n, cmp));
    }
    if out == VType::F32 {
        let g = |p: f32, q: f32| match op {
            BinOp::Add => p + q,
            BinOp::Sub => p - q,
            BinOp::Mul => p * q,
            _ => p / q,
        };
        return Data::F32(zip_map(&x.to_f32(), &y.to_f32(), n, g));
    }
    let f = |a: f64, b: f64| match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        _ => a / b,
    };
    Data::F64(zip_map(&x.to_f64(), &y.to_f64(), n, f)).convert_if_needed(out)
}

/// `cond ? x : y`, elementwise; `y` may be a single value.
///
/// A condition shorter than `x` covers its trailing dimensions: it applies to each slab of
/// `cond.len()` values in turn (a mask over lat × lon for every time step), without being
/// repeated first.
fn select(cond: &[bool], x: Data, y: &Data) -> Data {
    fn pick<T: Copy>(cond: &[bool], mut a: Vec<T>, b: &[T]) -> Vec<T> {
        let slab = cond.len().max(1);
        if b.len() == 1 && a.len() != 1 {
            let drop = false_runs(cond);
            for part in a.chunks_mut(slab) {
                let n = part.len();
                if n == slab {
                    fill_runs(part, &drop, b[0]);
                } else {
                    fill_runs(part, &false_runs(&cond[..n]), b[0]);
                }
            }
        } else {
            for (part, bs) in a.chunks_mut(slab).zip(b.chunks(slab)) {
                for ((slot, c), v) in part.iter_mut().zip(cond).zip(bs) {
                    *slot = if *c { *slot } else { *v };
                }
            }
        }
        a
    }
    match (x, y) {
        (Data::F32(a), Data::F32(b)) => Data::F32(pick(cond, a, b)),
        (Data::F64(a), Data::F64(b)) => Data::F64(pick(cond, a, b)),
        (Data::Bool(a), Data::Bool(b)) => Data::Bool(pick(cond, a, b)),
        (a, b) => Data::F64(pick(cond, a.into_f64(), &b.to_f64())),
    }
}

/// The runs of consecutive `false` in `keep`: a mask applied to many slabs of values sets only
/// these (a mask of mostly `true`, as an ocean mask is, then costs next to nothing).
fn false_runs(keep: &[bool]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < keep.len() {
        while i < keep.len() && keep[i] {
            i += 1;
        }
        let start = i;
        while i < keep.len() && !keep[i] {
            i += 1;
        }
        if start < i {
            out.push(start..i);
        }
    }
    out
}

/// Set the runs `drop` of `values` to `other`.
fn fill_runs<T: Copy>(values: &mut [T], drop: &[Range<usize>], other: T) {
    for r in drop {
        values[r.clone()].fill(other);
    }
}

/// Set the elements of a C-ordered buffer of shape `full` that lie outside the block of shape
/// `got` at its start (each of `got`'s dimensions at most `full`'s) to `fill`.
fn fill_outside<T: Copy>(buf: &mut [T], got: &[usize], full: &[usize], fill: T) {
    let Some((&last, outer)) = full.split_last() else {
        return;
    };
    if got == full || last == 0 {
        return;
    }
    let got_row = got.last().copied().unwrap_or(0);
    let mut idx = vec![0usize; outer.len()];
    for row in buf.chunks_exact_mut(last) {
        if idx.iter().zip(got).all(|(i, g)| i < g) {
            row[got_row..].fill(fill);
        } else {
            row.fill(fill);
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

/// Call `f(row, offset)` for each row (along the last dimension) of a block of shape `got` held
/// at the start of each dimension of a C-ordered buffer of shape `full`, in order: `row` counts
/// the block's rows, `offset` is where the row starts in the buffer.
fn padded_rows(got: &[usize], full: &[usize], mut f: impl FnMut(usize, usize)) {
    let Some((_, outer)) = got.split_last() else {
        f(0, 0);
        return;
    };
    if got.contains(&0) {
        return;
    }
    let mut strides = vec![0usize; outer.len()];
    let mut stride = full.last().copied().unwrap_or(1);
    for d in (0..outer.len()).rev() {
        strides[d] = stride;
        stride *= full[d];
    }
    let mut idx = vec![0usize; outer.len()];
    for r in 0..outer.iter().product() {
        f(r, idx.iter().zip(&strides).map(|(i, s)| i * s).sum());
        for d in (0..outer.len()).rev() {
            idx[d] += 1;
            if idx[d] < outer[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// The type numpy gives an elementwise result of `a` and `b`, where a literal constant is "weak"
/// (it does not widen an array's type, as in NumPy 2 / NEP 50).
#[must_use]
pub fn promote(a: VType, a_const: bool, b: VType, b_const: bool) -> VType {
    use VType as V;
    if a_const && !b_const {
        return if a.is_float() && !b.is_float() {
            V::F64
        } else {
            b
        };
    }
    if b_const && !a_const {
        return if b.is_float() && !a.is_float() {
            V::F64
        } else {
            a
        };
    }
    match (a, b) {
        (V::F64, _) | (_, V::F64) => V::F64,
        (V::F32, V::F32 | V::Bool) | (V::Bool, V::F32) => V::F32,
        (V::F32, V::Int(d)) | (V::Int(d), V::F32) => {
            if d.size() <= 2 {
                V::F32
            } else {
                V::F64
            }
        }
        (V::Int(x), V::Int(y)) => V::Int(if x.size() >= y.size() { x } else { y }),
        (V::Int(x), V::Bool) | (V::Bool, V::Int(x)) => V::Int(x),
        (V::Bool, V::Bool) => V::Bool,
    }
}

/// Run `f` over `items` on all worker threads, taking items strictly in order from a shared
/// counter (rayon's splitting would send the two halves of the list to different workers, far
/// apart in the data). Each worker has a state made by `init` and handed to `finish` at the end.
/// Stops at the first error and returns it.
///
/// # Errors
/// The first error `f` returns.
pub fn for_each_in_order_with<T: Sync, S>(
    items: &[T],
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, &T) -> Result<()> + Sync,
    finish: impl Fn(S) + Sync,
) -> Result<()> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let workers = rayon::current_num_threads().max(1).min(items.len().max(1));
    rayon::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|_| {
                let mut state = init();
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if let Err(e) = f(&mut state, item) {
                        failed.store(true, Ordering::Relaxed);
                        if let Ok(mut slot) = first_error.lock() {
                            slot.get_or_insert(e);
                        }
                        break;
                    }
                }
                finish(state);
            });
        }
    });
    match first_error.into_inner() {
        Ok(Some(e)) => Err(e),
        Ok(None) => Ok(()),
        Err(_) => Err(Error::Other("worker state poisoned".into())),
    }
}

/// Ask the kernel to start reading a file into the page cache (a hint: failures are ignored,
/// a missing file is a chunk that is not stored).
fn advise_will_need(path: &std::path::Path) {
    #[cfg(target_os = "linux")]
    if let Ok(f) = std::fs::File::open(path) {
        let _ = nix::fcntl::posix_fadvise(
            &f,
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_WILLNEED,
        );
    }
    #[cfg(not(target_os = "linux"))]
    let _ = path;
}

/// A bounded cache of decoded chunks shared by all nodes of a build, so that each input chunk
/// is decoded once while the output chunks that need it are computed.
pub struct ChunkCache {
    limit: usize,
    state: Mutex<CacheState>,
    decoded: std::sync::atomic::AtomicU64,
    mapped: std::sync::atomic::AtomicU64,
    /// The stored bytes of the chunks read by byte planes last, the latest last: neighbouring
    /// tasks read other blocks of the same frames.
    frames: Mutex<Vec<(ChunkKey, zarrs_storage::Bytes)>>,
}

/// Stored chunks kept for reading by byte planes (mapped files, not decoded data).
const FRAMES_KEPT: usize = 4;

/// A stored chunk: the array's location and the chunk's grid indices.
pub type ChunkKey = (String, Vec<u64>);

/// A chunk a task reads.
#[derive(Debug, Clone)]
pub struct Needed {
    /// The chunk, as the cache names it.
    pub key: ChunkKey,
    /// Its file, when the store is local (for read-ahead).
    pub path: Option<std::path::PathBuf>,
    /// The array it belongs to, so that a worker with nothing else to do can decode it ahead.
    pub array: Option<Arc<ZarrArray>>,
    /// Whether the task reads the values; `false` when it only asks which are NaN, which a
    /// chunk no task of the pass reads the values of answers from its byte planes, undecoded
    /// (see [`PlaneSource`]).
    pub values: bool,
}

impl Needed {
    /// Whether only NaN-ness is asked of a chunk whose frames may be read by byte planes
    /// (little-endian floats, as [`PlaneSource`] reads them, on a little-endian machine: the
    /// arrays decoded straight into buffers hold the machine's byte order).
    fn nan_only_direct(&self) -> bool {
        cfg!(target_endian = "little")
            && !self.values
            && self.array.as_ref().is_some_and(|a| {
                a.unit_len().is_some() && matches!(a.dtype(), DType::Float32 | DType::Float64)
            })
    }
}

/// How many tasks ahead of the latest one started the cache asks the kernel to read the files of
/// the chunks they need.
const PREFETCH_TASKS: usize = 48;

/// A decoded chunk in the cache.
#[derive(Debug)]
enum Cached {
    /// The chunk's bytes, as `zarrs` decoded them.
    Bytes(Vec<u8>),
    /// The chunk's bytes in a buffer of the cache's pool (see [`ChunkCache`]).
    Pooled(PoolBuf),
    /// A chunk that is not stored: the fill value (one element's bytes) everywhere.
    Fill(Vec<u8>),
}

impl Cached {
    /// The bytes held: the chunk's, or the fill value's one element.
    fn bytes(&self) -> &[u8] {
        match self {
            Cached::Bytes(b) | Cached::Fill(b) => b,
            Cached::Pooled(b) => b.bytes(),
        }
    }

    /// The memory held: the bytes, or the whole pooled buffer they lie in.
    fn held(&self) -> usize {
        match self {
            Cached::Pooled(b) => b.capacity(),
            other => other.bytes().len(),
        }
    }
}

/// A buffer of the chunk cache's pool: an anonymous mapping, faulted in whole, whose first `len`
/// bytes hold a chunk. A buffer serves any chunk of at most its size and at least two thirds of
/// it ([`PoolBuf::SERVES`]), and grows (the kernel moves the pages it has, and faults in only
/// the new ones) for a larger chunk when the pool has no buffer that large: chunks of several
/// sizes (100-day chunks of one variable, quarters of 500-day chunks of another) then share the
/// memory already faulted in, rather than each size mapping and zeroing its own.
#[derive(Debug)]
struct PoolBuf {
    map: memmap2::MmapMut,
    len: usize,
}

impl PoolBuf {
    /// The smallest part of a buffer a chunk may use, as a fraction (numerator, denominator): a
    /// larger buffer is left for a larger chunk.
    const SERVES: (usize, usize) = (2, 3);

    /// A new buffer of `len` bytes, faulted in.
    fn map(len: usize) -> std::io::Result<PoolBuf> {
        let map = memmap2::MmapOptions::new()
            .len(len.max(1))
            .populate()
            .map_anon()?;
        Ok(PoolBuf { map, len })
    }

    fn capacity(&self) -> usize {
        self.map.len()
    }

    /// Whether the buffer can hold a chunk of `len` bytes without growing, and is not much
    /// larger than it.
    fn serves(&self, len: usize) -> bool {
        let cap = self.capacity();
        cap >= len && cap.saturating_mul(Self::SERVES.0) <= len.saturating_mul(Self::SERVES.1)
    }

    /// Make the buffer `len` bytes long, growing it when it is smaller. On failure the buffer is
    /// unchanged (and still usable at its old size).
    fn resize(&mut self, len: usize) -> std::io::Result<()> {
        let old = self.capacity();
        if len > old {
            // SAFETY: the mapping is anonymous and owned by this buffer alone, and `&mut self`
            // guarantees that no slice of it is borrowed: moving it invalidates no reference.
            #[allow(unsafe_code)]
            unsafe {
                self.map
                    .remap(len, memmap2::RemapOptions::new().may_move(true))?;
            }
            // Fault in the new pages at once, as a new buffer is (best effort: on kernels
            // before 5.14 they are faulted in as the chunk is written).
            let _ = self
                .map
                .advise_range(memmap2::Advice::PopulateWrite, old, len - old);
        }
        self.len = len;
        Ok(())
    }

    fn bytes(&self) -> &[u8] {
        &self.map[..self.len]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map[..self.len]
    }
}

/// Of the `idle` buffers, the one to hold a chunk of `len` bytes: the smallest that serves it
/// as it is, else the largest of those smaller than it (to grow), else none.
fn pick_buffer(idle: &[PoolBuf], len: usize) -> Option<usize> {
    let fitting = idle
        .iter()
        .enumerate()
        .filter(|(_, b)| b.serves(len))
        .min_by_key(|(_, b)| b.capacity());
    let growing = || {
        idle.iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() < len)
            .max_by_key(|(_, b)| b.capacity())
    };
    fitting.or_else(growing).map(|(i, _)| i)
}

/// A run of values along the last dimension, where the chunk cache holds them.
#[derive(Debug, Clone, Copy)]
enum Row<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
    /// `n` times one value (a chunk that is not stored).
    Fill(f64, usize),
    /// Values of a chunk that is not decoded: only whether each is NaN is known, read from the
    /// byte planes of its Blosc frame (see [`PlaneSource`]).
    Planes(PlaneRow<'a>),
}

impl Row<'_> {
    fn len(&self) -> usize {
        match self {
            Row::F32(v) => v.len(),
            Row::F64(v) => v.len(),
            Row::Fill(_, n) => *n,
            Row::Planes(r) => r.len,
        }
    }

    /// Whether any value's NaN-ness is `nan`. For a [`Row::Planes`] row handed out first (its
    /// quick look), `false` may also mean "not known yet": the row is then handed out again.
    fn any_nan_is(&self, nan: bool) -> bool {
        match self {
            Row::F32(v) => v.iter().any(|x| x.is_nan() == nan),
            Row::F64(v) => v.iter().any(|x| x.is_nan() == nan),
            Row::Fill(x, n) => *n > 0 && x.is_nan() == nan,
            Row::Planes(r) => r.any_nan_is(nan),
        }
    }

    /// Whether each value is NaN, for rows whose values are not at hand.
    fn nan_flags(&self) -> Option<Vec<bool>> {
        match self {
            Row::Planes(r) => Some(r.src.nan_flags(r.start, r.len)),
            _ => None,
        }
    }

    /// Whether value `i` is NaN.
    fn is_nan(&self, i: usize) -> bool {
        match self {
            Row::F32(v) => v[i].is_nan(),
            Row::F64(v) => v[i].is_nan(),
            Row::Fill(x, _) => x.is_nan(),
            Row::Planes(r) => r.src.nan_flags(r.start + i, 1)[0],
        }
    }
}

/// Values `start .. start + len` of a chunk read through a [`PlaneSource`].
#[derive(Debug, Clone, Copy)]
struct PlaneRow<'a> {
    src: &'a PlaneSource<'a>,
    start: usize,
    len: usize,
    /// The first look: [`Row::any_nan_is`] answers from the most significant byte plane alone,
    /// `true` only when that settles it; when it does not, the row is handed out again.
    quick: bool,
}

impl PlaneRow<'_> {
    fn any_nan_is(&self, nan: bool) -> bool {
        if !self.quick {
            return self.src.nan_flags(self.start, self.len).contains(&nan);
        }
        // A value whose top byte, sign aside, is not all ones is finite, whatever the others.
        let (finite, maybe_nan) = self.src.top_byte(self.start, self.len);
        match (nan, finite, maybe_nan) {
            (false, true, _) => true,
            (true, _, false) | (false, false, false) => false,
            _ => {
                self.src.unresolved.set(true);
                false
            }
        }
    }
}

/// Whether the values of a Blosc frame are NaN, read from its byte planes (see
/// [`crate::blosc::Planes`]) without decoding the values: for little-endian floats the most
/// significant byte is the last plane. A float is NaN when its exponent bits are all ones and
/// its mantissa is not zero: the top byte (sign aside) tells most finite values apart; the next
/// byte settles the rest but infinities and NaNs whose mantissa lies in the low bytes, and only
/// for those are the low planes read. Planes are decompressed when first needed, for the two
/// blocks read last.
#[derive(Debug)]
struct PlaneSource<'a> {
    planes: crate::blosc::Planes<'a>,
    /// Bytes per value: 4 or 8.
    size: usize,
    state: std::cell::RefCell<PlaneState>,
    /// Set when a quick look could not decide (see [`PlaneRow::quick`]).
    unresolved: std::cell::Cell<bool>,
}

#[derive(Debug, Default)]
struct PlaneState {
    /// Blocks with their planes decompressed so far (`None`: not yet), the latest last.
    blocks: Vec<(usize, Vec<Option<Vec<u8>>>)>,
    scratch: Vec<u8>,
    spare: Vec<Vec<u8>>,
    /// The first stream that did not decompress.
    error: Option<String>,
}

/// Blocks whose planes a [`PlaneSource`] keeps: a row may span two.
const PLANE_BLOCKS_KEPT: usize = 2;

impl<'a> PlaneSource<'a> {
    fn new(planes: crate::blosc::Planes<'a>, size: usize) -> PlaneSource<'a> {
        PlaneSource {
            planes,
            size,
            state: std::cell::RefCell::new(PlaneState::default()),
            unresolved: std::cell::Cell::new(false),
        }
    }

    /// The bits of the second most significant byte that belong to the exponent, and those
    /// that belong to the mantissa.
    fn second_byte_masks(&self) -> (u8, u8) {
        if self.size == 4 {
            (0x80, 0x7f)
        } else {
            (0xf0, 0x0f)
        }
    }

    /// Call `f(block, from, to)` for the part of values `start .. start + len` in each block.
    fn segments(&self, start: usize, len: usize, mut f: impl FnMut(usize, usize, usize)) {
        let per = self.planes.block_values();
        let (mut i, end) = (start, start + len);
        while i < end {
            let b = i / per;
            let to = end.min((b + 1) * per);
            f(b, i - b * per, to - b * per);
            i = to;
        }
    }

    /// Make sure plane `p` of block `b` is decompressed; `false` after a failure (recorded).
    fn load(&self, st: &mut PlaneState, b: usize, p: usize) -> bool {
        if st.error.is_some() {
            return false;
        }
        let at = match st.blocks.iter().position(|(x, _)| *x == b) {
            Some(at) => at,
            None => {
                if st.blocks.len() >= PLANE_BLOCKS_KEPT {
                    let (_, old) = st.blocks.remove(0);
                    st.spare.extend(old.into_iter().flatten());
                }
                st.blocks.push((b, vec![None; self.size]));
                st.blocks.len() - 1
            }
        };
        if st.blocks[at].1[p].is_some() {
            return true;
        }
        let mut buf = st.spare.pop().unwrap_or_default();
        let PlaneState { scratch, error, .. } = st;
        match self.planes.plane(b, p, &mut buf, scratch) {
            Ok(()) => {
                st.blocks[at].1[p] = Some(buf);
                true
            }
            Err(e) => {
                *error = Some(e);
                false
            }
        }
    }

    /// Plane `p` of block `b`, loaded before.
    fn plane(st: &PlaneState, b: usize, p: usize) -> &[u8] {
        st.blocks
            .iter()
            .find(|(x, _)| *x == b)
            .and_then(|(_, planes)| planes[p].as_deref())
            .unwrap_or(&[])
    }

    /// For values `start .. start + len`, from their top bytes: whether any is finite for
    /// certain, and whether any may be NaN.
    fn top_byte(&self, start: usize, len: usize) -> (bool, bool) {
        let top = self.size - 1;
        let mut guard = self.state.borrow_mut();
        let st: &mut PlaneState = &mut guard;
        let (mut finite, mut maybe_nan) = (false, false);
        self.segments(start, len, |b, from, to| {
            if !self.load(st, b, top) {
                return;
            }
            let hi = &Self::plane(st, b, top)[from..to];
            finite |= hi.iter().any(|x| x & 0x7f != 0x7f);
            maybe_nan |= hi.iter().any(|x| x & 0x7f == 0x7f);
        });
        (finite, maybe_nan)
    }

    /// Whether each of values `start .. start + len` is NaN.
    fn nan_flags(&self, start: usize, len: usize) -> Vec<bool> {
        let top = self.size - 1;
        let (exp, man) = self.second_byte_masks();
        let mut out = Vec::with_capacity(len);
        let mut guard = self.state.borrow_mut();
        let st: &mut PlaneState = &mut guard;
        self.segments(start, len, |b, from, to| {
            let n = to - from;
            if !self.load(st, b, top) {
                out.resize(out.len() + n, false);
                return;
            }
            let maybe = |hi: u8| hi & 0x7f == 0x7f;
            if !Self::plane(st, b, top)[from..to].iter().any(|x| maybe(*x)) {
                out.resize(out.len() + n, false);
                return;
            }
            if !self.load(st, b, top - 1) {
                out.resize(out.len() + n, false);
                return;
            }
            // Exponent all ones, and no mantissa bit in the second byte: an infinity, or a NaN
            // whose mantissa lies lower.
            let (hi, next) = (
                &Self::plane(st, b, top)[from..to],
                &Self::plane(st, b, top - 1)[from..to],
            );
            let low_needed = hi
                .iter()
                .zip(next)
                .any(|(h, m)| maybe(*h) && m & exp == exp && m & man == 0);
            if low_needed && !(0..top - 1).all(|p| self.load(st, b, p)) {
                out.resize(out.len() + n, false);
                return;
            }
            let (hi, next) = (
                &Self::plane(st, b, top)[from..to],
                &Self::plane(st, b, top - 1)[from..to],
            );
            for i in 0..n {
                let (h, m) = (hi[i], next[i]);
                let nan = maybe(h)
                    && m & exp == exp
                    && (m & man != 0
                        || (low_needed
                            && (0..top - 1).any(|p| Self::plane(st, b, p)[from + i] != 0)));
                out.push(nan);
            }
        });
        out
    }

    /// Why a stream did not decompress, if one did not.
    fn error(&self) -> Option<String> {
        self.state.borrow().error.clone()
    }
}

/// A decoded chunk, or why it could not be decoded, computed once however many ask at once:
/// the first worker to claim the slot decodes; the others wait for it, or decode a chunk needed
/// soon meanwhile.
#[derive(Default)]
struct Slot {
    claimed: std::sync::atomic::AtomicBool,
    value: OnceLock<std::result::Result<Arc<Cached>, String>>,
}

type ChunkSlot = Arc<Slot>;

impl Slot {
    /// Claim the decoding of this chunk: `true` for the one caller that gets it.
    fn claim(&self) -> bool {
        !self.claimed.swap(true, std::sync::atomic::Ordering::AcqRel)
    }
}

/// How many tasks ahead of the latest one started a worker may look for a chunk to decode while
/// the chunk it needs is being decoded by another.
const AHEAD_TASKS: usize = 64;

#[derive(Default)]
struct CacheState {
    /// Slot, last use (tick), expected decoded size.
    map: HashMap<ChunkKey, (ChunkSlot, u64, usize)>,
    bytes: usize,
    tick: u64,
    /// For the pass under way: the (sorted) positions of the tasks that read each chunk.
    uses: HashMap<ChunkKey, Vec<usize>>,
    /// For the pass under way: the chunks some task reads the values of (the others are only
    /// asked which values are NaN).
    full: std::collections::HashSet<ChunkKey>,
    /// The position of the latest task started.
    position: usize,
    /// The tasks started and not yet finished (a task that never reports its end stays here,
    /// which only keeps its chunks longer).
    running: std::collections::BTreeSet<usize>,
    /// The first task not started yet, and the tasks after it that have started: workers take
    /// tasks in order but may report their start out of order.
    unstarted: usize,
    started_ahead: std::collections::BTreeSet<usize>,
    /// For the pass under way: the chunks each task reads.
    needs: Vec<Vec<Needed>>,
    /// Tasks below this position have had their files announced to the kernel.
    prefetched: usize,
    /// The files announced in the pass under way: each once, however many tasks read it (a
    /// repeated `posix_fadvise` walks the file's cached pages again).
    announced: std::collections::HashSet<std::path::PathBuf>,
    /// Files announced so far, over all passes.
    announcements: usize,
    /// Buffers of evicted chunks, oldest first, for the next chunks (see [`pick_buffer`]).
    idle: Vec<PoolBuf>,
    /// Idle buffers set aside for chunks about to be decoded into them.
    reserved: HashMap<ChunkKey, PoolBuf>,
    /// The expected size of the largest chunk asked for so far: the pool's slack.
    largest: usize,
}

/// The bytes an entry holds, or will hold once decoded.
fn entry_size((slot, _, expected): &(ChunkSlot, u64, usize)) -> usize {
    match slot.value.get() {
        Some(Ok(v)) => v.held(),
        Some(Err(_)) => 0,
        None => *expected,
    }
}

impl CacheState {
    /// The position of the next task that reads `key`, if any (`usize::MAX` when none).
    fn next_use(&self, key: &ChunkKey) -> usize {
        self.uses.get(key).map_or(usize::MAX, |u| {
            let i = u.partition_point(|p| *p < self.position);
            u.get(i).copied().unwrap_or(usize::MAX)
        })
    }

    /// Whether the scheduled pass reads `key` and has finished every task that does. A chunk it
    /// does not list (left by an earlier pass for a later one, or read by a reduction computed
    /// within a task) is not: it leaves only when room is needed.
    fn done_with(&self, key: &ChunkKey) -> bool {
        if self.needs.is_empty() {
            return false;
        }
        // Below the lowest task running or not started, all have finished.
        let low = self
            .running
            .first()
            .map_or(self.unstarted, |r| (*r).min(self.unstarted));
        self.uses
            .get(key)
            .and_then(|u| u.last())
            .is_some_and(|last| *last < low)
    }

    /// Take out of the pool the oldest idle buffers until they, the buffers reserved for chunks
    /// about to be decoded and the decoded chunks fit in `limit` plus the largest chunk asked
    /// for so far. A chunk being decoded into a newly mapped buffer (no idle one could hold it)
    /// is not counted: there are at most as many as workers.
    ///
    /// The one chunk of slack lets chunks of different sizes take turns (a 500-day chunk of one
    /// variable among 100-day chunks of others) in memory already faulted in: without it, the
    /// small buffers freed for a large chunk would be released just before the next small
    /// chunks need them, and the large one just before the next large chunk.
    fn trim_idle(&mut self, limit: usize) -> Vec<PoolBuf> {
        let limit = limit.saturating_add(self.largest);
        let decoded: usize = self
            .map
            .values()
            .filter(|e| e.0.value.get().is_some())
            .map(entry_size)
            .sum();
        let reserved: usize = self.reserved.values().map(PoolBuf::capacity).sum();
        let mut idle: usize = self.idle.iter().map(PoolBuf::capacity).sum();
        let mut released = Vec::new();
        while !self.idle.is_empty() && decoded + reserved + idle > limit {
            // The oldest of the size most idle buffers have: one buffer of each size stays as
            // long as possible, for the next chunk of that size.
            let count = |len: usize| self.idle.iter().filter(|b| b.capacity() == len).count();
            let most = self
                .idle
                .iter()
                .map(|b| count(b.capacity()))
                .max()
                .unwrap_or(0);
            let i = self
                .idle
                .iter()
                .position(|b| count(b.capacity()) == most)
                .unwrap_or(0);
            let buf = self.idle.remove(i);
            idle -= buf.capacity();
            released.push(buf);
        }
        released
    }

    /// Set aside an idle buffer for chunk `key` of `array`, just inserted, when the chunk will be
    /// decoded into one: trimming the pool then cannot release it before the decode takes it.
    fn reserve(&mut self, key: &ChunkKey, array: &ZarrArray) {
        let Some(len) = array.unit_len() else {
            return;
        };
        if self.reserved.contains_key(key) {
            return;
        }
        if let Some(i) = pick_buffer(&self.idle, len) {
            let buf = self.idle.remove(i);
            self.reserved.insert(key.clone(), buf);
        }
    }

    /// Insert an empty slot for `key` (a chunk of `array`), counting its expected size.
    fn insert(&mut self, key: &ChunkKey, array: &ZarrArray) -> ChunkSlot {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.map.entry(key.clone()).or_insert_with(|| {
            let expected = expected_size(array, &key.1);
            (Arc::new(Slot::default()), tick, expected)
        });
        // The pool's slack is the largest chunk the cache has been asked for, known before
        // room is made for it.
        self.largest = self.largest.max(entry.2);
        entry.1 = tick;
        entry.0.clone()
    }

    /// Whether the chunk of `n` will be read by byte planes rather than decoded: a task asks
    /// only which of its values are NaN, no task of the pass reads its values, and it is not
    /// cached already.
    fn by_planes(&self, n: &Needed) -> bool {
        n.nan_only_direct() && self.planes_serve(&n.key)
    }

    /// Whether no task of the pass reads the values of chunk `key` and it is not cached.
    fn planes_serve(&self, key: &ChunkKey) -> bool {
        !self.full.contains(key) && !self.map.contains_key(key)
    }

    /// A chunk of the scheduled tasks just ahead that is neither cached nor being decoded, and
    /// that fits in `limit` without evicting a chunk needed before it.
    fn next_to_decode_ahead(&mut self, limit: usize) -> Option<(ChunkKey, Arc<ZarrArray>)> {
        let from = self.position;
        let to = (from + AHEAD_TASKS).min(self.needs.len());
        let (key, array) = self
            .needs
            .get(from..to)?
            .iter()
            .flatten()
            .find(|n| n.array.is_some() && !self.map.contains_key(&n.key) && !self.by_planes(n))
            .and_then(|n| Some((n.key.clone(), n.array.clone()?)))?;
        self.bytes = self.map.values().map(entry_size).sum();
        let wanted = (self.bytes + expected_size(&array, &key.1)).saturating_sub(limit);
        if wanted > 0 {
            let soon = self.next_use(&key);
            let freeable: usize = self
                .map
                .iter()
                .filter(|(k, e)| e.0.value.get().is_some() && self.next_use(k) > soon)
                .map(|(_, e)| entry_size(e))
                .sum();
            if freeable < wanted {
                return None;
            }
        }
        Some((key, array))
    }
}

/// The pooled buffer of an evicted entry, when nothing else holds the chunk any more.
fn pooled_buffer(slot: ChunkSlot) -> Option<PoolBuf> {
    let value = Arc::try_unwrap(slot).ok()?.value.into_inner()?.ok()?;
    match Arc::try_unwrap(value).ok()? {
        Cached::Pooled(buf) => Some(buf),
        _ => None,
    }
}

/// The decoded size of chunk `idx` of `array`, in bytes.
fn expected_size(array: &ZarrArray, idx: &[u64]) -> usize {
    array.unit_bytes(idx)
}

impl std::fmt::Debug for ChunkCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkCache")
            .field("limit", &self.limit)
            .finish()
    }
}

impl ChunkCache {
    /// A cache holding at most `limit` bytes of decoded chunks.
    #[must_use]
    pub fn new(limit: usize) -> ChunkCache {
        ChunkCache {
            limit,
            state: Mutex::default(),
            decoded: std::sync::atomic::AtomicU64::new(0),
            mapped: std::sync::atomic::AtomicU64::new(0),
            frames: Mutex::default(),
        }
    }

    /// Announce the pass to come: task `i` of it reads the chunks `needs[i]`. Eviction then
    /// drops the cached chunk whose next use is farthest away (or that no task will read again),
    /// instead of the least recently used one. Clears any earlier schedule.
    ///
    /// Local chunk files of the next tasks are announced to the kernel (`posix_fadvise`
    /// `WILLNEED`) as the pass goes, so that reading them from disk overlaps computing; and a
    /// worker whose chunk is being decoded by another decodes one the next tasks need instead of
    /// waiting idle.
    ///
    /// Returns `false`, changing nothing, when a schedule is already set (a pass nested in
    /// another keeps the outer one's).
    pub fn set_schedule(&self, needs: Vec<Vec<Needed>>) -> bool {
        let mut uses: HashMap<ChunkKey, Vec<usize>> = HashMap::new();
        let mut full = std::collections::HashSet::new();
        for (i, keys) in needs.iter().enumerate() {
            for n in keys {
                if n.values {
                    full.insert(n.key.clone());
                }
                let list = uses.entry(n.key.clone()).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        let Ok(mut st) = self.state.lock() else {
            return false;
        };
        if !st.needs.is_empty() {
            return false;
        }
        let largest = Self::largest_task_bytes(&needs);
        if largest > self.limit {
            tracing::warn!(
                "the memory limit ({} MiB) is below the {} MiB of decoded input chunks one task \
                 reads: chunks will be decoded again and again; raise --memory-limit",
                self.limit >> 20,
                largest.div_ceil(1 << 20)
            );
        }
        st.uses = uses;
        st.full = full;
        st.needs = needs;
        st.position = 0;
        st.prefetched = 0;
        st.announced.clear();
        st.running.clear();
        st.unstarted = 0;
        st.started_ahead.clear();
        true
    }

    /// The most bytes of decoded chunks any one task of `needs` reads (chunks whose array is
    /// known): the least cache in which no task evicts its own chunks.
    #[must_use]
    pub fn largest_task_bytes(needs: &[Vec<Needed>]) -> usize {
        needs
            .iter()
            .map(|task| {
                let mut seen: Vec<&ChunkKey> = Vec::new();
                task.iter()
                    .filter_map(|n| {
                        if n.nan_only_direct() {
                            return None;
                        }
                        let array = n.array.as_ref()?;
                        if seen.contains(&&n.key) {
                            return None;
                        }
                        seen.push(&n.key);
                        Some(expected_size(array, &n.key.1))
                    })
                    .sum::<usize>()
            })
            .max()
            .unwrap_or(0)
    }

    /// Task `i` of the scheduled pass has started.
    pub fn started(&self, i: usize) {
        let files: Vec<std::path::PathBuf> = {
            let Ok(mut st) = self.state.lock() else {
                return;
            };
            st.position = st.position.max(i);
            st.running.insert(i);
            if i == st.unstarted {
                st.unstarted += 1;
                while st.started_ahead.first() == Some(&st.unstarted) {
                    st.started_ahead.pop_first();
                    st.unstarted += 1;
                }
            } else if i > st.unstarted {
                st.started_ahead.insert(i);
            }
            let from = st.prefetched.max(i);
            let to = (i + PREFETCH_TASKS).min(st.needs.len());
            if from >= to {
                return;
            }
            st.prefetched = to;
            let mut files: Vec<std::path::PathBuf> = st.needs[from..to]
                .iter()
                .flatten()
                .filter(|n| !st.map.contains_key(&n.key))
                .filter_map(|n| n.path.clone())
                .collect();
            // Neighbouring tasks read the same chunks: announce each file once.
            files.sort_unstable();
            files.dedup();
            files.retain(|f| !st.announced.contains(f));
            st.announced.extend(files.iter().cloned());
            st.announcements += files.len();
            files
        };
        for f in files {
            advise_will_need(&f);
        }
    }

    /// Task `i` of the scheduled pass has finished: the chunks that only it and earlier tasks
    /// read are no longer needed in this pass (see [`ChunkCache::evict`]).
    pub fn finished(&self, i: usize) {
        if let Ok(mut st) = self.state.lock() {
            st.running.remove(&i);
        }
    }

    /// Forget the schedule (eviction is least recently used again).
    pub fn clear_schedule(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.uses.clear();
            st.full.clear();
            st.needs.clear();
            st.running.clear();
            st.unstarted = 0;
            st.started_ahead.clear();
            st.position = 0;
            st.prefetched = 0;
            st.announced.clear();
        }
        if let Ok(mut frames) = self.frames.lock() {
            frames.clear();
        }
    }

    /// How many chunks have been decoded (a chunk decoded twice, after eviction, counts twice).
    #[must_use]
    pub fn decoded(&self) -> u64 {
        self.decoded.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many buffers for decoded chunks have been newly mapped rather than taken from the
    /// pool.
    #[must_use]
    pub fn buffers_mapped(&self) -> u64 {
        self.mapped.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn poisoned() -> Error {
        Error::Other("chunk cache poisoned".into())
    }

    fn chunk(&self, array: &ZarrArray, idx: &[u64]) -> Result<Arc<Cached>> {
        let key = (array.location(), idx.to_vec());
        let slot = {
            let mut st = self.state.lock().map_err(|_| Self::poisoned())?;
            let fresh = !st.map.contains_key(&key);
            let slot = st.insert(&key, array);
            let released = if fresh {
                // Room for the decoded chunk is made before decoding it, so that the cache and
                // the chunks being decoded stay within the limit together.
                let released = self.evict(&mut st, &key);
                st.reserve(&key, array);
                released
            } else {
                Vec::new()
            };
            drop(st);
            drop(released);
            slot
        };
        let value = loop {
            if let Some(v) = slot.value.get() {
                break v.clone();
            }
            if slot.claim() {
                break self.decode(&slot, array, &key).clone();
            }
            // Another worker is decoding this chunk: decode one needed soon meanwhile, or wait
            // (`get_or_init` blocks while another thread initialises the slot).
            if !self.decode_ahead()? {
                break self.decode(&slot, array, &key).clone();
            }
        }
        .map_err(Error::Other)?;
        let mut st = self.state.lock().map_err(|_| Self::poisoned())?;
        let released = self.evict(&mut st, &key);
        drop(st);
        drop(released);
        Ok(value)
    }

    /// Decode chunk `key` of `array` into `slot`, which the caller has claimed.
    fn decode<'a>(
        &self,
        slot: &'a Slot,
        array: &ZarrArray,
        key: &ChunkKey,
    ) -> &'a std::result::Result<Arc<Cached>, String> {
        slot.value.get_or_init(|| {
            self.decoded
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if std::env::var_os("CUBEFORGE_TRACE_CHUNKS").is_some() {
                eprintln!("decode {} {:?}", key.0, key.1);
            }
            if let Some(len) = array.unit_len() {
                let encoded = match array.read_encoded(&array.unit_chunk(&key.1).0) {
                    Ok(Some(encoded)) => encoded,
                    Ok(None) => {
                        self.release_reservation(key);
                        return Ok(Arc::new(Cached::Fill(array.fill_bytes())));
                    }
                    Err(e) => {
                        self.release_reservation(key);
                        return Err(e.to_string());
                    }
                };
                let mut buf = self.take_buffer(key, len)?;
                return match array.decode_unit_into(&key.1, &encoded, buf.bytes_mut()) {
                    Ok(()) => Ok(Arc::new(Cached::Pooled(buf))),
                    Err(e) => {
                        self.give_back(buf);
                        Err(e.to_string())
                    }
                };
            }
            match array.read_chunk_if_exists(&key.1) {
                Ok(Some(bytes)) => Ok(Arc::new(Cached::Bytes(bytes))),
                Ok(None) => Ok(Arc::new(Cached::Fill(array.fill_bytes()))),
                Err(e) => Err(e.to_string()),
            }
        })
    }

    /// A buffer of `len` bytes for chunk `key`, about to be decoded: the one reserved for it,
    /// else an idle one from the pool (see [`pick_buffer`]; grown when smaller), else a new
    /// anonymous mapping. Idle buffers beyond what the limit leaves room for are released.
    fn take_buffer(&self, key: &ChunkKey, len: usize) -> std::result::Result<PoolBuf, String> {
        let (found, released) = {
            let mut st = self
                .state
                .lock()
                .map_err(|_| "chunk cache poisoned".to_string())?;
            let found = match st.reserved.remove(key) {
                Some(buf) if buf.serves(len) || buf.capacity() < len => Some(buf),
                other => {
                    if let Some(buf) = other {
                        st.idle.push(buf);
                    }
                    pick_buffer(&st.idle, len).map(|i| st.idle.remove(i))
                }
            };
            let released = st.trim_idle(self.limit);
            (found, released)
        };
        drop(released);
        let trace = std::env::var_os("CUBEFORGE_TRACE_CHUNKS").is_some();
        if let Some(mut buf) = found {
            let from = buf.capacity();
            match buf.resize(len) {
                Ok(()) => {
                    if trace && from < len {
                        eprintln!("grow {from} to {len} for {} {:?}", key.0, key.1);
                    }
                    return Ok(buf);
                }
                // The pool keeps the buffer; the chunk gets a new one.
                Err(_) => self.give_back(buf),
            }
        }
        self.mapped
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if trace {
            eprintln!("map {len} for {} {:?}", key.0, key.1);
        }
        PoolBuf::map(len)
            .map_err(|e| format!("cannot allocate {len} bytes for a decoded chunk: {e}"))
    }

    /// Return the buffer reserved for chunk `key` to the pool (the chunk is not stored, or
    /// could not be read).
    fn release_reservation(&self, key: &ChunkKey) {
        if let Ok(mut st) = self.state.lock() {
            if let Some(buf) = st.reserved.remove(key) {
                st.idle.push(buf);
            }
        }
    }

    /// Return an unused buffer to the pool.
    fn give_back(&self, buf: PoolBuf) {
        if let Ok(mut st) = self.state.lock() {
            st.idle.push(buf);
        }
    }

    /// Decode a chunk that the next scheduled tasks read and that is neither cached nor being
    /// decoded, if there is one and room for it. Returns whether one was decoded.
    fn decode_ahead(&self) -> Result<bool> {
        let (slot, array, key) = {
            let mut st = self.state.lock().map_err(|_| Self::poisoned())?;
            let Some((key, array)) = st.next_to_decode_ahead(self.limit) else {
                return Ok(false);
            };
            let slot = st.insert(&key, &array);
            let released = self.evict(&mut st, &key);
            st.reserve(&key, &array);
            drop(st);
            drop(released);
            (slot, array, key)
        };
        if slot.claim() {
            // A failure is kept in the slot and reported to the task that reads the chunk.
            let _ = self.decode(&slot, &array, &key);
        }
        Ok(true)
    }

    /// Evict decoded chunks other than `keep` until the cache (decoded chunks, plus the expected
    /// size of those being decoded) is within the limit: first the chunk needed again last (or
    /// never) by the scheduled pass, then the least recently used.
    ///
    /// The buffers of evicted chunks go to the pool; returned are those the pool cannot keep
    /// within the limit, to be released once the lock is let go.
    #[must_use]
    fn evict(&self, st: &mut CacheState, keep: &ChunkKey) -> Vec<PoolBuf> {
        // Chunks the pass is done with, and that nobody is reading, go back to the pool at once:
        // the next chunks are decoded into memory already faulted in, and the pool stays as
        // small as the pass allows rather than growing to the limit.
        {
            let done: Vec<ChunkKey> = st
                .map
                .iter()
                .filter(|(k, (slot, _, _))| {
                    *k != keep
                        && Arc::strong_count(slot) == 1
                        && matches!(slot.value.get(), Some(Ok(v)) if Arc::strong_count(v) == 1)
                        && st.done_with(k)
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in done {
                if let Some(entry) = st.map.remove(&k) {
                    if let Some(buf) = pooled_buffer(entry.0) {
                        st.idle.push(buf);
                    }
                }
            }
        }
        st.bytes = st.map.values().map(entry_size).sum();
        while st.bytes > self.limit && st.map.len() > 1 {
            let victim = st
                .map
                .iter()
                .filter(|(k, (c, _, _))| *k != keep && c.value.get().is_some())
                .max_by_key(|(k, (_, t, _))| (st.next_use(k), std::cmp::Reverse(*t)))
                .map(|(k, _)| k.clone());
            let Some(victim) = victim else {
                break;
            };
            if let Some(entry) = st.map.remove(&victim) {
                st.bytes -= entry_size(&entry);
                if let Some(buf) = pooled_buffer(entry.0) {
                    st.idle.push(buf);
                }
            }
        }
        st.trim_idle(self.limit)
    }

    /// Call `f(offset, row)` for every run along the last dimension of the region `window` of
    /// a float array, read where the cache holds it (see [`Node::visit_rows`]).
    fn visit_rows(
        &self,
        array: &ZarrArray,
        window: &Window,
        f: &mut dyn FnMut(usize, Row<'_>),
    ) -> Result<()> {
        let start: Vec<u64> = window.iter().map(|r| r.start).collect();
        let shape: Vec<u64> = window.iter().map(|r| r.end - r.start).collect();
        if shape.iter().product::<u64>() == 0 {
            return Ok(());
        }
        let f32s = array.dtype() == DType::Float32;
        for (idx, cs) in array.units_in(&start, &shape)? {
            if self.visit_planes(array, &idx, &cs, &start, &shape, f)? {
                continue;
            }
            let cached = self.chunk(array, &idx)?;
            let bytes = match &*cached {
                Cached::Fill(elem) => {
                    let v = array.dtype().element_to_f64(elem);
                    crate::zarr::overlap_rows(cs.shape(), cs.start(), &shape, &start, |_, o, n| {
                        f(o, Row::Fill(v, n));
                    });
                    continue;
                }
                stored => stored.bytes(),
            };
            crate::zarr::overlap_rows(cs.shape(), cs.start(), &shape, &start, |so, o, n| {
                if f32s {
                    let b = &bytes[so * 4..(so + n) * 4];
                    match bytemuck::try_cast_slice::<u8, f32>(b) {
                        Ok(v) => f(o, Row::F32(v)),
                        Err(_) => {
                            let v: Vec<f32> = bytemuck::pod_collect_to_vec(b);
                            f(o, Row::F32(&v));
                        }
                    }
                } else {
                    let b = &bytes[so * 8..(so + n) * 8];
                    match bytemuck::try_cast_slice::<u8, f64>(b) {
                        Ok(v) => f(o, Row::F64(v)),
                        Err(_) => {
                            let v: Vec<f64> = bytemuck::pod_collect_to_vec(b);
                            f(o, Row::F64(&v));
                        }
                    }
                }
            });
        }
        Ok(())
    }

    /// The stored bytes of `chunk` of `array`, for reading by byte planes; `None` when it is not
    /// stored.
    fn frame(&self, array: &ZarrArray, chunk: &[u64]) -> Result<Option<zarrs_storage::Bytes>> {
        let key = (array.location(), chunk.to_vec());
        if let Some((_, bytes)) = self
            .frames
            .lock()
            .map_err(|_| Self::poisoned())?
            .iter()
            .find(|(k, _)| *k == key)
        {
            return Ok(Some(bytes.clone()));
        }
        let Some(bytes) = array.read_encoded_sparse(chunk)? else {
            return Ok(None);
        };
        let mut frames = self.frames.lock().map_err(|_| Self::poisoned())?;
        if frames.len() >= FRAMES_KEPT {
            frames.remove(0);
        }
        frames.push((key, bytes.clone()));
        Ok(Some(bytes))
    }

    /// Visit the rows of unit `idx` (of region `cs`) within the region `start .. start + shape`
    /// as [`Row::Planes`], when the pass asks only which of its values are NaN (see
    /// [`CacheState::by_planes`]) and its chunk is a Blosc frame that [`crate::blosc::Planes`]
    /// reads. Every row is handed out for a quick look, and those it did not settle again.
    /// `Ok(false)`, having visited nothing, when the unit is to be read through the cache.
    fn visit_planes(
        &self,
        array: &ZarrArray,
        idx: &[u64],
        cs: &zarrs::array::ArraySubset,
        start: &[u64],
        shape: &[u64],
        f: &mut dyn FnMut(usize, Row<'_>),
    ) -> Result<bool> {
        let Some(unit_len) = array.unit_len().filter(|_| cfg!(target_endian = "little")) else {
            return Ok(false);
        };
        let size = array.dtype().size();
        let key = (array.location(), idx.to_vec());
        {
            let st = self.state.lock().map_err(|_| Self::poisoned())?;
            if !st.uses.contains_key(&key) || !st.planes_serve(&key) {
                return Ok(false);
            }
        }
        let (chunk, part) = array.unit_chunk(idx);
        let Some(encoded) = self.frame(array, &chunk)? else {
            return Ok(false);
        };
        let frame = array.trimmed_blosc_frame(&encoded).unwrap_or(&encoded);
        let Some(planes) = crate::blosc::Planes::parse(frame, size) else {
            return Ok(false);
        };
        if Some(planes.values() * size) != array.direct_chunk_len() {
            return Ok(false);
        }
        let base = usize::try_from(part).unwrap_or(0) * (unit_len / size);
        let src = PlaneSource::new(planes, size);
        let mut again: Vec<(usize, usize, usize)> = Vec::new();
        crate::zarr::overlap_rows(cs.shape(), cs.start(), shape, start, |so, o, n| {
            src.unresolved.set(false);
            let row = PlaneRow {
                src: &src,
                start: base + so,
                len: n,
                quick: true,
            };
            f(o, Row::Planes(row));
            if src.unresolved.get() {
                again.push((so, o, n));
            }
        });
        for (so, o, n) in again {
            let row = PlaneRow {
                src: &src,
                start: base + so,
                len: n,
                quick: false,
            };
            f(o, Row::Planes(row));
        }
        match src.error() {
            None => Ok(true),
            Some(reason) => Err(array.corrupt(&chunk, reason)),
        }
    }

    /// Call `f(chunk_subset, chunk)` for every chunk of `array` that the region
    /// `start .. start + shape` overlaps, in grid order, each read through the cache.
    fn for_each_chunk(
        &self,
        array: &ZarrArray,
        start: &[u64],
        shape: &[u64],
        mut f: impl FnMut(&zarrs::array::ArraySubset, &Cached),
    ) -> Result<()> {
        if shape.iter().product::<u64>() == 0 {
            return Ok(());
        }
        for (idx, cs) in array.units_in(start, shape)? {
            f(&cs, &*self.chunk(array, &idx)?);
        }
        Ok(())
    }

    /// Read a region of an array through the cache.
    ///
    /// # Errors
    /// Read and decode errors naming the chunk.
    pub fn read_region(
        &self,
        array: &ZarrArray,
        start: &[u64],
        shape: &[u64],
    ) -> Result<crate::dtype::RawArray> {
        let esize = array.dtype().size();
        let total: u64 = shape.iter().product();
        let mut out = vec![0u8; usize::try_from(total).unwrap_or(0) * esize];
        self.read_region_into(array, start, shape, &mut out, shape)?;
        Ok(crate::dtype::RawArray {
            dtype: array.dtype(),
            shape: shape.to_vec(),
            bytes: out,
        })
    }

    /// Read a region of an array through the cache into `out` (C order, native endian), a
    /// buffer of shape `layout` (each dimension at least the region's) that holds the region at
    /// the start of each dimension; the rest of `out` is left as it is.
    ///
    /// # Errors
    /// Read and decode errors naming the chunk.
    pub fn read_region_into(
        &self,
        array: &ZarrArray,
        start: &[u64],
        shape: &[u64],
        out: &mut [u8],
        layout: &[u64],
    ) -> Result<()> {
        let esize = array.dtype().size();
        self.for_each_chunk(array, start, shape, |cs, cached| match cached {
            Cached::Fill(elem) => {
                crate::zarr::fill_region_in(elem, cs.shape(), cs.start(), out, shape, start, layout)
            }
            stored => crate::zarr::copy_region_in(
                stored.bytes(),
                cs.shape(),
                cs.start(),
                out,
                shape,
                start,
                layout,
                esize,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Zarr v2 group in a fresh memory store.
    fn memory_group(url: &str) -> crate::store::Store {
        let store = crate::store::Store::open_str(url).expect("memory store");
        put_key(&store, ".zgroup", br#"{"zarr_format": 2}"#.to_vec());
        store
    }

    fn put_key(store: &crate::store::Store, key: &str, bytes: Vec<u8>) {
        let k = zarrs_storage::StoreKey::new(key).expect("key");
        store.storage().set(&k, bytes.into()).expect("set");
    }

    /// The first array of the group at the root of `store`.
    fn first_array(store: &crate::store::Store) -> ZarrArray {
        let listing = crate::zarr::list_group(store, "").expect("listing");
        ZarrArray::open(store, &listing.arrays[0]).expect("array")
    }

    fn along(dim: &str, vals: Vec<f64>, vtype: VType) -> NodeRef {
        let n = vals.len() as u64;
        Node::new(
            Op::Along {
                dim: dim.into(),
                values: Arc::new(vals),
            },
            vec![dim.into()],
            vec![n],
            vtype,
        )
    }

    #[test]
    fn recycled_buffers_are_reused_by_size() {
        let mut pool = vec![vec![1f32; 8], vec![2f32; 4], Vec::with_capacity(16)];
        // The one of the right length, as it is.
        assert_eq!(reuse(&mut pool, 4), vec![2f32; 4]);
        // Else the smallest large enough, resized.
        let v = reuse(&mut pool, 6);
        assert_eq!((v.len(), v.capacity() >= 6), (6, true));
        assert_eq!(pool.len(), 1);
        // None large enough: a new one.
        assert_eq!(reuse(&mut pool, 32), vec![0f32; 32]);
        assert_eq!(pool.len(), 1);
        // A worker keeps a few.
        for _ in 0..10 {
            recycle(Data::F32(vec![0.0; 3]));
        }
        RECYCLED_F32.with(|r| assert_eq!(r.borrow().len(), RECYCLED_KEPT));
    }

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
                result: OnceLock::new(),
            },
            &["y", "x"],
            vec![3, 4],
        );
        assert!(reduced.value_dims().is_empty());
        // A source varies along all its dimensions.
        let source = Node::new(
            Op::Source {
                array: Arc::new(memory_array("plan-value-dims", 3)),
                decoding: Box::new(
                    CfDecoding::from_attrs(&serde_json::Map::new(), DType::Float32, None)
                        .expect("decoding"),
                ),
                cache: Arc::new(ChunkCache::new(1 << 20)),
            },
            dims(&["a"]),
            vec![3],
            VType::F32,
        );
        assert_eq!(source.value_dims(), dims(&["a"]));
    }

    #[test]
    fn broadcasts_by_dimension_name() {
        let a = along("x", vec![1.0, 2.0], VType::F64);
        let b = along("y", vec![10.0, 20.0, 30.0], VType::F64);
        let s = Node::new(
            Op::Binary(BinOp::Add, a, b),
            vec!["x".into(), "y".into()],
            vec![2, 3],
            VType::F64,
        );
        let out = s.eval(&vec![0..2, 0..3]).unwrap();
        assert_eq!(
            out.data,
            Data::F64(vec![11.0, 21.0, 31.0, 12.0, 22.0, 32.0])
        );
        let part = s.eval(&vec![1..2, 1..3]).unwrap();
        assert_eq!(part.data, Data::F64(vec![22.0, 32.0]));
    }

    #[test]
    fn broadcast_fast_paths_agree_with_the_general_one() {
        let b = Block {
            dims: vec!["y".into(), "x".into()],
            shape: vec![2, 2],
            data: Data::F64(vec![1.0, 2.0, 3.0, 4.0]),
        };
        let dims = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        // trailing: repeated along t
        assert_eq!(
            b.expand(&dims(&["t", "y", "x"]), &[2, 2, 2]),
            Data::F64(vec![1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0])
        );
        // leading: each element repeated along t
        assert_eq!(
            b.expand(&dims(&["y", "x", "t"]), &[2, 2, 2]),
            Data::F64(vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0])
        );
        // general: a transpose
        assert_eq!(
            b.expand(&dims(&["x", "y"]), &[2, 2]),
            Data::F64(vec![1.0, 3.0, 2.0, 4.0])
        );
    }

    #[test]
    fn scalar_operands_agree_with_broadcast_ones() {
        let x = Data::F32(vec![1.0, f32::NAN, 3.0, -2.0]);
        let c = Data::F32(vec![2.0]);
        let c4 = Data::F32(vec![2.0; 4]);
        for op in [BinOp::Add, BinOp::Div, BinOp::Lt, BinOp::Eq] {
            let out = if op.is_comparison() {
                VType::Bool
            } else {
                VType::F32
            };
            let (tx, tc) = (VType::F32, VType::F32);
            // compared as text, where NaN equals NaN
            assert_eq!(
                format!("{:?}", binary(op, &x, &c, tx, tc, out, 4)),
                format!("{:?}", binary(op, &x, &c4, tx, tc, out, 4))
            );
            assert_eq!(
                format!("{:?}", binary(op, &c, &x, tc, tx, out, 4)),
                format!("{:?}", binary(op, &c4, &x, tc, tx, out, 4))
            );
        }
        let cond = [true, false, false, true];
        let nan = Data::F32(vec![f32::NAN]);
        let Data::F32(v) = select(&cond, x.clone(), &nan) else {
            panic!("type changed")
        };
        assert_eq!(v[0].to_bits(), 1f32.to_bits());
        assert!(v[1].is_nan() && v[2].is_nan());
        assert_eq!(v[3].to_bits(), (-2f32).to_bits());
    }

    /// A memory store holding a float32 array `a` of shape [n] in chunks of 1 (chunk `n - 1`
    /// not stored), uncompressed.
    fn memory_array(name: &str, n: u64) -> ZarrArray {
        let store = memory_group(&format!("memory://{name}"));
        let put = |key: &str, bytes: Vec<u8>| put_key(&store, key, bytes);
        let zarray = format!(
            r#"{{"zarr_format": 2, "shape": [{n}], "chunks": [1], "dtype": "<f4",
               "compressor": null, "filters": null, "fill_value": "NaN", "order": "C"}}"#
        );
        put("a/.zarray", zarray.into_bytes());
        for i in 0..n - 1 {
            #[allow(clippy::cast_precision_loss)]
            put(&format!("a/{i}"), (i as f32).to_le_bytes().to_vec());
        }
        first_array(&store)
    }

    #[test]
    fn cache_keeps_the_chunk_needed_soonest_and_fills_missing_chunks() {
        let array = memory_array("plan-cache-schedule", 4);
        let key = |i: u64| -> Needed {
            Needed {
                key: (array.location(), vec![i]),
                path: None,
                array: None,
                values: true,
            }
        };
        // Room for two chunks; tasks read chunks 0, 1, 2, then 0 again.
        let cache = ChunkCache::new(8);
        let order = [0u64, 1, 2, 0];
        assert!(cache.set_schedule(order.iter().map(|i| vec![key(*i)]).collect()));
        let mut got = Vec::new();
        for (task, i) in order.iter().enumerate() {
            cache.started(task);
            let raw = cache.read_region(&array, &[*i], &[1]).expect("read");
            got.push(f32::from_le_bytes(
                raw.bytes[..4].try_into().expect("4 bytes"),
            ));
        }
        assert_eq!(got, vec![0.0, 1.0, 2.0, 0.0]);
        // Least recently used eviction would have dropped chunk 0 for chunk 2 and decoded it
        // again; the schedule drops chunk 1, which no later task reads.
        assert_eq!(cache.decoded(), 3);
        cache.clear_schedule();
        // The chunk that is not stored reads as the fill value.
        let raw = cache.read_region(&array, &[2], &[2]).expect("read");
        let last = f32::from_le_bytes(raw.bytes[4..8].try_into().expect("4 bytes"));
        assert!(last.is_nan());
    }

    #[test]
    fn decoding_ahead_takes_the_next_chunk_only_when_it_fits_before_later_needs() {
        let array = Arc::new(memory_array("plan-cache-ahead", 4));
        let need = |i: u64| -> Needed {
            Needed {
                key: (array.location(), vec![i]),
                path: None,
                array: Some(array.clone()),
                values: true,
            }
        };
        let read = |cache: &ChunkCache, i: u64| -> f32 {
            let raw = cache.read_region(&array, &[i], &[1]).expect("read");
            f32::from_le_bytes(raw.bytes[..4].try_into().expect("4 bytes"))
        };
        // Room for two chunks; tasks read chunks 0, 1, 2, then 0 again.
        let cache = ChunkCache::new(8);
        assert!(cache.set_schedule([0u64, 1, 2, 0].iter().map(|i| vec![need(*i)]).collect()));
        cache.started(0);
        // Ahead of task 0: chunks 0 and 1 fit.
        assert!(cache.decode_ahead().expect("ahead"));
        assert!(cache.decode_ahead().expect("ahead"));
        assert_eq!(cache.decoded(), 2);
        // Chunk 2 would have to evict chunk 0 or 1, both needed before it: not decoded.
        assert!(!cache.decode_ahead().expect("ahead"));
        assert_eq!(cache.decoded(), 2);
        // Tasks 0 and 1 find their chunks decoded.
        assert_eq!(read(&cache, 0), 0.0);
        cache.started(1);
        assert_eq!(read(&cache, 1), 1.0);
        assert_eq!(cache.decoded(), 2);
        // At task 2, chunk 1 is never needed again and chunk 0 only after chunk 2: chunk 2 is
        // decoded ahead in place of chunk 1.
        cache.started(2);
        assert!(cache.decode_ahead().expect("ahead"));
        assert_eq!(cache.decoded(), 3);
        assert_eq!(read(&cache, 2), 2.0);
        cache.started(3);
        assert_eq!(read(&cache, 0), 0.0);
        // Nothing left to decode ahead; nothing decoded twice.
        assert!(!cache.decode_ahead().expect("ahead"));
        assert_eq!(cache.decoded(), 3);
    }

    #[test]
    fn each_file_is_announced_once_per_pass() {
        let array = Arc::new(memory_array("plan-cache-announce", 4));
        let need = |i: u64| -> Needed {
            Needed {
                key: (array.location(), vec![i]),
                path: Some(std::path::PathBuf::from(format!("/nonexistent/{i}"))),
                array: Some(array.clone()),
                values: true,
            }
        };
        let announced = |cache: &ChunkCache| -> (Vec<std::path::PathBuf>, usize) {
            let st = cache.state.lock().unwrap();
            let mut v: Vec<_> = st.announced.iter().cloned().collect();
            v.sort();
            (v, st.announcements)
        };
        // A hundred tasks reading chunk 0 or 1, started one by one: two announcements.
        let cache = ChunkCache::new(1 << 20);
        let needs = (0..100u64).map(|t| vec![need(t % 2)]).collect();
        assert!(cache.set_schedule(needs));
        for t in 0..100 {
            cache.started(t);
        }
        let both: Vec<std::path::PathBuf> = [0, 1]
            .iter()
            .map(|i| std::path::PathBuf::from(format!("/nonexistent/{i}")))
            .collect();
        assert_eq!(announced(&cache), (both.clone(), 2));
        // A new pass announces again.
        cache.clear_schedule();
        assert!(cache.set_schedule(vec![vec![need(1)]]));
        assert_eq!(announced(&cache), (vec![], 2));
        cache.started(0);
        assert_eq!(announced(&cache), (both[1..].to_vec(), 3));
    }

    /// A 1-d float32 array of `n` Blosc-compressed chunks of 1024 values (value = position), the
    /// last chunk not stored, chunk 2 with bytes after its frame.
    fn blosc_array(name: &str, n: u32) -> ZarrArray {
        blosc_array_of(name, n, 1024)
    }

    /// A float32 array of `n` Blosc chunks of `len` elements, value `i` at `i`; the last chunk is
    /// not stored, and chunk 2 has bytes after its frame.
    fn blosc_array_of(name: &str, n: u32, len: u32) -> ZarrArray {
        let store = memory_group(&format!("memory://{name}"));
        let put = |key: &str, bytes: Vec<u8>| put_key(&store, key, bytes);
        put(
            "a/.zarray",
            format!(
                r#"{{"zarr_format": 2, "shape": [{}], "chunks": [{}], "dtype": "<f4",
                   "compressor": {{"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1,
                   "blocksize": 0}}, "filters": null, "fill_value": "NaN", "order": "C"}}"#,
                u64::from(n) * u64::from(len),
                len
            )
            .into_bytes(),
        );
        for c in 0..n - 1 {
            #[allow(clippy::cast_precision_loss)]
            let raw: Vec<u8> = (c * len..(c + 1) * len)
                .flat_map(|i| (i as f32).to_le_bytes())
                .collect();
            let mut frame = crate::blosc::tests::frame(&raw);
            if c == 2 {
                // Bytes after the frame, as z5py writes them: decoded by `zarrs`, then copied.
                frame.extend_from_slice(&[0; 8]);
            }
            put(&format!("a/{c}"), frame);
        }
        first_array(&store)
    }

    /// A 10 x 6 float32 array in 4 x 3 Blosc chunks, value `100 * row + col`; chunk (1, 1) is
    /// not stored.
    fn blosc_2d(name: &str) -> ZarrArray {
        let store = memory_group(&format!("memory://{name}"));
        put_key(
            &store,
            "a/.zarray",
            br#"{"zarr_format": 2, "shape": [10, 6], "chunks": [4, 3], "dtype": "<f4",
               "compressor": {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1,
               "blocksize": 0}, "filters": null, "fill_value": "NaN", "order": "C"}"#
                .to_vec(),
        );
        for (ci, cj) in (0..3u64).flat_map(|i| (0..2u64).map(move |j| (i, j))) {
            if (ci, cj) == (1, 1) {
                continue;
            }
            #[allow(clippy::cast_precision_loss)]
            let raw: Vec<u8> = (0..4u64)
                .flat_map(|r| (0..3u64).map(move |c| ((ci * 4 + r) * 100 + cj * 3 + c) as f32))
                .flat_map(f32::to_le_bytes)
                .collect();
            put_key(
                &store,
                &format!("a/{ci}.{cj}"),
                crate::blosc::tests::frame(&raw),
            );
        }
        first_array(&store)
    }

    #[test]
    fn large_chunks_are_decoded_and_cached_in_parts() {
        // Chunks of 4 x 3 values (48 bytes) in parts of at most 24 bytes: 2 rows each.
        let array = blosc_2d("plan-parts").with_part_bytes(24);
        assert_eq!(array.unit_rows(), Some(2));
        assert_eq!(array.unit_len(), Some(24));
        assert_eq!(array.unit_chunk(&[3, 1]), (vec![1, 1], 1));
        let whole = blosc_2d("plan-parts-whole");
        assert_eq!(whole.unit_rows(), None);
        for (start, shape) in [
            ([1u64, 1u64], [8u64, 4u64]),
            ([0, 0], [10, 6]),
            ([5, 4], [1, 1]),
        ] {
            let parts = ChunkCache::new(1 << 20);
            let got = parts.read_region(&array, &start, &shape).expect("parts");
            let chunks = ChunkCache::new(1 << 20);
            let want = chunks.read_region(&whole, &start, &shape).expect("chunks");
            assert_eq!(got.bytes, want.bytes, "{start:?} {shape:?}");
            let v: Vec<f32> = bytemuck::pod_collect_to_vec(&got.bytes);
            #[allow(clippy::cast_precision_loss)]
            for (k, x) in v.iter().enumerate() {
                let (r, c) = (
                    start[0] + k as u64 / shape[1],
                    start[1] + k as u64 % shape[1],
                );
                if (4..8).contains(&r) && c >= 3 {
                    assert!(x.is_nan(), "({r}, {c}) is in the chunk not stored");
                } else {
                    assert_eq!(*x, (r * 100 + c) as f32, "({r}, {c})");
                }
            }
            // Only the parts the region overlaps are decoded.
            let rows = (start[0] / 2..=(start[0] + shape[0] - 1) / 2).count() as u64;
            let cols = (start[1] / 3..=(start[1] + shape[1] - 1) / 3).count() as u64;
            assert_eq!(parts.decoded(), rows * cols, "{start:?} {shape:?}");
        }
        // A frame with bytes after it (as z5py writes them) is read in part too.
        let array = blosc_array("plan-parts-trailing", 4).with_part_bytes(1024);
        assert_eq!(array.unit_rows(), Some(256));
        let cache = ChunkCache::new(1 << 20);
        let raw = cache.read_region(&array, &[2000], &[200]).expect("read");
        let v: Vec<f32> = bytemuck::pod_collect_to_vec(&raw.bytes);
        #[allow(clippy::cast_precision_loss)]
        let want: Vec<f32> = (2000..2200).map(|i| i as f32).collect();
        assert_eq!(v, want);
    }

    #[test]
    fn blosc_chunks_are_decoded_into_reused_buffers() {
        const N: u32 = 1024;
        let array = blosc_array("plan-cache-pool", 4);
        assert_eq!(array.direct_chunk_len(), Some(4 * N as usize));

        // Room for two chunks and the missing chunk's fill value (plus the pool's one chunk of
        // slack).
        let cache = ChunkCache::new(8 * N as usize + 64);
        for c in [0u64, 1, 2, 3, 0, 1] {
            let start = c * u64::from(N) + 5;
            let raw = cache.read_region(&array, &[start], &[2]).expect("read");
            let v: Vec<f32> = raw
                .bytes
                .chunks(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect();
            if c == 3 {
                // Not stored: the fill value.
                assert!(v.iter().all(|x| x.is_nan()), "{v:?}");
            } else {
                #[allow(clippy::cast_precision_loss)]
                let want = vec![start as f32, (start + 1) as f32];
                assert_eq!(v, want);
            }
        }
        // Chunks 0, 1, 2, 0, 1 decoded (the missing chunk 3 is the fill value), each after the
        // first two into the buffer of a chunk evicted for it.
        assert_eq!(cache.decoded(), 6);
        assert_eq!(cache.buffers_mapped(), 2);
    }

    #[test]
    fn log_keeps_each_nan_and_takes_the_log_of_the_rest() {
        let payload = f32::from_bits(0x7fc0_1234);
        let x: Vec<f32> = vec![
            f32::NAN,
            1.0,
            2.5,
            payload,
            f32::NAN,
            10.0,
            0.0,
            -1.0,
            f32::INFINITY,
            f32::NAN,
            7.0,
        ];
        let Data::F32(got) = unary(UnOp::Log, Data::F32(x.clone()), VType::F32) else {
            panic!("float32 in, float32 out");
        };
        for (a, b) in x.iter().zip(&got) {
            if a.is_nan() {
                assert_eq!(a.to_bits(), b.to_bits(), "a NaN passes through as it is");
            } else {
                assert_eq!(a.ln().to_bits(), b.to_bits(), "log({a})");
            }
        }
        let x64: Vec<f64> = x.iter().map(|v| f64::from(*v)).collect();
        let Data::F64(got) = unary(UnOp::Log, Data::F64(x64.clone()), VType::F64) else {
            panic!("float64 in, float64 out");
        };
        for (a, b) in x64.iter().zip(&got) {
            let want = if a.is_nan() { *a } else { a.ln() };
            assert_eq!(want.to_bits(), b.to_bits(), "log({a})");
        }
    }

    #[test]
    fn chunks_of_other_sizes_share_the_pooled_buffers() {
        // Chunks of 4 KiB, 5 KiB and 2 KiB, in a cache with room for one chunk at a time.
        let a = blosc_array_of("plan-pool-4k", 3, 1024);
        let b = blosc_array_of("plan-pool-5k", 3, 1280);
        let c = blosc_array_of("plan-pool-2k", 3, 512);
        let cache = ChunkCache::new(6 << 10);
        let read = |array: &ZarrArray, start: u64| -> f32 {
            let raw = cache.read_region(array, &[start], &[1]).expect("read");
            f32::from_le_bytes(raw.bytes[..4].try_into().expect("4 bytes"))
        };
        let mut mapped = Vec::new();
        for (array, start) in [(&a, 7u64), (&b, 1290), (&a, 1030), (&b, 3), (&c, 600)] {
            #[allow(clippy::cast_precision_loss)]
            let want = start as f32;
            assert_eq!(read(array, start), want);
            mapped.push(cache.buffers_mapped());
        }
        // The 4 KiB buffer grows to 5 KiB for the next chunk of `b`, then holds the 4 KiB
        // chunks and the 5 KiB ones in turn; a 2 KiB chunk gets a buffer of its own rather than
        // holding one more than half as large again.
        assert_eq!(mapped, [1, 1, 1, 1, 2]);
        assert_eq!(cache.decoded(), 5);
        let st = cache.state.lock().expect("lock");
        let mut sizes: Vec<usize> = st.idle.iter().map(PoolBuf::capacity).collect();
        sizes.extend(st.map.values().filter_map(|e| match e.0.value.get() {
            Some(Ok(v)) => Some(v.held()),
            _ => None,
        }));
        sizes.sort_unstable();
        assert_eq!(sizes, [2 << 10, 5 << 10]);
    }

    #[test]
    fn a_condition_over_trailing_dimensions_applies_to_every_slab() {
        // cond over (lat, lon) = 2 values, x over (time, lat, lon) = 3 x 2 values.
        let cond = [true, false];
        let x = Data::F32(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let Data::F32(v) = select(&cond, x.clone(), &Data::F32(vec![f32::NAN])) else {
            panic!("type changed")
        };
        assert_eq!(v[0], 1.0);
        assert!(v[1].is_nan());
        assert_eq!(v[2], 3.0);
        assert!(v[3].is_nan());
        assert_eq!(v[4], 5.0);
        assert!(v[5].is_nan());
        let other = Data::F32(vec![-1.0, -2.0, -3.0, -4.0, -5.0, -6.0]);
        let Data::F32(v) = select(&cond, x, &other) else {
            panic!("type changed")
        };
        assert_eq!(v, vec![1.0, -2.0, 3.0, -4.0, 5.0, -6.0]);
        // A last slab cut short, and a condition of runs.
        let cond = [false, true, true, false, false];
        let x = Data::F32((1..=12).map(|i| i as f32).collect());
        let Data::F32(v) = select(&cond, x, &Data::F32(vec![0.0])) else {
            panic!("type changed")
        };
        let want = [0, 2, 3, 0, 0, 0, 7, 8, 0, 0, 0, 12];
        assert_eq!(v, want.map(|i| i as f32).to_vec());
    }

    /// `all`/`any` of `op` (`IsNan` or `NotNull`) of `child` over the dimensions `over`.
    fn nan_reduction(
        child: &NodeRef,
        dims: &[String],
        op: UnOp,
        kind: Reduction,
        over: &[&str],
    ) -> Result<Block> {
        let unary = Node::new(
            Op::Unary(op, child.clone()),
            dims.to_vec(),
            child.shape.clone(),
            VType::Bool,
        );
        let kept: Vec<usize> = (0..dims.len())
            .filter(|i| !over.contains(&dims[*i].as_str()))
            .collect();
        let node = Node::new(
            Op::Reduce {
                child: unary,
                dims: over.iter().map(|d| (*d).to_string()).collect(),
                kind,
                result: OnceLock::new(),
            },
            kept.iter().map(|i| dims[*i].clone()).collect(),
            kept.iter().map(|i| child.shape[*i]).collect(),
            VType::Bool,
        );
        let window: Window = node.shape.iter().map(|n| 0..*n).collect();
        node.eval(&window)
    }

    #[test]
    fn nan_scans_by_byte_planes_agree_with_decoded_values() {
        use zarrs::array::codec::{BloscCompressor, BloscShuffleMode};
        let (nt, ny, nx, ct) = (10u64, 60u64, 70u64, 6u64);
        let dims: Vec<String> = ["t", "y", "x"].iter().map(|d| (*d).to_string()).collect();
        for size in [4usize, 8] {
            // NaNs whose mantissa bits lie only in the lowest byte, positive and negative.
            let (low_nan, neg_nan) = if size == 4 {
                (f64::from(f32::from_bits(0x7f80_0001)), -f64::NAN)
            } else {
                (f64::from_bits(0x7ff0_0000_0000_0001), -f64::NAN)
            };
            let huge = if size == 4 {
                f64::from(f32::MAX)
            } else {
                f64::MAX
            };
            #[allow(clippy::cast_precision_loss)]
            let value = |t: u64, y: u64, x: u64| -> f64 {
                let nan = match (y * 7 + x) % 3 {
                    0 => f64::NAN,
                    1 => low_nan,
                    _ => neg_nan,
                };
                let alone = (y, x) == (50, 66);
                match t {
                    // NaN everywhere; then NaN but for an infinity, the largest finite value, a
                    // negative infinity, a zero.
                    2 | 8 => nan,
                    3 if alone => f64::INFINITY,
                    4 if alone => huge,
                    5 if alone => f64::NEG_INFINITY,
                    7 if alone => 0.0,
                    3 | 4 | 5 | 7 => nan,
                    // Land, and values.
                    _ if x < 10 || (t + y + x) % 11 == 0 => f64::NAN,
                    _ => (t * 1000 + y * 10 + x) as f64 / 7.0,
                }
            };
            let store = memory_group(&format!("memory://plan-nan-planes-{size}"));
            let zarray = format!(
                r#"{{"zarr_format": 2, "shape": [{nt}, {ny}, {nx}],
                   "chunks": [{ct}, {ny}, {nx}], "dtype": "<f{size}",
                   "compressor": {{"id": "blosc", "cname": "lz4", "clevel": 5,
                   "shuffle": 1, "blocksize": 0}}, "filters": null,
                   "fill_value": "NaN", "order": "C"}}"#
            );
            put_key(&store, "a/.zarray", zarray.clone().into_bytes());
            let mut frames = Vec::new();
            for c in 0..nt.div_ceil(ct) {
                let mut raw = Vec::new();
                for t in c * ct..(c + 1) * ct {
                    for (y, x) in (0..ny).flat_map(|y| (0..nx).map(move |x| (y, x))) {
                        let v = value(t, y, x);
                        #[allow(clippy::cast_possible_truncation)]
                        if size == 4 {
                            // A NaN keeps its payload through the conversion.
                            let bits = if v.is_nan() && v.to_bits() == low_nan.to_bits() {
                                0x7f80_0001
                            } else {
                                (v as f32).to_bits()
                            };
                            raw.extend_from_slice(&bits.to_le_bytes());
                        } else {
                            raw.extend_from_slice(&v.to_le_bytes());
                        }
                    }
                }
                // Blocks of 64 KiB: rows cross their boundaries, and the last is shorter.
                let frame = crate::blosc::tests::frame_with(
                    &raw,
                    size,
                    65536 / size,
                    BloscCompressor::LZ4,
                    BloscShuffleMode::Shuffle,
                );
                let planes = crate::blosc::Planes::parse(&frame, size).expect("planes");
                assert!(planes.values() > planes.block_values());
                put_key(&store, &format!("a/{c}.0.0"), frame.clone());
                frames.push(frame);
            }
            let source = |store: &crate::store::Store| -> (NodeRef, Arc<ChunkCache>) {
                let vtype = if size == 4 { VType::F32 } else { VType::F64 };
                let dtype = if size == 4 {
                    DType::Float32
                } else {
                    DType::Float64
                };
                let cache = Arc::new(ChunkCache::new(1 << 24));
                let decoding =
                    CfDecoding::from_attrs(&serde_json::Map::new(), dtype, Some(f64::NAN))
                        .expect("decoding");
                let node = Node::new(
                    Op::Source {
                        array: Arc::new(first_array(store)),
                        decoding: Box::new(decoding),
                        cache: cache.clone(),
                    },
                    dims.clone(),
                    vec![nt, ny, nx],
                    vtype,
                );
                // Some days, and a range of columns.
                let days = vec![0u64, 2, 3, 4, 5, 6, 7, 8, 9];
                let node = Node::new(
                    Op::Take {
                        child: node,
                        dim: "t".into(),
                        index: Arc::new(days.clone()),
                    },
                    dims.clone(),
                    vec![days.len() as u64, ny, nx],
                    vtype,
                );
                let columns: Vec<u64> = (5..nx).collect();
                let node = Node::new(
                    Op::Take {
                        child: node,
                        dim: "x".into(),
                        index: Arc::new(columns.clone()),
                    },
                    dims.clone(),
                    vec![days.len() as u64, ny, columns.len() as u64],
                    vtype,
                );
                (node, cache)
            };
            let (x, cache) = source(&store);
            assert!(x.visitable());
            let evaluated = Node::new(Op::Cast(x.clone()), dims.clone(), x.shape.clone(), x.vtype);
            let cases: Vec<(UnOp, Reduction, &[&str])> = [UnOp::IsNan, UnOp::NotNull]
                .into_iter()
                .flat_map(|op| {
                    [Reduction::All, Reduction::Any]
                        .into_iter()
                        .flat_map(move |kind| {
                            [&["y", "x"][..], &["t"], &["t", "x"], &["t", "y", "x"]]
                                .into_iter()
                                .map(move |over| (op, kind, over))
                        })
                })
                .collect();
            let fast: Vec<Block> = cases
                .iter()
                .map(|(op, kind, over)| nan_reduction(&x, &dims, *op, *kind, over).expect("fast"))
                .collect();
            // Read by planes: nothing decoded.
            assert_eq!(cache.decoded(), 0, "size {size}");
            for ((op, kind, over), f) in cases.iter().zip(&fast) {
                let slow = nan_reduction(&evaluated, &dims, *op, *kind, over).expect("slow");
                let (Data::Bool(f), Data::Bool(s)) = (&f.data, &slow.data) else {
                    panic!("not boolean");
                };
                assert_eq!(f, s, "size {size}: {op:?} {kind:?} over {over:?}");
            }
            assert!(cache.decoded() > 0);
            // Days all NaN: of days 0, 2, 3, 4, 5, 6, 7, 8, 9, days 2 and 8 (an infinity, the
            // largest float, a zero are values).
            let Data::Bool(days) =
                nan_reduction(&x, &dims, UnOp::IsNan, Reduction::All, &["y", "x"])
                    .expect("days")
                    .data
            else {
                panic!("not boolean")
            };
            assert_eq!(
                days,
                vec![false, true, false, false, false, false, false, true, false]
            );

            // A stream that does not decompress: the chunk is named.
            let damaged = memory_group(&format!("memory://plan-nan-planes-damaged-{size}"));
            put_key(&damaged, "a/.zarray", zarray.into_bytes());
            for (c, frame) in frames.iter().enumerate() {
                let mut frame = frame.clone();
                if c == 1 {
                    let planes = crate::blosc::Planes::parse(&frame, size).expect("planes");
                    let top = planes.stream_bytes(0, size - 1);
                    frame[top].fill(0xff);
                }
                put_key(&damaged, &format!("a/{c}.0.0"), frame);
            }
            let (x, _) = source(&damaged);
            let err = nan_reduction(&x, &dims, UnOp::IsNan, Reduction::All, &["y", "x"])
                .expect_err("damaged");
            assert!(err.to_string().contains("a/1.0.0"), "{err}");
        }
    }

    #[test]
    fn nan_scans_read_in_place_agree_with_evaluated_blocks() {
        let (nt, ny, nx) = (6u64, 4u64, 5u64);
        let (ct, cy, cx) = (4u64, 3u64, 2u64);
        let store = memory_group("memory://plan-nan-scan");
        let put = |key: &str, bytes: Vec<u8>| put_key(&store, key, bytes);
        put(
            "a/.zarray",
            format!(
                r#"{{"zarr_format": 2, "shape": [{nt}, {ny}, {nx}], "chunks": [{ct}, {cy}, {cx}],
                   "dtype": "<f4", "compressor": null, "filters": null, "fill_value": "NaN",
                   "order": "C"}}"#
            )
            .into_bytes(),
        );
        #[allow(clippy::cast_precision_loss)]
        let value = |t: u64, y: u64, x: u64| -> f32 {
            // Day 3 and every fourth value NaN; day 4 holds values only in row 3.
            if t == 3 || (t * 7 + y * 3 + x) % 4 == 0 || (t == 4 && y != 3) {
                f32::NAN
            } else {
                (t * 100 + y * 10 + x) as f32
            }
        };
        for (i, j, k) in (0..nt.div_ceil(ct)).flat_map(|i| {
            (0..ny.div_ceil(cy)).flat_map(move |j| (0..nx.div_ceil(cx)).map(move |k| (i, j, k)))
        }) {
            if (i, j, k) == (1, 0, 0) {
                continue; // not stored: NaN
            }
            let mut bytes = Vec::new();
            for t in i * ct..(i + 1) * ct {
                for y in j * cy..(j + 1) * cy {
                    for x in k * cx..(k + 1) * cx {
                        bytes.extend_from_slice(&value(t, y, x).to_le_bytes());
                    }
                }
            }
            put(&format!("a/{i}.{j}.{k}"), bytes);
        }
        let array = Arc::new(first_array(&store));
        let decoding =
            CfDecoding::from_attrs(&serde_json::Map::new(), DType::Float32, Some(f64::NAN))
                .expect("decoding");
        let dims: Vec<String> = ["t", "y", "x"].iter().map(|d| (*d).to_string()).collect();
        let source = Node::new(
            Op::Source {
                array,
                decoding: Box::new(decoding),
                cache: Arc::new(ChunkCache::new(1 << 20)),
            },
            dims.clone(),
            vec![nt, ny, nx],
            VType::F32,
        );
        // Selections: days out of order of runs, rows reversed, columns with a gap.
        let take = |child: NodeRef, dim: &str, index: Vec<u64>| -> NodeRef {
            let mut shape = child.shape.clone();
            let axis = dims.iter().position(|d| d == dim).expect("dim");
            shape[axis] = index.len() as u64;
            Node::new(
                Op::Take {
                    child,
                    dim: dim.to_string(),
                    index: Arc::new(index),
                },
                dims.clone(),
                shape,
                VType::F32,
            )
        };
        let x = take(source.clone(), "t", vec![0, 1, 3, 4, 5]);
        let x = take(x, "y", vec![3, 2, 0]);
        let x = take(x, "x", vec![0, 1, 3, 4]);
        assert!(x.visitable());
        // The same values through a cast: evaluated as blocks.
        let evaluated = Node::new(
            Op::Cast(x.clone()),
            dims.clone(),
            x.shape.clone(),
            VType::F32,
        );
        assert!(!evaluated.visitable());
        let reduce = |child: &NodeRef, op: UnOp, kind: Reduction, over: &[&str]| -> Block {
            nan_reduction(child, &dims, op, kind, over).expect("eval")
        };
        let mut decided = 0;
        for op in [UnOp::IsNan, UnOp::NotNull] {
            for kind in [Reduction::All, Reduction::Any] {
                for over in [&["y", "x"][..], &["t"], &["t", "x"], &["t", "y", "x"]] {
                    let fast = reduce(&x, op, kind, over);
                    let slow = reduce(&evaluated, op, kind, over);
                    let (Data::Bool(f), Data::Bool(s)) = (&fast.data, &slow.data) else {
                        panic!("not boolean");
                    };
                    assert_eq!(f, s, "{op:?} {kind:?} over {over:?}");
                    decided += f.iter().filter(|v| **v).count();
                }
            }
        }
        // Not all answers the same: the data has both outcomes.
        assert!(decided > 0);
        let all_nan_days = reduce(&x, UnOp::IsNan, Reduction::All, &["y", "x"]);
        // Of the kept days 0, 1, 3, 4, 5, day 3 is NaN everywhere; day 4 has values in row 3,
        // which is kept.
        let Data::Bool(days) = all_nan_days.data else {
            panic!("not boolean")
        };
        assert_eq!(days, vec![false, false, true, false, false]);

        // Evaluated selections hold the selected values; scattered positions along the last
        // dimension are not scanned in place.
        let (ts, ys) = ([0u64, 1, 3, 4, 5], [3u64, 2, 0]);
        let scattered = take(x.clone(), "x", vec![3, 0, 2]);
        assert!(!scattered.runs_are_long(&scattered.shape.iter().map(|n| 0..*n).collect()));
        for (node, xs) in [(&x, vec![0u64, 1, 3, 4]), (&scattered, vec![4, 0, 3])] {
            let window: Window = node.shape.iter().map(|n| 0..*n).collect();
            let Data::F32(got) = node.eval(&window).expect("eval").data else {
                panic!("not float32")
            };
            let mut want = Vec::new();
            for t in ts {
                for y in ys {
                    for x in &xs {
                        // Chunk (1, 0, 0), days 4.., rows ..3, columns ..2, is not stored.
                        let missing = t >= 4 && y < 3 && *x < 2;
                        want.push(if missing { f32::NAN } else { value(t, y, *x) });
                    }
                }
            }
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                    "{got:?} {want:?}"
                );
            }
        }

        // Runs of days with ranges of rows and columns: read run by run from the cache into
        // the block (`read_plain_into`), for windows that split the runs and cross chunks.
        let (ts, ys, xs) = ([5u64, 0, 1, 3, 4, 2], [1u64, 2, 3], [1u64, 2, 3, 4]);
        let runs = take(source, "t", ts.to_vec());
        let runs = take(runs, "y", ys.to_vec());
        let runs = take(runs, "x", xs.to_vec());
        let mut block = vec![0f32; 1];
        for window in [
            vec![0..6, 0..3, 0..4],
            vec![1..5, 1..3, 1..4],
            vec![2..3, 0..1, 0..4],
        ] {
            let shape: Vec<u64> = window.iter().map(|r| r.end - r.start).collect();
            block.resize(shape.iter().product::<u64>() as usize, 0.0);
            assert!(runs
                .read_plain_into(&window, bytemuck::cast_slice_mut(&mut block), &shape)
                .expect("read"));
            let Data::F32(got) = runs.eval(&window).expect("eval").data else {
                panic!("not float32")
            };
            let mut want = Vec::new();
            for t in &ts[window[0].start as usize..window[0].end as usize] {
                for y in &ys[window[1].start as usize..window[1].end as usize] {
                    for x in &xs[window[2].start as usize..window[2].end as usize] {
                        let missing = *t >= 4 && *y < 3 && *x < 2;
                        want.push(if missing { f32::NAN } else { value(*t, *y, *x) });
                    }
                }
            }
            for got in [&got[..], &block[..]] {
                assert_eq!(got.len(), want.len());
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                        "{window:?}: {got:?} {want:?}"
                    );
                }
            }
        }
        // Scattered rows are gathered by `eval`, not read run by run.
        let window: Window = x.shape.iter().map(|n| 0..*n).collect();
        let mut block = vec![0f32; x.shape.iter().product::<u64>() as usize];
        assert!(!x
            .read_plain_into(&window, bytemuck::cast_slice_mut(&mut block), &x.shape)
            .expect("read"));
    }

    #[test]
    fn largest_task_bytes_counts_each_chunk_of_a_task_once() {
        let array = Arc::new(memory_array("plan-cache-largest", 4));
        let need = |i: u64| -> Needed {
            Needed {
                key: (array.location(), vec![i]),
                path: None,
                array: Some(array.clone()),
                values: true,
            }
        };
        // Chunks hold one float32: 4 bytes each.
        let needs = vec![vec![need(0)], vec![need(1), need(2), need(1)], vec![]];
        assert_eq!(ChunkCache::largest_task_bytes(&needs), 8);
        assert_eq!(ChunkCache::largest_task_bytes(&[]), 0);
    }

    #[test]
    fn take_copies_runs_of_positions() {
        let b = Block {
            dims: vec!["t".into(), "x".into()],
            shape: vec![5, 2],
            data: Data::F64((0..10).map(f64::from).collect()),
        };
        let t = take_axis(&b, 0, &[0, 1, 3, 4, 2]);
        assert_eq!(t.shape, vec![5, 2]);
        assert_eq!(
            t.data,
            Data::F64(vec![0.0, 1.0, 2.0, 3.0, 6.0, 7.0, 8.0, 9.0, 4.0, 5.0])
        );
        let t = take_axis(&b, 1, &[1]);
        assert_eq!(t.data, Data::F64(vec![1.0, 3.0, 5.0, 7.0, 9.0]));
    }

    #[test]
    fn take_and_reduce() {
        let a = along("t", vec![5.0, f64::NAN, 7.0, 9.0], VType::F64);
        let t = Node::new(
            Op::Take {
                child: a.clone(),
                dim: "t".into(),
                index: Arc::new(vec![3, 0, 2]),
            },
            vec!["t".into()],
            vec![3],
            VType::F64,
        );
        assert_eq!(
            t.eval(&std::iter::once(0..3).collect()).unwrap().data,
            Data::F64(vec![9.0, 5.0, 7.0])
        );
        let notnull = Node::new(
            Op::Unary(UnOp::NotNull, a.clone()),
            vec!["t".into()],
            vec![4],
            VType::Bool,
        );
        let cnt = Node::new(
            Op::Reduce {
                child: notnull,
                dims: vec!["t".into()],
                kind: Reduction::Sum,
                result: OnceLock::new(),
            },
            vec![],
            vec![],
            VType::F64,
        );
        assert_eq!(cnt.eval(&vec![]).unwrap().data, Data::F64(vec![3.0]));
        let mean = Node::new(
            Op::Reduce {
                child: a,
                dims: vec!["t".into()],
                kind: Reduction::Mean,
                result: OnceLock::new(),
            },
            vec![],
            vec![],
            VType::F64,
        );
        assert_eq!(mean.eval(&vec![]).unwrap().data, Data::F64(vec![7.0]));
    }

    #[test]
    fn promotion_follows_numpy() {
        assert_eq!(promote(VType::F32, false, VType::F64, true), VType::F32);
        assert_eq!(
            promote(VType::Int(DType::UInt8), false, VType::F64, true),
            VType::F64
        );
        assert_eq!(promote(VType::F32, false, VType::F64, false), VType::F64);
        assert_eq!(
            promote(VType::Int(DType::Int16), false, VType::F32, false),
            VType::F32
        );
    }

    #[test]
    fn chunks_a_pass_is_done_with_go_back_to_the_pool_at_once() {
        const N: usize = 1024;
        let array = Arc::new(blosc_array("plan-cache-done", 4));
        let need = |i: u64| -> Needed {
            Needed {
                key: (array.location(), vec![i]),
                path: None,
                array: None,
                values: true,
            }
        };
        let read = |cache: &ChunkCache, i: u64| -> f32 {
            let start = i * N as u64 + 1;
            let raw = cache.read_region(&array, &[start], &[1]).expect("read");
            f32::from_le_bytes(raw.bytes[..4].try_into().expect("4 bytes"))
        };
        // Room for all three stored chunks: nothing is ever evicted for lack of room.
        let cache = ChunkCache::new(4 * 4 * N);
        let order = [0u64, 1, 0, 2];
        assert!(cache.set_schedule(order.iter().map(|i| vec![need(*i)]).collect()));
        for (task, i) in order.iter().enumerate() {
            cache.started(task);
            #[allow(clippy::cast_precision_loss)]
            let want = (*i * N as u64 + 1) as f32;
            assert_eq!(read(&cache, *i), want);
            cache.finished(task);
        }
        // Chunk 0, read again by task 2, stayed cached; chunk 1 needed a second buffer while
        // chunk 0 was kept for task 2; chunk 2 took a buffer of the finished chunks.
        assert_eq!(cache.decoded(), 3);
        assert_eq!(cache.buffers_mapped(), 2);
        cache.clear_schedule();

        // A task taken before another but reporting its start after it still counts: chunk 1,
        // read only by task 1, is not done with while task 1 has not started, nor while it runs.
        let cache = ChunkCache::new(4 * 4 * N);
        assert!(cache.set_schedule(order.iter().map(|i| vec![need(*i)]).collect()));
        let done_with = |cache: &ChunkCache, i: u64| {
            let st = cache.state.lock().expect("lock");
            st.done_with(&(array.location(), vec![i]))
        };
        cache.started(0);
        cache.finished(0);
        cache.started(2);
        cache.finished(2);
        assert!(!done_with(&cache, 1));
        // (Done counts from the first task not finished: chunk 0 waits for task 1 too.)
        assert!(!done_with(&cache, 0));
        cache.started(1);
        assert!(!done_with(&cache, 1));
        cache.finished(1);
        assert!(done_with(&cache, 1));
        assert!(done_with(&cache, 0), "tasks 0 and 2 read chunk 0");
        // A chunk the pass does not read is left for a later pass (or a nested reduction).
        assert!(!done_with(&cache, 3));
        assert!(!done_with(&cache, 2), "task 3 reads chunk 2");
        cache.clear_schedule();

        // The same reads with no task ever reported finished keep every chunk to the limit.
        let cache = ChunkCache::new(4 * 4 * N);
        assert!(cache.set_schedule(order.iter().map(|i| vec![need(*i)]).collect()));
        for (task, i) in order.iter().enumerate() {
            cache.started(task);
            read(&cache, *i);
        }
        assert_eq!(cache.decoded(), 3);
        assert_eq!(cache.buffers_mapped(), 3);
    }

    /// A (t, x) float32 array in memory, uncompressed, `value(t, x)` everywhere, read through a
    /// cache of `limit` bytes.
    fn grid_source(
        name: &str,
        shape: [u64; 2],
        chunks: [u64; 2],
        value: impl Fn(u64, u64) -> f32,
        limit: usize,
    ) -> NodeRef {
        let store = memory_group(&format!("memory://{name}"));
        let put = |key: &str, bytes: Vec<u8>| put_key(&store, key, bytes);
        put(
            "a/.zarray",
            format!(
                r#"{{"zarr_format": 2, "shape": {shape:?}, "chunks": {chunks:?},
                   "dtype": "<f4", "compressor": null, "filters": null, "fill_value": "NaN",
                   "order": "C"}}"#
            )
            .into_bytes(),
        );
        for i in 0..shape[0].div_ceil(chunks[0]) {
            for j in 0..shape[1].div_ceil(chunks[1]) {
                let mut bytes = Vec::new();
                for t in i * chunks[0]..(i + 1) * chunks[0] {
                    for x in j * chunks[1]..(j + 1) * chunks[1] {
                        bytes.extend_from_slice(&value(t, x).to_le_bytes());
                    }
                }
                put(&format!("a/{i}.{j}"), bytes);
            }
        }
        let array = Arc::new(first_array(&store));
        let decoding =
            CfDecoding::from_attrs(&serde_json::Map::new(), DType::Float32, Some(f64::NAN))
                .expect("decoding");
        Node::new(
            Op::Source {
                array,
                decoding: Box::new(decoding),
                cache: Arc::new(ChunkCache::new(limit)),
            },
            vec!["t".into(), "x".into()],
            shape.to_vec(),
            VType::F32,
        )
    }

    fn reduce(child: &NodeRef, kind: Reduction, dims: &[&str], vtype: VType) -> NodeRef {
        let keep: Vec<(String, u64)> = child
            .dims
            .iter()
            .zip(&child.shape)
            .filter(|(d, _)| !dims.contains(&d.as_str()))
            .map(|(d, n)| (d.clone(), *n))
            .collect();
        Node::new(
            Op::Reduce {
                child: child.clone(),
                dims: dims.iter().map(|d| (*d).to_string()).collect(),
                kind,
                result: OnceLock::new(),
            },
            keep.iter().map(|(d, _)| d.clone()).collect(),
            keep.iter().map(|(_, n)| *n).collect(),
            vtype,
        )
    }

    fn unary_node(op: UnOp, child: &NodeRef, vtype: VType) -> NodeRef {
        Node::new(
            Op::Unary(op, child.clone()),
            child.dims.clone(),
            child.shape.clone(),
            vtype,
        )
    }

    #[test]
    fn padded_evaluation_agrees_with_evaluating_and_padding() {
        // Values with NaNs, in chunks of 3 x 2; days 3 dropped (runs along the first axis).
        let src = grid_source(
            "plan-padded",
            [7, 5],
            [3, 2],
            |t, x| {
                if (t + x) % 4 == 0 {
                    f32::NAN
                } else {
                    (t * 10 + x) as f32 + 0.5
                }
            },
            1 << 20,
        );
        let take = Node::new(
            Op::Take {
                child: src.clone(),
                dim: "t".into(),
                index: Arc::new(vec![0, 1, 2, 4, 5, 6]),
            },
            src.dims.clone(),
            vec![6, 5],
            VType::F32,
        );
        let log = unary_node(UnOp::Log, &take, VType::F32);
        let nan = Node::new(
            Op::Const(Data::F64(vec![f64::NAN])),
            vec![],
            vec![],
            VType::F64,
        );
        let where_ = |cond: &NodeRef, x: &NodeRef| {
            Node::new(
                Op::Where(cond.clone(), x.clone(), nan.clone()),
                x.dims.clone(),
                x.shape.clone(),
                VType::F32,
            )
        };
        let over_x = along("x", vec![1.0, 0.0, 1.0, 1.0, 0.0], VType::Bool);
        let masked = where_(&over_x, &log);
        // A condition over every dimension: one row of it per row of the block.
        let twenty = Node::new(Op::Const(Data::F64(vec![20.0])), vec![], vec![], VType::F64);
        let above = Node::new(
            Op::Binary(BinOp::Gt, take.clone(), twenty),
            take.dims.clone(),
            take.shape.clone(),
            VType::Bool,
        );
        let masked_by_values = where_(&above, &take);
        for node in [&take, &log, &masked, &masked_by_values] {
            for (window, full) in [
                (vec![3..6, 4..5], vec![4, 2]),
                (vec![1..6, 2..5], vec![5, 4]),
                (vec![0..3, 0..2], vec![3, 2]),
                (vec![2..4, 0..5], vec![3, 5]),
            ] {
                let Some(Data::F32(padded)) = node.eval_padded(&window, &full).expect("padded")
                else {
                    panic!("{:?} is computed padded", node.op)
                };
                let Data::F32(block) = node.eval(&window).expect("eval").data else {
                    panic!("not float32")
                };
                let got: Vec<usize> = window.iter().map(|r| (r.end - r.start) as usize).collect();
                let mut want = Vec::new();
                for i in 0..full[0] {
                    for j in 0..full[1] {
                        want.push(if i < got[0] && j < got[1] {
                            block[i * got[1] + j]
                        } else {
                            f32::NAN
                        });
                    }
                }
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&padded), bits(&want), "{window:?} in {full:?}");
            }
        }
        // A condition along the leading dimension, or another operation: evaluated and padded
        // by the caller.
        let over_t = along("t", vec![1.0, 0.0, 1.0, 1.0, 0.0, 1.0], VType::Bool);
        let sum = Node::new(
            Op::Binary(BinOp::Add, take.clone(), take.clone()),
            take.dims.clone(),
            take.shape.clone(),
            VType::F32,
        );
        for node in [where_(&over_t, &take), sum] {
            let padded = node.eval_padded(&vec![0..2, 0..3], &[3, 4]).expect("eval");
            assert!(padded.is_none(), "{:?}", node.op);
        }
        // Scattered positions along the last dimension are gathered by `eval`.
        let scattered = Node::new(
            Op::Take {
                child: src.clone(),
                dim: "x".into(),
                index: Arc::new(vec![0, 2, 4]),
            },
            src.dims.clone(),
            vec![7, 3],
            VType::F32,
        );
        let padded = scattered
            .eval_padded(&vec![0..7, 0..3], &[9, 4])
            .expect("eval");
        assert!(padded.is_none());
    }

    #[test]
    fn one_pass_computes_reductions_and_tasks_reading_the_same_chunks() {
        // 4 chunks of 512 × 1024 values: the reduction blocks are 512 rows, one chunk each.
        let (nt, nx, ct) = (2048u64, 1024u64, 512u64);
        #[allow(clippy::cast_precision_loss)]
        let value = |t: u64, x: u64| -> f32 {
            if x % 3 == 0 || t == x {
                f32::NAN
            } else {
                (t * 7 + x) as f32
            }
        };
        let chunk_bytes = usize::try_from(ct * nx * 4).expect("size");
        for backwards in [false, true] {
            // Room for three chunks.
            let name = format!("plan-pass-{backwards}");
            let x = grid_source(&name, [nt, nx], [ct, nx], value, 3 * chunk_bytes);
            let all_nan = reduce(
                &unary_node(UnOp::IsNan, &x, VType::Bool),
                Reduction::All,
                &["t"],
                VType::Bool,
            );
            let max = reduce(&x, Reduction::Max, &["t"], VType::F32);
            let cache = x.cache().expect("cache");
            let sums = Mutex::new(vec![0f64; 4]);
            let tasks: Vec<u64> = (0..4).collect();
            run_pass(
                &cache,
                &[all_nan.clone(), max.clone()],
                &tasks,
                |c| *c as f64 / 4.0,
                |c, keys| x.chunks_needed(&vec![c * ct..(c + 1) * ct, 0..nx], keys),
                |c| {
                    let b = x.eval(&vec![c * ct..(c + 1) * ct, 0..nx])?;
                    let sum = b.data.to_f64().iter().filter(|v| !v.is_nan()).sum();
                    sums.lock().expect("lock")[usize::try_from(*c).expect("index")] = sum;
                    Ok(())
                },
                backwards,
                |_, _| {},
            )
            .expect("pass");
            // The reductions and the tasks shared every chunk: each was decoded once. (A pass
            // for the reductions and then one for the tasks would decode 4 + 1.)
            assert_eq!(cache.decoded(), 4, "backwards: {backwards}");
            let want: Vec<f64> = (0..4u64)
                .map(|c| {
                    (c * ct..(c + 1) * ct)
                        .flat_map(|t| (0..nx).map(move |x| f64::from(value(t, x))))
                        .filter(|v| !v.is_nan())
                        .sum()
                })
                .collect();
            assert_eq!(*sums.lock().expect("lock"), want);
            // The reductions were computed in the pass (reading them decodes nothing more).
            let whole: Window = std::iter::once(0..nx).collect();
            let got_nan = all_nan.eval(&whole).expect("eval").data.to_bool();
            let got_max = max.eval(&whole).expect("eval").data.to_f64();
            assert_eq!(cache.decoded(), 4);
            for xi in 0..nx {
                let col: Vec<f32> = (0..nt).map(|t| value(t, xi)).collect();
                let i = usize::try_from(xi).expect("x");
                assert_eq!(got_nan[i], col.iter().all(|v| v.is_nan()), "x {xi}");
                let m = col
                    .iter()
                    .filter(|v| !v.is_nan())
                    .fold(f32::NAN, |a, b| a.max(*b));
                let g = got_max[i];
                assert!(
                    (g.is_nan() && m.is_nan()) || g == f64::from(m),
                    "x {xi}: {g} vs {m}"
                );
            }
        }
    }

    #[test]
    fn a_nan_mask_built_from_the_masked_variable_needs_no_reduction() {
        #[allow(clippy::cast_precision_loss)]
        let value = |t: u64, x: u64| -> f32 {
            // Columns 1 and 4 always NaN; column 2 NaN on odd days.
            if x == 1 || x == 4 || (x == 2 && t % 2 == 1) {
                f32::NAN
            } else {
                (t * 10 + x) as f32
            }
        };
        let x = grid_source("plan-nan-mask", [6, 6], [4, 4], value, 1 << 20);
        let other = grid_source("plan-nan-mask-other", [6, 6], [4, 4], |_, _| 1.0, 1 << 20);
        let land = Node::new(
            Op::Binary(
                BinOp::Gt,
                along("x", vec![0.0, 1.0, 1.0, 0.0, 1.0, 1.0], VType::F64),
                Node::new(Op::Const(Data::F64(vec![0.5])), vec![], vec![], VType::F64),
            ),
            vec!["x".into()],
            vec![6],
            VType::Bool,
        );
        let scalar =
            |b: bool| Node::new(Op::Const(Data::Bool(vec![b])), vec![], vec![], VType::Bool);
        let valid = |of: &NodeRef| {
            unary_node(
                UnOp::Not,
                &reduce(
                    &unary_node(UnOp::IsNan, of, VType::Bool),
                    Reduction::All,
                    &["t"],
                    VType::Bool,
                ),
                VType::Bool,
            )
        };
        let nan = Node::new(
            Op::Const(Data::F64(vec![f64::NAN])),
            vec![],
            vec![],
            VType::F64,
        );
        let masked = |cond: &NodeRef| {
            Node::new(
                Op::Where(cond.clone(), x.clone(), nan.clone()),
                x.dims.clone(),
                x.shape.clone(),
                VType::F32,
            )
        };
        let bool_node = |op: Op| Node::new(op, vec!["x".into()], vec![6], VType::Bool);
        // The tutorial's form, `where(valid, land, false)`, and `valid & land`.
        let conds = [
            bool_node(Op::Where(valid(&x), land.clone(), scalar(false))),
            bool_node(Op::Binary(BinOp::And, valid(&x), land.clone())),
        ];
        let all: Window = vec![0..6, 0..6];
        for cond in &conds {
            let simple = simplify_nan_mask(cond, &x);
            // The reduction is gone: nothing left to compute in an earlier pass.
            let mut found = Vec::new();
            fn reductions(n: &Node, found: &mut Vec<*const Node>) {
                if matches!(n.op, Op::Reduce { .. }) {
                    found.push(n);
                }
                for c in n.children() {
                    reductions(c, found);
                }
            }
            reductions(&simple, &mut found);
            assert!(found.is_empty(), "{simple:?}");
            // Same values as the mask that computes the reduction.
            let want = masked(cond).eval(&all).expect("eval").data.to_f64();
            let got = masked(&simple).eval(&all).expect("eval").data.to_f64();
            assert_eq!(want.len(), 36);
            for (g, w) in got.iter().zip(&want) {
                assert!((g.is_nan() && w.is_nan()) || g == w, "{got:?} vs {want:?}");
            }
            // Columns 1 and 4 (always NaN) and 0, 3 (not land) are NaN; column 2 keeps its
            // values on even days.
            assert_eq!(got[2], 2.0);
            assert!(got[6 + 2].is_nan());
        }
        // A fold that leaves fewer dimensions than the node it replaces: `g` is a 0-d condition
        // that is not a constant, and `~(false | g)` must still be a condition over `x`.
        let g = reduce(
            &unary_node(UnOp::NotNull, &other, VType::Bool),
            Reduction::Any,
            &["t", "x"],
            VType::Bool,
        );
        let all_nan = reduce(
            &unary_node(UnOp::IsNan, &x, VType::Bool),
            Reduction::All,
            &["t"],
            VType::Bool,
        );
        let cond = unary_node(
            UnOp::Not,
            &bool_node(Op::Binary(BinOp::Or, all_nan, g)),
            VType::Bool,
        );
        let simple = simplify_nan_mask(&cond, &x);
        let block = simple.eval(&std::iter::once(0..6).collect()).expect("eval");
        assert_eq!(block.data.len(), 6, "{simple:?}");
        let want = masked(&cond).eval(&all).expect("eval").data.to_f64();
        let got = masked(&simple).eval(&all).expect("eval").data.to_f64();
        for (g, w) in got.iter().zip(&want) {
            assert!((g.is_nan() && w.is_nan()) || g == w, "{got:?} vs {want:?}");
        }

        // A mask built from another variable is left as it is.
        let cond = bool_node(Op::Binary(BinOp::And, valid(&other), land.clone()));
        assert!(Arc::ptr_eq(&simplify_nan_mask(&cond, &x), &cond));
    }

    #[test]
    fn a_pass_computes_a_reduction_over_another_one() {
        #[allow(clippy::cast_precision_loss)]
        let value = |t: u64, x: u64| -> f32 { (t * t + x) as f32 };
        let x = grid_source("plan-nested", [8, 3], [2, 3], value, 1 << 20);
        // max over t of (x - mean over t of x)
        let mean = reduce(&x, Reduction::Mean, &["t"], VType::F32);
        let centred = Node::new(
            Op::Binary(BinOp::Sub, x.clone(), mean.clone()),
            x.dims.clone(),
            x.shape.clone(),
            VType::F32,
        );
        let max = reduce(&centred, Reduction::Max, &["t"], VType::F32);
        let cache = x.cache().expect("cache");
        let no_tasks: [u8; 0] = [];
        run_pass(
            &cache,
            std::slice::from_ref(&max),
            &no_tasks,
            |_| 0.0,
            |_, _| {},
            |_| Ok(()),
            false,
            |_, _| {},
        )
        .expect("pass");
        assert!(!mean.is_pending_reduction());
        assert!(!max.is_pending_reduction());
        let got = max
            .eval(&std::iter::once(0..3).collect())
            .expect("eval")
            .data
            .to_f64();
        // mean over t of t*t + x is 17.5 + x; the largest t*t is 49: 49 - 17.5.
        assert_eq!(got, vec![31.5; 3]);
    }
}
