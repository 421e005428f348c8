//! The library's error type. Every variant names where the problem is (a path, URL or store key)
//! and what it is, in one line, so that the CLI can print it as is.

use std::sync::Arc;

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
    /// A destination another writer holds ([`crate::lock`]).
    #[error(
        "{location}: locked by {holder}; wait for it to finish, or if it is no longer running, \
         pass --break-lock"
    )]
    Locked {
        /// The lock object.
        location: String,
        /// Who holds it.
        holder: String,
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

impl Error {
    /// A failure kept where several threads may report it (a chunk that did not decode, a
    /// reduction that failed), as an error of its own kind again: the error itself when nothing
    /// else holds it any more, else a copy with the same variant and message.
    #[must_use]
    pub fn from_shared(shared: Arc<Error>) -> Error {
        Arc::try_unwrap(shared).unwrap_or_else(|e| e.duplicate())
    }

    /// The same error: the same variant, fields and message.
    fn duplicate(&self) -> Error {
        match self {
            Error::InvalidUrl { url, reason } => Error::InvalidUrl {
                url: url.clone(),
                reason: reason.clone(),
            },
            Error::NotFound { location } => Error::NotFound {
                location: location.clone(),
            },
            Error::NotZarr { location } => Error::NotZarr {
                location: location.clone(),
            },
            Error::InvalidMetadata { location, reason } => Error::InvalidMetadata {
                location: location.clone(),
                reason: reason.clone(),
            },
            Error::Unsupported {
                location,
                feature,
                detail,
            } => Error::Unsupported {
                location: location.clone(),
                feature: feature.clone(),
                detail: detail.clone(),
            },
            Error::CorruptChunk { location, reason } => Error::CorruptChunk {
                location: location.clone(),
                reason: reason.clone(),
            },
            Error::Storage { location, source } => Error::Storage {
                location: location.clone(),
                source: match source {
                    StorageError::IOError(e) => StorageError::IOError(e.clone()),
                    other => StorageError::Other(other.to_string()),
                },
            },
            Error::Missing {
                location,
                what,
                hint,
            } => Error::Missing {
                location: location.clone(),
                what: what.clone(),
                hint: hint.clone(),
            },
            Error::DestinationNotEmpty { location } => Error::DestinationNotEmpty {
                location: location.clone(),
            },
            Error::Recipe { location, message } => Error::Recipe {
                location: location.clone(),
                message: message.clone(),
            },
            Error::Io { path, source } => Error::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Error::Credentials { location, reason } => Error::Credentials {
                location: location.clone(),
                reason: reason.clone(),
            },
            Error::Refused { location, reason } => Error::Refused {
                location: location.clone(),
                reason: reason.clone(),
            },
            Error::Locked { location, holder } => Error::Locked {
                location: location.clone(),
                holder: holder.clone(),
            },
            Error::Transfer {
                location,
                reason,
                done,
            } => Error::Transfer {
                location: location.clone(),
                reason: reason.clone(),
                done: done.clone(),
            },
            Error::Other(message) => Error::Other(message.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_error_keeps_its_kind_and_message() {
        let errors = [
            Error::CorruptChunk {
                location: "memory://x/a/0".into(),
                reason: "truncated".into(),
            },
            Error::Storage {
                location: "s3://b/k".into(),
                source: StorageError::Other("503 Slow Down".into()),
            },
            Error::Storage {
                location: "/d/k".into(),
                source: StorageError::IOError(Arc::new(std::io::Error::from(
                    std::io::ErrorKind::PermissionDenied,
                ))),
            },
            Error::Io {
                path: "/d".into(),
                source: std::io::Error::from_raw_os_error(28),
            },
            Error::Other("internal".into()),
        ];
        for e in errors {
            let text = e.to_string();
            let kind = std::mem::discriminant(&e);
            let shared = Arc::new(e);
            let held = shared.clone();
            // Held elsewhere too: a copy of the same kind and message.
            let copy = Error::from_shared(shared);
            assert_eq!(
                (std::mem::discriminant(&copy), copy.to_string()),
                (kind, text.clone())
            );
            // The last holder gets the error itself.
            let own = Error::from_shared(held);
            assert_eq!(
                (std::mem::discriminant(&own), own.to_string()),
                (kind, text)
            );
        }
    }
}
