//! Evaluating a node over a window: sources read through the chunk cache (in place where the
//! values are plain floats), selections, elementwise math, masks, window operations and the
//! results of reductions. Each function here takes the [`Exec`] that holds the readers, the
//! cache and the reductions' results; the node holds none of them.

use std::ops::Range;
use std::sync::Arc;

use super::cache::{Needed, Row};
use super::kernels::{
    binary, decode_raw, false_runs, fill_outside, fill_runs, keep_recycled, padded_rows, reuse,
    runs, select, slice_block, take_axis, unary, unary_f32, unary_f64, RECYCLED_F32, RECYCLED_F64,
};
use super::Exec;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::plan::{Block, Data, Node, NodeRef, Op, UnOp, VType, Window, WindowOp};

/// The start and the shape of a window.
fn start_and_shape(window: &Window) -> (Vec<u64>, Vec<u64>) {
    (
        window.iter().map(|r| r.start).collect(),
        window.iter().map(|r| r.end - r.start).collect(),
    )
}

/// A window's shape, as block sizes.
fn block_shape(window: &Window) -> Vec<usize> {
    window
        .iter()
        .map(|r| usize::try_from(r.end - r.start).unwrap_or(0))
        .collect()
}

impl Node {
    /// The stored input units that evaluating `window` reads, as the cache names them: what
    /// [`Node::eval`] will ask the cache for (reductions are computed apart and not included).
    pub(crate) fn chunks_needed(&self, ex: &Exec, window: &Window, out: &mut Vec<Needed>) {
        match &self.op {
            Op::Source { source, .. } => {
                let (start, shape) = start_and_shape(window);
                if shape.contains(&0) {
                    return;
                }
                let Ok(src) = ex.source(source) else {
                    return;
                };
                if let Ok(units) = src.units_in(&start, &shape) {
                    for (idx, _) in units {
                        out.push(Needed {
                            path: src.local_file(&idx),
                            key: (source.location.clone(), idx),
                            source: Some(src.clone()),
                            values: true,
                        });
                    }
                }
            }
            Op::Take { child, dim, index } => {
                let (_, _, _, cw) = self.take_window(dim, index, window);
                child.chunks_needed(ex, &cw, out);
            }
            Op::Reduce { .. } | Op::Const(_) | Op::Along { .. } => {}
            Op::Window(op) => {
                for part in op.split(self, window, ex.window_budget()) {
                    for (i, input) in op.inputs().iter().enumerate() {
                        input.chunks_needed(ex, &op.input_window(self, i, &part), out);
                    }
                }
            }
            _ => {
                for c in self.children() {
                    c.chunks_needed(ex, &self.window_of(c, window), out);
                }
            }
        }
    }

    /// Whether [`Node::visit_rows`] can read this node's values where the chunk cache holds
    /// them: a float source without decoding, possibly below selections.
    pub(crate) fn visitable(&self) -> bool {
        match &self.op {
            Op::Source { source, decoding } => {
                !self.dims.is_empty()
                    && (decoding.is_identity() || decoding.is_nan_mask_only())
                    && matches!(
                        (source.dtype, self.vtype),
                        (DType::Float32, VType::F32) | (DType::Float64, VType::F64)
                    )
            }
            Op::Take { child, .. } => child.dims == self.dims && child.visitable(),
            _ => false,
        }
    }

    /// Whether visiting the rows of `window` stays cheap: no selection below picks scattered
    /// positions along the last dimension, which would make every value a row of its own.
    pub(crate) fn runs_are_long(&self, window: &Window) -> bool {
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
    pub(crate) fn visit_rows(
        &self,
        ex: &Exec,
        window: &Window,
        f: &mut dyn FnMut(usize, Row<'_>),
    ) -> Result<()> {
        match &self.op {
            Op::Source { source, .. } => ex.cache.visit_rows(&**ex.source(source)?, window, f),
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
                        child.visit_rows(ex, &cw, f)?;
                    } else if axis == 0 {
                        let shift = j * inner;
                        child.visit_rows(ex, &cw, &mut |off, row| f(off + shift, row))?;
                    } else {
                        child.visit_rows(ex, &cw, &mut |off, row| {
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
    pub(crate) fn read_plain_into(
        &self,
        ex: &Exec,
        window: &Window,
        out: &mut [u8],
        layout: &[u64],
    ) -> Result<bool> {
        match &self.op {
            Op::Source { source, .. } => {
                let (start, sizes) = start_and_shape(window);
                let src = ex.source(source)?;
                ex.cache
                    .read_region_into(&**src, &start, &sizes, out, layout)?;
                Ok(true)
            }
            Op::Take { child, dim, index } => {
                let (axis, sel, _, cw) = self.take_window(dim, index, window);
                if sel.windows(2).all(|w| w[1] == w[0] + 1) {
                    return child.read_plain_into(ex, &cw, out, layout);
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
                    if !child.read_plain_into(ex, &rw, part, &run_layout)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// This [`Node::visitable`] float node's `window`, read from the chunk cache into a recycled
    /// buffer of shape `layout` (each dimension at least the window's) that holds the window at
    /// the start of each dimension and NaN everywhere else. `None` for a selection of scattered
    /// positions (see [`Node::read_plain_into`]) or a node that is not a float.
    fn read_plain(&self, ex: &Exec, window: &Window, layout: &[usize]) -> Result<Option<Data>> {
        fn read<T: bytemuck::Pod + Default>(
            node: &Node,
            ex: &Exec,
            window: &Window,
            layout: &[usize],
            fill: T,
            recycled: &'static std::thread::LocalKey<std::cell::RefCell<Vec<Vec<T>>>>,
        ) -> Result<Option<Vec<T>>> {
            let got = block_shape(window);
            let layout64: Vec<u64> = layout.iter().map(|n| *n as u64).collect();
            // Every value is overwritten: a recycled buffer's old values never show.
            let mut out = recycled.with(|r| reuse(&mut r.borrow_mut(), layout.iter().product()));
            fill_outside(&mut out, &got, layout, fill);
            if node.read_plain_into(ex, window, bytemuck::cast_slice_mut(&mut out), &layout64)? {
                Ok(Some(out))
            } else {
                recycled.with(|r| keep_recycled(&mut r.borrow_mut(), out));
                Ok(None)
            }
        }
        Ok(match self.vtype {
            VType::F32 => read(self, ex, window, layout, f32::NAN, &RECYCLED_F32)?.map(Data::F32),
            VType::F64 => read(self, ex, window, layout, f64::NAN, &RECYCLED_F64)?.map(Data::F64),
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
    pub(crate) fn eval_padded(
        &self,
        ex: &Exec,
        window: &Window,
        full: &[usize],
    ) -> Result<Option<Data>> {
        let got = block_shape(window);
        let fits = got.len() == full.len() && got.iter().zip(full).all(|(g, f)| g <= f);
        if !fits || !self.pads() {
            return Ok(None);
        }
        if self.visitable() {
            return self.read_plain(ex, window, full);
        }
        let row = got.last().copied().unwrap_or(0);
        match &self.op {
            Op::Unary(op, child) => {
                let Some(mut data) = child.eval_padded(ex, window, full)? else {
                    return Ok(None);
                };
                if !matches!(data, Data::F32(_) | Data::F64(_)) {
                    return Ok(None);
                }
                padded_rows(&got, full, |_, off| match &mut data {
                    Data::F32(v) => unary_f32(*op, &mut v[off..off + row]),
                    Data::F64(v) => unary_f64(*op, &mut v[off..off + row]),
                    _ => unreachable!("a float function of a float block"),
                });
                Ok(Some(data))
            }
            Op::Where(c, a, b) => self.mask_padded(ex, (c, a, b), window, full),
            _ => Ok(None),
        }
    }

    /// [`Node::eval_padded`] of `where(c, a, b)`, whose condition's dimensions are the trailing
    /// ones (see [`Node::pads`]): one slab of it applies to each position along the leading ones.
    fn mask_padded(
        &self,
        ex: &Exec,
        (c, a, b): (&NodeRef, &NodeRef, &NodeRef),
        window: &Window,
        full: &[usize],
    ) -> Result<Option<Data>> {
        let got = block_shape(window);
        let row = got.last().copied().unwrap_or(0);
        let cond = c.eval(ex, &self.window_of(c, window))?.data.into_bool();
        let other = b
            .eval(ex, &self.window_of(b, window))?
            .data
            .into_vtype(self.vtype);
        let slab: usize = got[got.len() - c.dims.len()..].iter().product();
        if cond.len() != slab || other.len() != 1 || row == 0 {
            return Ok(None);
        }
        let Some(mut data) = a.eval_padded(ex, window, full)? else {
            return Ok(None);
        };
        // The positions each row of the condition drops.
        let drop: Vec<Vec<Range<usize>>> = cond.chunks(row).map(false_runs).collect();
        padded_rows(&got, full, |r, off| {
            let drop = &drop[r % drop.len()];
            match (&mut data, &other) {
                (Data::F32(v), Data::F32(o)) => fill_runs(&mut v[off..off + row], drop, o[0]),
                (Data::F64(v), Data::F64(o)) => fill_runs(&mut v[off..off + row], drop, o[0]),
                _ => unreachable!("a float mask of a float block"),
            }
        });
        Ok(Some(data))
    }

    /// Evaluate over `window` (one range per dimension of this node).
    pub(crate) fn eval(&self, ex: &Exec, window: &Window) -> Result<Block> {
        let shape = block_shape(window);
        if self.visitable() {
            // Plain floats are copied from the cached chunks straight into the block, only the
            // selected positions.
            if let Some(data) = self.read_plain(ex, window, &shape)? {
                return Ok(Block {
                    dims: self.dims.clone(),
                    shape,
                    data,
                });
            }
        }
        let data = match &self.op {
            Op::Source { source, decoding } => {
                let (start, sizes) = start_and_shape(window);
                let raw = ex
                    .cache
                    .read_region(&**ex.source(source)?, &start, &sizes)?;
                decode_raw(&raw, decoding, self.vtype)
            }
            Op::Take { child, dim, index } => {
                let (axis, sel, lo, cw) = self.take_window(dim, index, window);
                let inner = child.eval(ex, &cw)?;
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
                let b = child.eval(ex, &self.window_of(child, window))?;
                unary(*op, b.data, self.vtype)
            }
            Op::Binary(op, a, b) => self.eval_binary(ex, *op, (a, b), window, &shape)?,
            Op::Where(c, a, b) => self.eval_where(ex, (c, a, b), window, &shape)?,
            Op::Window(op) => {
                let parts = op.split(self, window, ex.window_budget());
                if parts.len() > 1 {
                    self.eval_parts(ex, op.as_ref(), window, &parts, &shape)?
                } else {
                    let inputs = op
                        .inputs()
                        .iter()
                        .enumerate()
                        .map(|(i, input)| input.eval(ex, &op.input_window(self, i, window)))
                        .collect::<Result<Vec<_>>>()?;
                    op.eval(self, window, inputs)?
                }
            }
            Op::Reduce { .. } => {
                let full = ex.reduction_result(self)?;
                let start: Vec<u64> = window.iter().map(|r| r.start).collect();
                return Ok(slice_block(&full, &start, &shape));
            }
            Op::Cast(child) => child
                .eval(ex, &self.window_of(child, window))?
                .into_expanded(&self.dims, &shape)
                .into_vtype(self.vtype),
            Op::Transpose(child) => child
                .eval(ex, &self.window_of(child, window))?
                .into_expanded(&self.dims, &shape),
        };
        Ok(Block {
            dims: self.dims.clone(),
            shape,
            data,
        })
    }

    /// A window operation's values over `window`, computed part by part (the windows
    /// [`WindowOp::split`] gave, which tile `window` along one dimension), each from its own
    /// input windows, so only one part's inputs are held at a time.
    fn eval_parts(
        &self,
        ex: &Exec,
        op: &dyn WindowOp,
        window: &Window,
        parts: &[Window],
        shape: &[usize],
    ) -> Result<Data> {
        use rayon::prelude::*;
        let total: usize = shape.iter().product();
        let mut full = vec![f64::NAN; total];
        // Parts are independent: idle workers take some (a window that holds most of a
        // regrid's work, a raster inside one output chunk, then uses every core).
        let values = parts
            .par_iter()
            .map(|part| {
                let inputs = op
                    .inputs()
                    .iter()
                    .enumerate()
                    .map(|(i, input)| input.eval(ex, &op.input_window(self, i, part)))
                    .collect::<Result<Vec<_>>>()?;
                Ok(op.eval(self, part, inputs)?.to_f64())
            })
            .collect::<Result<Vec<_>>>()?;
        for (part, v) in parts.iter().zip(&values) {
            place(&mut full, shape, window, part, v);
        }
        Ok(Data::F64(full).convert_if_needed(self.vtype))
    }

    /// The values of `a op b` over `window`.
    fn eval_binary(
        &self,
        ex: &Exec,
        op: crate::expr::BinOp,
        (a, b): (&NodeRef, &NodeRef),
        window: &Window,
        shape: &[usize],
    ) -> Result<Data> {
        let x = a.eval(ex, &self.window_of(a, window))?;
        let y = b.eval(ex, &self.window_of(b, window))?;
        let n: usize = shape.iter().product();
        // A scalar operand is used as it is, not broadcast to the block first.
        let x = if x.is_scalar() && n > 1 {
            x.data
        } else {
            x.into_expanded(&self.dims, shape)
        };
        let y = if y.is_scalar() && n > 1 {
            y.data
        } else {
            y.into_expanded(&self.dims, shape)
        };
        Ok(binary(op, &x, &y, a.vtype, b.vtype, self.vtype, n))
    }

    /// The values of `where(c, a, b)` over `window`.
    fn eval_where(
        &self,
        ex: &Exec,
        (c, a, b): (&NodeRef, &NodeRef, &NodeRef),
        window: &Window,
        shape: &[usize],
    ) -> Result<Data> {
        let cond = c.eval(ex, &self.window_of(c, window))?;
        // A condition over the trailing dimensions is applied slab by slab.
        let k = cond.dims.len();
        let trailing =
            k > 0 && k <= self.dims.len() && self.dims[self.dims.len() - k..] == cond.dims[..];
        let cond = if trailing {
            cond.data.into_bool()
        } else {
            cond.into_expanded(&self.dims, shape).into_bool()
        };
        let x = a
            .eval(ex, &self.window_of(a, window))?
            .into_expanded(&self.dims, shape)
            .into_vtype(self.vtype);
        let y = b.eval(ex, &self.window_of(b, window))?;
        let y = if y.is_scalar() {
            y.data.into_vtype(self.vtype)
        } else {
            y.into_expanded(&self.dims, shape).into_vtype(self.vtype)
        };
        Ok(select(&cond, x, &y))
    }
}

/// A reduction's result, computed once however many ask for it at once.
pub(crate) type ReductionCell =
    Arc<std::sync::OnceLock<std::result::Result<Arc<Block>, Arc<Error>>>>;

/// Copy `values` (C order over `part`) into `full` (C order over `window`, of `shape`), where
/// `part` lies within `window`.
fn place(full: &mut [f64], shape: &[usize], window: &Window, part: &Window, values: &[f64]) {
    let pshape: Vec<usize> = part
        .iter()
        .map(|r| usize::try_from(r.end - r.start).unwrap_or(0))
        .collect();
    let n = pshape.len();
    if n == 0 {
        if let (Some(f), Some(v)) = (full.first_mut(), values.first()) {
            *f = *v;
        }
        return;
    }
    let mut strides = vec![1usize; n];
    for i in (0..n - 1).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    let offset: Vec<usize> = part
        .iter()
        .zip(window)
        .map(|(p, w)| usize::try_from(p.start - w.start).unwrap_or(0))
        .collect();
    let row = pshape[n - 1];
    if row == 0 {
        return;
    }
    for (k, chunk) in values.chunks(row).enumerate() {
        // The index of this row of `part` along every dimension but the last.
        let mut rem = k;
        let mut at = offset[n - 1];
        for i in (0..n - 1).rev() {
            let idx = rem % pshape[i];
            rem /= pshape[i];
            at += (idx + offset[i]) * strides[i];
        }
        full[at..at + row].copy_from_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::BinOp;
    use crate::plan::Reduction;
    use crate::source::Sources;
    use crate::testkit::{
        along, first_array, grid_source, memory_group, nan_reduction, put_key, source_node,
        unary_node,
    };

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
        // Nothing to read: an executor without sources.
        let ex = Exec::new(Sources::default(), 1 << 20);
        let out = ex.eval(&s, &vec![0..2, 0..3]).unwrap();
        assert_eq!(
            out.data,
            Data::F64(vec![11.0, 21.0, 31.0, 12.0, 22.0, 32.0])
        );
        let part = ex.eval(&s, &vec![1..2, 1..3]).unwrap();
        assert_eq!(part.data, Data::F64(vec![22.0, 32.0]));
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
        let mut sources = Sources::default();
        let source = source_node(
            &mut sources,
            Arc::new(first_array(&store)),
            &["t", "y", "x"],
        );
        let ex = Exec::new(sources, 1 << 20);
        let dims = source.dims.clone();
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
            nan_reduction(&ex, child, &dims, op, kind, over).expect("eval")
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
            let Data::F32(got) = ex.eval(node, &window).expect("eval").data else {
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
                .read_plain_into(&ex, &window, bytemuck::cast_slice_mut(&mut block), &shape)
                .expect("read"));
            let Data::F32(got) = ex.eval(&runs, &window).expect("eval").data else {
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
            .read_plain_into(&ex, &window, bytemuck::cast_slice_mut(&mut block), &x.shape)
            .expect("read"));
    }

    #[test]
    fn take_and_reduce() {
        let ex = Exec::new(Sources::default(), 1 << 20);
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
            ex.eval(&t, &std::iter::once(0..3).collect()).unwrap().data,
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
            },
            vec![],
            vec![],
            VType::F64,
        );
        assert_eq!(ex.eval(&cnt, &vec![]).unwrap().data, Data::F64(vec![3.0]));
        let mean = Node::new(
            Op::Reduce {
                child: a,
                dims: vec!["t".into()],
                kind: Reduction::Mean,
            },
            vec![],
            vec![],
            VType::F64,
        );
        assert_eq!(ex.eval(&mean, &vec![]).unwrap().data, Data::F64(vec![7.0]));
    }

    #[test]
    fn padded_evaluation_agrees_with_evaluating_and_padding() {
        // Values with NaNs, in chunks of 3 x 2; days 3 dropped (runs along the first axis).
        let mut sources = Sources::default();
        let src = grid_source(&mut sources, "plan-padded", [7, 5], [3, 2], |t, x| {
            if (t + x) % 4 == 0 {
                f32::NAN
            } else {
                (t * 10 + x) as f32 + 0.5
            }
        });
        let ex = Exec::new(sources, 1 << 20);
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
                let Some(Data::F32(padded)) = ex.eval_padded(node, &window, &full).expect("padded")
                else {
                    panic!("{:?} is computed padded", node.op)
                };
                let Data::F32(block) = ex.eval(node, &window).expect("eval").data else {
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
            let padded = ex
                .eval_padded(&node, &vec![0..2, 0..3], &[3, 4])
                .expect("eval");
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
        let padded = ex
            .eval_padded(&scattered, &vec![0..7, 0..3], &[9, 4])
            .expect("eval");
        assert!(padded.is_none());
    }
}
