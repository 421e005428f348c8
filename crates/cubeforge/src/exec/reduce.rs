//! Reductions over named dimensions: a reduction's child is read in blocks along its first
//! dimension ([`ReductionJob`]), each worker adding blocks into its own accumulator ([`Acc`]),
//! merged at the end; all/any of NaN-ness is read where the chunk cache holds the values, without
//! decoding them where the stored frames allow.

use super::cache::{Needed, Row};
use super::Exec;
use crate::error::{Error, Result};
use crate::plan::strides_in;
use crate::plan::{Block, Data, Node, NodeRef, Op, Reduction, UnOp, VType, Window};

/// A reduction computed block by block: the blocks split the child along its first dimension,
/// kept or reduced, so that each block covers whole rows of input chunks and every input chunk
/// is decoded about once. (Splitting along a reduced inner dimension would sweep the whole outer
/// axis once per block.) Each worker adds blocks into its own accumulator; the accumulators are
/// merged at the end.
pub(super) struct ReductionJob<'a> {
    pub(super) node: &'a Node,
    child: &'a NodeRef,
    kind: Reduction,
    /// Length of the child's first dimension, and block length along it.
    len: u64,
    step: u64,
    out_shape: Vec<usize>,
    pub(super) n_out: usize,
    /// all/any of isnan/notnull over a float source: NaN-ness is read where the chunk cache
    /// holds the values, without copying them or building a boolean block. (`true`: isnan.)
    nan_scan: Option<(bool, &'a NodeRef)>,
}

impl<'a> ReductionJob<'a> {
    pub(super) fn new(node: &'a Node) -> Result<ReductionJob<'a>> {
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
    pub(super) fn blocks(&self) -> usize {
        usize::try_from(self.len.div_ceil(self.step)).unwrap_or(0)
    }

    /// Where block `b` starts along the child's first dimension, as a fraction of its length.
    pub(super) fn position(&self, b: usize) -> f64 {
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
    pub(super) fn needs(&self, ex: &Exec, b: usize, out: &mut Vec<Needed>) {
        let w = self.window(b);
        let from = out.len();
        self.child.chunks_needed(ex, &w, out);
        if self.nan_scan.is_some_and(|(_, x)| x.runs_are_long(&w)) {
            for n in &mut out[from..] {
                n.values = false;
            }
        }
    }

    /// Add block `b` into `acc`.
    pub(super) fn run(&self, ex: &Exec, acc: &mut Acc, b: usize) -> Result<()> {
        let w = self.window(b);
        if let Some((nan, x)) = self.nan_scan.filter(|(_, x)| x.runs_are_long(&w)) {
            let all = self.kind == Reduction::All;
            let scan = NanScan {
                nan,
                all,
                out_dims: &self.node.dims,
                out_shape: &self.out_shape,
            };
            return acc.add_nan_rows(ex, x, &w, &scan);
        }
        let block = self.child.eval(ex, &w)?;
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
    pub(super) fn finish(&self, partials: &[Acc]) -> Block {
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

/// What [`Acc::add_nan_rows`] reduces: `all` (else `any`) of "value is NaN" when `nan`, else of
/// "value is not NaN", into the output of dimensions `out_dims` and shape `out_shape`.
#[derive(Clone, Copy)]
struct NanScan<'a> {
    nan: bool,
    all: bool,
    out_dims: &'a [String],
    out_shape: &'a [usize],
}

/// The bytes an accumulator holds per output element: five 8-byte and two 1-byte values (see
/// `Acc`), for the dry run's memory estimate.
pub const ACC_BYTES_PER_ELEMENT: u64 = 5 * 8 + 2;

/// Partial reduction state per output element.
pub(super) struct Acc {
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
    fn add_nan_rows(&mut self, ex: &Exec, x: &Node, window: &Window, scan: &NanScan) -> Result<()> {
        let NanScan {
            nan,
            all: all_of,
            out_dims,
            out_shape,
        } = *scan;
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
        x.visit_rows(ex, window, &mut |off, row| {
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

    pub(super) fn new(n: usize) -> Acc {
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
