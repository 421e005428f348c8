//! The destination of a build: refusing one that would overwrite the input or hold data it was
//! not told to replace, taking a finished cube's group metadata away before anything else
//! touches it, emptying it for `--overwrite`, and removing what a killed build left half-written.

use crate::error::{Error, Result};
use crate::store::{Location, Store};

/// What a build may do with a destination that already holds something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Refuse it ([`Error::DestinationNotEmpty`]).
    Refuse,
    /// Empty it first.
    Overwrite,
    /// Keep the chunks a killed build wrote, and compute the rest.
    Resume,
}

/// Open the destination at `location` for a build, as `existing` says: a reader must never take
/// what follows for a finished cube, so the group metadata of a cube there goes first, both
/// before an overwrite empties the destination and before a resume rewrites chunks of a cube
/// that may have been committed already.
///
/// # Errors
/// [`Error::DestinationNotEmpty`] for a destination holding something when `existing` is
/// [`Existing::Refuse`]; storage errors.
pub fn prepare(location: &Location, existing: Existing) -> Result<Store> {
    let store = Store::open(location)?;
    if store.exists()? {
        if existing != Existing::Refuse {
            withdraw_group_metadata(&store)?;
        }
        match existing {
            Existing::Overwrite => remove_all(&store)?,
            Existing::Resume => {}
            Existing::Refuse => {
                return Err(Error::DestinationNotEmpty {
                    location: location.to_string(),
                })
            }
        }
    }
    if existing == Existing::Resume {
        remove_partial_files(&store)?;
    }
    Ok(store)
}

/// Remove the temporary files an interrupted build leaves behind (see `store::LocalStore`).
fn remove_partial_files(store: &Store) -> Result<()> {
    fn walk(dir: &std::path::Path) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path)?;
            } else if path.extension().is_some_and(|e| e == "partial") {
                std::fs::remove_file(&path)?;
            }
        }
        Ok(())
    }
    match store.location() {
        Location::Local(p) if p.is_dir() => walk(p).map_err(|e| Error::Io {
            path: p.display().to_string(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Removes a cube's group and consolidated metadata (Zarr v2 and v3), consolidated metadata
/// first, so that readers refuse the store from then on; keys that do not exist are skipped.
///
/// # Errors
/// Storage errors naming the key.
pub fn withdraw_group_metadata(store: &Store) -> Result<()> {
    use zarrs_storage::WritableStorageTraits as _;
    for key in [".zmetadata", ".zgroup", ".zattrs", "zarr.json"] {
        let k = zarrs_storage::StoreKey::new(key).map_err(|e| Error::Other(e.to_string()))?;
        store
            .storage()
            .erase(&k)
            .map_err(|e| store.storage_error(key, e))?;
    }
    Ok(())
}

/// Remove everything at the store's location.
fn remove_all(store: &Store) -> Result<()> {
    match store.location() {
        Location::Local(p) => std::fs::remove_dir_all(p).map_err(|e| Error::Io {
            path: p.display().to_string(),
            source: e,
        }),
        _ => crate::zarr::erase_prefix(store, ""),
    }
}

/// Whether `a` and `b` are the same place (local paths compared after resolving links).
#[must_use]
pub fn same_location(a: &Location, b: &Location) -> bool {
    match (a, b) {
        (Location::Local(x), Location::Local(y)) => {
            let cx = std::fs::canonicalize(x).unwrap_or_else(|_| x.clone());
            let cy = std::fs::canonicalize(y).unwrap_or_else(|_| y.clone());
            cx == cy
        }
        _ => a.to_string().trim_end_matches('/') == b.to_string().trim_end_matches('/'),
    }
}
