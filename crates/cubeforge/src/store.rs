//! Store layer: a plain path or URL becomes one synchronous byte store.
//!
//! Every location cubeforge reads or writes goes through [`Location::parse`] and [`Store::open`]:
//!
//! | written as | backend |
//! |---|---|
//! | `/data/x.zarr`, `./x.zarr`, `file:///data/x.zarr` | local files ([`zarrs::filesystem::FilesystemStore`]) |
//! | `memory://name` | a process-wide in-memory store, shared by name (tests, pipelines) |
//! | `s3://bucket/prefix` | Amazon S3 and compatible servers (`object_store`, credentials from `AWS_*`) |
//! | `gs://bucket/prefix`, `gcs://…` | Google Cloud Storage (`GOOGLE_*`) |
//! | `az://container/prefix`, `abfs://…`, `azure://…` | Azure Blob Storage (`AZURE_*`) |
//! | `http://…`, `https://…` | read-only HTTP |
//!
//! Object stores are asynchronous; they are bridged to the synchronous [`zarrs`] API with one
//! shared Tokio runtime, so the rest of the engine sees a single storage type.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use object_store::ObjectStore;
use zarrs_storage::storage_adapter::async_to_sync::{
    AsyncToSyncBlockOn, AsyncToSyncStorageAdapter,
};
use zarrs_storage::store::MemoryStore;
use zarrs_storage::{ListableStorageTraits, ReadableWritableListableStorage, StorageError};

use crate::error::{Error, Result};

/// Where a store lives, parsed from what the user typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory on a local file system.
    Local(PathBuf),
    /// A named in-memory store (`memory://name`).
    Memory(String),
    /// An object-store URL (`s3://`, `gs://`, `az://`, `http(s)://`).
    Object(ObjectUrl),
}

/// The object-store services cubeforge routes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectService {
    /// Amazon S3 or an S3-compatible server.
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    Azure,
    /// Plain HTTP(S), read-only.
    Http,
}

/// A parsed object-store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectUrl {
    /// Which service.
    pub service: ObjectService,
    /// The full URL as given (normalised by the `url` crate).
    pub url: url::Url,
}

impl Location {
    /// Parse a path or URL.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for an empty string, an unknown scheme or a URL without a bucket.
    pub fn parse(text: &str) -> Result<Location> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: text.to_string(),
            reason: reason.to_string(),
        };
        if text.trim().is_empty() {
            return Err(invalid("empty location; give a path or a URL"));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(Location::Local(PathBuf::from(text)));
        };
        let scheme = scheme.to_ascii_lowercase();
        match scheme.as_str() {
            "file" => {
                let url = url::Url::parse(text).map_err(|e| invalid(&e.to_string()))?;
                let path = url
                    .to_file_path()
                    .map_err(|()| invalid("not an absolute local path"))?;
                Ok(Location::Local(path))
            }
            "memory" => {
                let name = rest.trim_end_matches('/');
                if name.is_empty() {
                    return Err(invalid("memory:// needs a name, e.g. memory://cube"));
                }
                Ok(Location::Memory(name.to_string()))
            }
            "s3" | "s3a" | "gs" | "gcs" | "az" | "abfs" | "abfss" | "azure" | "adl" | "http"
            | "https" => {
                // The `url` crate would resolve `a/../b` to `b` silently; a key that climbs out
                // of its prefix is refused instead, so no command acts on something else.
                let raw_path = rest.split(['?', '#']).next().unwrap_or_default();
                if let Some(bad) = raw_path.split('/').skip(1).find(|s| is_dot_segment(s)) {
                    let kind = if decode_dots(bad).contains("..") {
                        ".."
                    } else {
                        "."
                    };
                    return Err(invalid(&format!(
                        "key has a '{kind}' segment ('{bad}'); object keys cannot climb out of \
                         their prefix"
                    )));
                }
                let url = url::Url::parse(text).map_err(|e| invalid(&e.to_string()))?;
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(invalid("missing bucket or host name"));
                }
                let service = match scheme.as_str() {
                    "s3" | "s3a" => ObjectService::S3,
                    "gs" | "gcs" => ObjectService::Gcs,
                    "http" | "https" => ObjectService::Http,
                    _ => ObjectService::Azure,
                };
                Ok(Location::Object(ObjectUrl { service, url }))
            }
            other => Err(invalid(&format!(
                "unknown scheme '{other}://' (supported: file, memory, s3, gs, az, http, https)"
            ))),
        }
    }

    /// The location with `key` (a `/`-separated store key) appended, for messages.
    #[must_use]
    pub fn join(&self, key: &str) -> String {
        let base = self.to_string();
        let key = key.trim_start_matches('/');
        if key.is_empty() {
            base
        } else if base.ends_with('/') {
            format!("{base}{key}")
        } else {
            format!("{base}/{key}")
        }
    }

    /// The local path, for local locations.
    #[must_use]
    pub fn local_path(&self) -> Option<&Path> {
        match self {
            Location::Local(p) => Some(p),
            _ => None,
        }
    }
}

/// Whether a key segment is `.` or `..` (also percent-encoded), which object keys must not have.
#[must_use]
pub fn is_dot_segment(segment: &str) -> bool {
    let decoded = decode_dots(segment);
    decoded == "." || decoded == ".." || decoded.split('/').any(|s| s == "..")
}

fn decode_dots(segment: &str) -> String {
    segment
        .replace("%2e", ".")
        .replace("%2E", ".")
        .replace("%2f", "/")
        .replace("%2F", "/")
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::Memory(name) => write!(f, "memory://{name}"),
            Location::Object(o) => write!(f, "{}", o.url.as_str().trim_end_matches('/')),
        }
    }
}

/// How object stores are reached: anonymous access, retries and timeouts.
///
/// The CLI sets the process-wide default once ([`set_default_options`]) from its global flags;
/// [`Store::open`] and the [`crate::transfer`] commands use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Send unsigned requests (public buckets): no credentials are looked up.
    pub anon: bool,
    /// Retries of a request that failed with a transient error (5xx, 429, timeouts, dropped
    /// connections), with exponential backoff.
    pub max_retries: usize,
    /// Give up retrying a request after this long.
    pub retry_timeout: std::time::Duration,
    /// Time limit of one request, from sending to the end of the response body.
    pub request_timeout: std::time::Duration,
    /// Time limit of opening a connection.
    pub connect_timeout: std::time::Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            anon: false,
            max_retries: 10,
            retry_timeout: std::time::Duration::from_secs(180),
            request_timeout: std::time::Duration::from_secs(120),
            connect_timeout: std::time::Duration::from_secs(10),
        }
    }
}

fn default_options_cell() -> &'static Mutex<StoreOptions> {
    static OPTIONS: OnceLock<Mutex<StoreOptions>> = OnceLock::new();
    OPTIONS.get_or_init(Mutex::default)
}

/// Set the options every later [`Store::open`] uses.
pub fn set_default_options(options: StoreOptions) {
    if let Ok(mut o) = default_options_cell().lock() {
        *o = options;
    }
}

/// The options [`Store::open`] uses.
#[must_use]
pub fn default_options() -> StoreOptions {
    default_options_cell()
        .lock()
        .map(|o| o.clone())
        .unwrap_or_default()
}

/// An opened store: a location plus the synchronous storage handle `zarrs` reads and writes.
#[derive(Clone)]
pub struct Store {
    location: Location,
    storage: ReadableWritableListableStorage,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .finish()
    }
}

fn memory_stores() -> &'static Mutex<HashMap<String, Arc<MemoryStore>>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<MemoryStore>>>> = OnceLock::new();
    STORES.get_or_init(Mutex::default)
}

/// The process-wide Tokio runtime that drives object-store requests.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cubeforge-io")
            .enable_all()
            .build()
            // Building a runtime only fails when the OS refuses threads: nothing can run then.
            .unwrap_or_else(|e| panic!("cannot start the I/O runtime: {e}"))
    })
}

struct TokioBlockOn;

impl AsyncToSyncBlockOn for TokioBlockOn {
    fn block_on<F: core::future::Future>(&self, future: F) -> F::Output {
        match tokio::runtime::Handle::try_current() {
            // Called from inside the runtime (should not happen in cubeforge): do not nest.
            Ok(handle) => tokio::task::block_in_place(|| handle.block_on(future)),
            Err(_) => runtime().block_on(future),
        }
    }
}

impl Store {
    /// Open a store for reading and writing. Nothing is created until something is written.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when the URL cannot be routed, [`Error::Storage`] when the backend
    /// cannot be configured (for example missing credentials configuration).
    pub fn open(location: &Location) -> Result<Store> {
        let storage: ReadableWritableListableStorage = match location {
            Location::Local(path) => {
                let fs = zarrs::filesystem::FilesystemStore::new(path).map_err(|e| {
                    Error::InvalidUrl {
                        url: path.display().to_string(),
                        reason: e.to_string(),
                    }
                })?;
                Arc::new(LocalStore {
                    inner: fs.sorted(),
                    base: path.clone(),
                })
            }
            Location::Memory(name) => {
                let mut stores = memory_stores()
                    .lock()
                    .map_err(|_| Error::Other("memory store registry poisoned".into()))?;
                stores.entry(name.clone()).or_default().clone()
            }
            Location::Object(obj) => open_object_store(location, obj)?,
        };
        Ok(Store {
            location: location.clone(),
            storage,
        })
    }

    /// The same location reached through another storage (an adapter of this one's).
    #[must_use]
    pub fn with_storage(&self, storage: ReadableWritableListableStorage) -> Store {
        Store {
            location: self.location.clone(),
            storage,
        }
    }

    /// Parse and open in one step.
    ///
    /// # Errors
    /// As [`Location::parse`] and [`Store::open`].
    pub fn open_str(text: &str) -> Result<Store> {
        Store::open(&Location::parse(text)?)
    }

    /// Where this store lives.
    #[must_use]
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The storage handle for `zarrs`.
    #[must_use]
    pub fn storage(&self) -> &ReadableWritableListableStorage {
        &self.storage
    }

    /// Whether the location exists at all (a local directory, a non-empty prefix).
    ///
    /// # Errors
    /// [`Error::Storage`] when listing fails.
    pub fn exists(&self) -> Result<bool> {
        match &self.location {
            Location::Local(p) => Ok(p.exists()),
            _ => {
                let listing = self
                    .storage
                    .list_dir(&zarrs_storage::StorePrefix::root())
                    .map_err(|e| self.storage_error("", e))?;
                Ok(!listing.keys().is_empty() || !listing.prefixes().is_empty())
            }
        }
    }

    /// Wrap a storage error with the location of `key`.
    #[must_use]
    pub fn storage_error(&self, key: &str, source: StorageError) -> Error {
        Error::storage(self.location.join(key), source)
    }
}

/// Local files: reads, listing and deletion through `zarrs`' `FilesystemStore`; whole-object
/// writes go to a temporary file renamed into place. That makes each write atomic (a reader or a
/// resumed build never sees half an object) without the `fsync` per object that
/// `FilesystemStore` performs, which costs milliseconds per chunk and dominated build times.
/// zarr-python's local store does not sync either.
#[derive(Debug)]
struct LocalStore {
    inner: zarrs::filesystem::FilesystemStore,
    base: PathBuf,
}

/// Local objects at least this large are mapped rather than read: decoding then reads the page
/// cache in place instead of a copy of it (chunks of a few MB are read once per decode, and the
/// copy cost as much CPU as the decompression on a virtual machine).
const MAP_MIN_BYTES: u64 = 256 * 1024;

/// Map a whole file read-only, its pages populated at once when `populate` (else brought in as
/// they are first read, for reading a small part of a file: the byte planes of a Blosc frame, see
/// [`crate::formats::zarr::blosc::Planes`]).
///
/// One of the library's `unsafe` blocks (with the C-Blosc calls of [`crate::formats::zarr::blosc`]): a
/// mapping is only sound while no one truncates or rewrites the file. Cubeforge never writes to an input it is reading (it refuses an output
/// equal to its input, and replaces objects by renaming a new file over them, which leaves a
/// mapping of the old file intact). Another process truncating an input chunk while it is
/// being decoded would end the process with `SIGBUS`, as it does `ripgrep` or any reader that
/// maps files; a mapping lives while one chunk is decoded (or, for a scan reading byte planes,
/// while the neighbouring tasks of one pass read the same chunk).
fn map_file(file: &std::fs::File, populate: bool) -> std::io::Result<memmap2::Mmap> {
    let mut options = memmap2::MmapOptions::new();
    if populate {
        options.populate();
    }
    #[allow(unsafe_code)]
    // SAFETY: see above: the file is opened read-only and mapped privately while one chunk is
    // read; cubeforge never modifies it in place.
    unsafe {
        options.map(file)
    }
}

/// The local file `path`, mapped without populating its pages, for reading a small part of it;
/// `Ok(None)` when there is no such file. Files too small to map are read.
///
/// # Errors
/// Opening, reading or mapping the file failed.
pub fn map_sparse(path: &std::path::Path) -> std::io::Result<Option<zarrs_storage::Bytes>> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    map_or_read(file, len, false).map(Some)
}

/// The `len` bytes of `file`: mapped (its pages populated at once when `populate`) when it is
/// large enough and the file system can map it, else read.
fn map_or_read(
    mut file: std::fs::File,
    len: u64,
    populate: bool,
) -> std::io::Result<zarrs_storage::Bytes> {
    use std::io::Read as _;
    if len >= MAP_MIN_BYTES {
        if let Ok(map) = map_file(&file, populate) {
            return Ok(zarrs_storage::Bytes::from_owner(map));
        }
        // A file system that cannot map files: read it.
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    Ok(zarrs_storage::Bytes::from(bytes))
}

/// Write `value` to a new file at `path`: on Linux, the whole 4 KiB blocks of an object of at
/// least [`DIRECT_MIN_BYTES`] with `O_DIRECT`, straight from memory to the device, and the rest
/// through the page cache; elsewhere, or where the file system refuses `O_DIRECT`, with a plain
/// write.
///
/// A build writes far more than it will read again soon. Through the page cache every byte is
/// first copied into a fresh page-cache page: on virtual machines, whose fresh pages cost a fault
/// in the hypervisor too, that copy ran at about 0.4 GB/s and took a quarter of a build's CPU
/// time (the device itself takes writes at 1 GB/s and more), and for outputs larger than a fifth
/// of the memory the kernel would in any case hold the writer back to the speed of the device.
/// `CUBEFORGE_DIRECT_IO=0` turns it off.
fn write_file(path: &std::path::Path, value: &[u8]) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    if value.len() >= DIRECT_MIN_BYTES && direct::enabled() {
        if let Some(done) = direct::write(path, value) {
            return done;
        }
    }
    std::fs::write(path, value)
}

/// Objects smaller than this are written through the page cache: `O_DIRECT` waits for the device,
/// which costs more than the copy for small objects.
const DIRECT_MIN_BYTES: usize = 64 * 1024;

#[cfg(target_os = "linux")]
mod direct {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::cell::RefCell;
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Alignment of memory, file offsets and lengths: the largest logical block size of common
    /// devices.
    const ALIGN: usize = 4096;
    /// Objects whose memory is not aligned are copied through a buffer of at most this size per
    /// thread.
    const SCRATCH_BYTES: usize = 4 << 20;

    /// Set once a file system refused `O_DIRECT`; from then on every write goes through the page
    /// cache.
    static REFUSED: AtomicBool = AtomicBool::new(false);

    thread_local! {
        static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn enabled() -> bool {
        static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        !REFUSED.load(Ordering::Relaxed)
            && !*OFF
                .get_or_init(|| std::env::var_os("CUBEFORGE_DIRECT_IO").is_some_and(|v| v == "0"))
    }

    fn refused(e: &std::io::Error) -> bool {
        e.raw_os_error() == Some(nix::libc::EINVAL)
    }

    /// Write `value` to a new file at `path`; `None` when the file system refused `O_DIRECT`
    /// (the caller then writes the whole file again).
    pub(super) fn write(path: &std::path::Path, value: &[u8]) -> Option<std::io::Result<()>> {
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(OFlag::O_DIRECT.bits())
            .open(path)
        {
            Ok(f) => f,
            Err(e) if refused(&e) => {
                REFUSED.store(true, Ordering::Relaxed);
                return None;
            }
            Err(e) => return Some(Err(e)),
        };
        let head = value.len() / ALIGN * ALIGN;
        let written = if value.as_ptr().align_offset(ALIGN) == 0 {
            file.write_all(&value[..head])
        } else {
            SCRATCH.with(|s| {
                let mut s = s.borrow_mut();
                let piece = head.min(SCRATCH_BYTES);
                if s.len() < piece + ALIGN {
                    s.resize(piece + ALIGN, 0);
                }
                let off = s.as_ptr().align_offset(ALIGN);
                value[..head].chunks(SCRATCH_BYTES).try_for_each(|part| {
                    let buf = &mut s[off..off + part.len()];
                    buf.copy_from_slice(part);
                    file.write_all(buf)
                })
            })
        };
        match written {
            Err(e) if refused(&e) => {
                REFUSED.store(true, Ordering::Relaxed);
                return None;
            }
            Err(e) => return Some(Err(e)),
            Ok(()) => {}
        }
        // The last partial block through the page cache: the file ends where it should, with
        // no padding to cut off.
        if let Err(e) = fcntl(&file, FcntlArg::F_SETFL(OFlag::empty())) {
            return Some(Err(e.into()));
        }
        Some(file.write_all(&value[head..]))
    }
}

mod local_impl {
    use super::LocalStore;
    use zarrs_storage::byte_range::ByteRangeIterator;
    use zarrs_storage::{
        Bytes, ListableStorageTraits, MaybeBytes, MaybeBytesIterator, OffsetBytesIterator,
        ReadableStorageTraits, StorageError, StoreKey, StoreKeys, StoreKeysPrefixes, StorePrefix,
        WritableStorageTraits,
    };

    impl ReadableStorageTraits for LocalStore {
        fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
            let path = self.base.join(key.as_str());
            let file = match std::fs::File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                // Anything else: as `FilesystemStore` reports it.
                Err(_) => return self.inner.get(key),
            };
            let len = match file.metadata() {
                Ok(m) if m.is_file() => m.len(),
                _ => return self.inner.get(key),
            };
            Ok(Some(super::map_or_read(file, len, true)?))
        }
        fn get_partial_many<'a>(
            &'a self,
            key: &StoreKey,
            byte_ranges: ByteRangeIterator<'a>,
        ) -> Result<MaybeBytesIterator<'a>, StorageError> {
            self.inner.get_partial_many(key, byte_ranges)
        }
        fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
            self.inner.size_key(key)
        }
        fn supports_get_partial(&self) -> bool {
            self.inner.supports_get_partial()
        }
    }

    impl ListableStorageTraits for LocalStore {
        fn list(&self) -> Result<StoreKeys, StorageError> {
            self.inner.list()
        }
        fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
            self.inner.list_prefix(prefix)
        }
        fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
            self.inner.list_dir(prefix)
        }
        fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
            self.inner.size_prefix(prefix)
        }
    }

    impl WritableStorageTraits for LocalStore {
        fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
            let path = self.base.join(key.as_str());
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let tmp = path.with_file_name(format!(".{name}.{}.partial", std::process::id()));
            if let Err(e) =
                super::write_file(&tmp, &value).and_then(|()| std::fs::rename(&tmp, &path))
            {
                // Nothing half-written stays behind (a full disk, a failed rename).
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
            Ok(())
        }
        fn set_partial_many(
            &self,
            key: &StoreKey,
            offset_values: OffsetBytesIterator,
        ) -> Result<(), StorageError> {
            self.inner.set_partial_many(key, offset_values)
        }
        fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
            self.inner.erase(key)
        }
        fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
            self.inner.erase_prefix(prefix)
        }
        fn supports_set_partial(&self) -> bool {
            self.inner.supports_set_partial()
        }
    }
}

fn open_object_store(
    location: &Location,
    obj: &ObjectUrl,
) -> Result<ReadableWritableListableStorage> {
    use object_store::prefix::PrefixStore;

    let (store, prefix) = object_store_for(location, obj, &default_options())?;
    let store: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    };
    let async_store = Arc::new(zarrs_object_store::AsyncObjectStore::new(store));
    Ok(Arc::new(AsyncToSyncStorageAdapter::new(
        async_store,
        TokioBlockOn,
    )))
}

/// The `object_store` client of an object URL's bucket (or HTTP host) and the key prefix inside
/// it.
///
/// Credentials and endpoints come from the conventional variables (`AWS_*`, `GOOGLE_*`,
/// `AZURE_*`, read by `object_store`'s `from_env` builders) and, for S3, from the AWS shared
/// configuration files ([`crate::aws_profile`]) where the variables leave them unset. Retries and
/// timeouts come from `options`; `options.anon` sends unsigned requests.
///
/// # Errors
/// [`Error::Storage`] when the client cannot be configured, [`Error::InvalidUrl`] for a key that
/// `object_store` refuses, [`Error::Credentials`] for an unreadable AWS profile.
pub fn object_store_for(
    location: &Location,
    obj: &ObjectUrl,
    options: &StoreOptions,
) -> Result<(Arc<dyn ObjectStore>, object_store::path::Path)> {
    use object_store::{BackoffConfig, ClientOptions, RetryConfig};

    let url = &obj.url;
    let config_err = |e: object_store::Error| {
        Error::storage(
            location.to_string(),
            StorageError::Other(format!("cannot configure object store: {e}")),
        )
    };
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: std::time::Duration::from_millis(100),
            max_backoff: std::time::Duration::from_secs(15),
            base: 2.0,
        },
        max_retries: options.max_retries,
        retry_timeout: options.retry_timeout,
    };
    let client = |allow_http: bool| {
        ClientOptions::new()
            .with_timeout(options.request_timeout)
            .with_connect_timeout(options.connect_timeout)
            .with_pool_idle_timeout(std::time::Duration::from_secs(50))
            .with_allow_http(allow_http)
    };
    // GCS and Azure take the URL, signing, retries and client options the same way (their
    // builders share no trait). Plain HTTP only where the configured endpoint is `http://` (a
    // local emulator).
    macro_rules! from_url {
        ($builder:expr, $allow_http:expr) => {
            Arc::new(
                $builder
                    .with_url(url.as_str())
                    .with_skip_signature(options.anon)
                    .with_retry(retry)
                    .with_client_options(client($allow_http))
                    .build()
                    .map_err(config_err)?,
            )
        };
    }
    let store: Arc<dyn ObjectStore> = match obj.service {
        ObjectService::S3 => {
            let mut b = object_store::aws::AmazonS3Builder::from_env().with_url(url.as_str());
            let profile = crate::aws_profile::from_env_and_files()?;
            let env_set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
            if !options.anon && !env_set("AWS_ACCESS_KEY_ID") {
                if let Some(p) = &profile {
                    if let (Some(id), Some(secret)) = (&p.access_key_id, &p.secret_access_key) {
                        b = b.with_access_key_id(id).with_secret_access_key(secret);
                        if let Some(token) = &p.session_token {
                            b = b.with_token(token);
                        }
                    }
                }
            }
            if !env_set("AWS_REGION") && !env_set("AWS_DEFAULT_REGION") {
                if let Some(region) = profile.as_ref().and_then(|p| p.region.as_ref()) {
                    b = b.with_region(region);
                }
            }
            let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
                .ok()
                .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
                .filter(|e| !e.is_empty())
                .or_else(|| profile.as_ref().and_then(|p| p.endpoint_url.clone()));
            let mut allow_http = false;
            if let Some(endpoint) = endpoint {
                allow_http = endpoint.starts_with("http://");
                b = b.with_endpoint(endpoint);
            }
            let s = b
                .with_skip_signature(options.anon)
                .with_retry(retry)
                .with_client_options(client(allow_http || env_set("AWS_ALLOW_HTTP")))
                .build()
                .map_err(config_err)?;
            Arc::new(s)
        }
        ObjectService::Gcs => {
            let (b, base_url) = gcs_builder();
            from_url!(b, is_http(base_url.as_deref()))
        }
        ObjectService::Azure => {
            use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
            let b = MicrosoftAzureBuilder::from_env();
            // With `AZURE_STORAGE_USE_EMULATOR` the builder allows HTTP itself (Azurite at
            // `AZURITE_BLOB_STORAGE_URL`, default `http://127.0.0.1:10000`).
            let endpoint = b.get_config_value(&AzureConfigKey::Endpoint);
            from_url!(b, is_http(endpoint.as_deref()))
        }
        ObjectService::Http => {
            let mut root = url.clone();
            root.set_path("/");
            root.set_query(None);
            let s = object_store::http::HttpBuilder::new()
                .with_url(root.as_str())
                .with_retry(retry)
                .with_client_options(client(url.scheme() == "http"))
                .build()
                .map_err(config_err)?;
            Arc::new(s)
        }
    };
    let raw = url.path().trim_matches('/');
    let prefix = object_store::path::Path::from_url_path(raw).map_err(|e| Error::InvalidUrl {
        url: location.to_string(),
        reason: e.to_string(),
    })?;
    Ok((store, prefix))
}

/// Whether an endpoint is plain `http://` (a local server or emulator).
fn is_http(endpoint: Option<&str>) -> bool {
    endpoint.is_some_and(|e| {
        e.get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
    })
}

/// A non-empty environment variable.
fn env_value(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

/// The GCS builder from the environment, and the base URL it will send requests to when that is
/// not Google's.
///
/// Besides `object_store`'s own variables (`GOOGLE_SERVICE_ACCOUNT`, `GOOGLE_SERVICE_ACCOUNT_KEY`,
/// `GOOGLE_APPLICATION_CREDENTIALS`, `GOOGLE_BASE_URL`; a service-account document may carry
/// `gcs_base_url` and `disable_oauth` for an emulator), `STORAGE_EMULATOR_HOST`, which Google's
/// client libraries and `gcsfs` read, points at an emulator and sends no token.
fn gcs_builder() -> (object_store::gcp::GoogleCloudStorageBuilder, Option<String>) {
    use object_store::gcp::{GcpCredential, GoogleCloudStorageBuilder, GoogleConfigKey};
    let mut b = GoogleCloudStorageBuilder::from_env();
    if let Some(host) = env_value("STORAGE_EMULATOR_HOST") {
        let base = if host.contains("://") {
            host
        } else {
            format!("http://{host}")
        };
        b = b
            .with_base_url(base.trim_end_matches('/'))
            .with_credentials(Arc::new(object_store::StaticCredentialProvider::new(
                GcpCredential {
                    bearer: String::new(),
                },
            )));
    }
    let from_account = || {
        let text = match b.get_config_value(&GoogleConfigKey::ServiceAccountKey) {
            Some(key) => key,
            None => std::fs::read_to_string(b.get_config_value(&GoogleConfigKey::ServiceAccount)?)
                .ok()?,
        };
        let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
        Some(doc.get("gcs_base_url")?.as_str()?.to_string())
    };
    let base = b
        .get_config_value(&GoogleConfigKey::BaseUrl)
        .or_else(from_account);
    (b, base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_urls() {
        assert_eq!(
            Location::parse("data/x.zarr").unwrap(),
            Location::Local("data/x.zarr".into())
        );
        assert_eq!(
            Location::parse("file:///tmp/x.zarr").unwrap(),
            Location::Local("/tmp/x.zarr".into())
        );
        assert_eq!(
            Location::parse("memory://cube").unwrap(),
            Location::Memory("cube".into())
        );
        for (text, service) in [
            ("s3://bucket/a/b.zarr", ObjectService::S3),
            ("gs://bucket/a.zarr", ObjectService::Gcs),
            ("gcs://bucket/a.zarr", ObjectService::Gcs),
            ("az://container/a.zarr", ObjectService::Azure),
            ("https://example.org/data/a.zarr", ObjectService::Http),
        ] {
            match Location::parse(text).unwrap() {
                Location::Object(o) => assert_eq!(o.service, service, "{text}"),
                other => panic!("{text} parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn rejects_bad_locations() {
        for bad in ["", "   ", "ftp://host/x", "s3://", "memory://"] {
            let err = Location::parse(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidUrl { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn refuses_dot_segments_in_object_keys() {
        for bad in [
            "s3://bucket/a/../b",
            "s3://bucket/..",
            "s3://bucket/a/./b",
            "gs://bucket/a/%2e%2e/b",
            "s3://bucket/a/..%2Fb",
        ] {
            let err = Location::parse(bad).unwrap_err().to_string();
            assert!(err.contains("segment"), "{bad}: {err}");
        }
        // Local paths may climb: that is how relative paths work.
        assert!(matches!(
            Location::parse("../x.zarr").unwrap(),
            Location::Local(_)
        ));
        assert!(Location::parse("s3://bucket/a..b/c").is_ok());
    }

    #[test]
    fn memory_stores_are_shared_by_name() {
        let a = Store::open_str("memory://shared-test").unwrap();
        let b = Store::open_str("memory://shared-test").unwrap();
        let key = zarrs_storage::StoreKey::new("k").unwrap();
        a.storage().set(&key, vec![1u8, 2].into()).unwrap();
        assert_eq!(b.storage().get(&key).unwrap().unwrap().as_ref(), &[1, 2]);
    }

    #[test]
    fn http_store_opens_without_network() {
        // Opening configures a client; nothing is fetched until a key is read.
        let s = Store::open_str("https://example.org/data/cube.zarr").unwrap();
        assert_eq!(
            s.location().join(".zattrs"),
            "https://example.org/data/cube.zarr/.zattrs"
        );
    }

    #[test]
    fn local_objects_of_every_size_and_alignment_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Location::Local(dir.path().to_path_buf())).unwrap();
        // Below, at and above the direct-write threshold; whole blocks and a partial last
        // block; larger than one scratch buffer; memory aligned to a block and not.
        let sizes = [0usize, 100, 4096, 65536, 65537, 200_001, (9 << 20) + 123];
        let backing: Vec<u8> = (0..(10usize << 20)).map(|i| (i * 7 % 251) as u8).collect();
        let backing = zarrs_storage::Bytes::from(backing);
        let aligned = backing.as_ptr().align_offset(4096);
        for (i, n) in sizes.into_iter().enumerate() {
            for (j, start) in [aligned, aligned + 1].into_iter().enumerate() {
                let value = backing.slice(start..start + n);
                let key = zarrs_storage::StoreKey::new(format!("a/{i}.{j}")).unwrap();
                store.storage().set(&key, value.clone()).unwrap();
                let path = dir.path().join(key.as_str());
                assert_eq!(std::fs::read(&path).unwrap(), value.as_ref(), "{n} bytes");
                // Written again over the first: replaced, not appended to.
                store.storage().set(&key, value.slice(..n / 2)).unwrap();
                assert_eq!(std::fs::read(&path).unwrap(), value[..n / 2], "{n} bytes");
            }
        }
        // A write that fails (here the rename, onto a directory) leaves nothing behind.
        std::fs::create_dir_all(dir.path().join("a/taken/x")).unwrap();
        let key = zarrs_storage::StoreKey::new("a/taken").unwrap();
        assert!(store.storage().set(&key, backing.slice(..70_000)).is_err());
        // No temporary file is left beside the objects.
        let left: Vec<_> = std::fs::read_dir(dir.path().join("a"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
