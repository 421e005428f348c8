//! What a dry run prints and a build reports: the output's dimensions and variables, the bytes
//! read and written, the passes, and the estimated peak memory of the executor.

use indexmap::IndexMap;

use super::{used_dims, BuildOptions, Layout};
use crate::error::Result;
use crate::exec::{plan_passes, Exec, Passes, ACC_BYTES_PER_ELEMENT};
use crate::lower::{Input, State};
use crate::plan::{describe, GraphNode};
use crate::recipe::{Operation, RecipeDoc};
use crate::store::Location;
use crate::write::repeats::REPEATS_KEPT;
use crate::write::WRITE_BEHIND_BYTES;

/// What a dry run prints and a build reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlanSummary {
    /// Output location.
    pub output: String,
    /// Zarr format.
    pub zarr_format: u8,
    /// Dimensions (a `<=` length is an upper bound known after the first pass).
    pub dims: IndexMap<String, String>,
    /// Output variables.
    pub variables: Vec<PlanVar>,
    /// Bytes of input chunks the plan reads (upper bound: whole chunks of the arrays it uses).
    pub bytes_to_read: u64,
    /// Uncompressed bytes the output holds.
    pub bytes_to_write: u64,
    /// Streaming passes: the `drop_all_nan` scans, then one per level of reductions that depend on
    /// each other, plus one for the outputs that need the last of them.
    pub passes: usize,
    /// Estimated peak memory of the executor.
    pub estimated_peak_memory: u64,
    /// The plan itself (left out of the summary a [`super::BuildReport`] repeats).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph: Option<PlanGraph>,
    /// Input variables left out because they cannot be read (`convert`), each with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// The plan as data: its nodes, and the node and pass of each output.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlanGraph {
    /// Every node once, its inputs before it (see [`crate::plan::describe`]).
    pub nodes: Vec<GraphNode>,
    /// The outputs, in the order they are listed in `variables`.
    pub outputs: Vec<PlanOutput>,
}

/// Where an output comes from and when it is written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlanOutput {
    /// The variable's name.
    pub name: String,
    /// The node computing it (none for a coordinate, written from its values).
    pub node: Option<usize>,
    /// The pass (1-based, counting the `drop_all_nan` scans) in which it is written.
    pub pass: usize,
}

/// One output variable of a plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlanVar {
    /// Name.
    pub name: String,
    /// Dimensions.
    pub dims: Vec<String>,
    /// Shape.
    pub shape: Vec<u64>,
    /// dtype.
    pub dtype: String,
    /// Chunk shape.
    pub chunks: Vec<u64>,
    /// Whether it is a coordinate.
    pub coordinate: bool,
}

/// Step 3: the summary of the plan `state` holds, writing to `output`. `ex` knows which
/// reductions are computed already (none without it, in a dry run).
///
/// # Errors
/// A recipe that chunks a dimension the result does not have.
pub(super) fn summarise(
    doc: &RecipeDoc,
    state: &State<'_>,
    inputs: &[&Input],
    output: &Location,
    opts: &BuildOptions,
    ex: Option<&Exec>,
) -> Result<PlanSummary> {
    let r = &doc.recipe;
    for d in r.output.chunks.keys() {
        if !state.dims.contains_key(d) {
            return Err(doc.error_at(
                doc.line_of("chunks"),
                &format!("output.chunks.{d}"),
                format!(
                    "'{d}' is not a dimension of the result (dimensions: {})",
                    state.dims.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    let used = used_dims(state);
    let (variables, bytes_to_write) = variables(doc, state);
    let nodes: Vec<_> = state.vars.values().map(|v| Some(&v.node)).collect();
    let stages = plan_passes(&nodes, &|n| {
        ex.map_or(n.is_reduction(), |e| e.is_pending(n))
    });
    let scans = r
        .operations
        .iter()
        .filter(|o| matches!(o, Operation::DropAllNan(_)))
        .count();
    let (bytes_to_read, max_input_chunk_bytes) = input_bytes(state, inputs);
    let estimate = Estimate {
        memory_limit: opts.memory_limit as u64,
        max_input_chunk_bytes,
        max_chunk_bytes: variables
            .iter()
            .map(|v| v.chunks.iter().fold(8u64, |a, c| a.saturating_mul(*c)))
            .max()
            .unwrap_or(0),
        accumulator_bytes: accumulator_bytes(&stages),
        repeating: state
            .vars
            .values()
            .filter(|v| v.node.value_dims().len() < v.node.dims.len())
            .count() as u64,
    };
    let graph = graph(state, &variables, &stages, scans);
    Ok(PlanSummary {
        output: output.to_string(),
        zarr_format: r.output.zarr_format,
        dims: state
            .dims
            .iter()
            .filter(|(n, _)| used.contains(*n))
            .map(|(n, d)| {
                let len = if d.bound_only {
                    format!("<={}", d.len)
                } else {
                    d.len.to_string()
                };
                (n.clone(), len)
            })
            .collect(),
        variables,
        bytes_to_read,
        bytes_to_write,
        passes: stages.len() + scans,
        estimated_peak_memory: estimate.peak(),
        graph: Some(graph),
        skipped: state
            .skipped
            .iter()
            .map(|(name, why)| format!("{name}: {why}"))
            .collect(),
    })
}

/// The plan's graph, and for each of `variables` its node and pass: variables in the pass
/// `stages` give them (after the `scans` of `drop_all_nan`), coordinates in the last.
fn graph(state: &State<'_>, variables: &[PlanVar], stages: &Passes, scans: usize) -> PlanGraph {
    let roots: Vec<_> = state.vars.values().map(|v| &v.node).collect();
    let (graph, ids) = describe(&roots);
    let mut pass_of = vec![stages.len(); roots.len()];
    for (p, (_, outs)) in stages.iter().enumerate() {
        for o in outs {
            pass_of[*o] = p + 1;
        }
    }
    let mut computed = ids.iter().zip(&pass_of);
    let outputs = variables
        .iter()
        .map(|v| {
            let (node, pass) = if v.coordinate {
                (None, stages.len())
            } else {
                computed
                    .next()
                    .map_or((None, stages.len()), |(id, p)| (Some(*id), *p))
            };
            PlanOutput {
                name: v.name.clone(),
                node,
                pass: scans + pass,
            }
        })
        .collect();
    PlanGraph {
        nodes: graph.nodes,
        outputs,
    }
}

/// The output variables (the coordinates of the dimensions used first), and the bytes they
/// hold uncompressed.
fn variables(doc: &RecipeDoc, state: &State<'_>) -> (Vec<PlanVar>, u64) {
    let layout = Layout::of(doc, state);
    let used = used_dims(state);
    let mut out = Vec::new();
    let mut bytes = 0u64;
    for (name, d) in state.dims.iter().filter(|(n, _)| used.contains(*n)) {
        if let Some(c) = &d.coord {
            out.push(PlanVar {
                name: name.clone(),
                dims: vec![name.clone()],
                shape: vec![d.len],
                dtype: c.dtype.name().into(),
                chunks: vec![d.len.max(1)],
                coordinate: true,
            });
            bytes += d.len * c.dtype.size() as u64;
        }
    }
    for (name, v) in &state.vars {
        let dtype = v.node.vtype.dtype();
        out.push(PlanVar {
            name: name.clone(),
            dims: v.node.dims.clone(),
            shape: v.node.shape.clone(),
            dtype: dtype.name().into(),
            chunks: layout.chunks(&v.node.dims, &v.node.shape, dtype.size()),
            coordinate: false,
        });
        bytes += v.node.shape.iter().product::<u64>() * dtype.size() as u64;
    }
    // Text variables, one chunk each (a dimension's text coordinate with its dimension).
    for (name, t) in &state.texts {
        let coordinate = t.dims == [name.clone()];
        if coordinate && !used.contains(name) {
            continue;
        }
        out.push(PlanVar {
            name: name.clone(),
            dims: t.dims.clone(),
            shape: t.values.shape.clone(),
            dtype: t.values.xarray_dtype(&t.attrs),
            chunks: t.values.shape.iter().map(|n| (*n).max(1)).collect(),
            coordinate,
        });
        bytes += t.values.nbytes();
    }
    (out, bytes)
}

/// The bytes of the input variables the plan reads (whole variables), and the largest decoded
/// chunk among them.
fn input_bytes(state: &State<'_>, inputs: &[&Input]) -> (u64, u64) {
    let mut sources = Vec::new();
    for v in state.vars.values() {
        v.node.sources(&mut sources);
    }
    let read: Vec<_> = inputs
        .iter()
        .flat_map(|i| i.variables.iter())
        .filter(|v| sources.iter().any(|s| s == v.source.id()))
        .map(|v| (&v.source, v.source.dtype().size() as u64))
        .collect();
    let total = read
        .iter()
        .map(|(s, size)| s.shape().iter().product::<u64>() * size)
        .sum();
    let largest_chunk = read
        .iter()
        .map(|(s, size)| {
            s.chunk_shape()
                .iter()
                .fold(1u64, |a, c| a.saturating_mul(*c))
                .saturating_mul(*size)
        })
        .max()
        .unwrap_or(0);
    (total, largest_chunk)
}

/// The most bytes of reduction accumulators one worker holds in any pass (one per reduction
/// of the pass).
fn accumulator_bytes(stages: &Passes) -> u64 {
    stages
        .iter()
        .map(|(reductions, _)| {
            reductions
                .iter()
                .map(|r| {
                    r.shape
                        .iter()
                        .fold(ACC_BYTES_PER_ELEMENT, |a, n| a.saturating_mul(*n))
                })
                .fold(0u64, u64::saturating_add)
        })
        .max()
        .unwrap_or(0)
}

/// What the executor's peak memory is estimated from.
struct Estimate {
    memory_limit: u64,
    max_input_chunk_bytes: u64,
    /// The largest output chunk, decoded, at 8 bytes per value.
    max_chunk_bytes: u64,
    accumulator_bytes: u64,
    /// Variables whose chunks repeat (see [`crate::write::repeats`]).
    repeating: u64,
}

impl Estimate {
    /// The cache, the one chunk of slack its buffer pool keeps (`ChunkCache`), each worker's
    /// blocks and reduction accumulators, the encoded chunks waiting to be written, those kept
    /// for broadcast variables (`Repeats`), and the program itself.
    fn peak(&self) -> u64 {
        let workers = rayon::current_num_threads() as u64;
        self.memory_limit
            .saturating_add(self.max_input_chunk_bytes)
            .saturating_add(
                workers
                    .saturating_mul(self.max_chunk_bytes)
                    .saturating_mul(4),
            )
            .saturating_add(workers.saturating_mul(self.accumulator_bytes))
            .saturating_add(WRITE_BEHIND_BYTES as u64)
            .saturating_add(
                self.repeating
                    .saturating_mul(REPEATS_KEPT as u64)
                    .saturating_mul(self.max_chunk_bytes),
            )
            .saturating_add(64 * 1024 * 1024)
    }
}
