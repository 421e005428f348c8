//! `cubeforge._native`: the Rust half of the `cubeforge` Python package. It exposes the engine
//! in the calling process with the GIL released while Rust works:
//!
//! | module | what |
//! |---|---|
//! | [`errors`] | the library's errors as Python exceptions of a class per kind (`cubeforge._errors`) |
//! | [`pool`] | worker threads that survive `fork` (torch `DataLoader` workers) |
//! | [`run`] | `build`, `convert`, `info`, `ls`, `du`, `cp`, `sync`, `rm` |
//! | [`reader`] | lazily read variables of any input (the xarray backend) |
//! | [`loader`] | training batches assembled and prefetched by Rust threads |
//!
//! The Python layer (`python/cubeforge`) holds the API users call; this module takes and returns
//! plain values (JSON text for reports, NumPy arrays for data).

use pyo3::prelude::*;

mod errors;
mod loader;
mod pool;
mod reader;
mod run;

// Decoding allocates and frees a chunk-sized buffer per chunk; mimalloc keeps that cheap, as in
// the command-line tool.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", cubeforge::VERSION)?;
    m.add_function(wrap_pyfunction!(run::build, m)?)?;
    m.add_function(wrap_pyfunction!(run::convert_recipe, m)?)?;
    m.add_function(wrap_pyfunction!(run::info, m)?)?;
    m.add_function(wrap_pyfunction!(run::ls, m)?)?;
    m.add_function(wrap_pyfunction!(run::du, m)?)?;
    m.add_function(wrap_pyfunction!(run::transfer, m)?)?;
    m.add_function(wrap_pyfunction!(run::rm, m)?)?;
    m.add_function(wrap_pyfunction!(run::write_example, m)?)?;
    m.add_function(wrap_pyfunction!(reader::open, m)?)?;
    m.add_class::<reader::Reader>()?;
    m.add_class::<loader::Loader>()?;
    m.add_class::<loader::BatchIter>()?;
    Ok(())
}
