//! `assign` expressions to nodes: operands broadcast by dimension name, NumPy 2's type
//! promotion, elementwise functions and reductions over named dimensions.

use std::sync::Arc;

use super::State;
use crate::dtype::DType;
use crate::expr::{self, BinOp, Expr};
use crate::ops::clip::Clip;
use crate::plan::{self, Node, NodeRef, Op, Reduction, UnOp, VType};

impl State<'_> {
    /// Compile an expression into a node.
    pub(super) fn compile(&self, e: &Expr) -> std::result::Result<NodeRef, String> {
        let konst = |d: plan::Data, t: VType| Node::new(Op::Const(d), vec![], vec![], t);
        match e {
            Expr::Number(x) => Ok(konst(plan::Data::F64(vec![*x]), VType::F64)),
            #[allow(clippy::cast_precision_loss)]
            Expr::Int(x) => Ok(konst(
                plan::Data::F64(vec![*x as f64]),
                VType::Int(DType::Int64),
            )),
            Expr::Bool(b) => Ok(konst(plan::Data::Bool(vec![*b]), VType::Bool)),
            Expr::Var(n) => self.vars.get(n).map(|v| v.node.clone()).ok_or_else(|| {
                format!(
                    "variable '{n}' not found (available: {})",
                    self.vars.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            }),
            Expr::Dims(_) => {
                Err("a quoted dimension name can only be the second argument of a reduction".into())
            }
            Expr::Neg(x) => {
                let c = self.compile(x)?;
                if c.vtype == VType::Bool {
                    return Err("'-' is not supported on booleans (as in NumPy): use '~'".into());
                }
                let (dims, shape, t) = (c.dims.clone(), c.shape.clone(), c.vtype);
                Ok(Node::new(Op::Unary(UnOp::Neg, c), dims, shape, t))
            }
            Expr::Not(x) => {
                let c = self.compile(x)?;
                if c.vtype.is_float() {
                    return Err(format!(
                        "'~' (invert) is not supported on {} (as in NumPy): use it on booleans or integers",
                        c.vtype.dtype().name()
                    ));
                }
                let (dims, shape, t) = (c.dims.clone(), c.shape.clone(), c.vtype);
                Ok(Node::new(Op::Unary(UnOp::Not, c), dims, shape, t))
            }
            Expr::Binary(op, a, b) => {
                let (x, y) = (self.compile(a)?, self.compile(b)?);
                let (dims, shape) = broadcast(&[&x, &y])?;
                let t = binary_type(*op, (&x, a), (&y, b))?;
                Ok(Node::new(Op::Binary(*op, x, y), dims, shape, t))
            }
            Expr::Call(name, args) => self.compile_call(name, args),
        }
    }

    fn compile_call(&self, name: &str, args: &[Expr]) -> std::result::Result<NodeRef, String> {
        if let Some(kind) = Reduction::parse(name) {
            let [x, Expr::Dims(dims)] = args else {
                return Err(format!(
                    "{name}(x, 'dim') takes an array and a dimension name or list"
                ));
            };
            let c = self.compile(x)?;
            for d in dims {
                if !c.dims.contains(d) {
                    return Err(format!("{name}: dimension '{d}' is not among {:?}", c.dims));
                }
            }
            let keep: Vec<(String, u64)> = c
                .dims
                .iter()
                .zip(&c.shape)
                .filter(|(d, _)| !dims.contains(d))
                .map(|(d, n)| (d.clone(), *n))
                .collect();
            let t = match kind {
                Reduction::All | Reduction::Any => VType::Bool,
                Reduction::Count => VType::Int(DType::Int64),
                _ => {
                    if c.vtype == VType::F32 {
                        VType::F32
                    } else {
                        VType::F64
                    }
                }
            };
            return Ok(Node::new(
                Op::Reduce {
                    child: c,
                    dims: dims.clone(),
                    kind,
                },
                keep.iter().map(|(d, _)| d.clone()).collect(),
                keep.iter().map(|(_, n)| *n).collect(),
                t,
            ));
        }
        let arity = expr::ELEMENTWISE
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
            .ok_or_else(|| {
                format!(
                    "unknown function '{name}' (known: {}, {})",
                    expr::ELEMENTWISE
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", "),
                    expr::REDUCTIONS.join(", ")
                )
            })?;
        if args.len() != arity {
            return Err(format!(
                "{name} takes {arity} argument(s), got {}",
                args.len()
            ));
        }
        let c: Vec<NodeRef> = args
            .iter()
            .map(|a| self.compile(a))
            .collect::<std::result::Result<_, _>>()?;
        let refs: Vec<&NodeRef> = c.iter().collect();
        let (dims, shape) = broadcast(&refs)?;
        let unary = |op: UnOp, t: VType| {
            Node::new(Op::Unary(op, c[0].clone()), dims.clone(), shape.clone(), t)
        };
        let float_of = |t: VType| {
            if t == VType::F32 {
                VType::F32
            } else {
                VType::F64
            }
        };
        Ok(match name {
            "log" => unary(UnOp::Log, float_of(c[0].vtype)),
            "log10" => unary(UnOp::Log10, float_of(c[0].vtype)),
            "exp" => unary(UnOp::Exp, float_of(c[0].vtype)),
            "sqrt" => unary(UnOp::Sqrt, float_of(c[0].vtype)),
            "sin" => unary(UnOp::Sin, float_of(c[0].vtype)),
            "cos" => unary(UnOp::Cos, float_of(c[0].vtype)),
            "abs" => unary(UnOp::Abs, c[0].vtype),
            "isnan" => unary(UnOp::IsNan, VType::Bool),
            "notnull" => unary(UnOp::NotNull, VType::Bool),
            "where" => {
                let t = plan::promote(
                    c[1].vtype,
                    is_const(&args[1]),
                    c[2].vtype,
                    is_const(&args[2]),
                );
                // where(cond, x, nan): see `plan::simplify_nan_mask`.
                let cond = if matches!(args[2], Expr::Number(v) if v.is_nan()) {
                    plan::simplify_nan_mask(&c[0], &c[1])
                } else {
                    c[0].clone()
                };
                Node::new(Op::Where(cond, c[1].clone(), c[2].clone()), dims, shape, t)
            }
            _ => Node::new(
                Op::Window(Arc::new(Clip::new(
                    c[0].clone(),
                    c[1].clone(),
                    c[2].clone(),
                ))),
                dims,
                shape,
                c[0].vtype,
            ),
        })
    }
}

fn is_const(e: &Expr) -> bool {
    matches!(e, Expr::Number(_) | Expr::Int(_) | Expr::Bool(_))
        || matches!(e, Expr::Neg(x) if matches!(**x, Expr::Number(_) | Expr::Int(_)))
}

/// The value of an integer literal (`2`, `-3`).
fn int_literal(e: &Expr) -> Option<i128> {
    match e {
        Expr::Int(v) => Some(i128::from(*v)),
        Expr::Neg(x) => int_literal(x).map(|v| -v),
        _ => None,
    }
}

/// The type of `x op y`, as NumPy 2 gives it, or NumPy's refusal: `&` and `|` are logical on
/// booleans, bitwise on integers and not defined on floats; `/` of integers is a float; `-` is
/// not defined on booleans; an integer literal must fit the integer type of the array it meets
/// (except in a comparison).
fn binary_type(
    op: BinOp,
    (x, a): (&NodeRef, &Expr),
    (y, b): (&NodeRef, &Expr),
) -> std::result::Result<VType, String> {
    let symbol = op.symbol();
    if op.is_comparison() {
        return Ok(VType::Bool);
    }
    for (literal, other) in [(a, y), (b, x)] {
        if let (Some(v), VType::Int(d), false) = (
            int_literal(literal),
            other.vtype,
            is_const(a) && is_const(b),
        ) {
            if let Some((lo, hi)) = d.int_range() {
                if v < lo || v > hi {
                    return Err(format!(
                        "Python integer {v} out of bounds for {} (in '{symbol}', as NumPy 2 refuses it)",
                        d.name()
                    ));
                }
            }
        }
    }
    let t = plan::promote(x.vtype, is_const(a), y.vtype, is_const(b));
    match op {
        BinOp::And | BinOp::Or if x.vtype.is_float() || y.vtype.is_float() => Err(format!(
            "'{symbol}' is not supported on {} and {} (as in NumPy, bitwise operators need booleans or integers)",
            x.vtype.dtype().name(),
            y.vtype.dtype().name()
        )),
        BinOp::Sub if x.vtype == VType::Bool && y.vtype == VType::Bool => {
            Err("'-' is not supported on two booleans (as in NumPy): use '!='".into())
        }
        BinOp::Div if !t.is_float() => Ok(VType::F64),
        _ => Ok(t),
    }
}

/// Dimensions of an elementwise result: each operand's dimensions in order of first appearance.
fn broadcast(nodes: &[&NodeRef]) -> std::result::Result<(Vec<String>, Vec<u64>), String> {
    let mut dims: Vec<String> = Vec::new();
    let mut shape = Vec::new();
    for n in nodes {
        for (d, s) in n.dims.iter().zip(&n.shape) {
            match dims.iter().position(|x| x == d) {
                Some(p) if shape[p] != *s => {
                    return Err(format!("dimension '{d}' has sizes {} and {s}", shape[p]))
                }
                Some(_) => {}
                None => {
                    dims.push(d.clone());
                    shape.push(*s);
                }
            }
        }
    }
    Ok((dims, shape))
}
