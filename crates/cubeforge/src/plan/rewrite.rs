//! Graph rewrites: the same values from a graph that is cheaper to compute.

use std::sync::Arc;

use super::{Data, Node, NodeRef, Op, Reduction, UnOp, VType};
use crate::expr::BinOp;

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
        (Op::Source { source: x, .. }, Op::Source { source: y, .. }) => x.location == y.location,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::Exec;
    use crate::plan::Window;
    use crate::source::Sources;
    use crate::testkit::{along, grid_source, reduce, unary_node};

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
        let mut sources = Sources::default();
        let x = grid_source(&mut sources, "plan-nan-mask", [6, 6], [4, 4], value);
        let other = grid_source(
            &mut sources,
            "plan-nan-mask-other",
            [6, 6],
            [4, 4],
            |_, _| 1.0,
        );
        let ex = Exec::new(sources, 1 << 20);
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
            let want = ex.eval(&masked(cond), &all).expect("eval").data.to_f64();
            let got = ex.eval(&masked(&simple), &all).expect("eval").data.to_f64();
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
        let block = ex
            .eval(&simple, &std::iter::once(0..6).collect())
            .expect("eval");
        assert_eq!(block.data.len(), 6, "{simple:?}");
        let want = ex.eval(&masked(&cond), &all).expect("eval").data.to_f64();
        let got = ex.eval(&masked(&simple), &all).expect("eval").data.to_f64();
        for (g, w) in got.iter().zip(&want) {
            assert!((g.is_nan() && w.is_nan()) || g == w, "{got:?} vs {want:?}");
        }

        // A mask built from another variable is left as it is.
        let cond = bool_node(Op::Binary(BinOp::And, valid(&other), land.clone()));
        assert!(Arc::ptr_eq(&simplify_nan_mask(&cond, &x), &cond));
    }
}
