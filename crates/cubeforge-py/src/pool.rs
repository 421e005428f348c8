//! Worker threads for the package's work, kept per process.
//!
//! A forked child (a torch `DataLoader` worker) inherits the parent's memory but none of its
//! threads: rayon's global pool would then wait forever for workers that do not exist. Every
//! parallel call of this module therefore runs inside [`install`], on a pool built by the
//! process that uses it (rebuilt when the process id changes), so that nested rayon calls of the
//! library use live threads.

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;

struct Held {
    pid: u32,
    threads: usize,
    pool: Arc<rayon::ThreadPool>,
}

static POOL: Mutex<Option<Held>> = Mutex::new(None);

/// The pool of this process with `threads` threads (0: one per core).
pub(crate) fn get(threads: usize) -> PyResult<Arc<rayon::ThreadPool>> {
    let pid = std::process::id();
    let mut held = POOL
        .lock()
        .map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("worker pool poisoned"))?;
    if let Some(h) = held.as_ref() {
        if h.pid == pid && h.threads == threads {
            return Ok(h.pool.clone());
        }
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("cubeforge-{i}"))
        .build()
        .map_err(|e| {
            pyo3::exceptions::PyRuntimeError::new_err(format!("cannot start threads: {e}"))
        })?;
    let pool = Arc::new(pool);
    if let Some(old) = held.replace(Held {
        pid,
        threads,
        pool: pool.clone(),
    }) {
        if old.pid != pid {
            // Its threads are the parent's: dropping it would wait on them. Leak it.
            std::mem::forget(old);
        }
    }
    Ok(pool)
}

/// Run `f` on this process's pool of `threads` threads (0: one per core).
pub(crate) fn install<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    Ok(get(threads)?.install(f))
}
