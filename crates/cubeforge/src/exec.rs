//! The executor: evaluates a plan's nodes window by window. An [`Exec`] owns what a plan does
//! not hold: the readers of the sources ([`Sources`]), the bounded cache of decoded units they
//! are read through ([`ChunkCache`]), and the results of reductions, each computed once, in a
//! streaming pass of its own or together with the output tasks of a pass ([`Exec::run_pass`]).
//!
//! | file | what |
//! |---|---|
//! | `exec/eval.rs` | evaluating a node over a window, padded edge chunks, the units a window reads |
//! | `exec/kernels.rs` | elementwise, selection and copying kernels on blocks; recycled buffers |
//! | `exec/reduce.rs` | reductions: blocks along the first dimension, per-worker accumulators |
//! | `exec/pass.rs` | passes: planning them, and running reductions and tasks in one order |
//! | `exec/cache.rs` | the chunk cache: slots, schedule, decode-ahead, read-ahead, eviction |
//! | `exec/cache/state.rs` | the cache's bookkeeping: uses, next use, what a pass is done with |
//! | `exec/cache/pool.rs` | the pool of buffers decoded units are decoded into |
//! | `exec/cache/planes.rs` | rows read in place, and NaN scans over the byte planes of frames |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::plan::{Block, Data, Node, NodeId, SourceRef, Window};
use crate::source::{ChunkSource, Sources};

mod cache;
mod eval;
mod kernels;
mod pass;
mod reduce;

pub use cache::{ChunkCache, ChunkKey, Needed};
use eval::ReductionCell;
pub use kernels::recycle;
pub use pass::{chunk_window, for_each_in_order_with, plan_passes, Passes};
pub use reduce::ACC_BYTES_PER_ELEMENT;

/// An executor of plans over one set of sources: their readers, the cache of decoded units and
/// the results of reductions.
#[derive(Debug)]
pub struct Exec {
    sources: Sources,
    cache: ChunkCache,
    reductions: Mutex<HashMap<NodeId, ReductionCell>>,
}

impl Exec {
    /// An executor reading `sources` through a cache of at most `memory_limit` bytes of
    /// decoded units.
    #[must_use]
    pub fn new(sources: Sources, memory_limit: usize) -> Exec {
        Exec {
            sources,
            cache: ChunkCache::new(memory_limit),
            reductions: Mutex::default(),
        }
    }

    /// Refuse, before anything is decoded, to read a source below `roots` one unit of which
    /// (a chunk, or a part of one) decodes to more bytes than the memory limit: the cache
    /// could not hold it.
    ///
    /// # Errors
    /// [`Error::Refused`] naming the source, with the unit's size and the limit.
    pub fn check_memory<'n>(&self, roots: impl IntoIterator<Item = &'n Node>) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        let mut stack: Vec<&Node> = roots.into_iter().collect();
        while let Some(node) = stack.pop() {
            if !seen.insert(node.id()) {
                continue;
            }
            if let crate::plan::Op::Source { source, .. } = &node.op {
                let src = self.source(source)?;
                check_unit_bytes(&**src, self.cache.limit())?;
            }
            stack.extend(node.children().into_iter().map(|c| &**c));
        }
        Ok(())
    }

    /// The cache of decoded units.
    #[must_use]
    pub fn cache(&self) -> &ChunkCache {
        &self.cache
    }

    /// The bytes of input one part of a window operation may read
    /// ([`crate::plan::WindowOp::split`]): an eighth of the memory limit, as several workers
    /// each hold a part beside the chunk cache.
    #[must_use]
    pub fn window_budget(&self) -> u64 {
        (self.cache.limit() / 8) as u64
    }

    /// The reader of a source the plan names.
    ///
    /// # Errors
    /// A source this executor does not hold (a plan made with other sources).
    pub fn source(&self, source: &SourceRef) -> Result<&Arc<dyn ChunkSource>> {
        let src = self.sources.get(source.index)?;
        if src.id() == source.location {
            Ok(src)
        } else {
            Err(Error::Other(format!(
                "internal: the plan reads {} as source {}, which is {}",
                source.location,
                source.index,
                src.id()
            )))
        }
    }

    /// The values of `node` over `window` (one range per dimension of the node).
    ///
    /// # Errors
    /// Read and decode errors of the sources, naming the chunk.
    pub fn eval(&self, node: &Node, window: &Window) -> Result<Block> {
        node.eval(self, window)
    }

    /// The values of `window` laid out as an edge chunk is stored: in a block of shape `full`
    /// (each dimension at least the window's) that holds them at the start of each dimension,
    /// NaN everywhere else. Computed in that block itself for plain floats read from the cache
    /// and float functions and masks of them; `None` for any other node, which the caller
    /// evaluates and pads.
    ///
    /// # Errors
    /// Read and decode errors of the sources, naming the chunk.
    pub fn eval_padded(
        &self,
        node: &Node,
        window: &Window,
        full: &[usize],
    ) -> Result<Option<Data>> {
        node.eval_padded(self, window, full)
    }

    /// Add to `out` the units evaluating `node` over `window` reads, as the cache names them
    /// (reductions below it are computed apart and not included).
    pub fn chunks_needed(&self, node: &Node, window: &Window, out: &mut Vec<Needed>) {
        node.chunks_needed(self, window, out);
    }

    /// Whether `node` is a reduction whose result is not computed yet.
    #[must_use]
    pub fn is_pending(&self, node: &Node) -> bool {
        node.is_reduction()
            && self.reductions.lock().map_or(true, |r| {
                r.get(&node.id()).is_none_or(|c| c.get().is_none())
            })
    }

    /// The cell holding reduction `node`'s result.
    fn reduction_cell(&self, node: &Node) -> Result<ReductionCell> {
        let mut cells = self
            .reductions
            .lock()
            .map_err(|_| Error::Other("reduction results poisoned".into()))?;
        Ok(cells.entry(node.id()).or_default().clone())
    }

    /// Reduction `node`'s result over its whole output, computed in a pass of its own when it
    /// is not computed yet (another thread asking meanwhile waits for it).
    fn reduction_result(&self, node: &Node) -> Result<Arc<Block>> {
        self.reduction_cell(node)?
            .get_or_init(|| self.materialise(node).map(Arc::new).map_err(Arc::new))
            .clone()
            .map_err(Error::from_shared)
    }

    /// Keep `block` as reduction `node`'s result, computed by a pass.
    fn set_reduction(&self, node: &Node, block: Block) -> Result<()> {
        let _ = self.reduction_cell(node)?.set(Ok(Arc::new(block)));
        Ok(())
    }

    /// Compute the reductions below `node` that are not computed yet, innermost first, each in
    /// a pass of its own. A pass calls this before its blocks read a reduction, so that no
    /// reduction is computed inside a worker of another pass (a worker waiting in a nested pass
    /// could pick up a task that waits for the same reduction, on the same thread).
    ///
    /// # Errors
    /// Read and decode errors of the sources.
    pub(crate) fn materialise_below(&self, node: &Node) -> Result<()> {
        for c in node.children() {
            self.materialise_below(c)?;
            if self.is_pending(c) {
                let w: Window = c.shape.iter().map(|n| 0..(*n).min(1)).collect();
                c.eval(self, &w)?;
            }
        }
        Ok(())
    }
}

/// The bytes one unit of `src` decodes to (`None`: more than fit in 64 bits).
#[must_use]
pub fn unit_bytes(src: &dyn ChunkSource) -> Option<u64> {
    if let Some(d) = src.direct() {
        return u64::try_from(d.unit_len()).ok();
    }
    crate::zarr::element_count(src.chunk_shape())?.checked_mul(src.dtype().size() as u64)
}

/// Refuse a source one unit of which decodes to more than `limit` bytes.
///
/// # Errors
/// [`Error::Refused`] with the figures.
pub fn check_unit_bytes(src: &dyn ChunkSource, limit: usize) -> Result<()> {
    let bytes = unit_bytes(src);
    if bytes.is_some_and(|b| b <= limit as u64) {
        return Ok(());
    }
    Err(Error::Refused {
        location: src.id().to_string(),
        reason: format!(
            "one decoded chunk (shape {:?}, {}) needs more memory than --memory-limit ({} \
             bytes); raise --memory-limit or rechunk the input",
            src.chunk_shape(),
            bytes.map_or_else(|| "more than 2^64 bytes".into(), |b| format!("{b} bytes")),
            limit
        ),
    })
}
