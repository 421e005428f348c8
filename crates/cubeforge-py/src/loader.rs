//! Training batches assembled by Rust threads: the engine of `cubeforge.Batches`.
//!
//! The Python side decides which samples an epoch holds and in which order (splits, masks,
//! shuffling, sharding: all cheap index arithmetic in NumPy); [`Loader::epoch`] gets the start
//! indices in that order and returns an iterator of `(x, y)` batches. A producer thread:
//!
//! 1. lists the storage units (chunks) every batch reads, and the last batch that reads each;
//! 2. per batch, decodes the units not yet held, in parallel, to float32 (CF-decoded, missing
//!    values NaN), and copies each sample's patch out of them, in parallel over samples,
//!    normalising features and filling their NaN on the way;
//! 3. hands the batch over a channel of `prefetch` places (so at most that many wait for the
//!    consumer), then drops the units no later batch reads.
//!
//! A unit is therefore decoded once per epoch however the samples are shuffled, and held only
//! between its first and last use. The arrays handed to Python own their memory (the `Vec`s
//! become the NumPy arrays' buffers; nothing is copied).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use cubeforge::cf::{CfDecoding, Decoded};
use cubeforge::region::Region;
use cubeforge::source::ChunkSource;
use numpy::{IntoPyArray as _, PyReadonlyArray2};
use pyo3::prelude::*;
use rayon::prelude::*;

use crate::errors::{batch_error, to_py};
use crate::pool;
use crate::reader::{decode_f32, Reader};

/// A feature or target: its values and where its axes lie among the sample dimensions.
struct LVar {
    source: Arc<dyn ChunkSource>,
    decoding: CfDecoding,
    /// For each axis of the variable, the sample dimension it is.
    axis_dim: Vec<usize>,
}

/// How samples become arrays: the variables, the sample's size, the output layout, and the
/// transformation of feature values.
struct Spec {
    vars: Vec<LVar>,
    n_features: usize,
    /// Sample length along each sample dimension.
    sizes: Vec<u64>,
    /// Per feature: `(mean, std)`; values become `(v - mean) / std`.
    norm: Vec<(f64, f64)>,
    /// What NaN in features becomes after normalisation.
    fill: Option<f32>,
    /// The output axes after the batch axis: `0` the feature (or target) axis, `1 + d` sample
    /// dimension `d`.
    layout: Vec<usize>,
}

impl Spec {
    /// Elements of one sample of `channels` channels, and the strides (in elements) of the
    /// channel axis and of each sample dimension, in the layout.
    fn strides(&self, channels: usize) -> (usize, usize, Vec<usize>) {
        let len_of = |axis: usize| {
            if axis == 0 {
                channels
            } else {
                usize::try_from(self.sizes[axis - 1]).unwrap_or(0)
            }
        };
        let mut strides = vec![0usize; self.layout.len()];
        let mut step = 1usize;
        for &axis in self.layout.iter().rev() {
            strides[axis] = step;
            step *= len_of(axis);
        }
        (step, strides[0], strides[1..].to_vec())
    }

    fn shape(&self, batch: usize, channels: usize) -> Vec<usize> {
        let mut shape = vec![batch];
        for &axis in &self.layout {
            shape.push(if axis == 0 {
                channels
            } else {
                usize::try_from(self.sizes[axis - 1]).unwrap_or(0)
            });
        }
        shape
    }

    /// The region of variable `v` a sample starting at `start` covers, clipped to the
    /// variable; `None` when it covers none of it (a padded sample beyond the edge).
    fn region(&self, v: &LVar, start: &[u64]) -> Option<(Vec<u64>, Vec<u64>)> {
        let shape = v.source.shape();
        let mut s = Vec::with_capacity(shape.len());
        let mut n = Vec::with_capacity(shape.len());
        for (axis, &d) in v.axis_dim.iter().enumerate() {
            let end = start[d].saturating_add(self.sizes[d]).min(shape[axis]);
            if start[d] >= end {
                return None;
            }
            s.push(start[d]);
            n.push(end - start[d]);
        }
        Some((s, n))
    }
}

type Key = (u32, Vec<u64>);

/// A decoded unit: the region of its variable it holds, and its values.
struct Unit {
    region: Region,
    values: Vec<f32>,
}

/// Feeds training batches (see the module documentation).
#[pyclass(frozen, module = "cubeforge._native")]
pub(crate) struct Loader {
    spec: Arc<Spec>,
}

#[pymethods]
impl Loader {
    /// A loader of `features` then `targets` of `reader`, samples of `sizes` along
    /// `sample_dims`, features normalised by `means`/`stds` (empty: not normalised), NaN in
    /// features replaced by `fill_nan`, output axes after the batch axis in `layout` order
    /// (`"feature"` and the sample dimensions).
    #[new]
    #[pyo3(signature = (reader, features, targets, sample_dims, sizes, means, stds, fill_nan, layout))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        reader: &Reader,
        features: Vec<String>,
        targets: Vec<String>,
        sample_dims: Vec<String>,
        sizes: Vec<u64>,
        means: Vec<f64>,
        stds: Vec<f64>,
        fill_nan: Option<f32>,
        layout: Vec<String>,
    ) -> PyResult<Loader> {
        if sizes.len() != sample_dims.len() {
            return Err(batch_error("one size per sample dimension is needed"));
        }
        let mut vars = Vec::new();
        for name in features.iter().chain(&targets) {
            let a = reader.array(name)?;
            if !matches!(a.decoding.decoded, Decoded::Numeric(_)) {
                return Err(batch_error(format!(
                    "variable '{name}' holds times, not numbers; it cannot be a feature or target"
                )));
            }
            let mut axis_dim = Vec::new();
            for dim in &a.dims {
                let Some(d) = sample_dims.iter().position(|s| s == dim) else {
                    return Err(batch_error(format!(
                        "variable '{name}' has dimension '{dim}', which is not a sample \
                         dimension ({}); select it first or add it to patch or window",
                        sample_dims.join(", ")
                    )));
                };
                axis_dim.push(d);
            }
            vars.push(LVar {
                source: a.source,
                decoding: a.decoding,
                axis_dim,
            });
        }
        let norm = if means.is_empty() {
            vec![(0.0, 1.0); features.len()]
        } else if means.len() == features.len() && stds.len() == features.len() {
            means
                .iter()
                .zip(&stds)
                .map(|(&m, &s)| (m, if s > 0.0 && s.is_finite() { s } else { 1.0 }))
                .collect()
        } else {
            return Err(batch_error("one mean and one std per feature are needed"));
        };
        let mut order = Vec::new();
        for name in &layout {
            let axis = if name == "feature" {
                0
            } else {
                match sample_dims.iter().position(|d| d == name) {
                    Some(d) => d + 1,
                    None => return Err(batch_error(format!("dims: '{name}' is not an axis"))),
                }
            };
            if order.contains(&axis) {
                return Err(batch_error(format!("dims: '{name}' given twice")));
            }
            order.push(axis);
        }
        if order.len() != sample_dims.len() + 1 {
            return Err(batch_error(format!(
                "dims: give 'feature' and every sample dimension ({}) once",
                sample_dims.join(", ")
            )));
        }
        Ok(Loader {
            spec: Arc::new(Spec {
                vars,
                n_features: features.len(),
                sizes,
                norm,
                fill: fill_nan,
                layout: order,
            }),
        })
    }

    /// Batches of the samples starting at `starts` (one row per sample, one column per sample
    /// dimension), in that order, `batch_size` at a time (the last one partial unless
    /// `drop_last`), assembled by `jobs` threads (0: one per core), at most `prefetch` ready
    /// ahead.
    #[pyo3(signature = (starts, batch_size, drop_last=false, prefetch=4, jobs=0))]
    fn epoch(
        &self,
        starts: PyReadonlyArray2<'_, i64>,
        batch_size: usize,
        drop_last: bool,
        prefetch: usize,
        jobs: usize,
    ) -> PyResult<BatchIter> {
        let view = starts.as_array();
        let dims = self.spec.sizes.len();
        if view.ncols() != dims {
            return Err(batch_error(format!(
                "starts have {} columns for {dims} sample dimensions",
                view.ncols()
            )));
        }
        if batch_size == 0 {
            return Err(batch_error("batch_size must be at least 1"));
        }
        let mut samples = Vec::with_capacity(view.nrows());
        for row in view.rows() {
            let s: Vec<u64> = row
                .iter()
                .map(|&v| u64::try_from(v))
                .collect::<Result<_, _>>()
                .map_err(|_| batch_error(format!("a sample start is negative: {row}")))?;
            samples.push(s);
        }
        let mut batches: Vec<Vec<Vec<u64>>> = samples
            .chunks(batch_size)
            .map(<[Vec<u64>]>::to_vec)
            .collect();
        if drop_last && batches.last().is_some_and(|b| b.len() < batch_size) {
            batches.pop();
        }
        let pool = pool::get(jobs)?;
        let (tx, rx) = mpsc::sync_channel(prefetch.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let spec = self.spec.clone();
        let (stop2, counters2) = (stop.clone(), counters.clone());
        std::thread::Builder::new()
            .name("cubeforge-batches".into())
            .spawn(move || {
                pool.install(|| produce(&spec, &batches, &tx, &stop2, &counters2));
            })
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("cannot start: {e}")))?;
        Ok(BatchIter {
            rx: Mutex::new(Some(rx)),
            stop,
            counters,
            spec: self.spec.clone(),
        })
    }
}

/// What an epoch did, for tests and benchmarks.
#[derive(Default)]
struct Counters {
    units_decoded: AtomicU64,
    units_distinct: AtomicU64,
    held_peak_bytes: AtomicU64,
}

type Batch = cubeforge::Result<(Vec<f32>, Vec<f32>, usize)>;

/// What an epoch reads: the units of each batch, and per unit the region of its variable it
/// holds and the last batch that reads it.
struct UnitPlan {
    needs: Vec<Vec<Key>>,
    last: HashMap<Key, (usize, Region)>,
}

fn plan_units(spec: &Spec, batches: &[Vec<Vec<u64>>]) -> cubeforge::Result<UnitPlan> {
    let mut needs = Vec::with_capacity(batches.len());
    let mut last: HashMap<Key, (usize, Region)> = HashMap::new();
    for (k, batch) in batches.iter().enumerate() {
        let mut keys = Vec::new();
        for start in batch {
            for (j, v) in spec.vars.iter().enumerate() {
                let Some((s, n)) = spec.region(v, start) else {
                    continue;
                };
                for (unit, region) in v.source.units_in(&s, &n)? {
                    let key = (u32::try_from(j).unwrap_or(u32::MAX), unit);
                    match last.get_mut(&key) {
                        Some(entry) => entry.0 = k,
                        None => {
                            last.insert(key.clone(), (k, region));
                        }
                    }
                    keys.push(key);
                }
            }
        }
        keys.sort_unstable();
        keys.dedup();
        needs.push(keys);
    }
    Ok(UnitPlan { needs, last })
}

fn decode_unit(spec: &Spec, key: &Key, region: &Region) -> cubeforge::Result<Unit> {
    let v = &spec.vars[key.0 as usize];
    let dtype = v.source.dtype();
    let values = match v.source.read_unit(&key.1)? {
        Some(bytes) => decode_f32(&v.decoding, &dtype, &bytes),
        None => {
            let fill = decode_f32(&v.decoding, &dtype, &v.source.fill_element());
            let n = usize::try_from(region.shape().iter().product::<u64>()).unwrap_or(0);
            vec![fill.first().copied().unwrap_or(f32::NAN); n]
        }
    };
    Ok(Unit {
        region: region.clone(),
        values,
    })
}

fn produce(
    spec: &Spec,
    batches: &[Vec<Vec<u64>>],
    tx: &mpsc::SyncSender<Batch>,
    stop: &AtomicBool,
    counters: &Counters,
) {
    let UnitPlan { needs, last } = match plan_units(spec, batches) {
        Ok(p) => p,
        Err(e) => {
            let _ = tx.send(Err(e));
            return;
        }
    };
    counters
        .units_distinct
        .store(last.len() as u64, Ordering::Relaxed);
    let mut held: HashMap<Key, Arc<Unit>> = HashMap::new();
    let mut held_bytes = 0u64;
    for (k, batch) in batches.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let missing: Vec<&Key> = needs[k]
            .iter()
            .filter(|key| !held.contains_key(*key))
            .collect();
        let decoded: cubeforge::Result<Vec<Unit>> = missing
            .par_iter()
            .map(|key| decode_unit(spec, key, &last[*key].1))
            .collect();
        match decoded {
            Ok(units) => {
                counters
                    .units_decoded
                    .fetch_add(units.len() as u64, Ordering::Relaxed);
                for (key, unit) in missing.into_iter().zip(units) {
                    held_bytes += 4 * unit.values.len() as u64;
                    held.insert(key.clone(), Arc::new(unit));
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
        counters
            .held_peak_bytes
            .fetch_max(held_bytes, Ordering::Relaxed);
        let out = assemble(spec, batch, &held);
        if tx.send(out).is_err() {
            return;
        }
        for key in &needs[k] {
            if last.get(key).is_some_and(|(l, _)| *l == k) {
                if let Some(u) = held.remove(key) {
                    held_bytes -= 4 * u.values.len() as u64;
                }
            }
        }
    }
}

/// One batch: features and targets of `batch`'s samples, from the units in `held`.
fn assemble(spec: &Spec, batch: &[Vec<u64>], held: &HashMap<Key, Arc<Unit>>) -> Batch {
    let nf = spec.n_features;
    let nt = spec.vars.len() - nf;
    let (x_len, x_ch, x_dims) = spec.strides(nf);
    let (y_len, y_ch, y_dims) = spec.strides(nt);
    let mut x = vec![spec.fill.unwrap_or(f32::NAN); x_len * batch.len()];
    let mut y = vec![f32::NAN; y_len * batch.len()];
    let fill_x = |xs: &mut [f32], start: &[u64]| -> cubeforge::Result<()> {
        for (j, v) in spec.vars[..nf].iter().enumerate() {
            let (mean, std) = spec.norm[j];
            let fill = spec.fill.unwrap_or(f32::NAN);
            let f = move |val: f32| {
                if val.is_nan() {
                    fill
                } else {
                    #[allow(clippy::cast_possible_truncation)]
                    let out = ((f64::from(val) - mean) / std) as f32;
                    out
                }
            };
            copy_var(spec, j, v, start, held, xs, j * x_ch, &x_dims, f)?;
        }
        Ok(())
    };
    let fill_y = |ys: &mut [f32], start: &[u64]| -> cubeforge::Result<()> {
        for (t, v) in spec.vars[nf..].iter().enumerate() {
            copy_var(spec, nf + t, v, start, held, ys, t * y_ch, &y_dims, |val| {
                val
            })?;
        }
        Ok(())
    };
    if x_len > 0 {
        x.par_chunks_mut(x_len)
            .zip(batch.par_iter())
            .try_for_each(|(xs, start)| fill_x(xs, start))?;
    }
    if y_len > 0 && nt > 0 {
        y.par_chunks_mut(y_len)
            .zip(batch.par_iter())
            .try_for_each(|(ys, start)| fill_y(ys, start))?;
    }
    Ok((x, y, batch.len()))
}

/// Copy variable `j`'s part of the sample at `start` into `out` (one sample's elements), its
/// channel at `base`, the sample dimensions at `dim_strides`, each value through `f`; along a
/// sample dimension the variable does not have, its values repeat.
#[allow(clippy::too_many_arguments)]
fn copy_var(
    spec: &Spec,
    j: usize,
    v: &LVar,
    start: &[u64],
    held: &HashMap<Key, Arc<Unit>>,
    out: &mut [f32],
    base: usize,
    dim_strides: &[usize],
    f: impl Fn(f32) -> f32,
) -> cubeforge::Result<()> {
    let Some((s, n)) = spec.region(v, start) else {
        return Ok(());
    };
    let nd = spec.sizes.len();
    for (unit, _) in v.source.units_in(&s, &n)? {
        let key = (u32::try_from(j).unwrap_or(u32::MAX), unit);
        let Some(u) = held.get(&key) else {
            return Err(cubeforge::Error::Other(format!(
                "{}: unit {:?} was not decoded",
                v.source.id(),
                key.1
            )));
        };
        let ustart = u.region.start();
        let ushape = u.region.shape();
        // Strides of the unit's values, per axis.
        let mut ustride = vec![0usize; ushape.len()];
        let mut step = 1usize;
        for a in (0..ushape.len()).rev() {
            ustride[a] = step;
            step *= usize::try_from(ushape[a]).unwrap_or(0);
        }
        // Per sample dimension: count, source stride, output stride; and the two offsets.
        let mut count: Vec<usize> = spec
            .sizes
            .iter()
            .map(|&n| usize::try_from(n).unwrap_or(0))
            .collect();
        let mut src_step = vec![0usize; nd];
        let mut src = 0usize;
        let mut dst = base;
        for (a, &d) in v.axis_dim.iter().enumerate() {
            let lo = s[a].max(ustart[a]);
            let hi = (s[a] + n[a]).min(ustart[a] + ushape[a]);
            if lo >= hi {
                count[d] = 0;
                continue;
            }
            count[d] = usize::try_from(hi - lo).unwrap_or(0);
            src += usize::try_from(lo - ustart[a]).unwrap_or(0) * ustride[a];
            dst += usize::try_from(lo - start[d]).unwrap_or(0) * dim_strides[d];
            src_step[d] = ustride[a];
        }
        if count.contains(&0) {
            continue;
        }
        copy_box(&u.values, src, &src_step, out, dst, dim_strides, &count, &f);
    }
    Ok(())
}

/// Copy an n-dimensional box of `count` elements from `src` (at `s0`, strides `ss`) to `dst`
/// (at `d0`, strides `ds`) through `f`.
#[allow(clippy::too_many_arguments)]
fn copy_box(
    src: &[f32],
    s0: usize,
    ss: &[usize],
    dst: &mut [f32],
    d0: usize,
    ds: &[usize],
    count: &[usize],
    f: &impl Fn(f32) -> f32,
) {
    let nd = count.len();
    if nd == 0 {
        dst[d0] = f(src[s0]);
        return;
    }
    let inner = nd - 1;
    let mut idx = vec![0usize; inner];
    loop {
        let mut s = s0;
        let mut d = d0;
        for k in 0..inner {
            s += idx[k] * ss[k];
            d += idx[k] * ds[k];
        }
        let (si, di) = (ss[inner], ds[inner]);
        if si == 1 && di == 1 {
            for (o, i) in dst[d..d + count[inner]]
                .iter_mut()
                .zip(&src[s..s + count[inner]])
            {
                *o = f(*i);
            }
        } else {
            for e in 0..count[inner] {
                dst[d + e * di] = f(src[s + e * si]);
            }
        }
        // Next row.
        let mut k = inner;
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < count[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

/// An epoch's batches, as they become ready.
#[pyclass(module = "cubeforge._native")]
pub(crate) struct BatchIter {
    rx: Mutex<Option<mpsc::Receiver<Batch>>>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    spec: Arc<Spec>,
}

#[pymethods]
impl BatchIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next `(x, y)`; `StopIteration` at the end of the epoch.
    fn __next__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
        let got = {
            let mut guard = self.rx.lock().map_err(|_| {
                pyo3::exceptions::PyRuntimeError::new_err("batch iterator poisoned")
            })?;
            let Some(rx) = guard.take() else {
                return Ok(None);
            };
            let (rx, got) = py.detach(move || {
                let got = rx.recv();
                (rx, got)
            });
            if got.is_ok() {
                *guard = Some(rx);
            }
            got
        };
        let Ok(batch) = got else {
            return Ok(None);
        };
        let (x, y, n) = batch.map_err(|e| to_py(&e))?;
        let nf = self.spec.n_features;
        let nt = self.spec.vars.len() - nf;
        let to_array = |v: Vec<f32>, shape: Vec<usize>| -> PyResult<Bound<'py, PyAny>> {
            let a = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), v)
                .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
            Ok(a.into_pyarray(py).into_any())
        };
        Ok(Some((
            to_array(x, self.spec.shape(n, nf))?,
            to_array(y, self.spec.shape(n, nt))?,
        )))
    }

    /// Units decoded so far, distinct units the epoch reads, and the most bytes of decoded
    /// units held at once.
    fn counters(&self) -> (u64, u64, u64) {
        (
            self.counters.units_decoded.load(Ordering::Relaxed),
            self.counters.units_distinct.load(Ordering::Relaxed),
            self.counters.held_peak_bytes.load(Ordering::Relaxed),
        )
    }

    /// Stop the producer and drop what it holds.
    fn close(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(mut g) = self.rx.lock() {
            g.take();
        }
    }
}

impl Drop for BatchIter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
