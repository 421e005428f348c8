//! The library's errors as Python exceptions: one class per [`cubeforge::Error`] kind, defined
//! in `cubeforge._errors` (so that they can be caught and documented in Python), built here from
//! the kind's name, the location and the one-line message.

use cubeforge::Error;
use pyo3::prelude::*;

/// The kind (the Python class name) and the location of `err`.
fn kind_and_location(err: &Error) -> (&'static str, String) {
    match err {
        Error::InvalidUrl { url, .. } => ("InvalidUrlError", url.clone()),
        Error::NotFound { location } => ("NotFoundError", location.clone()),
        Error::NotZarr { location } => ("NotZarrError", location.clone()),
        Error::InvalidMetadata { location, .. } => ("InvalidMetadataError", location.clone()),
        Error::Unsupported { location, .. } => ("UnsupportedError", location.clone()),
        Error::CorruptChunk { location, .. } => ("CorruptChunkError", location.clone()),
        Error::Storage { location, .. } => ("StorageError", location.clone()),
        Error::Missing { location, .. } => ("MissingError", location.clone()),
        Error::DestinationNotEmpty { location } => ("DestinationNotEmptyError", location.clone()),
        Error::Recipe { location, .. } => ("RecipeError", location.clone()),
        Error::Io { path, .. } => ("FileSystemError", path.clone()),
        Error::Credentials { location, .. } => ("CredentialsError", location.clone()),
        Error::Refused { location, .. } => ("RefusedError", location.clone()),
        Error::Combine { location, .. } => ("CombineError", location.clone()),
        Error::Locked { location, .. } => ("LockedError", location.clone()),
        Error::Transfer { location, .. } => ("TransferError", location.clone()),
        Error::Interrupted { location } => ("BuildInterrupted", location.clone()),
        _ => ("CubeforgeError", String::new()),
    }
}

/// `err` as an exception of its class in `cubeforge._errors`.
pub(crate) fn to_py(err: &Error) -> PyErr {
    let (kind, location) = kind_and_location(err);
    raise(kind, &location, &err.to_string())
}

/// An exception of class `kind` of `cubeforge._errors`, with `location` and `message`.
pub(crate) fn raise(kind: &str, location: &str, message: &str) -> PyErr {
    Python::attach(|py| {
        let made = py
            .import("cubeforge._errors")
            .and_then(|m| m.getattr("from_native"))
            .and_then(|f| f.call1((kind, location, message)));
        match made {
            Ok(exc) => PyErr::from_value(exc),
            Err(e) => e,
        }
    })
}

/// A `BatchError` (a `Batches` configuration that cannot be used).
pub(crate) fn batch_error(message: impl Into<String>) -> PyErr {
    raise("BatchError", "", &message.into())
}

/// `Result<T, cubeforge::Error>` to `PyResult<T>`.
pub(crate) trait IntoPy<T> {
    /// The error as its exception.
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for Result<T, Error> {
    fn py(self) -> PyResult<T> {
        self.map_err(|e| to_py(&e))
    }
}
