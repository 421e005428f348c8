//! `clip(x, lo, hi)`: `x` limited to `lo .. hi`, elementwise, NaN kept, as `numpy.clip` of
//! finite bounds. The pilot [`WindowOp`]: each input is read over the output window's ranges
//! along the dimensions it has, broadcast by dimension name.

use crate::error::Result;
use crate::plan::{Block, Data, Node, NodeRef, Window, WindowOp};

/// `clip(x, lo, hi)`.
#[derive(Debug)]
pub struct Clip {
    inputs: [NodeRef; 3],
}

impl Clip {
    /// `x` clipped to `lo .. hi` (each broadcast to the output's dimensions).
    #[must_use]
    pub fn new(x: NodeRef, lo: NodeRef, hi: NodeRef) -> Clip {
        Clip {
            inputs: [x, lo, hi],
        }
    }
}

impl WindowOp for Clip {
    fn name(&self) -> &'static str {
        "clip"
    }

    fn inputs(&self) -> &[NodeRef] {
        &self.inputs
    }

    fn input_window(&self, out: &Node, i: usize, window: &Window) -> Window {
        out.window_of(&self.inputs[i], window)
    }

    fn eval(&self, out: &Node, window: &Window, inputs: Vec<Block>) -> Result<Data> {
        let shape: Vec<usize> = window
            .iter()
            .map(|r| usize::try_from(r.end - r.start).unwrap_or(0))
            .collect();
        let mut values = inputs
            .into_iter()
            .map(|b| b.into_expanded(&out.dims, &shape).into_f64());
        let (Some(v), Some(l), Some(h)) = (values.next(), values.next(), values.next()) else {
            return Err(crate::error::Error::Other(
                "internal: clip takes three inputs".into(),
            ));
        };
        Ok(Data::F64(
            v.iter()
                .zip(&l)
                .zip(&h)
                .map(|((v, l), h)| if v.is_nan() { *v } else { v.max(*l).min(*h) })
                .collect(),
        )
        .convert(out.vtype))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::dtype::DType;
    use crate::exec::{Exec, Needed};
    use crate::plan::{Op, VType};
    use crate::source::Sources;
    use crate::testkit::{along, grid_source};

    /// What the evaluator's `Op::Clip` arm computed before clip became a window operation:
    /// each operand evaluated over the output window's ranges along its dimensions, expanded,
    /// clamped in `f64` with NaN kept, then converted to the output's type.
    fn old_clip_arm(ex: &Exec, out: &Node, operands: &[NodeRef; 3], window: &Window) -> Data {
        let shape: Vec<usize> = window.iter().map(|r| (r.end - r.start) as usize).collect();
        let operand = |n: &NodeRef| -> Vec<f64> {
            ex.eval(n, &out.window_of(n, window))
                .expect("operand")
                .into_expanded(&out.dims, &shape)
                .into_f64()
        };
        let (v, l, h) = (
            operand(&operands[0]),
            operand(&operands[1]),
            operand(&operands[2]),
        );
        Data::F64(
            v.iter()
                .zip(&l)
                .zip(&h)
                .map(|((v, l), h)| if v.is_nan() { *v } else { v.max(*l).min(*h) })
                .collect(),
        )
        .convert(out.vtype)
    }

    #[test]
    fn clip_as_a_window_operation_agrees_with_the_old_arm() {
        // x over (t, x) with NaNs, in chunks of 3 x 2; lo along x, hi along t.
        let mut sources = Sources::default();
        #[allow(clippy::cast_precision_loss)]
        let x = grid_source(&mut sources, "ops-clip", [7, 5], [3, 2], |t, x| {
            if (t + 2 * x) % 5 == 0 {
                f32::NAN
            } else {
                (t * 10 + x) as f32 - 20.5
            }
        });
        let ex = Exec::new(sources, 1 << 20);
        let lo = along("x", vec![-3.0, 0.0, 5.25, -100.0, 12.0], VType::F64);
        let hi = along(
            "t",
            vec![30.0, 2.0, 40.0, 41.5, 0.0, 55.0, 60.0],
            VType::F64,
        );
        let operands = [x.clone(), lo, hi];
        for vtype in [VType::F32, VType::F64, VType::Int(DType::Int16)] {
            let [a, b, c] = operands.clone();
            let node = Node::new(
                Op::Window(Arc::new(Clip::new(a, b, c))),
                x.dims.clone(),
                x.shape.clone(),
                vtype,
            );
            for window in [
                vec![0..7, 0..5],
                vec![2..6, 1..4],
                vec![6..7, 4..5],
                vec![0..1, 0..5],
            ] {
                let got = ex.eval(&node, &window).expect("eval");
                assert_eq!(got.dims, node.dims);
                let want = old_clip_arm(&ex, &node, &operands, &window);
                // Compared as text, where NaN equals NaN.
                assert_eq!(
                    format!("{:?}", got.data),
                    format!("{want:?}"),
                    "{vtype:?} {window:?}"
                );
                // The input chunks the operation reads are those of `x` over the same window.
                let (mut via_op, mut direct) = (Vec::<Needed>::new(), Vec::<Needed>::new());
                ex.chunks_needed(&node, &window, &mut via_op);
                ex.chunks_needed(&x, &window, &mut direct);
                let keys = |n: &[Needed]| n.iter().map(|n| n.key.clone()).collect::<Vec<_>>();
                assert_eq!(keys(&via_op), keys(&direct));
            }
            assert_eq!(node.value_dims(), x.dims);
        }
    }
}
