//! `cubeforge build`: a recipe becomes a plan, which is executed chunk by chunk into a Zarr
//! store, in six steps: open the input, lower the recipe to a plan ([`crate::lower`]), summarise
//! it (what a dry run prints), prepare the destination, run the passes that compute every
//! output chunk ([`crate::exec`], [`crate::write`]), and commit the metadata.
//!
//! Execution: `drop_all_nan` scans run while lowering, because they decide the output shape.
//! Then streaming passes (see [`crate::exec::plan_passes`]) each compute the reductions whose
//! inputs are ready together with the output arrays that need no reduction still pending: every
//! output chunk is computed independently, in parallel, in an order that keeps the work sharing
//! input chunks together, through a bounded cache of decoded input chunks, and written as soon as
//! it is ready. Array and group metadata are written last, the root `.zgroup` (v2) or `zarr.json` (v3) last of all, so
//! a reader never opens a half-written cube.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::json;
use sha2::{Digest, Sha256};

use indexmap::IndexMap;

use crate::cf::time::TimeEncoding;
use crate::coord::MAX_COORD_LEN;
use crate::error::{Error, Result};
use crate::exec::{plan_passes, Exec, Needed};
use crate::formats::multi::{describe_urls, files_of, open_files, options_of, Opened};
use crate::formats::zarr::writer::{commit_group, ArrayLayout, Compressor};
use crate::geo::spec::grid_err;
use crate::lock::BuildRecord;
use crate::lower::{Input, LikeGrid, State};
use crate::recipe::{ChunksDefault, OutputSpec, RecipeDoc};
use crate::safety::refuse_overlap;
use crate::source::Sources;
use crate::store::{Location, Store};
use crate::write::destination::{self, Existing};
use crate::write::{chunk_is_good, write_chunk, OutArray, OutSource};
use crate::write::{WRITE_BEHIND_BYTES, WRITE_THREADS};
use crate::write_behind::WriteBehind;

#[cfg(test)]
mod multi_tests;
mod summary;

pub use summary::{PlanGraph, PlanOutput, PlanSummary, PlanVar};

/// Options of a build, from the command line; the default is the command line's without flags.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Replaces the recipe's (single) input URL.
    pub input: Option<String>,
    /// Replaces the recipe's output URL.
    pub output: Option<String>,
    /// Plan only.
    pub dry_run: bool,
    /// Remove an existing destination first.
    pub overwrite: bool,
    /// Keep chunks already written and verified; compute the rest.
    pub resume: bool,
    /// Bytes of decoded input chunks to cache.
    pub memory_limit: usize,
    /// Replace the destination's lock even when its holder may still run.
    pub break_lock: bool,
    /// Leave out input variables that cannot be read (strings, compound types), with a
    /// warning, instead of refusing the build (`convert`).
    pub skip_unreadable: bool,
    /// Set (from another thread) to stop the build at the next output chunk with
    /// [`Error::Interrupted`]; the destination is then left as an interrupted build leaves it:
    /// uncommitted, and resumable.
    pub cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            input: None,
            output: None,
            dry_run: false,
            overwrite: false,
            resume: false,
            memory_limit: 192 << 20,
            break_lock: false,
            skip_unreadable: false,
            cancel: None,
        }
    }
}

/// What a finished build reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildReport {
    /// The plan.
    pub plan: PlanSummary,
    /// Output chunks computed and written (absent all-NaN chunks included).
    pub chunks_computed: u64,
    /// Output chunks kept from an interrupted build (`--resume`).
    pub chunks_resumed: u64,
    /// Input units decoded (each once, ideally): chunks, or the parts of large chunks a source
    /// decodes in parts (Zarr's `ZarrArray::unit_rows`).
    pub input_chunks_decoded: u64,
    /// Buffers for decoded chunks newly mapped rather than reused from the cache's pool.
    pub decode_buffers_mapped: u64,
}

/// Plan (and unless `dry_run`, execute) a recipe.
///
/// `progress(pass, done, total)` is called as work proceeds.
///
/// # Errors
/// Recipe errors naming the field and line, read errors naming the chunk, write errors naming the
/// key; nothing readable is left at the destination after an error.
pub fn build(
    doc: &RecipeDoc,
    opts: &BuildOptions,
    progress: &(dyn Fn(&str, u64, u64) + Sync),
) -> Result<(PlanSummary, Option<BuildReport>)> {
    let (inputs, output) = open(doc, opts)?;
    build_inputs(doc, &inputs, &output, opts, progress)
}

/// [`build`] from an input already opened (of any format, or held in memory) into `output`: the
/// recipe's first input (its own operations apply to it).
///
/// # Errors
/// As [`build`].
pub fn build_input(
    doc: &RecipeDoc,
    input: &Input,
    output: &Location,
    opts: &BuildOptions,
    progress: &(dyn Fn(&str, u64, u64) + Sync),
) -> Result<(PlanSummary, Option<BuildReport>)> {
    let name = doc.recipe.inputs.keys().next().cloned().unwrap_or_default();
    let opened = Opened {
        input: input.clone(),
        files: vec![input.location.clone()],
    };
    build_inputs(doc, &[(name, opened)], output, opts, progress)
}

/// [`build`] from the recipe's inputs already opened (by name, in the recipe's order), into
/// `output`: each input's own operations apply to it, then the inputs merge, then the recipe's
/// operations apply.
///
/// # Errors
/// As [`build`].
pub fn build_inputs(
    doc: &RecipeDoc,
    inputs: &[(String, Opened)],
    output: &Location,
    opts: &BuildOptions,
    progress: &(dyn Fn(&str, u64, u64) + Sync),
) -> Result<(PlanSummary, Option<BuildReport>)> {
    // The destination is checked and locked before the long work, changed only after it.
    let claim = if opts.dry_run {
        None
    } else {
        Some(claim(doc, inputs, output, opts)?)
    };
    let (state, ex) = lower(doc, inputs, opts)?;
    let read: Vec<&Input> = inputs.iter().map(|(_, o)| &o.input).collect();
    let summary = summary::summarise(doc, &state, &read, output, opts, ex.as_ref())?;
    let (Some(ex), Some(claim)) = (ex, claim) else {
        return Ok((summary, None));
    };
    let record = claim.record().clone();
    let dest = claim.prepare()?;
    let written = run_passes(doc, &state, &ex, &dest.store, opts, progress)?;
    commit(doc, &state, &dest.store, &written.outs, &record)?;
    BuildRecord::remove(&dest.store)?;
    if let Some(lock) = dest.lock {
        lock.release()?;
    }
    let report = BuildReport {
        plan: PlanSummary {
            graph: None,
            ..summary.clone()
        },
        chunks_computed: written.total - written.resumed,
        chunks_resumed: written.resumed,
        input_chunks_decoded: ex.cache().decoded(),
        decode_buffers_mapped: ex.cache().buffers_mapped(),
    };
    Ok((summary, Some(report)))
}

/// Every file or store the inputs read, as locations.
fn input_locations(inputs: &[(String, Opened)]) -> Vec<Location> {
    inputs
        .iter()
        .flat_map(|(_, o)| o.files.iter())
        .filter_map(|f| Location::parse(f).ok())
        .collect()
}

/// The destination of a build from `inputs`, checked and locked ([`destination::claim`]).
fn claim(
    doc: &RecipeDoc,
    inputs: &[(String, Opened)],
    output: &Location,
    opts: &BuildOptions,
) -> Result<destination::Claim> {
    let record = BuildRecord {
        cubeforge_recipe_sha256: format!("{:x}", Sha256::digest(doc.text.as_bytes())),
        cubeforge_inputs: inputs
            .iter()
            .flat_map(|(_, o)| o.files.iter())
            .map(|f| crate::lock::canonical_input(f))
            .collect(),
        cubeforge_version: crate::VERSION.to_string(),
    };
    let locations = input_locations(inputs);
    destination::claim(output, &locations, existing(opts), record, opts.break_lock)
}

/// Step 1: the recipe's inputs (or `--input` for the single one), opened, each by name, and
/// the output's location, which must not be any input file or store.
fn open(doc: &RecipeDoc, opts: &BuildOptions) -> Result<(Vec<(String, Opened)>, Location)> {
    doc.check_output(opts.output.as_deref())?;
    let r = &doc.recipe;
    if opts.input.is_some() && r.inputs.len() != 1 {
        return Err(doc.error_at(
            doc.line_of("inputs"),
            "inputs",
            "--input replaces the single input; this recipe has several",
        ));
    }
    if r.inputs.is_empty() {
        return Err(doc.error_at(doc.line_of("inputs"), "inputs", "no input"));
    }
    let output_url = opts.output.clone().unwrap_or_else(|| r.output.url.clone());
    let out_loc = Location::parse(&output_url)?;
    // Every file first (globs listed), so that the destination is checked before any is read.
    let mut listed = Vec::with_capacity(r.inputs.len());
    for (name, spec) in &r.inputs {
        let urls = opts
            .input
            .clone()
            .map_or_else(|| spec.url.clone(), |u| vec![u]);
        let files = files_of(&urls, spec.concat.as_deref()).map_err(|e| match e {
            Error::Combine { .. } => doc.error_at(
                doc.input_line(name),
                &format!("inputs.{name}.url"),
                e.to_string(),
            ),
            other => other,
        })?;
        let locations: Vec<Location> = files
            .iter()
            .map(|f| Location::parse(f))
            .collect::<Result<_>>()?;
        refuse_overlap(&out_loc, &locations)?;
        listed.push((name, spec, urls, files));
    }
    let mut opened = Vec::with_capacity(listed.len());
    for (name, spec, urls, files) in listed {
        let input = open_files(
            &files,
            &describe_urls(&urls),
            spec.concat.as_deref(),
            spec.time_from.as_ref(),
            &options_of(spec),
        )?;
        opened.push((name.clone(), Opened { input, files }));
    }
    Ok((opened, out_loc))
}

/// Step 2: the recipe lowered to a plan over `inputs`, and the executor that reads its sources
/// (none in a dry run, which opens no cache and reads no data). Each input's own operations
/// apply to it (in the recipe's view of that input, so that errors name their lines), then the
/// inputs merge, then the recipe's operations apply.
fn lower<'a>(
    doc: &'a RecipeDoc,
    inputs: &[(String, Opened)],
    opts: &BuildOptions,
) -> Result<(State<'a>, Option<Exec>)> {
    for (_, o) in inputs {
        check_coords(&o.input, opts.memory_limit)?;
    }
    let like = like_grid(doc, inputs)?;
    let mut sources = Sources::default();
    let own_operations = inputs.iter().any(|(name, _)| {
        doc.recipe
            .inputs
            .get(name)
            .is_some_and(|s| !s.operations.is_empty())
    });
    let (mut state, ex) = if let ([(_, only)], false) = (inputs, own_operations) {
        let mut state = State::new(doc, &only.input, &mut sources, opts.dry_run);
        state.like.clone_from(&like);
        (
            state,
            (!opts.dry_run).then(|| Exec::new(sources, opts.memory_limit)),
        )
    } else {
        let views: Vec<RecipeDoc> = inputs
            .iter()
            .map(|(name, _)| {
                doc.for_input(name)
                    .unwrap_or_else(|| doc.without_operations())
            })
            .collect();
        let mut states: Vec<State<'_>> = inputs
            .iter()
            .zip(&views)
            .map(|((_, o), view)| {
                let mut s = State::new(view, &o.input, &mut sources, opts.dry_run);
                s.like.clone_from(&like);
                s
            })
            .collect();
        let ex = (!opts.dry_run).then(|| Exec::new(sources, opts.memory_limit));
        for s in &mut states {
            s.apply_operations(ex.as_ref())?;
        }
        let named = inputs.iter().map(|(n, _)| n.clone()).zip(states).collect();
        (State::merge(doc, named, opts.dry_run)?, ex)
    };
    if opts.skip_unreadable {
        for (name, why) in state.skip_unreadable() {
            tracing::warn!("variable '{name}' left out: {}", why.replace('\n', " "));
        }
    }
    state.apply_all(ex.as_ref())?;
    if let Some(ex) = &ex {
        ex.check_memory(state.vars.values().map(|v| &*v.node))?;
    }
    Ok((state, ex))
}

/// The grid of the input a `grid: {like: NAME}` names, as that input is opened (before its
/// operations); `None` without such a grid.
///
/// # Errors
/// A name that is no input; an input without a regular grid (its field and line named).
fn like_grid(doc: &RecipeDoc, inputs: &[(String, Opened)]) -> Result<Option<LikeGrid>> {
    let Some(name) = doc.recipe.grid.as_ref().and_then(|g| g.like.as_ref()) else {
        return Ok(None);
    };
    let Some((_, opened)) = inputs.iter().find(|(n, _)| n == name) else {
        let names: Vec<&str> = inputs.iter().map(|(n, _)| n.as_str()).collect();
        return Err(grid_err(
            doc,
            "like",
            format!("'{name}' is not an input (inputs: {})", names.join(", ")),
        ));
    };
    let mut scratch = Sources::default();
    let state = State::new(doc, &opened.input, &mut scratch, true);
    let (geobox, y, x, _) = state
        .source_grid(None)
        .map_err(|m| grid_err(doc, "like", format!("input '{name}': {m}")))?;
    let coords = [y.as_str(), x.as_str()].map(|d| state.dims.get(d).and_then(|d| d.coord.clone()));
    Ok(Some(LikeGrid {
        geobox,
        dims: [y, x],
        coords,
    }))
}

/// Refuse, before any is read, a dimension or coordinate longer than [`MAX_COORD_LEN`] or a coordinate
/// larger than the memory limit: coordinates are held in memory whole.
fn check_coords(input: &Input, memory_limit: usize) -> Result<()> {
    if let Some(d) = input.dims.iter().find(|d| d.len > MAX_COORD_LEN) {
        return Err(Error::Refused {
            location: input.location.clone(),
            reason: format!(
                "dimension '{}' has {} positions; a build holds a dimension's positions in \
                 memory and takes at most {MAX_COORD_LEN}",
                d.name, d.len
            ),
        });
    }
    for c in input.dims.iter().filter_map(|d| d.coord.as_ref()) {
        c.check_len()?;
        if c.bytes().is_none_or(|b| b > memory_limit as u64) {
            return Err(Error::Refused {
                location: c.origin(),
                reason: format!(
                    "a coordinate of {} values ({} bytes) is held in memory whole, more than \
                     --memory-limit ({memory_limit} bytes)",
                    c.len(),
                    c.bytes().map_or_else(|| "> 2^64".into(), |b| b.to_string())
                ),
            });
        }
    }
    Ok(())
}

/// What a build may do with an existing destination, from its options.
fn existing(opts: &BuildOptions) -> Existing {
    if opts.overwrite {
        Existing::Overwrite
    } else if opts.resume {
        Existing::Resume
    } else {
        Existing::Refuse
    }
}

/// The chunk and shard shapes and the compressor of the output.
struct Layout<'a> {
    output: &'a OutputSpec,
    compressor: Compressor,
    /// Chunk lengths of dimensions the recipe does not list, when it keeps the input's.
    input_chunks: Option<&'a IndexMap<String, u64>>,
}

/// The most bytes an output chunk that keeps the input's chunking holds: an input stored whole
/// (a contiguous NetCDF variable) would otherwise become one chunk.
const MAX_INPUT_CHUNK_BYTES: u64 = 64 << 20;

impl<'a> Layout<'a> {
    fn of(doc: &'a RecipeDoc, state: &'a State<'_>) -> Layout<'a> {
        let output = &doc.recipe.output;
        let compressor = output
            .compressor
            .clone()
            .unwrap_or_else(|| Compressor::default_for(output.zarr_format));
        let input_chunks =
            (output.chunks_default == ChunksDefault::Input).then_some(&state.input_chunks);
        Layout {
            output,
            compressor,
            input_chunks,
        }
    }

    /// The chunk shape of an array of dimensions `dims`, shape `shape` and elements of
    /// `itemsize` bytes: the recipe's chunk length per dimension (at most the dimension's), a
    /// whole dimension for the others, or the input's chunk length when the recipe keeps it
    /// (leading dimensions halved while a chunk would exceed [`MAX_INPUT_CHUNK_BYTES`]).
    fn chunks(&self, dims: &[String], shape: &[u64], itemsize: usize) -> Vec<u64> {
        let mut kept = vec![false; dims.len()];
        let mut chunks: Vec<u64> = dims
            .iter()
            .zip(shape)
            .enumerate()
            .map(|(i, (d, len))| {
                let c = match (self.output.chunks.get(d), self.input_chunks) {
                    (Some(c), _) => *c,
                    (None, Some(input)) => {
                        kept[i] = true;
                        input.get(d).copied().unwrap_or(*len)
                    }
                    (None, None) => *len,
                };
                c.clamp(1, (*len).max(1))
            })
            .collect();
        let bytes = |c: &[u64]| c.iter().product::<u64>().saturating_mul(itemsize as u64);
        while bytes(&chunks) > MAX_INPUT_CHUNK_BYTES {
            let Some(i) = (0..chunks.len()).find(|&i| kept[i] && chunks[i] > 1) else {
                break;
            };
            chunks[i] = chunks[i].div_ceil(2);
        }
        chunks
    }

    /// The shard shape of such an array with chunks `chunks`, when the recipe shards.
    fn shards(&self, dims: &[String], chunks: &[u64]) -> Option<Vec<u64>> {
        self.output.shards.as_ref().map(|s| {
            dims.iter()
                .zip(chunks)
                .map(|(d, c)| s.get(d).copied().unwrap_or(*c))
                .collect()
        })
    }
}

/// The dimensions whose coordinates are written: every dimension, as xarray keeps a dataset's
/// index coordinates, unless a `keep` chose the variables (`ds[[...]]` keeps only the
/// dimensions of those).
fn used_dims(state: &State<'_>) -> BTreeSet<String> {
    if !state.pruned {
        return state.dims.keys().cloned().collect();
    }
    state
        .vars
        .values()
        .flat_map(|v| v.node.dims.clone())
        .chain(crate::text::kept_dims(&state.texts))
        .collect()
}

/// The output arrays, written through `store`: the coordinates of the dimensions used, then
/// the variables.
fn output_arrays(doc: &RecipeDoc, state: &State<'_>, store: &Store) -> Result<Vec<OutArray>> {
    let layout = Layout::of(doc, state);
    let zarr_format = doc.recipe.output.zarr_format;
    let used = used_dims(state);
    let mut outs = Vec::new();
    for (name, d) in state.dims.iter().filter(|(n, _)| used.contains(*n)) {
        let Some(c) = &d.coord else { continue };
        let (raw, attrs) = c.for_output()?;
        let s = raw.dtype.size();
        let mut bytes = Vec::with_capacity(d.index.len() * s);
        for p in d.index.iter() {
            let p = usize::try_from(*p).unwrap_or(0);
            bytes.extend_from_slice(&raw.bytes[p * s..(p + 1) * s]);
        }
        let array = ArrayLayout {
            zarr_format,
            name,
            dims: std::slice::from_ref(name),
            shape: &[d.len],
            chunks: &[d.len.max(1)],
            shards: None,
            dtype: raw.dtype,
            compressor: &layout.compressor,
        };
        outs.push(OutArray::new(
            store,
            &array,
            attrs,
            OutSource::Values(bytes),
        )?);
    }
    for (name, v) in &state.vars {
        let itemsize = v.node.vtype.dtype().size();
        let chunks = layout.chunks(&v.node.dims, &v.node.shape, itemsize);
        let shards = layout.shards(&v.node.dims, &chunks);
        let array = ArrayLayout {
            zarr_format,
            name,
            dims: &v.node.dims,
            shape: &v.node.shape,
            chunks: &chunks,
            shards: shards.as_deref(),
            dtype: v.node.vtype.dtype(),
            compressor: &layout.compressor,
        };
        let source = OutSource::Node(v.node.clone());
        let attrs = with_coordinates(state, name, &v.attrs);
        outs.push(OutArray::new(store, &array, attrs, source)?);
    }
    Ok(outs)
}

/// The attributes of output variable `name`, with the variables xarray is to read as its
/// coordinates named in `coordinates` (as xarray writes them): its grid mapping (a raster's
/// `spatial_ref`, which rioxarray holds as a coordinate) and the 2-D `xc`/`yc` of a rotated
/// raster, when the cube has them.
fn with_coordinates(
    state: &State<'_>,
    name: &str,
    attrs: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut out = attrs.clone();
    let Some(v) = state.vars.get(name) else {
        return out;
    };
    let mut coords: Vec<String> = Vec::new();
    if let Some(gm) = attrs
        .get("grid_mapping")
        .and_then(serde_json::Value::as_str)
    {
        // Only a raster's: a NetCDF grid mapping stays a data variable, as xarray reads it.
        if gm == "spatial_ref" && gm != name && state.vars.contains_key(gm) {
            coords.push(gm.to_string());
        }
    }
    for aux in ["xc", "yc"] {
        let carries = state
            .vars
            .get(aux)
            .is_some_and(|a| a.node.dims.iter().all(|d| v.node.dims.contains(d)));
        if aux != name && carries && coords.iter().any(|c| c == "spatial_ref") {
            coords.push(aux.to_string());
        }
    }
    if !coords.is_empty() && !out.contains_key("coordinates") {
        out.insert(
            "coordinates".into(),
            serde_json::Value::String(coords.join(" ")),
        );
    }
    out
}

/// What the passes wrote.
struct Written {
    outs: Vec<OutArray>,
    /// Output chunks, computed or kept.
    total: u64,
    /// Output chunks kept from an interrupted build.
    resumed: u64,
}

/// Step 5: every output chunk computed and written, pass by pass, by background writer threads
/// ([`WriteBehind`]) while the workers compute the next ones; returns once every write is done.
fn run_passes(
    doc: &RecipeDoc,
    state: &State<'_>,
    ex: &Exec,
    out_store: &Store,
    opts: &BuildOptions,
    progress: &(dyn Fn(&str, u64, u64) + Sync),
) -> Result<Written> {
    let writer = Arc::new(
        WriteBehind::new(
            out_store.storage().clone(),
            WRITE_THREADS,
            WRITE_BEHIND_BYTES,
        )
        .map_err(|e| Error::Other(format!("cannot start the writer threads: {e}")))?,
    );
    let write_failure = |(key, msg): (zarrs_storage::StoreKey, String)| {
        Error::Other(format!(
            "{}: cannot write chunk: {msg}",
            out_store.location().join(key.as_str())
        ))
    };
    let outs = output_arrays(doc, state, &out_store.with_storage(writer.clone()))?;
    tracing::info!(output = %out_store.location(), arrays = outs.len(), "plan ready");
    let order = TaskOrder::of(&outs);
    let resumed = AtomicU64::new(0);
    let cancelled = || {
        opts.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    };
    let interrupted = || Error::Interrupted {
        location: out_store.location().to_string(),
    };
    let write = |(ai, idx): &(usize, Vec<u64>)| -> Result<()> {
        if cancelled() {
            return Err(interrupted());
        }
        let o = &outs[*ai];
        if opts.resume && chunk_is_good(out_store, o, idx)? {
            resumed.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        // A write refused because an earlier one failed: report the earlier one.
        write_chunk(ex, out_store, o, idx).map_err(|e| writer.failure().map_or(e, write_failure))
    };
    let nodes: Vec<_> = outs.iter().map(OutArray::node).collect();
    let stages = plan_passes(&nodes, &|n| ex.is_pending(n));
    let n_passes = stages.len();
    let mut total = 0u64;
    for (p, (reductions, arrays)) in stages.iter().enumerate() {
        if cancelled() {
            return Err(interrupted());
        }
        let tasks: Vec<(usize, Vec<u64>)> = arrays
            .iter()
            .flat_map(|ai| outs[*ai].chunk_indices().into_iter().map(|idx| (*ai, idx)))
            .collect();
        total += tasks.len() as u64;
        // Passes alternate direction, the last one backwards: each starts where the previous
        // one ended, with the input chunks it left in the cache.
        let backwards = (n_passes - 1 - p) % 2 == 0;
        tracing::info!(pass = p + 1, of = n_passes, reductions = reductions.len(),
            chunks = tasks.len(), order = %order.first_dim, "pass");
        let label = if n_passes == 1 {
            "writing".to_string()
        } else {
            format!("pass {} of {n_passes}", p + 1)
        };
        ex.run_pass(
            reductions,
            &tasks,
            |t| order.position(&outs, t),
            |t, keys| order.needs(ex, &outs, t, keys),
            write,
            backwards,
            |done, of| progress(&label, done, of),
        )?;
    }
    writer.finish().map_err(write_failure)?;
    tracing::info!(
        decoded = ex.cache().decoded(),
        "chunks written; committing metadata"
    );
    let resumed = resumed.load(Ordering::Relaxed);
    Ok(Written {
        outs,
        total,
        resumed,
    })
}

/// The order of output tasks: along the outermost dimension of the largest output variable
/// (time, in a time × lat × lon cube), so that the tasks that need the same input chunks run
/// together, with the reduction blocks of their pass that read them.
struct TaskOrder {
    first_dim: String,
}

impl TaskOrder {
    fn of(outs: &[OutArray]) -> TaskOrder {
        let first_dim = outs
            .iter()
            .max_by_key(|o| o.shape.iter().product::<u64>())
            .and_then(|o| o.dims.first().cloned())
            .unwrap_or_default();
        TaskOrder { first_dim }
    }

    /// Where chunk `idx` of output `ai` lies along the ordering dimension, as a fraction.
    #[allow(clippy::cast_precision_loss)]
    fn position(&self, outs: &[OutArray], (ai, idx): &(usize, Vec<u64>)) -> f64 {
        let o = &outs[*ai];
        o.dims
            .iter()
            .position(|d| *d == self.first_dim)
            .map_or(0.0, |p| {
                (idx[p] * o.write_chunks[p]) as f64 / o.shape[p].max(1) as f64
            })
    }

    /// The input units chunk `idx` of output `ai` reads.
    fn needs(
        &self,
        ex: &Exec,
        outs: &[OutArray],
        (ai, idx): &(usize, Vec<u64>),
        keys: &mut Vec<Needed>,
    ) {
        let o = &outs[*ai];
        if let Some(n) = o.node() {
            ex.chunks_needed(n, &o.window(idx), keys);
        }
    }
}

/// Step 6: the metadata, last: every array's documents, then the group's with the cube's
/// provenance (tool version, recipe hash, inputs, time), consolidated metadata, and the root group key last of all.
fn commit(
    doc: &RecipeDoc,
    state: &State<'_>,
    out_store: &Store,
    outs: &[OutArray],
    record: &BuildRecord,
) -> Result<()> {
    let mut attrs = state.attrs.clone();
    attrs.insert("cubeforge_version".into(), json!(record.cubeforge_version));
    attrs.insert(
        "cubeforge_recipe_sha256".into(),
        json!(record.cubeforge_recipe_sha256),
    );
    attrs.insert("cubeforge_inputs".into(), json!(state.inputs));
    attrs.insert("cubeforge_created".into(), json!(utc_now()));
    let mut docs: Vec<_> = outs.iter().map(|o| o.doc.clone()).collect();
    docs.extend(crate::text::write_cube_texts(
        doc,
        state,
        &used_dims(state),
        out_store,
    )?);
    commit_group(out_store, doc.recipe.output.zarr_format, &docs, attrs)
}

fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    TimeEncoding::parse("seconds since 1970-01-01", Some("proleptic_gregorian"))
        .and_then(|e| e.decode_i64(i64::try_from(secs).unwrap_or(0)))
        .map(|t| format!("{}Z", t.to_iso()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{json, Map, Value};

    use super::*;
    use crate::cf::CfDecoding;
    use crate::coord::Coord;
    use crate::dataset::Dataset;
    use crate::dtype::DType;
    use crate::formats::memory::MemorySource;
    use crate::lower::{InputDim, InputVar};
    use crate::source::ChunkSource;

    /// `v(t, y, x)` of the input: NaN at some places.
    #[allow(clippy::cast_precision_loss)]
    fn value(t: u64, y: u64, x: u64) -> f32 {
        if (t + y + x) % 7 == 0 {
            f32::NAN
        } else {
            (t * 100 + y * 10 + x) as f32 + 0.25
        }
    }

    /// Options of a build that writes.
    fn options() -> BuildOptions {
        BuildOptions {
            memory_limit: 1 << 20,
            ..BuildOptions::default()
        }
    }

    fn attrs(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn computed(start: f64, step: f64, len: u64, dtype: DType, a: Value) -> Coord {
        let a = attrs(a);
        let decoding = CfDecoding::from_attrs(&a, dtype, None).expect("decoding");
        Coord::computed(start, step, len, dtype, a, decoding)
    }

    /// `t2m (time 6, y 4, x 5)` held in memory in chunks of 2 x 4 x 2, chunk (1, 0, 1) absent,
    /// on computed coordinates: days since 2000-01-01, y descending, x ascending.
    fn input() -> Input {
        let mut values = Vec::new();
        for t in 0..6 {
            for y in 0..4 {
                for x in 0..5 {
                    values.push(f64::from(value(t, y, x)));
                }
            }
        }
        let t2m = MemorySource::from_f64(
            "memory://inputs/t2m",
            DType::Float32,
            (&[6, 4, 5], &[2, 4, 2]),
            &values,
        )
        .expect("source")
        .without_chunk(&[1, 0, 1]);
        let decoding =
            CfDecoding::from_attrs(&Map::new(), DType::Float32, Some(f64::NAN)).expect("decoding");
        let dim = |name: &str, len: u64, coord: Coord| InputDim {
            name: name.into(),
            len,
            coord: Some(coord),
        };
        Input {
            location: "memory://inputs".into(),
            dims: vec![
                dim(
                    "time",
                    6,
                    computed(
                        0.0,
                        1.0,
                        6,
                        DType::Int64,
                        json!({"units": "days since 2000-01-01", "calendar": "standard"}),
                    ),
                ),
                dim(
                    "y",
                    4,
                    computed(
                        45.0,
                        -0.5,
                        4,
                        DType::Float64,
                        json!({"units": "degrees_north"}),
                    ),
                ),
                dim(
                    "x",
                    5,
                    computed(100.5, 10.0, 5, DType::Float64, json!({"units": "m"})),
                ),
            ],
            variables: vec![InputVar {
                name: "t2m".into(),
                dims: vec!["time".into(), "y".into(), "x".into()],
                source: Arc::new(t2m),
                decoding,
                attrs: attrs(json!({"units": "K"})),
            }],
            attrs: attrs(json!({"title": "held in memory"})),
            unreadable: Vec::new(),
            texts: Vec::new(),
        }
    }

    #[test]
    fn a_build_reads_sources_held_in_memory_on_computed_coordinates() {
        let text = r#"version: 1
inputs:
  m: {url: "memory://inputs"}
output:
  url: "memory://built-from-memory"
  chunks: {time: 2, y: 2, x: 2}
operations:
  - sel: {time: {start: "2000-01-02"}, y: {start: 44.6, stop: 43.9}, x: {start: 105, stop: 135}}
  - assign: {anomaly: "t2m - mean(t2m, 'time')"}
"#;
        let doc = RecipeDoc::parse("memory.yaml", text).expect("recipe");
        let output = Location::parse("memory://built-from-memory").expect("location");
        let opts = options();
        let (summary, report) =
            build_input(&doc, &input(), &output, &opts, &|_, _, _| {}).expect("build");
        let report = report.expect("a report");
        assert_eq!(summary.dims["time"], "5");
        assert!(report.chunks_computed > 0 && report.input_chunks_decoded > 0);

        // Read back as a Zarr store: positions 1.. of time, 1..3 of y, 1..4 of x.
        let ds = Dataset::open(&Store::open(&output).expect("store"), "").expect("cube");
        let read = |name: &str| {
            let v = ds.variable(name).expect("variable");
            v.array(&ds.store)
                .expect("array")
                .read_all()
                .expect("values")
        };
        assert_eq!(read("time").to_f64_vec(), vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(read("y").to_f64_vec(), vec![44.5, 44.0]);
        assert_eq!(read("x").to_f64_vec(), vec![110.5, 120.5, 130.5]);
        let (ts, ys, xs) = (1..6u64, 1..3u64, 1..4u64);
        let got: Vec<f32> = bytemuck::pod_collect_to_vec(&read("t2m").bytes);
        let anomaly: Vec<f32> = bytemuck::pod_collect_to_vec(&read("anomaly").bytes);
        let at = |t: u64, y: u64, x: u64| {
            // Chunk (1, 0, 1): days 2..4, columns 2..4, is absent.
            if (2..4).contains(&t) && (2..4).contains(&x) {
                f32::NAN
            } else {
                value(t, y, x)
            }
        };
        let mut k = 0;
        for t in ts.clone() {
            for y in ys.clone() {
                for x in xs.clone() {
                    let valid: Vec<f64> = ts
                        .clone()
                        .map(|t| at(t, y, x))
                        .filter(|v| !v.is_nan())
                        .map(f64::from)
                        .collect();
                    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
                    let mean = (valid.iter().sum::<f64>() / valid.len() as f64) as f32;
                    let (want, want_anomaly) = (at(t, y, x), at(t, y, x) - mean);
                    assert_eq!(got[k].to_bits(), want.to_bits(), "t2m at {t} {y} {x}");
                    assert!(
                        anomaly[k].to_bits() == want_anomaly.to_bits()
                            || anomaly[k].is_nan() && want_anomaly.is_nan(),
                        "anomaly at {t} {y} {x}: {} vs {want_anomaly}",
                        anomaly[k]
                    );
                    k += 1;
                }
            }
        }
        assert_eq!(ds.attrs["cubeforge_inputs"], json!(["memory://inputs"]));
        assert_eq!(ds.attrs["title"], json!("held in memory"));
    }

    #[test]
    fn a_corrupt_input_chunk_fails_the_build_as_a_corrupt_chunk() {
        use crate::testkit::{blosc_2d, put_key};
        // `a` (phony_dim_0 10, phony_dim_1 6) in Blosc chunks of 4 x 3; chunk (2, 0) cut short.
        let whole = blosc_2d("build-corrupt-in");
        let store = Store::open_str("memory://build-corrupt-in").expect("store");
        let stored = ChunkSource::read_unit(&whole, &[2, 0]).expect("chunk");
        assert!(stored.is_some());
        put_key(
            &store,
            "a/2.0",
            vec![2, 1, 33, 4, 96, 0, 0, 0, 96, 0, 0, 0, 200, 0, 0, 0],
        );
        let ds = Dataset::open(&store, "").expect("input");
        let input = Input::from_dataset(&ds, "memory://build-corrupt-in".into());
        // Read by output tasks, by a reduction computed in a pass, and by one computed on its
        // own and kept by the executor (the scan of drop_all_nan).
        let operations = [
            "keep: [a]",
            "assign: {m: \"mean(a, 'phony_dim_0')\"}",
            "drop_all_nan: {variable: a, dim: phony_dim_0}",
        ];
        for (n, operation) in operations.iter().enumerate() {
            let text = format!(
                "version: 1\ninputs:\n  i: {{url: x}}\noutput: {{url: y}}\noperations:\n  - {operation}\n"
            );
            let doc = RecipeDoc::parse("corrupt.yaml", &text).expect("recipe");
            let output =
                Location::parse(&format!("memory://build-corrupt-out-{n}")).expect("location");
            let opts = options();
            let err =
                build_input(&doc, &input, &output, &opts, &|_, _, _| {}).expect_err("corrupt");
            match err {
                Error::CorruptChunk { location, .. } => {
                    assert!(location.ends_with("build-corrupt-in/a/2.0"), "{location}");
                }
                other => panic!("{operation}: not a corrupt chunk: {other:?}"),
            }
        }
    }
}
