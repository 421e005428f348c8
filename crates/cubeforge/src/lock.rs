//! One writer at a time: the lock a build or transfer holds on its destination, and the record a
//! build keeps there of what computed its chunks, which `--resume` checks.
//!
//! The lock is an object, [`LOCK_KEY`] at the destination's root, created with a conditional
//! put (`PutMode::Create`: an exclusive create on local disks, `If-None-Match: *` on S3 and
//! Azure, a generation precondition on GCS), so two writers cannot both hold it. It says who
//! holds it: user, host, process id (with the process's start time, so a reused id is not taken
//! for the holder) and since when. It is removed when the command ends, with or without an
//! error; a killed command leaves it behind. Such a stale lock is recognised when it was taken
//! on this host by a process that is no longer running: it is then replaced, with a warning
//! naming it. A lock held by a running process, or taken on another host, is never broken
//! silently: the command is refused, saying who holds it, and `--break-lock` replaces it.

use std::sync::Arc;

use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::safety::{LOCK_KEY, RECORD_KEY};
use crate::store::{object_store_for, runtime, Location, StoreOptions};

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// The user running the command.
    pub owner: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The process's start time (clock ticks since boot, Linux), telling a reused id apart.
    #[serde(default)]
    pub process_start: Option<u64>,
    /// When the lock was taken (UTC).
    pub started: String,
    /// The command (`build`, `cp`, `sync`).
    pub command: String,
}

impl LockInfo {
    fn current(command: &str) -> LockInfo {
        let pid = std::process::id();
        LockInfo {
            owner: std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| "unknown".into()),
            host: host_name(),
            pid,
            process_start: process_start(pid),
            started: utc_now(),
            command: command.to_string(),
        }
    }

    /// Whether the holder is provably gone: it ran on this host and no process with its id and
    /// start time runs now.
    fn is_stale(&self) -> bool {
        if self.host != host_name() || !cfg!(target_os = "linux") {
            return false;
        }
        match process_start(self.pid) {
            None => true,
            Some(now) => self.process_start.is_some_and(|then| then != now),
        }
    }

    fn describe(&self) -> String {
        format!(
            "cubeforge {} (pid {} on host {}, user {}, since {})",
            self.command, self.pid, self.host, self.owner, self.started
        )
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`), if it runs.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// The current time, ISO 8601 in UTC, to the second.
#[must_use]
pub fn utc_now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A held lock; released by [`DestinationLock::release`] or, best effort, when dropped.
pub struct DestinationLock {
    store: Arc<dyn ObjectStore>,
    key: ObjPath,
    display: String,
    held: bool,
}

impl std::fmt::Debug for DestinationLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DestinationLock")
            .field("key", &self.display)
            .finish()
    }
}

/// The object store and root path of a destination, for the lock and the record.
fn root_of(
    location: &Location,
    options: &StoreOptions,
) -> Result<Option<(Arc<dyn ObjectStore>, ObjPath)>> {
    Ok(match location {
        Location::Memory(_) => None,
        Location::Local(p) => {
            let abs = std::path::absolute(p).map_err(|e| Error::Io {
                path: p.display().to_string(),
                source: e,
            })?;
            let root = ObjPath::from_absolute_path(&abs).map_err(|e| Error::InvalidUrl {
                url: p.display().to_string(),
                reason: e.to_string(),
            })?;
            Some((Arc::new(object_store::local::LocalFileSystem::new()), root))
        }
        Location::Object(obj) => Some(object_store_for(location, obj, options)?),
    })
}

fn child(root: &ObjPath, name: &str) -> ObjPath {
    if root.as_ref().is_empty() {
        ObjPath::from(name)
    } else {
        root.clone().join(name)
    }
}

impl DestinationLock {
    /// Take the lock of the destination at `location` for `command` (`None` for in-memory
    /// stores, which live and die with the process).
    ///
    /// # Errors
    /// [`Error::Locked`] when another writer holds it (or held it on another host, or is still
    /// running) and `break_lock` is off; storage errors naming the lock.
    pub fn acquire(
        location: &Location,
        command: &str,
        break_lock: bool,
        options: &StoreOptions,
    ) -> Result<Option<DestinationLock>> {
        let Some((store, root)) = root_of(location, options)? else {
            return Ok(None);
        };
        let display = location.join(LOCK_KEY);
        runtime()
            .block_on(Self::acquire_at(store, &root, display, command, break_lock))
            .map(Some)
    }

    /// [`DestinationLock::acquire`] in `store` below `root`, from async code; `display` names
    /// the lock in messages.
    ///
    /// # Errors
    /// As [`DestinationLock::acquire`].
    pub(crate) async fn acquire_at(
        store: Arc<dyn ObjectStore>,
        root: &ObjPath,
        display: String,
        command: &str,
        break_lock: bool,
    ) -> Result<DestinationLock> {
        let lock = DestinationLock {
            store,
            key: child(root, LOCK_KEY),
            display,
            held: false,
        };
        lock.take(command, break_lock).await
    }

    async fn take(mut self, command: &str, break_lock: bool) -> Result<DestinationLock> {
        let me = LockInfo::current(command);
        let body = serde_json::to_vec_pretty(&me).map_err(|e| Error::Other(e.to_string()))?;
        let storage = |e: object_store::Error| {
            Error::storage(
                self.display.clone(),
                zarrs_storage::StorageError::Other(e.to_string()),
            )
        };
        // Two tries: the second after removing a stale lock.
        for _ in 0..2 {
            let put = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            match self
                .store
                .put_opts(&self.key, PutPayload::from(body.clone()), put)
                .await
            {
                Ok(_) => {
                    self.held = true;
                    return Ok(self);
                }
                Err(
                    object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. },
                ) => {}
                Err(e) => return Err(storage(e)),
            }
            let current = match self.store.get(&self.key).await {
                Ok(r) => r.bytes().await.map_err(storage)?,
                // Released meanwhile: try again.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(storage(e)),
            };
            let holder: Option<LockInfo> = serde_json::from_slice(&current).ok();
            let stale = holder.as_ref().is_some_and(LockInfo::is_stale);
            if !(stale || break_lock) {
                let who = holder.map_or_else(|| "an unreadable lock".to_string(), |h| h.describe());
                return Err(Error::Locked {
                    location: self.display.clone(),
                    holder: who,
                });
            }
            let who = holder.map_or_else(|| "an unreadable lock".to_string(), |h| h.describe());
            tracing::warn!(
                "{}: replacing the lock of {who}, {}",
                self.display,
                if stale {
                    "which is no longer running"
                } else {
                    "as --break-lock asks"
                }
            );
            match self.store.delete(&self.key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(storage(e)),
            }
        }
        Err(Error::Locked {
            location: self.display.clone(),
            holder: "another cubeforge that took it while this one replaced a stale lock".into(),
        })
    }

    /// Release the lock.
    ///
    /// # Errors
    /// Storage errors naming the lock.
    pub fn release(self) -> Result<()> {
        runtime().block_on(self.release_async())
    }

    /// [`DestinationLock::release`] from async code.
    ///
    /// # Errors
    /// As [`DestinationLock::release`].
    pub(crate) async fn release_async(mut self) -> Result<()> {
        self.held = false;
        match self.store.delete(&self.key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::storage(
                self.display.clone(),
                zarrs_storage::StorageError::Other(e.to_string()),
            )),
        }
    }
}

impl Drop for DestinationLock {
    fn drop(&mut self) {
        if self.held {
            let (store, key) = (self.store.clone(), self.key.clone());
            // Best effort: a lock left behind is recognised as stale by the next command.
            let _ = std::thread::spawn(move || runtime().block_on(store.delete(&key))).join();
        }
    }
}

/// What computed the chunks at a build's destination: kept there from the start of a build
/// until it commits (and in the committed cube's attributes afterwards).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// SHA-256 of the recipe's text.
    pub cubeforge_recipe_sha256: String,
    /// The inputs' locations.
    pub cubeforge_inputs: Vec<String>,
    /// The cubeforge version.
    pub cubeforge_version: String,
}

impl BuildRecord {
    /// The record found at `store`: the build record of an interrupted build, else the
    /// attributes of a committed cube (Zarr v2 `.zattrs`, v3 `zarr.json`), else `None`.
    ///
    /// # Errors
    /// Storage errors naming the key.
    pub fn read(store: &crate::store::Store) -> Result<Option<BuildRecord>> {
        for key in [RECORD_KEY, ".zattrs", "zarr.json"] {
            let Some(bytes) = get(store, key)? else {
                continue;
            };
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            let attrs = if key == "zarr.json" {
                value.get("attributes").cloned().unwrap_or_default()
            } else {
                value
            };
            if let Ok(record) = serde_json::from_value::<BuildRecord>(attrs) {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    /// Write the record to `store`.
    ///
    /// # Errors
    /// Storage errors naming the key.
    pub fn write(&self, store: &crate::store::Store) -> Result<()> {
        let doc = serde_json::to_value(self).map_err(|e| Error::Other(e.to_string()))?;
        crate::formats::zarr::writer::put_json(store, RECORD_KEY, &doc)
    }

    /// Remove the record from `store` (once the cube is committed).
    ///
    /// # Errors
    /// Storage errors naming the key.
    pub fn remove(store: &crate::store::Store) -> Result<()> {
        use zarrs_storage::WritableStorageTraits as _;
        let key =
            zarrs_storage::StoreKey::new(RECORD_KEY).map_err(|e| Error::Other(e.to_string()))?;
        store
            .storage()
            .erase(&key)
            .map_err(|e| store.storage_error(RECORD_KEY, e))
    }

    /// What differs between the record `found` at a destination and this build's, in words;
    /// empty when a resume may keep the chunks there.
    #[must_use]
    pub fn differences(&self, found: &BuildRecord) -> Vec<String> {
        let short = |s: &str| s.chars().take(12).collect::<String>();
        let mut out = Vec::new();
        if found.cubeforge_recipe_sha256 != self.cubeforge_recipe_sha256 {
            out.push(format!(
                "the recipe changed (sha256 {} then, {} now)",
                short(&found.cubeforge_recipe_sha256),
                short(&self.cubeforge_recipe_sha256)
            ));
        }
        let canonical = |v: &[String]| -> Vec<String> {
            v.iter().map(String::as_str).map(canonical_input).collect()
        };
        if canonical(&found.cubeforge_inputs) != canonical(&self.cubeforge_inputs) {
            out.push(format!(
                "the inputs changed ({} then, {} now)",
                found.cubeforge_inputs.join(", "),
                self.cubeforge_inputs.join(", ")
            ));
        }
        if found.cubeforge_version != self.cubeforge_version {
            out.push(format!(
                "the cubeforge version changed ({} then, {} now)",
                found.cubeforge_version, self.cubeforge_version
            ));
        }
        out
    }
}

/// An input location as a resume compares it: a local path absolute, with links and `..`
/// resolved (relative paths against the current directory); URLs as given.
#[must_use]
pub fn canonical_input(text: &str) -> String {
    match Location::parse(text) {
        Ok(Location::Local(p)) => crate::safety::resolve(&p)
            .map_or_else(|_| text.to_string(), |r| r.display().to_string()),
        _ => text.to_string(),
    }
}

fn get(store: &crate::store::Store, key: &str) -> Result<Option<Vec<u8>>> {
    use zarrs_storage::ReadableStorageTraits as _;
    let k = zarrs_storage::StoreKey::new(key).map_err(|e| Error::Other(e.to_string()))?;
    Ok(store
        .storage()
        .get(&k)
        .map_err(|e| store.storage_error(key, e))?
        .map(|b| b.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(p: &std::path::Path) -> Location {
        Location::parse(p.to_str().unwrap()).unwrap()
    }

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let dest = local(&dir.path().join("out.zarr"));
        let so = StoreOptions::default();
        let lock = DestinationLock::acquire(&dest, "build", false, &so)
            .unwrap()
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join("out.zarr").join(LOCK_KEY)).unwrap();
        let info: LockInfo = serde_json::from_str(&text).unwrap();
        assert_eq!(info.pid, std::process::id());
        // This process is running: the lock is not stale.
        let err = DestinationLock::acquire(&dest, "cp", false, &so).unwrap_err();
        assert!(matches!(err, Error::Locked { .. }), "{err}");
        assert!(
            err.to_string().contains(&format!("pid {}", info.pid)),
            "{err}"
        );
        drop(lock);
        assert!(!dir.path().join("out.zarr").join(LOCK_KEY).exists());
        let lock = DestinationLock::acquire(&dest, "cp", false, &so)
            .unwrap()
            .unwrap();
        lock.release().unwrap();
        assert!(!dir.path().join("out.zarr").join(LOCK_KEY).exists());
    }

    #[test]
    fn stale_locks_are_replaced_and_foreign_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out.zarr");
        std::fs::create_dir_all(&root).unwrap();
        let dest = local(&root);
        let so = StoreOptions::default();
        let mut dead = LockInfo::current("build");
        // No process has this id (above the kernel's pid_max).
        dead.pid = 4_999_999;
        std::fs::write(root.join(LOCK_KEY), serde_json::to_vec(&dead).unwrap()).unwrap();
        let lock = DestinationLock::acquire(&dest, "build", false, &so)
            .unwrap()
            .unwrap();
        lock.release().unwrap();

        let mut foreign = LockInfo::current("sync");
        foreign.host = "elsewhere.example".into();
        std::fs::write(root.join(LOCK_KEY), serde_json::to_vec(&foreign).unwrap()).unwrap();
        let err = DestinationLock::acquire(&dest, "build", false, &so)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("elsewhere.example") && err.contains("--break-lock"),
            "{err}"
        );
        let lock = DestinationLock::acquire(&dest, "build", true, &so)
            .unwrap()
            .unwrap();
        lock.release().unwrap();
    }

    #[test]
    fn records_name_what_changed() {
        let a = BuildRecord {
            cubeforge_recipe_sha256: "a".repeat(64),
            cubeforge_inputs: vec!["in.zarr".into()],
            cubeforge_version: "1.0".into(),
        };
        assert!(a.differences(&a).is_empty());
        let b = BuildRecord {
            cubeforge_recipe_sha256: "b".repeat(64),
            cubeforge_inputs: vec!["other.zarr".into()],
            cubeforge_version: "0.9".into(),
        };
        let d = a.differences(&b).join("; ");
        assert!(
            d.contains("recipe changed") && d.contains("inputs changed"),
            "{d}"
        );
        assert!(d.contains("version changed (0.9 then, 1.0 now)"), "{d}");
    }
}
