//! `rename_dims`: the same values under other dimension names. The node holding it has the
//! input's dimensions, in the same order, renamed; each output window is the same window of the
//! input, so its blocks pass through unchanged. Lowering uses it for computed variables only: a
//! source variable is renamed as the same source under the new names.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::plan::{Block, Data, Node, NodeRef, Window, WindowOp};

/// Its input's values, its dimensions renamed.
#[derive(Debug)]
pub struct RenameDims {
    input: [NodeRef; 1],
}

impl RenameDims {
    /// `input` under the dimension names of the node that holds this operation (one per
    /// dimension of `input`, in its order).
    #[must_use]
    pub fn new(input: NodeRef) -> RenameDims {
        RenameDims { input: [input] }
    }
}

impl WindowOp for RenameDims {
    fn name(&self) -> &'static str {
        "rename_dims"
    }

    fn inputs(&self) -> &[NodeRef] {
        &self.input
    }

    fn input_window(&self, _out: &Node, _i: usize, window: &Window) -> Window {
        window.clone()
    }

    fn eval(&self, out: &Node, _window: &Window, inputs: Vec<Block>) -> Result<Data> {
        let block = inputs
            .into_iter()
            .next()
            .ok_or_else(|| Error::Other("internal: rename_dims takes one input".into()))?;
        Ok(block.data.convert_if_needed(out.vtype))
    }

    fn value_dims(&self, out: &Node) -> Vec<String> {
        let varying: BTreeSet<String> = self.input[0].value_dims().into_iter().collect();
        self.input[0]
            .dims
            .iter()
            .zip(&out.dims)
            .filter(|(d, _)| varying.contains(*d))
            .map(|(_, o)| o.clone())
            .collect()
    }

    fn describe(&self) -> serde_json::Value {
        serde_json::json!({"from": self.input[0].dims})
    }
}
