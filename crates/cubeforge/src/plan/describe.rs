//! A plan as a document: every node once, inputs before the nodes that read them, each with its
//! operation, dimensions, shape, type and parameters, so that a plan can be printed
//! (`cubeforge build --dry-run --json`), compared and, later, handed to another process.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{Data, Node, NodeId, NodeRef, Op};

/// The nodes of a plan, each once, in an order where a node's inputs come before it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Graph {
    /// The nodes; a node's `id` is its place here.
    pub nodes: Vec<GraphNode>,
}

/// One node of a [`Graph`].
#[derive(Debug, Clone, Serialize)]
pub struct GraphNode {
    /// Its place in [`Graph::nodes`].
    pub id: usize,
    /// The operation: `source`, `take`, `const`, `unary`, `binary`, `where`, `reduce`,
    /// `along`, `cast`, `transpose`, or a window operation's name.
    pub op: String,
    /// Dimension names.
    pub dims: Vec<String>,
    /// Shape.
    pub shape: Vec<u64>,
    /// The type of its values.
    pub dtype: String,
    /// The nodes it computes from.
    pub inputs: Vec<usize>,
    /// What else the operation needs (a source's location, a function's name, the positions
    /// a selection takes, …).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub params: Map<String, Value>,
}

impl Graph {
    /// Add `node` and everything below it (nodes already added are not added again); returns
    /// its id.
    pub fn add(&mut self, node: &NodeRef, seen: &mut HashMap<NodeId, usize>) -> usize {
        if let Some(id) = seen.get(&node.id()) {
            return *id;
        }
        let inputs: Vec<usize> = node
            .children()
            .into_iter()
            .map(|c| self.add(c, seen))
            .collect();
        let id = self.nodes.len();
        let (op, params) = op_and_params(node);
        self.nodes.push(GraphNode {
            id,
            op,
            dims: node.dims.clone(),
            shape: node.shape.clone(),
            dtype: node.vtype.dtype().name().to_string(),
            inputs,
            params,
        });
        seen.insert(node.id(), id);
        id
    }
}

/// The graph of the nodes `roots` and all below them, with the id of each root.
#[must_use]
pub fn describe(roots: &[&NodeRef]) -> (Graph, Vec<usize>) {
    let mut graph = Graph::default();
    let mut seen = HashMap::new();
    let ids = roots.iter().map(|r| graph.add(r, &mut seen)).collect();
    (graph, ids)
}

/// A node's operation name and parameters.
fn op_and_params(node: &Node) -> (String, Map<String, Value>) {
    let lower = |text: String| text.to_ascii_lowercase();
    let (op, params) = match &node.op {
        Op::Source { source, decoding } => (
            "source",
            json!({"location": source.location, "stored": source.dtype.name(),
                   "decoded": decoding.decoded_dtype_name()}),
        ),
        Op::Take { dim, index, .. } => {
            let runs = 1 + index.windows(2).filter(|w| w[1] != w[0] + 1).count();
            (
                "take",
                json!({"dim": dim, "positions": index.len(), "runs": runs,
                       "first": index.first(), "last": index.last()}),
            )
        }
        Op::Const(data) => (
            "const",
            json!({"value": match data {
                Data::Bool(v) => json!(v.first()),
                Data::F32(v) => json!(v.first().map(|x| x.to_string())),
                Data::F64(v) => json!(v.first().map(|x| x.to_string())),
                Data::I64(v) => json!(v.first()),
                Data::U64(v) => json!(v.first()),
            }}),
        ),
        Op::Unary(f, _) => ("unary", json!({"function": lower(format!("{f:?}"))})),
        Op::Binary(f, _, _) => ("binary", json!({"operator": lower(format!("{f:?}"))})),
        Op::Where(..) => ("where", Value::Null),
        Op::Reduce { dims, kind, .. } => (
            "reduce",
            json!({"kind": lower(format!("{kind:?}")), "over": dims}),
        ),
        Op::Along { dim, values } => ("along", json!({"dim": dim, "values": values.len()})),
        Op::Cast(_) => ("cast", Value::Null),
        Op::Transpose(_) => ("transpose", Value::Null),
        Op::Window(w) => {
            return (
                w.name().to_string(),
                w.describe().as_object().cloned().unwrap_or_default(),
            )
        }
    };
    (
        op.to_string(),
        params.as_object().cloned().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::dtype::DType;
    use crate::expr::BinOp;
    use crate::plan::{Reduction, UnOp, VType};
    use crate::testkit::{along, reduce, source_ref, unary_node};

    #[test]
    fn a_plan_prints_each_node_once_after_its_inputs() {
        let decoding =
            crate::cf::CfDecoding::from_attrs(&Map::new(), DType::Float32, None).expect("decoding");
        let x = Node::new(
            Op::Source {
                source: source_ref(0, "memory://p/x", DType::Float32),
                decoding: Box::new(decoding),
            },
            vec!["t".into(), "y".into()],
            vec![4, 3],
            VType::F32,
        );
        let day = Node::new(
            Op::Take {
                child: x.clone(),
                dim: "t".into(),
                index: Arc::new(vec![0, 1, 3]),
            },
            x.dims.clone(),
            vec![3, 3],
            VType::F32,
        );
        let valid = reduce(
            &unary_node(UnOp::NotNull, &day, VType::Bool),
            Reduction::Any,
            &["t"],
            VType::Bool,
        );
        let w = along("y", vec![1.0, 2.0, 3.0], VType::F64);
        let sum = Node::new(
            Op::Binary(BinOp::Add, day.clone(), w),
            x.dims.clone(),
            vec![3, 3],
            VType::F64,
        );
        let (graph, roots) = describe(&[&sum, &valid, &day]);
        let ops: Vec<&str> = graph.nodes.iter().map(|n| n.op.as_str()).collect();
        assert_eq!(
            ops,
            ["source", "take", "along", "binary", "unary", "reduce"]
        );
        // The shared selection is there once; roots point at their nodes.
        assert_eq!(roots, [3, 5, 1]);
        assert_eq!(graph.nodes[3].inputs, [1, 2]);
        assert_eq!(graph.nodes[5].params["over"], json!(["t"]));
        assert_eq!(graph.nodes[1].params["runs"], json!(2));
        assert_eq!(graph.nodes[0].params["location"], json!("memory://p/x"));
        assert_eq!(graph.nodes[3].dtype, "float64");
        for n in &graph.nodes {
            assert!(n.inputs.iter().all(|i| *i < n.id), "{n:?}");
        }
    }
}
