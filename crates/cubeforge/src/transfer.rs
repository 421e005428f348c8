//! The storage commands' engine: list, measure, copy, synchronise and remove plain objects and
//! whole Zarr stores, on local directories and object stores alike.
//!
//! Both sides of every operation are an [`Endpoint`]: an `object_store` client plus a key
//! prefix. Local paths use `object_store`'s `LocalFileSystem`, whose writes go to a staging file
//! renamed into place, so an interrupted copy never leaves a partial object that a later `sync`
//! would take as complete (S3, GCS and Azure only show an object once its upload completes).
//!
//! Transfers run on the shared I/O runtime with at most `concurrency` requests in flight and a
//! byte budget for buffered data: objects up to [`MULTIPART_THRESHOLD`] are read whole and
//! written with one request; larger ones stream through a multipart upload, a few parts at a
//! time. Two URLs in the same bucket copy server-side.
//!
//! `sync` rule (the one `aws s3 sync` uses): an object is transferred when the destination lacks
//! it, when the sizes differ, or when the source was modified after the destination (the
//! destination of an earlier copy is newer than its source, because it was written later).
//! With `checksum`, sizes and contents are compared instead of times: an S3 ETag is the MD5 of
//! the content for objects uploaded in one request; other objects are read and hashed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path as ObjPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt as _, PutPayload, WriteMultipart};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::lock::DestinationLock;
use crate::safety::LOCK_KEY;

mod commit;
mod listing;
mod remove;

use crate::store::{
    is_dot_segment, object_store_for, runtime, Location, ObjectService, StoreOptions,
};
pub use listing::{list, usage, ListEntry, PartUsage, Usage};
use remove::delete_paths;
pub use remove::{plan_remove, remove, RemovePlan};

/// Objects larger than this are streamed through multipart uploads; smaller ones are copied
/// with one read and one write.
pub const MULTIPART_THRESHOLD: u64 = 32 << 20;

/// Multipart part size (grown for very large objects, so that no object needs more than
/// 9,000 parts; S3 allows 10,000).
pub const PART_SIZE: u64 = 8 << 20;

/// Parts of one multipart upload in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// One side of a transfer: a local directory or file, or an object-store prefix or object.
pub struct Endpoint {
    text: String,
    location: Location,
    store: Arc<dyn ObjectStore>,
    prefix: ObjPath,
    /// `Some` for local paths (absolute).
    local: Option<PathBuf>,
    /// `scheme://bucket` of object stores, for server-side copies and messages.
    bucket: Option<String>,
    service: Option<ObjectService>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("location", &self.text)
            .finish()
    }
}

/// An object found by a listing, with its key relative to the listed prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The key below the endpoint's prefix (`""` for the endpoint's own object).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time.
    pub last_modified: DateTime<Utc>,
    /// The store's entity tag, when it gives one.
    #[serde(skip)]
    pub e_tag: Option<String>,
}

/// Counters the transfer functions report as they go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Objects finished (copied, or removed).
    pub objects_done: u64,
    /// Objects to do.
    pub objects_total: u64,
    /// Bytes finished.
    pub bytes_done: u64,
    /// Bytes to do.
    pub bytes_total: u64,
}

/// Options of `cp`, `sync` and `rm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferOptions {
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Bytes of object data held in memory at most (approximately).
    pub memory_budget: u64,
    /// Decide and report, change nothing.
    pub dry_run: bool,
    /// `sync`: compare contents instead of modification times.
    pub checksum: bool,
    /// `sync`: remove destination objects the source does not have.
    pub delete: bool,
    /// Replace the destination's lock even when its holder may still run.
    pub break_lock: bool,
}

impl Default for TransferOptions {
    fn default() -> Self {
        TransferOptions {
            concurrency: 32,
            memory_budget: 256 << 20,
            dry_run: false,
            checksum: false,
            delete: false,
            break_lock: false,
        }
    }
}

/// What a `cp` or `sync` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TransferReport {
    /// Source as given.
    pub source: String,
    /// Destination as given.
    pub destination: String,
    /// Objects found at the source.
    pub objects: u64,
    /// Objects copied.
    pub copied: u64,
    /// Bytes copied.
    pub copied_bytes: u64,
    /// Objects left alone because the destination already had them.
    pub skipped: u64,
    /// Destination objects removed (`sync --delete`).
    pub deleted: u64,
    /// Nothing was changed.
    pub dry_run: bool,
    /// Keys copied (or to copy), at most the first 1,000.
    pub copied_keys: Vec<String>,
}

/// What an `rm` removed (or would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RemoveReport {
    /// The URL or path.
    pub location: String,
    /// Objects removed.
    pub deleted: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Nothing was changed.
    pub dry_run: bool,
}

/// A callback receiving progress; called often, from one thread at a time.
pub type ProgressFn<'a> = &'a (dyn Fn(Progress) + Sync);

fn storage_err(location: String, e: &object_store::Error) -> Error {
    Error::storage(location, zarrs_storage::StorageError::Other(e.to_string()))
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

impl Endpoint {
    /// Open a path or URL as a transfer endpoint.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for locations that cannot be parsed or that name a `memory://`
    /// store; [`Error::Storage`] when the client cannot be configured.
    pub fn open(text: &str, options: &StoreOptions) -> Result<Endpoint> {
        let location = Location::parse(text)?;
        match &location {
            Location::Local(p) => {
                // `..` and links resolved: `object_store` takes only normalised paths.
                let abs = crate::safety::resolve(p)?;
                let prefix = ObjPath::from_absolute_path(&abs).map_err(|e| Error::InvalidUrl {
                    url: text.to_string(),
                    reason: e.to_string(),
                })?;
                Ok(Endpoint {
                    text: text.to_string(),
                    location: location.clone(),
                    store: Arc::new(object_store::local::LocalFileSystem::new()),
                    prefix,
                    local: Some(abs),
                    bucket: None,
                    service: None,
                })
            }
            Location::Memory(_) => Err(Error::InvalidUrl {
                url: text.to_string(),
                reason: "storage commands work on local paths and object-store URLs, not memory://"
                    .into(),
            }),
            Location::Object(obj) => {
                let (store, prefix) = object_store_for(&location, obj, options)?;
                let bucket = format!(
                    "{}://{}",
                    obj.url.scheme(),
                    obj.url.host_str().unwrap_or_default()
                );
                Ok(Endpoint {
                    text: text.to_string(),
                    location: location.clone(),
                    store,
                    prefix,
                    local: None,
                    bucket: Some(bucket),
                    service: Some(obj.service),
                })
            }
        }
    }

    /// The location as the user gave it.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The parsed location.
    #[must_use]
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The full path or URL of `path`, for messages.
    fn display(&self, path: &ObjPath) -> String {
        match &self.bucket {
            Some(b) if path.as_ref().is_empty() => b.clone(),
            Some(b) => format!("{b}/{path}"),
            None => format!("/{path}"),
        }
    }

    /// The store path of `key` below the prefix, refusing keys that are not plain relative keys.
    fn path_of(&self, key: &str) -> Result<ObjPath> {
        if key.is_empty() {
            return Ok(self.prefix.clone());
        }
        if let Some(bad) = key.split('/').find(|s| is_dot_segment(s) || s.is_empty()) {
            return Err(Error::InvalidUrl {
                url: self.location.join(key),
                reason: format!("key has a '{bad}' segment; refusing to write outside the prefix"),
            });
        }
        let full = if self.prefix.as_ref().is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        };
        ObjPath::parse(&full).map_err(|e| Error::InvalidUrl {
            url: self.location.join(key),
            reason: e.to_string(),
        })
    }

    fn refuse_read_only(&self) -> Result<()> {
        if self.service == Some(ObjectService::Http) {
            return Err(Error::Refused {
                location: self.text.clone(),
                reason: "http(s) locations are read-only".into(),
            });
        }
        Ok(())
    }

    fn same_bucket(&self, other: &Endpoint) -> bool {
        self.bucket.is_some()
            && self.bucket == other.bucket
            && self.service != Some(ObjectService::Http)
    }

    fn entry(&self, meta: ObjectMeta) -> Option<Entry> {
        let key = meta
            .location
            .prefix_match(&self.prefix)?
            .map(|p| p.as_ref().to_string())
            .collect::<Vec<_>>()
            .join("/");
        Some(Entry {
            key,
            size: meta.size,
            last_modified: meta.last_modified,
            e_tag: meta.e_tag,
        })
    }

    /// Every object below the prefix (recursively), sorted by key; `on_found` sees the running
    /// count and size.
    async fn list_all(&self, on_found: &(dyn Fn(u64, u64) + Sync)) -> Result<Vec<Entry>> {
        if let Some(p) = &self.local {
            if !p.is_dir() {
                return Ok(Vec::new());
            }
        }
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let mut stream = self.store.list(prefix);
        let mut out = Vec::new();
        let (mut n, mut bytes) = (0u64, 0u64);
        while let Some(item) = stream.next().await {
            let meta = match item {
                Ok(m) => m,
                Err(e) if is_not_found(&e) => break,
                Err(e) => return Err(storage_err(self.text.clone(), &e)),
            };
            if let Some(entry) = self.entry(meta) {
                if entry.key.is_empty() {
                    continue;
                }
                n += 1;
                bytes += entry.size;
                if n % 256 == 0 {
                    on_found(n, bytes);
                }
                out.push(entry);
            }
        }
        on_found(n, bytes);
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// The object at the prefix itself, if there is one.
    async fn head_self(&self) -> Result<Option<Entry>> {
        if let Some(p) = &self.local {
            if !p.is_file() {
                return Ok(None);
            }
        } else if self.prefix.as_ref().is_empty() {
            return Ok(None);
        }
        match self.store.head(&self.prefix).await {
            Ok(meta) => Ok(Some(Entry {
                key: String::new(),
                size: meta.size,
                last_modified: meta.last_modified,
                e_tag: meta.e_tag,
            })),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(storage_err(self.text.clone(), &e)),
        }
    }

    /// Zarr format of a store rooted at `key` (below the prefix), if it is one.
    async fn zarr_format_at(&self, key: &str) -> Result<Option<u8>> {
        for (name, format) in [("zarr.json", 3u8), (".zgroup", 2), (".zarray", 2)] {
            let k = if key.is_empty() {
                name.to_string()
            } else {
                format!("{key}/{name}")
            };
            let path = self.path_of(&k)?;
            if let Some(local) = &self.local {
                let file = local.join(&k);
                if file.is_file() {
                    return Ok(Some(format));
                }
                continue;
            }
            match self.store.head(&path).await {
                Ok(_) => return Ok(Some(format)),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(storage_err(self.display(&path), &e)),
            }
        }
        Ok(None)
    }
}

/// What a source location holds.
enum Source {
    Object(Entry),
    Tree(Vec<Entry>),
}

async fn resolve_source(src: &Endpoint, on_found: &(dyn Fn(u64, u64) + Sync)) -> Result<Source> {
    if let Some(e) = src.head_self().await? {
        return Ok(Source::Object(e));
    }
    let all = src.list_all(on_found).await?;
    if all.is_empty() {
        return Err(Error::NotFound {
            location: src.text.clone(),
        });
    }
    Ok(Source::Tree(all))
}

/// Progress counters shared by the concurrent tasks of one operation.
struct Counters {
    objects: AtomicU64,
    bytes: AtomicU64,
    objects_total: u64,
    bytes_total: u64,
}

impl Counters {
    fn new(objects_total: u64, bytes_total: u64) -> Counters {
        Counters {
            objects: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            objects_total,
            bytes_total,
        }
    }
    fn snapshot(&self) -> Progress {
        Progress {
            objects_done: self.objects.load(Ordering::Relaxed),
            objects_total: self.objects_total,
            bytes_done: self.bytes.load(Ordering::Relaxed),
            bytes_total: self.bytes_total,
        }
    }
}

/// One object to copy.
struct Job {
    from: ObjPath,
    to: ObjPath,
    size: u64,
    key: String,
}

fn kib(bytes: u64, budget_kib: u32) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).map_or(budget_kib, |k| k.clamp(1, budget_kib))
}

/// Copy one object; the error names the object that failed.
async fn copy_one(
    src: &Endpoint,
    dst: &Endpoint,
    job: &Job,
    budget: &Semaphore,
    budget_kib: u32,
    counters: &Counters,
    progress: ProgressFn<'_>,
) -> std::result::Result<(), (String, String)> {
    let src_err = |e: object_store::Error| (src.display(&job.from), e.to_string());
    let dst_err = |e: object_store::Error| (dst.display(&job.to), e.to_string());
    if src.same_bucket(dst) {
        dst.store.copy(&job.from, &job.to).await.map_err(src_err)?;
        counters.bytes.fetch_add(job.size, Ordering::Relaxed);
    } else if job.size <= MULTIPART_THRESHOLD {
        let _permit = budget
            .acquire_many(kib(job.size, budget_kib))
            .await
            .map_err(|e| (src.display(&job.from), e.to_string()))?;
        let bytes = src
            .store
            .get(&job.from)
            .await
            .map_err(src_err)?
            .bytes()
            .await
            .map_err(src_err)?;
        let n = bytes.len() as u64;
        dst.store
            .put(&job.to, PutPayload::from(bytes))
            .await
            .map_err(dst_err)?;
        counters.bytes.fetch_add(n, Ordering::Relaxed);
    } else {
        let part = PART_SIZE.max(job.size.div_ceil(9_000));
        let _permit = budget
            .acquire_many(kib(part * (PARTS_IN_FLIGHT as u64 + 1), budget_kib))
            .await
            .map_err(|e| (src.display(&job.from), e.to_string()))?;
        let mut stream = src
            .store
            .get(&job.from)
            .await
            .map_err(src_err)?
            .into_stream();
        let upload = dst.store.put_multipart(&job.to).await.map_err(dst_err)?;
        let part = usize::try_from(part).unwrap_or(usize::MAX);
        let mut writer = WriteMultipart::new_with_chunk_size(upload, part);
        let mut failure = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => {
                    if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                        failure = Some(dst_err(e));
                        break;
                    }
                    let n = bytes.len() as u64;
                    writer.put(bytes);
                    counters.bytes.fetch_add(n, Ordering::Relaxed);
                    progress(counters.snapshot());
                }
                Err(e) => {
                    failure = Some(src_err(e));
                    break;
                }
            }
        }
        if let Some(f) = failure {
            // Best effort: an unfinished upload is invisible but would still be billed.
            let _ = writer.abort().await;
            return Err(f);
        }
        writer.finish().await.map_err(dst_err)?;
    }
    counters.objects.fetch_add(1, Ordering::Relaxed);
    progress(counters.snapshot());
    Ok(())
}

/// Run `jobs` with bounded concurrency; stops at the first failure.
async fn run_jobs(
    src: &Endpoint,
    dst: &Endpoint,
    jobs: &[Job],
    options: &TransferOptions,
    progress: ProgressFn<'_>,
) -> Result<u64> {
    let total: u64 = jobs.iter().map(|j| j.size).sum();
    let counters = Counters::new(jobs.len() as u64, total);
    progress(counters.snapshot());
    let budget_kib = u32::try_from((options.memory_budget / 1024).max(1)).unwrap_or(u32::MAX);
    let budget = Semaphore::new(budget_kib as usize);
    // The request futures do CPU work when polled (payload hashing for signatures, checksums,
    // local file reads' completion): one thread polling them all was the bottleneck of uploads.
    // Several threads each drive a share of the in-flight requests, taking jobs from one queue.
    let threads = std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .clamp(1, 8)
        .min(jobs.len().max(1));
    let per_thread = options.concurrency.max(1).div_ceil(threads);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let first_error: std::sync::Mutex<Option<(String, String)>> = std::sync::Mutex::new(None);
    let drive = || {
        let pending = std::iter::from_fn(|| {
            if failed.load(Ordering::Relaxed) {
                return None;
            }
            jobs.get(next.fetch_add(1, Ordering::Relaxed)).map(Ok)
        });
        let result = runtime().block_on(
            futures::stream::iter(pending).try_for_each_concurrent(per_thread, |job| {
                copy_one(src, dst, job, &budget, budget_kib, &counters, progress)
            }),
        );
        if let Err(e) = result {
            failed.store(true, Ordering::Relaxed);
            if let Ok(mut slot) = first_error.lock() {
                slot.get_or_insert(e);
            }
        }
    };
    // The calling task only waits: the work runs on plain threads that enter the runtime.
    tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(drive);
            }
        });
    });
    let result = match first_error.into_inner() {
        Ok(Some(e)) => Err(e),
        _ => Ok(()),
    };
    let done = counters.objects.load(Ordering::Relaxed);
    match result {
        Ok(()) => Ok(counters.bytes.load(Ordering::Relaxed)),
        Err((location, reason)) => Err(Error::Transfer {
            location,
            reason,
            done: format!(
                "{done} of {} objects copied before the failure; nothing else was reported done",
                jobs.len()
            ),
        }),
    }
}

/// Remove staging files (`name#123`) that a killed local write left in `dir`.
fn remove_stale_staging_files(dir: &Path) {
    fn walk(dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                walk(&path);
            } else if let Some((_, suffix)) = entry.file_name().to_string_lossy().rsplit_once('#') {
                if !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()) {
                    tracing::debug!("removing staging file {}", path.display());
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }
    walk(dir);
}

/// Remove empty directories below `dir` (and `dir` itself when `including_root`).
fn remove_empty_dirs(dir: &Path, including_root: bool) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&entry.path(), true);
            }
        }
    }
    if including_root {
        // Fails (and is left) when not empty.
        let _ = std::fs::remove_dir(dir);
    }
}

fn basename(entry_path: &ObjPath) -> String {
    entry_path.filename().unwrap_or_default().to_string()
}

/// Where a single source object goes: into `dst` when it names a directory (a trailing `/`, or an
/// existing local directory, or a bucket root), else to `dst` itself.
fn single_destination(dst: &Endpoint, src: &Endpoint) -> Result<ObjPath> {
    let into = dst.text.ends_with('/')
        || dst.local.as_ref().is_some_and(|p| p.is_dir())
        || (dst.local.is_none() && dst.prefix.as_ref().is_empty());
    if into {
        let name = match &src.local {
            Some(p) => p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
            None => basename(&src.prefix),
        };
        dst.path_of(&name)
    } else {
        Ok(dst.prefix.clone())
    }
}

/// The MD5 of an object, hex: from an S3 ETag when that is one, else by reading it.
async fn md5_of(ep: &Endpoint, key: &str, e_tag: Option<&str>) -> Result<String> {
    use md5::Digest as _;
    if ep.service == Some(ObjectService::S3) {
        if let Some(tag) = e_tag {
            let tag = tag.trim_matches('"');
            if tag.len() == 32 && tag.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(tag.to_ascii_lowercase());
            }
        }
    }
    let path = ep.path_of(key)?;
    let err = |e: object_store::Error| storage_err(ep.display(&path), &e);
    let mut stream = ep.store.get(&path).await.map_err(err)?.into_stream();
    let mut hasher = md5::Md5::new();
    while let Some(chunk) = stream.next().await {
        hasher.update(chunk.map_err(err)?);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Copy an object or a whole tree (every object below a prefix, such as a Zarr store) from
/// `src` to `dst`, overwriting what is there.
///
/// # Errors
/// [`Error::NotFound`] when the source is empty; [`Error::Refused`] for overlapping or read-only
/// destinations; [`Error::Transfer`] when an object cannot be copied (after retries).
pub fn copy(
    src: &str,
    dst: &str,
    store_options: &StoreOptions,
    options: &TransferOptions,
    progress: ProgressFn<'_>,
) -> Result<TransferReport> {
    transfer(src, dst, store_options, options, progress, false)
}

/// Make `dst` hold what `src` holds, transferring only missing or changed objects (see the
/// module documentation for the rule); with `options.delete`, also remove what `src` lacks.
/// Rerunning an interrupted sync transfers what is still missing.
///
/// # Errors
/// As [`copy`].
pub fn sync(
    src: &str,
    dst: &str,
    store_options: &StoreOptions,
    options: &TransferOptions,
    progress: ProgressFn<'_>,
) -> Result<TransferReport> {
    transfer(src, dst, store_options, options, progress, true)
}

fn transfer(
    src_text: &str,
    dst_text: &str,
    store_options: &StoreOptions,
    options: &TransferOptions,
    progress: ProgressFn<'_>,
    sync: bool,
) -> Result<TransferReport> {
    let src = Endpoint::open(src_text, store_options)?;
    let dst = Endpoint::open(dst_text, store_options)?;
    dst.refuse_read_only()?;
    crate::safety::refuse_overlap(&dst.location, std::slice::from_ref(&src.location))?;
    runtime().block_on(async {
        let listing = |n: u64, bytes: u64| {
            progress(Progress {
                objects_done: 0,
                objects_total: n,
                bytes_done: 0,
                bytes_total: bytes,
            });
        };
        let source = resolve_source(&src, &listing).await?;
        let (is_tree, zarr) = match &source {
            Source::Tree(entries) => (true, commit::is_zarr_store(entries)),
            Source::Object(_) => (false, false),
        };
        // One writer at a time in a destination tree, from before it is listed.
        let lock = if is_tree && !options.dry_run {
            let display = dst.location.join(LOCK_KEY);
            let command = if sync { "sync" } else { "cp" };
            Some(
                DestinationLock::acquire_at(
                    dst.store.clone(),
                    &dst.prefix,
                    display,
                    command,
                    options.break_lock,
                )
                .await?,
            )
        } else {
            None
        };
        let report = run_transfer(&src, &dst, source, zarr, sync, options, progress).await?;
        if let Some(lock) = lock {
            lock.release_async().await?;
        }
        tracing::info!(
            "{} -> {}: {} copied ({} bytes), {} skipped, {} deleted",
            src_text,
            dst_text,
            report.copied,
            report.copied_bytes,
            report.skipped,
            report.deleted
        );
        Ok(report)
    })
}

/// Decide what to copy (and remove), then do it: for a Zarr store, the chunks, a check that each
/// arrived whole, the removals, then the metadata in commit order ([`commit`]), after
/// withdrawing the destination's group metadata when there is anything to change.
async fn run_transfer(
    src: &Endpoint,
    dst: &Endpoint,
    source: Source,
    zarr: bool,
    sync: bool,
    options: &TransferOptions,
    progress: ProgressFn<'_>,
) -> Result<TransferReport> {
    let mut report = TransferReport {
        source: src.text.clone(),
        destination: dst.text.clone(),
        dry_run: options.dry_run,
        ..TransferReport::default()
    };
    let is_tree = matches!(source, Source::Tree(_));
    let (pairs, existing) = destinations(src, dst, source, sync || zarr).await?;
    report.objects = pairs.len() as u64;
    let mut needed = if sync {
        changed(src, dst, &pairs, &existing, options).await?
    } else {
        vec![true; pairs.len()]
    };
    let extras = if sync && options.delete {
        extra_paths(&pairs, &existing)
    } else {
        Vec::new()
    };
    // Removing chunks alone leaves a store readable; changing any object or removing metadata
    // does not.
    let work = needed.iter().any(|n| *n) || extras.iter().any(|p| commit::is_metadata(p.as_ref()));
    if zarr && work {
        // Readers refuse the destination from here until its metadata is written again.
        let withdrawn = if options.dry_run {
            commit::present(dst, &existing)
        } else {
            commit::withdraw(dst, &existing).await?
        };
        let again = commit::paths(dst, &withdrawn);
        for ((_, to), n) in pairs.iter().zip(needed.iter_mut()) {
            *n |= again.contains(to);
        }
    }
    let jobs: Vec<Job> = pairs
        .iter()
        .zip(&needed)
        .filter(|(_, n)| **n)
        .map(|((e, to), _)| Job {
            from: src.path_of(&e.key).unwrap_or_else(|_| src.prefix.clone()),
            to: to.clone(),
            size: e.size,
            key: if e.key.is_empty() {
                basename(to)
            } else {
                e.key.clone()
            },
        })
        .collect();
    report.skipped = report.objects - jobs.len() as u64;
    report.copied_keys = jobs.iter().take(1000).map(|j| j.key.clone()).collect();
    report.copied = jobs.len() as u64;
    if options.dry_run {
        report.copied_bytes = jobs.iter().map(|j| j.size).sum();
        report.deleted = extras.len() as u64;
        return Ok(report);
    }
    if let Some(root) = &dst.local {
        if is_tree {
            std::fs::create_dir_all(root).map_err(|e| Error::Io {
                path: root.display().to_string(),
                source: e,
            })?;
        }
        remove_stale_staging_files(root);
    }
    let (data, meta) = if zarr {
        commit::split(jobs)
    } else {
        (jobs, Vec::new())
    };
    report.copied_bytes = run_jobs(src, dst, &data, options, progress).await?;
    if zarr {
        commit::verify(dst, &data).await?;
    }
    if !extras.is_empty() {
        report.deleted = delete_paths(dst, extras, options, progress).await?;
        if let Some(root) = &dst.local {
            remove_empty_dirs(root, false);
        }
    }
    // Nested metadata together, then the root's documents one at a time, in commit order.
    let nested = meta.iter().take_while(|j| j.key.contains('/')).count();
    report.copied_bytes += run_jobs(src, dst, &meta[..nested], options, progress).await?;
    for job in &meta[nested..] {
        report.copied_bytes +=
            run_jobs(src, dst, std::slice::from_ref(job), options, progress).await?;
    }
    Ok(report)
}

/// Each source entry with its destination path, and (with `list_existing`) what the destination
/// holds, by destination path.
async fn destinations(
    src: &Endpoint,
    dst: &Endpoint,
    source: Source,
    list_existing: bool,
) -> Result<(Vec<(Entry, ObjPath)>, HashMap<String, Entry>)> {
    match source {
        Source::Object(entry) => {
            let to = single_destination(dst, src)?;
            let mut existing = HashMap::new();
            if list_existing {
                match dst.store.head(&to).await {
                    Ok(meta) => {
                        existing.insert(
                            to.to_string(),
                            Entry {
                                key: String::new(),
                                size: meta.size,
                                last_modified: meta.last_modified,
                                e_tag: meta.e_tag,
                            },
                        );
                    }
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(storage_err(dst.display(&to), &e)),
                }
            }
            Ok((vec![(entry, to)], existing))
        }
        Source::Tree(entries) => {
            let mut pairs = Vec::with_capacity(entries.len());
            // A lock in the source is its writer's, not data.
            for e in entries.into_iter().filter(|e| e.key != LOCK_KEY) {
                let to = dst.path_of(&e.key)?;
                pairs.push((e, to));
            }
            let existing = if list_existing {
                dst.list_all(&|_, _| {})
                    .await?
                    .into_iter()
                    .filter(|e| e.key != LOCK_KEY)
                    .filter_map(|e| Some((dst.path_of(&e.key).ok()?.to_string(), e)))
                    .collect()
            } else {
                HashMap::new()
            };
            Ok((pairs, existing))
        }
    }
}

/// For a sync, whether each pair must be copied: the destination lacks it, its size differs,
/// or (by MD5 with `options.checksum`, else by modification time in whole seconds) it changed.
async fn changed(
    src: &Endpoint,
    dst: &Endpoint,
    pairs: &[(Entry, ObjPath)],
    existing: &HashMap<String, Entry>,
    options: &TransferOptions,
) -> Result<Vec<bool>> {
    let decide = move |i: usize| {
        let (s, to) = &pairs[i];
        let d = existing.get(to.as_ref());
        async move {
            let Some(d) = d else {
                return Ok::<_, Error>((i, true));
            };
            if d.size != s.size {
                return Ok((i, true));
            }
            if options.checksum {
                let (a, b) = futures::try_join!(
                    md5_of(src, &s.key, s.e_tag.as_deref()),
                    md5_of(dst, &d.key, d.e_tag.as_deref())
                )?;
                return Ok((i, a != b));
            }
            // Whole seconds: S3 and HTTP dates have no finer resolution.
            Ok((i, s.last_modified.timestamp() > d.last_modified.timestamp()))
        }
    };
    let decisions: Vec<(usize, bool)> = futures::stream::iter(0..pairs.len())
        .map(decide)
        .buffer_unordered(options.concurrency.max(1))
        .try_collect()
        .await?;
    let mut needed = vec![true; pairs.len()];
    for (i, n) in decisions {
        needed[i] = n;
    }
    Ok(needed)
}

/// The destination paths a sync with `--delete` removes: those the source does not have.
fn extra_paths(pairs: &[(Entry, ObjPath)], existing: &HashMap<String, Entry>) -> Vec<ObjPath> {
    let wanted: std::collections::HashSet<&str> = pairs.iter().map(|(_, to)| to.as_ref()).collect();
    let mut v: Vec<ObjPath> = existing
        .keys()
        .filter(|k| !wanted.contains(k.as_str()))
        .map(|k| ObjPath::from(k.as_str()))
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn write(path: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else {
                    let key = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
                    out.insert(key, std::fs::read(&p).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(root, root, &mut out);
        out
    }

    fn opts() -> TransferOptions {
        TransferOptions {
            concurrency: 4,
            ..TransferOptions::default()
        }
    }

    #[test]
    fn local_copy_sync_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.zarr");
        write(&src.join(".zgroup"), b"{\"zarr_format\": 2}");
        write(&src.join("a/.zarray"), b"{}");
        write(&src.join("a/0.0"), &[1u8; 100]);
        // Above the multipart threshold: streamed in parts.
        let big: Vec<u8> = (0..(MULTIPART_THRESHOLD as usize + 12345))
            .map(|i| (i % 251) as u8)
            .collect();
        write(&src.join("a/1.0"), &big);
        let dst = dir.path().join("dst.zarr");
        let so = StoreOptions::default();
        let (s, d) = (src.to_str().unwrap(), dst.to_str().unwrap());

        let r = copy(s, d, &so, &opts(), &|_| {}).unwrap();
        assert_eq!((r.objects, r.copied), (4, 4));
        assert_eq!(tree(&src), tree(&dst));

        // Nothing changed: nothing to do.
        let r = sync(s, d, &so, &opts(), &|_| {}).unwrap();
        assert_eq!((r.copied, r.skipped), (0, 4));

        // A changed size and a missing object are transferred; extras stay unless --delete.
        write(&src.join("a/0.0"), &[2u8; 50]);
        std::fs::remove_file(dst.join("a/.zarray")).unwrap();
        write(&dst.join("extra"), b"x");
        // The store's `.zgroup` is withdrawn while it changes, and written again last.
        let r = sync(s, d, &so, &opts(), &|_| {}).unwrap();
        assert_eq!(r.copied_keys, [".zgroup", "a/.zarray", "a/0.0"], "{r:?}");
        assert!(dst.join("extra").exists());
        let dry = TransferOptions {
            delete: true,
            dry_run: true,
            ..opts()
        };
        let r = sync(s, d, &so, &dry, &|_| {}).unwrap();
        assert_eq!((r.copied, r.deleted), (0, 1));
        assert!(dst.join("extra").exists(), "dry run removed a file");
        let del = TransferOptions {
            delete: true,
            ..opts()
        };
        let r = sync(s, d, &so, &del, &|_| {}).unwrap();
        assert_eq!(r.deleted, 1);
        assert_eq!(tree(&src), tree(&dst));

        // Same size, different content: only --checksum sees it (the copy is newer).
        write(&dst.join("a/0.0"), &[3u8; 50]);
        let r = sync(s, d, &so, &opts(), &|_| {}).unwrap();
        assert_eq!(r.copied, 0);
        let sum = TransferOptions {
            checksum: true,
            ..opts()
        };
        let r = sync(s, d, &so, &sum, &|_| {}).unwrap();
        assert_eq!(r.copied_keys, [".zgroup", "a/0.0"]);
        assert_eq!(tree(&src), tree(&dst));

        // Usage per variable.
        let u = usage(d, &so, &|_, _| {}).unwrap();
        assert_eq!(u.objects, 4);
        assert_eq!(u.zarr_format, Some(2));
        assert_eq!(u.parts["a"].objects, 3);
        assert_eq!(u.parts["(metadata)"].objects, 1);

        // Removal: a prefix needs -r; then everything goes.
        let err = plan_remove(d, false, false, &so).unwrap_err().to_string();
        assert!(err.contains("use rm -r"), "{err}");
        let plan = plan_remove(d, true, false, &so).unwrap();
        assert_eq!(plan.objects, 4);
        let r = remove(plan, &opts(), &|_| {}).unwrap();
        assert_eq!(r.deleted, 4);
        assert!(!dst.exists());
    }

    #[test]
    fn refuses_overlap_roots_and_missing_sources() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("s");
        write(&src.join("x"), b"1");
        let so = StoreOptions::default();
        let s = src.to_str().unwrap();
        let inner = src.join("inner");
        let err = copy(s, inner.to_str().unwrap(), &so, &opts(), &|_| {}).unwrap_err();
        assert!(matches!(err, Error::Refused { .. }), "{err}");
        let err = plan_remove("/", true, false, &so).unwrap_err().to_string();
        assert!(err.contains("--force-root"), "{err}");
        let missing = dir.path().join("missing");
        let err = copy(missing.to_str().unwrap(), s, &so, &opts(), &|_| {}).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
    }

    #[test]
    fn single_object_into_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.bin");
        write(&file, b"hello");
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let so = StoreOptions::default();
        copy(
            file.to_str().unwrap(),
            out.to_str().unwrap(),
            &so,
            &opts(),
            &|_| {},
        )
        .unwrap();
        assert_eq!(std::fs::read(out.join("f.bin")).unwrap(), b"hello");
        let r = sync(
            file.to_str().unwrap(),
            out.to_str().unwrap(),
            &so,
            &opts(),
            &|_| {},
        )
        .unwrap();
        assert_eq!(r.copied, 0);
    }

    #[test]
    fn refuses_dot_keys_from_listings() {
        let so = StoreOptions::default();
        let ep = Endpoint::open("/tmp/x", &so).unwrap();
        for bad in ["../etc/passwd", "a/../../b", "a//b", "./a"] {
            let err = ep.path_of(bad).unwrap_err().to_string();
            assert!(err.contains("segment"), "{bad}: {err}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 256, ..Default::default() })]

        /// Any listed key either maps below the endpoint's prefix or is refused; never panics.
        #[test]
        fn listed_keys_stay_below_the_prefix(key in "[a-z./%#_-]{0,30}") {
            let so = StoreOptions::default();
            let ep = Endpoint::open("/tmp/cf-prop/dest", &so).unwrap();
            if let Ok(path) = ep.path_of(&key) {
                proptest::prop_assert!(path.prefix_matches(&ep.prefix), "{key} -> {path}");
            }
        }
    }
}
