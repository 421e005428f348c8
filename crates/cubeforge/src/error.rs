//! The library's error type. Every variant names where the problem is (a path, URL or store key)
//! and what it is, in one line, so that the CLI can print it as is.

use zarrs_storage::StorageError;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading, planning or writing a cube.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A location that could not be parsed or routed.
    #[error("{url}: invalid location: {reason}")]
    InvalidUrl {
        /// What the user gave.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// Nothing exists at the location.
    #[error("{location}: no such file, directory or object prefix")]
    NotFound {
        /// The location.
        location: String,
    },
    /// The location exists but holds no Zarr metadata.
    #[error("{location}: not a Zarr store (no zarr.json, .zgroup or .zarray found)")]
    NotZarr {
        /// The location.
        location: String,
    },
    /// Metadata that cannot be parsed or is inconsistent.
    #[error("{location}: invalid metadata: {reason}")]
    InvalidMetadata {
        /// The metadata document (full path of the key).
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// A feature of the data that cubeforge (or the `zarrs` library under it) cannot read.
    #[error("{location}: unsupported {feature}: {detail}")]
    Unsupported {
        /// The array or document.
        location: String,
        /// The feature, e.g. `codec 'delta'`, `data type '|S1'`, `calendar 'none'`.
        feature: String,
        /// More detail, ideally what to do about it.
        detail: String,
    },
    /// A chunk that exists but cannot be decoded (truncated, corrupt, wrong codec).
    #[error("{location}: cannot decode chunk: {reason}")]
    CorruptChunk {
        /// The chunk's full path.
        location: String,
        /// The decoder's complaint.
        reason: String,
    },
    /// A failure of the storage backend.
    #[error("{location}: {source}")]
    Storage {
        /// The key or prefix involved.
        location: String,
        /// The backend's error.
        source: StorageError,
    },
    /// A variable, dimension or coordinate that is not in the dataset.
    #[error("{location}: {what} not found{hint}")]
    Missing {
        /// The dataset.
        location: String,
        /// What was asked for, e.g. `variable 'sst'`.
        what: String,
        /// Suffix such as `; available: a, b` (may be empty).
        hint: String,
    },
    /// A destination that already holds data, refused so that nothing is overwritten by accident.
    #[error("{location}: destination is not empty; remove it or pass --overwrite")]
    DestinationNotEmpty {
        /// The destination.
        location: String,
    },
    /// A recipe that cannot be used, with `file:line` and the field.
    #[error("{location}: {message}")]
    Recipe {
        /// `path:line`.
        location: String,
        /// The field and the problem.
        message: String,
    },
    /// A local file-system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Credentials or configuration that cannot be used (the values themselves are never shown).
    #[error("{location}: {reason}")]
    Credentials {
        /// The file or variable involved.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// An operation refused for safety (removing a bucket root, writing to a read-only store).
    #[error("{location}: refused: {reason}")]
    Refused {
        /// The URL or path.
        location: String,
        /// Why, and how to do it anyway where that is possible.
        reason: String,
    },
    /// A transfer that stopped on an error; `done` says what was completed before it.
    #[error("{location}: {reason} ({done})")]
    Transfer {
        /// The object that failed (full URL or path).
        location: String,
        /// The backend's error.
        reason: String,
        /// What had completed, e.g. `12 of 40 objects copied before the failure`.
        done: String,
    },
    /// Anything else, already phrased for the user.
    #[error("{0}")]
    Other(String),
}
