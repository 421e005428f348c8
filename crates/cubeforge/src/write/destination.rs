//! The destination of a build: refusing one that overlaps an input or holds data that is not a
//! Zarr store ([`crate::safety`]), taking its lock ([`crate::lock`]), checking a resume against
//! the record of the build that wrote the chunks there, taking a finished cube's group metadata
//! away before anything else touches it, emptying it for `--overwrite`, and removing what a
//! killed build left half-written.

use crate::error::{Error, Result};
use crate::lock::{BuildRecord, DestinationLock};
use crate::safety::{local_root, refuse_overlap, Holding, LOCK_KEY};
use crate::store::{Location, Store};

/// What a build may do with a destination that already holds something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Refuse it ([`Error::DestinationNotEmpty`]).
    Refuse,
    /// Empty it first (a Zarr store, or what an interrupted build left, only).
    Overwrite,
    /// Keep the chunks a killed build wrote, and compute the rest (when the same recipe, inputs
    /// and cubeforge version computed them).
    Resume,
}

/// A destination a build has checked and locked, before it changes anything there.
#[derive(Debug)]
pub struct Claim {
    store: Store,
    holding: Holding,
    existing: Existing,
    record: BuildRecord,
    lock: Option<DestinationLock>,
    /// A local directory the lock created, removed again when the build stops before it
    /// prepares the destination.
    created: Option<std::path::PathBuf>,
}

/// A destination ready for a build's chunks: its store and the lock held on it (none for
/// in-memory stores).
#[derive(Debug)]
pub struct Prepared {
    /// The destination's store.
    pub store: Store,
    /// The lock, to release once the cube is committed.
    pub lock: Option<DestinationLock>,
}

/// Check and lock the destination at `location` for a build of `record` from `inputs`, as
/// `existing` says, changing nothing there yet: the destination must not overlap an input;
/// `--overwrite` and `--resume` accept only a Zarr store, what an interrupted build left, or
/// nothing; a resume must find the record of the same recipe, inputs and version. A build
/// claims its destination before its long work starts, so that a second writer is refused at
/// once, and changes it ([`Claim::prepare`]) only once its plan stands.
///
/// # Errors
/// [`Error::Refused`] for an overlap, a destination holding other data or a resume of another
/// build; [`Error::DestinationNotEmpty`] for a destination holding something when `existing` is
/// [`Existing::Refuse`]; [`Error::Locked`] when another writer holds it; storage errors.
pub fn claim(
    location: &Location,
    inputs: &[Location],
    existing: Existing,
    record: BuildRecord,
    break_lock: bool,
) -> Result<Claim> {
    refuse_overlap(location, inputs)?;
    let store = Store::open(location)?;
    let (is_file, names) = root(&store)?;
    let holding = Holding::classify(is_file, &names);
    let options = crate::store::default_options();
    // A writer at work there is the reason to refuse, whatever else is there.
    let mut lock = if names.iter().any(|n| n == LOCK_KEY) {
        DestinationLock::acquire(location, "build", break_lock, &options)?
    } else {
        None
    };
    match (&holding, existing) {
        (Holding::Nothing, _) => {}
        (_, Existing::Refuse) => {
            return Err(Error::DestinationNotEmpty {
                location: location.to_string(),
            })
        }
        (Holding::Other(reason), _) => {
            return Err(Error::Refused {
                location: location.to_string(),
                reason: reason.clone(),
            })
        }
        (Holding::Zarr | Holding::Interrupted, _) => {}
    }
    let created = match location {
        Location::Local(p) if !p.exists() => Some(p.clone()),
        _ => None,
    };
    if lock.is_none() {
        lock = DestinationLock::acquire(location, "build", break_lock, &options)?;
    }
    let claim = Claim {
        store,
        holding,
        existing,
        record,
        lock,
        created,
    };
    if claim.holding != Holding::Nothing && existing == Existing::Resume {
        check_resume(location, &claim.store, &claim.record)?;
    }
    Ok(claim)
}

impl Claim {
    /// What the build records at the destination.
    #[must_use]
    pub fn record(&self) -> &BuildRecord {
        &self.record
    }

    /// Make the claimed destination ready for chunks. A reader must never take what follows
    /// for a finished cube, so the group metadata of a cube there goes first, both before an
    /// overwrite empties the destination and before a resume rewrites chunks of a cube that may
    /// have been committed; then the build's record is written.
    ///
    /// # Errors
    /// Storage errors.
    pub fn prepare(mut self) -> Result<Prepared> {
        self.created = None;
        let store = self.store.clone();
        if self.holding != Holding::Nothing {
            withdraw_group_metadata(&store)?;
            match self.existing {
                Existing::Overwrite => remove_all_but_lock(&store)?,
                _ => remove_partial_files(&store)?,
            }
        }
        self.record.write(&store)?;
        Ok(Prepared {
            store,
            lock: self.lock.take(),
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(lock) = self.lock.take() {
            let _ = lock.release();
        }
        if let Some(dir) = self.created.take() {
            // Only if empty: nothing but the lock was ever there.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Whether the destination is a plain file, and the sorted names at its root.
fn root(store: &Store) -> Result<(bool, Vec<String>)> {
    if let Location::Local(p) = store.location() {
        return local_root(p);
    }
    let listing = store
        .storage()
        .list_dir(&zarrs_storage::StorePrefix::root())
        .map_err(|e| store.storage_error("", e))?;
    let mut names: Vec<String> = listing
        .keys()
        .iter()
        .map(|k| k.as_str().to_string())
        .chain(listing.prefixes().iter().map(|p| p.as_str().to_string()))
        .collect();
    names.sort();
    Ok((false, names))
}

/// Refuse a resume unless the destination records the same recipe, inputs and version.
fn check_resume(location: &Location, store: &Store, record: &BuildRecord) -> Result<()> {
    let reason = match BuildRecord::read(store)? {
        None => "--resume: nothing there records which recipe computed its chunks; \
                 rebuild with --overwrite"
            .to_string(),
        Some(found) => {
            let changed = record.differences(&found);
            if changed.is_empty() {
                return Ok(());
            }
            format!(
                "--resume would keep chunks another build computed: {}; rebuild with --overwrite",
                changed.join("; ")
            )
        }
    };
    Err(Error::Refused {
        location: location.to_string(),
        reason,
    })
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

/// Removes a cube's group and consolidated metadata (Zarr v2 and v3), the key readers open a
/// store by first, so that readers refuse the store from then on; keys that do not exist are
/// skipped.
///
/// # Errors
/// Storage errors naming the key.
pub fn withdraw_group_metadata(store: &Store) -> Result<()> {
    use zarrs_storage::WritableStorageTraits as _;
    for key in [".zgroup", "zarr.json", ".zmetadata", ".zattrs"] {
        let k = zarrs_storage::StoreKey::new(key).map_err(|e| Error::Other(e.to_string()))?;
        store
            .storage()
            .erase(&k)
            .map_err(|e| store.storage_error(key, e))?;
    }
    Ok(())
}

/// Remove everything at the store's location but its lock (group metadata is gone already).
fn remove_all_but_lock(store: &Store) -> Result<()> {
    use zarrs_storage::WritableStorageTraits as _;
    if let Location::Local(p) = store.location() {
        let io = |e| Error::Io {
            path: p.display().to_string(),
            source: e,
        };
        for entry in std::fs::read_dir(p).map_err(io)? {
            let entry = entry.map_err(io)?;
            if entry.file_name() == LOCK_KEY {
                continue;
            }
            let path = entry.path();
            let removed = if entry.file_type().map_err(io)?.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(|e| Error::Io {
                path: path.display().to_string(),
                source: e,
            })?;
        }
        return Ok(());
    }
    let root = zarrs_storage::StorePrefix::root();
    let listing = store
        .storage()
        .list_dir(&root)
        .map_err(|e| store.storage_error("", e))?;
    for prefix in listing.prefixes() {
        store
            .storage()
            .erase_prefix(prefix)
            .map_err(|e| store.storage_error(prefix.as_str(), e))?;
    }
    for key in listing.keys() {
        if key.as_str() != LOCK_KEY {
            store
                .storage()
                .erase(key)
                .map_err(|e| store.storage_error(key.as_str(), e))?;
        }
    }
    Ok(())
}
