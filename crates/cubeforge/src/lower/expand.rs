//! `expand`: static variables given a dimension of another variable (`expand: {variables:
//! [elevation], along: time, like: chl}`), in that variable's order of dimensions. The result
//! is a broadcast whose values do not change along the new dimension, so the writer computes
//! and encodes each distinct chunk once (`write/repeats.rs`).

use super::{op_err, State};
use crate::error::Result;
use crate::plan::{Node, Op};
use crate::recipe::{ExpandSpec, Operation};

impl State<'_> {
    /// Apply `expand`.
    pub(super) fn expand(&mut self, i: usize, op: &Operation, e: &ExpandSpec) -> Result<()> {
        let doc = self.doc;
        let err = |m: String| op_err(doc, i, op, m);
        let like = self.var_or_err(i, op, &e.like)?.node.clone();
        let Some(len) = like.size_of(&e.along) else {
            return Err(err(format!(
                "'{}' has no dimension '{}' to expand along (its dimensions: {})",
                e.like,
                e.along,
                like.dims.join(", ")
            )));
        };
        if e.variables.is_empty() {
            return Err(err("name at least one variable to expand".into()));
        }
        for name in &e.variables {
            let var = self.var_or_err(i, op, name)?;
            let node = var.node.clone();
            if node.dims.contains(&e.along) {
                return Err(err(format!("'{name}' already has dimension '{}'", e.along)));
            }
            // `like`'s order for the dimensions both have (and the new one), then the
            // variable's own others in its order.
            let mut dims: Vec<String> = like
                .dims
                .iter()
                .filter(|d| **d == e.along || node.dims.contains(d))
                .cloned()
                .collect();
            let others: Vec<String> = node
                .dims
                .iter()
                .filter(|d| !dims.contains(d))
                .cloned()
                .collect();
            dims.extend(others);
            let shape: Vec<u64> = dims
                .iter()
                .map(|d| {
                    if *d == e.along {
                        len
                    } else {
                        node.size_of(d).unwrap_or(1)
                    }
                })
                .collect();
            for d in &node.dims {
                if let (Some(a), Some(b)) = (like.size_of(d), node.size_of(d)) {
                    if a != b {
                        return Err(err(format!(
                            "'{name}' has {d}: {b} and '{}' has {d}: {a}",
                            e.like
                        )));
                    }
                }
            }
            let vtype = node.vtype;
            let expanded = Node::new(Op::Transpose(node), dims, shape, vtype);
            self.check_depth(i, op, name, &expanded)?;
            if let Some(v) = self.vars.get_mut(name) {
                v.node = expanded;
            }
        }
        Ok(())
    }
}
