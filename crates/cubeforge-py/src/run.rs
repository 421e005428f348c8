//! The commands as functions: `build` (and `convert`, which is a build of a generated recipe),
//! `info`, `ls`, `du`, `cp`/`sync`, `rm`, and the embedded example. Reports come back as JSON
//! text, the documents the command-line tool prints with `--json`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use cubeforge::store::{Location, Store, StoreOptions};
use cubeforge::transfer::{Progress, TransferOptions};
use indicatif::{ProgressBar, ProgressStyle};
use pyo3::prelude::*;
use serde_json::json;

use crate::errors::{to_py, IntoPy as _};
use crate::pool;

fn to_json(v: &impl serde::Serialize) -> PyResult<String> {
    serde_json::to_string(v)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("cannot serialise: {e}")))
}

/// Run `work` on a thread of its own while this thread waits with the GIL released, checking
/// for Ctrl-C every 100 ms: on `KeyboardInterrupt`, `cancel` is set and the work's own return
/// (an [`cubeforge::Error::Interrupted`] once it has stopped) is awaited before the interrupt is
/// raised, so that nothing runs on behind the caller's back.
fn interruptible<T: Send + 'static>(
    py: Python<'_>,
    cancel: &Arc<AtomicBool>,
    work: impl FnOnce() -> T + Send + 'static,
) -> PyResult<T> {
    let (tx, rx) = mpsc::channel();
    let rx = std::sync::Mutex::new(rx);
    let handle = std::thread::Builder::new()
        .name("cubeforge-build".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("cannot start: {e}")))?;
    loop {
        let waited = py.detach(|| match rx.lock() {
            Ok(r) => r.recv_timeout(Duration::from_millis(100)),
            Err(_) => Err(mpsc::RecvTimeoutError::Disconnected),
        });
        match waited {
            Ok(out) => {
                let _ = handle.join();
                return Ok(out);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(interrupt) = py.check_signals() {
                    cancel.store(true, Ordering::Relaxed);
                    py.detach(|| {
                        if let Ok(r) = rx.lock() {
                            let _ = r.recv();
                        }
                    });
                    let _ = handle.join();
                    return Err(interrupt);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = handle.join();
                return Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "the build thread stopped without a result",
                ));
            }
        }
    }
}

fn build_bar(show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} chunks, {per_sec}, ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// Build the recipe `text` (named `name` in messages); returns the JSON of `{"plan", "report",
/// "seconds"}` as `cubeforge build --json` prints it.
#[pyfunction]
#[pyo3(signature = (name, text, input=None, output=None, overwrite=false, resume=false,
                    dry_run=false, break_lock=false, jobs=0, memory_limit=192 << 20,
                    progress=true, skip_unreadable=false))]
#[allow(clippy::too_many_arguments, clippy::fn_params_excessive_bools)]
pub(crate) fn build(
    py: Python<'_>,
    name: &str,
    text: &str,
    input: Option<String>,
    output: Option<String>,
    overwrite: bool,
    resume: bool,
    dry_run: bool,
    break_lock: bool,
    jobs: usize,
    memory_limit: usize,
    progress: bool,
    skip_unreadable: bool,
) -> PyResult<String> {
    let doc = cubeforge::recipe::RecipeDoc::parse(name, text).py()?;
    let cancel = Arc::new(AtomicBool::new(false));
    let opts = cubeforge::build::BuildOptions {
        input,
        output,
        dry_run,
        overwrite,
        resume,
        memory_limit,
        break_lock,
        skip_unreadable,
        cancel: Some(cancel.clone()),
    };
    let pool = pool::get(jobs)?;
    let started = Instant::now();
    let result = interruptible(py, &cancel, move || {
        let bar = build_bar(progress);
        let out = pool.install(|| {
            cubeforge::build::build(&doc, &opts, &|pass, done, total| {
                bar.set_message(pass.to_string());
                bar.set_length(total);
                bar.set_position(done);
            })
        });
        bar.finish_and_clear();
        out
    })?;
    let (summary, report) = result.py()?;
    to_json(&json!({"plan": summary, "report": report,
                    "seconds": started.elapsed().as_secs_f64()}))
}

/// The recipe `cubeforge convert` builds for these sources and flags, as YAML text.
#[pyfunction]
#[pyo3(signature = (sources, dest, concat=None, time_from=None, variables=Vec::new(),
                    chunks=None, zarr_format=2, bands=Vec::new(), group=String::new()))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn convert_recipe(
    sources: Vec<String>,
    dest: String,
    concat: Option<String>,
    time_from: Option<String>,
    variables: Vec<String>,
    chunks: Option<String>,
    zarr_format: u8,
    bands: Vec<String>,
    group: String,
) -> PyResult<String> {
    let spec = cubeforge::convert::ConvertSpec {
        sources,
        dest,
        concat,
        time_from,
        variables,
        chunks: match &chunks {
            Some(c) => cubeforge::convert::parse_chunks(c).py()?,
            None => Default::default(),
        },
        zarr_format,
        bands,
        group,
    };
    cubeforge::convert::recipe_text(&spec).py()
}

/// `cubeforge info --json URL`, as JSON text; the second value lists variables that cannot be
/// read (`name: reason`), which the command-line tool warns about.
#[pyfunction]
#[pyo3(signature = (url, group=String::new(), concat=None, verify=false))]
pub(crate) fn info(
    py: Python<'_>,
    url: String,
    group: String,
    concat: Option<String>,
    verify: bool,
) -> PyResult<(String, Vec<String>)> {
    let described = py
        .detach(|| {
            pool::install(0, || {
                cubeforge::info::open::describe(&url, &group, concat.as_deref(), verify)
            })
        })?
        .py()?;
    let doc = described.to_json().py()?;
    let mut notes: Vec<String> = described
        .unreadable
        .iter()
        .map(|(n, why)| format!("variable '{n}' cannot be read: {why}"))
        .collect();
    notes.extend(described.problems.iter().cloned());
    Ok((to_json(&doc)?, notes))
}

fn store_options(anon: bool, retries: usize) -> StoreOptions {
    StoreOptions {
        anon,
        max_retries: retries,
        ..StoreOptions::default()
    }
}

/// `cubeforge ls --json`: the entries, as JSON text.
#[pyfunction]
#[pyo3(signature = (url, long=false, recursive=false, anon=false, retries=10))]
pub(crate) fn ls(
    py: Python<'_>,
    url: String,
    long: bool,
    recursive: bool,
    anon: bool,
    retries: usize,
) -> PyResult<String> {
    let entries = py
        .detach(|| cubeforge::transfer::list(&url, long, recursive, &store_options(anon, retries)))
        .py()?;
    to_json(&entries)
}

/// `cubeforge du --json`, as JSON text.
#[pyfunction]
#[pyo3(signature = (url, anon=false, retries=10))]
pub(crate) fn du(py: Python<'_>, url: String, anon: bool, retries: usize) -> PyResult<String> {
    let usage = py
        .detach(|| cubeforge::transfer::usage(&url, &store_options(anon, retries), &|_, _| {}))
        .py()?;
    to_json(&usage)
}

fn transfer_bar(show: bool, verb: &'static str) -> (ProgressBar, impl Fn(Progress) + Sync) {
    let bar = if show {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:25}] {bytes}/{total_bytes}, {binary_bytes_per_sec}, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let b = bar.clone();
    let update = move |p: Progress| {
        b.set_length(p.bytes_total);
        b.set_position(p.bytes_done);
        b.set_message(format!(
            "{verb} {}/{} objects",
            p.objects_done, p.objects_total
        ));
    };
    (bar, update)
}

/// `cubeforge cp` (or `sync` when `sync`) `--json`, as JSON text.
#[pyfunction]
#[pyo3(signature = (src, dst, sync=false, checksum=false, delete=false, dry_run=false,
                    break_lock=false, concurrency=32, progress=false, anon=false, retries=10))]
#[allow(clippy::too_many_arguments, clippy::fn_params_excessive_bools)]
pub(crate) fn transfer(
    py: Python<'_>,
    src: String,
    dst: String,
    sync: bool,
    checksum: bool,
    delete: bool,
    dry_run: bool,
    break_lock: bool,
    concurrency: usize,
    progress: bool,
    anon: bool,
    retries: usize,
) -> PyResult<String> {
    let options = TransferOptions {
        concurrency: concurrency.max(1),
        dry_run,
        checksum,
        delete,
        break_lock,
        ..TransferOptions::default()
    };
    let store_options = store_options(anon, retries);
    let started = Instant::now();
    let report = py
        .detach(|| {
            let (bar, update) = transfer_bar(progress, "copying");
            let r = if sync {
                cubeforge::transfer::sync(&src, &dst, &store_options, &options, &update)
            } else {
                cubeforge::transfer::copy(&src, &dst, &store_options, &options, &update)
            };
            bar.finish_and_clear();
            r
        })
        .py()?;
    let mut doc = serde_json::to_value(&report)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    if let Some(o) = doc.as_object_mut() {
        o.insert("seconds".into(), json!(started.elapsed().as_secs_f64()));
    }
    to_json(&doc)
}

/// `cubeforge rm --yes --json`, as JSON text: the Python call is the confirmation.
#[pyfunction]
#[pyo3(signature = (url, recursive=false, force_root=false, dry_run=false, concurrency=32,
                    anon=false, retries=10))]
#[allow(clippy::too_many_arguments, clippy::fn_params_excessive_bools)]
pub(crate) fn rm(
    py: Python<'_>,
    url: String,
    recursive: bool,
    force_root: bool,
    dry_run: bool,
    concurrency: usize,
    anon: bool,
    retries: usize,
) -> PyResult<String> {
    let store_options = store_options(anon, retries);
    let options = TransferOptions {
        concurrency: concurrency.max(1),
        dry_run,
        ..TransferOptions::default()
    };
    let report = py
        .detach(|| {
            let plan =
                cubeforge::transfer::plan_remove(&url, recursive, force_root, &store_options)?;
            cubeforge::transfer::remove(plan, &options, &|_| {})
        })
        .py()?;
    to_json(&report)
}

/// `cubeforge example io`: the embedded synthetic input of the seed-000 tutorial.
#[pyfunction]
#[pyo3(signature = (out, days=3000, seed=0, overwrite=false))]
pub(crate) fn write_example(
    py: Python<'_>,
    out: String,
    days: u64,
    seed: u64,
    overwrite: bool,
) -> PyResult<()> {
    let location = Location::parse(&out).py()?;
    py.detach(|| -> Result<(), cubeforge::Error> {
        if overwrite {
            if let Location::Local(path) = &location {
                if path.exists() {
                    // Only a Zarr store is replaced; anything else is someone's data.
                    if !path.join(".zgroup").exists() && !path.join("zarr.json").exists() {
                        return Err(cubeforge::Error::DestinationNotEmpty {
                            location: location.to_string(),
                        });
                    }
                    std::fs::remove_dir_all(path).map_err(|e| cubeforge::Error::Io {
                        path: path.display().to_string(),
                        source: e,
                    })?;
                }
            }
        }
        let store = Store::open(&location)?;
        pool::install(0, || {
            cubeforge::example::write_example(
                &store,
                cubeforge::example::ExampleOptions { days, seed },
                &|_, _| {},
            )
        })
        .map_err(|e| cubeforge::Error::Other(e.to_string()))?
    })
    .map_err(|e| to_py(&e))
}
