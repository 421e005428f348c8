//! The extension point for operations whose input window is not a per-dimension map of their
//! output window: a regrid (the reprojected footprint of an output window plus its kernel's
//! halo), a time resample (the bins an output window's steps cover), a fuse (every source of a
//! time group). The core operations stay in [`Op`](super::Op); each such operation is one file
//! of [`crate::ops`] implementing [`WindowOp`], held by the graph as
//! [`Op::Window`](super::Op::Window). The executor evaluates them all the same way: it reads
//! each input over the window the operation asks for, then lets the operation compute the block.

use std::collections::BTreeSet;
use std::fmt;

use super::{Block, Data, Node, NodeRef, Window};
use crate::error::Result;

/// An operation computing an output window from input windows it chooses.
pub trait WindowOp: Send + Sync + fmt::Debug {
    /// Its name, as a printed plan shows it.
    fn name(&self) -> &'static str;

    /// The nodes it computes from.
    fn inputs(&self) -> &[NodeRef];

    /// The window of input `i` that computing `window` of `out` (the node holding this
    /// operation) reads.
    fn input_window(&self, out: &Node, i: usize, window: &Window) -> Window;

    /// The values of `out` over `window` (C order, `out`'s dimensions, of `out`'s type), from
    /// the blocks of its inputs over the windows [`WindowOp::input_window`] gave, in order.
    ///
    /// # Errors
    /// What the operation cannot compute, named.
    fn eval(&self, out: &Node, window: &Window, inputs: Vec<Block>) -> Result<Data>;

    /// The dimensions of `out` along which its values may change (see
    /// [`Node::value_dims`](super::Node::value_dims)); by default those its inputs' values
    /// change along.
    fn value_dims(&self, out: &Node) -> Vec<String> {
        let varying: BTreeSet<String> = self.inputs().iter().flat_map(|c| c.value_dims()).collect();
        out.dims
            .iter()
            .filter(|d| varying.contains(*d))
            .cloned()
            .collect()
    }

    /// The parts `window` of `out` is computed in, each from its own input windows, so that
    /// no part reads much more than `budget` bytes of its inputs (a regrid that downsamples
    /// strongly reads a large source window for a small output window). The parts tile
    /// `window` and each output value is the same whichever part computes it. By default the
    /// window itself.
    fn split(&self, out: &Node, window: &Window, budget: u64) -> Vec<Window> {
        let _ = (out, budget);
        vec![window.clone()]
    }

    /// Its parameters, for a printed plan (none by default).
    fn describe(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}
