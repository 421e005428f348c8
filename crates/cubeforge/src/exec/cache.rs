//! The chunk cache: decoded units of the sources, shared by every task of a build, bounded by
//! the memory limit, so that each input unit is decoded about once while the tasks that need it
//! run. A pass tells it in advance which units each task reads ([`ChunkCache::set_schedule`]):
//! it then evicts the unit needed again last, announces local files to the kernel ahead of the
//! tasks, lets idle workers decode what the next tasks need, and gives the buffers of units a
//! pass is done with back to its pool at once. Units are keyed by their source's id and their
//! grid index; the cache knows sources only through [`ChunkSource`].

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::region::{copy_region_in, fill_region_in, Region};
use crate::source::ChunkSource;

mod planes;
mod pool;
mod state;

pub(crate) use planes::Row;
use pool::PoolBuf;
use state::{entry_size, expected_size, pooled_buffer, CacheState};

/// Ask the kernel to start reading a file into the page cache (a hint: failures are ignored,
/// a missing file is a chunk that is not stored).
fn advise_will_need(path: &std::path::Path) {
    #[cfg(target_os = "linux")]
    if let Ok(f) = std::fs::File::open(path) {
        let _ = nix::fcntl::posix_fadvise(
            &f,
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_WILLNEED,
        );
    }
    #[cfg(not(target_os = "linux"))]
    let _ = path;
}

/// A bounded cache of decoded units, shared by every task of a build (the executor owns it), so
/// that each input unit is decoded once while the output chunks that need it are computed.
pub struct ChunkCache {
    limit: usize,
    state: Mutex<CacheState>,
    decoded: AtomicU64,
    mapped: AtomicU64,
    /// The stored bytes of the chunks read by byte planes last, the latest last: neighbouring
    /// tasks read other blocks of the same frames.
    frames: Mutex<Vec<(ChunkKey, bytes::Bytes)>>,
}

/// Stored chunks kept for reading by byte planes (mapped files, not decoded data).
const FRAMES_KEPT: usize = 4;

/// A unit of a source: the source's id and the unit's grid index.
pub type ChunkKey = (String, Vec<u64>);

/// A unit a task reads.
#[derive(Debug, Clone)]
pub struct Needed {
    /// The unit, as the cache names it.
    pub key: ChunkKey,
    /// Its file, when the store is local (for read-ahead).
    pub path: Option<std::path::PathBuf>,
    /// The source it belongs to, so that a worker with nothing else to do can decode it ahead.
    pub source: Option<Arc<dyn ChunkSource>>,
    /// Whether the task reads the values; `false` when it only asks which are NaN, which a
    /// chunk no task of the pass reads the values of answers from its byte planes, undecoded
    /// (see `PlaneSource`, `exec/cache/planes.rs`).
    pub values: bool,
}

impl Needed {
    /// Whether only NaN-ness is asked of a unit whose frames may be read by byte planes
    /// (little-endian floats, as [`planes::PlaneSource`] reads them, on a little-endian machine:
    /// the units decoded straight into buffers hold the machine's byte order).
    fn nan_only_direct(&self) -> bool {
        cfg!(target_endian = "little")
            && !self.values
            && self.source.as_ref().is_some_and(|s| {
                s.direct().is_some_and(|d| d.planes().is_some())
                    && matches!(s.dtype(), DType::Float32 | DType::Float64)
            })
    }
}

/// How many tasks ahead of the latest one started the cache asks the kernel to read the files of
/// the chunks they need.
const PREFETCH_TASKS: usize = 48;

/// A decoded chunk in the cache.
#[derive(Debug)]
enum Cached {
    /// The unit's bytes, as its source decoded them.
    Bytes(Vec<u8>),
    /// The chunk's bytes in a buffer of the cache's pool (see [`ChunkCache`]).
    Pooled(PoolBuf),
    /// A chunk that is not stored: the fill value (one element's bytes) everywhere.
    Fill(Vec<u8>),
}

impl Cached {
    /// The bytes held: the chunk's, or the fill value's one element.
    fn bytes(&self) -> &[u8] {
        match self {
            Cached::Bytes(b) | Cached::Fill(b) => b,
            Cached::Pooled(b) => b.bytes(),
        }
    }

    /// The memory held: the bytes, or the whole pooled buffer they lie in.
    fn held(&self) -> usize {
        match self {
            Cached::Pooled(b) => b.capacity(),
            other => other.bytes().len(),
        }
    }
}

/// A decoded chunk, or why it could not be decoded, computed once however many ask at once:
/// the first worker to claim the slot decodes; the others wait for it, or decode a chunk needed
/// soon meanwhile.
#[derive(Default)]
struct Slot {
    claimed: std::sync::atomic::AtomicBool,
    value: OnceLock<std::result::Result<Arc<Cached>, Arc<Error>>>,
}

type ChunkSlot = Arc<Slot>;

impl Slot {
    /// Claim the decoding of this chunk: `true` for the one caller that gets it.
    fn claim(&self) -> bool {
        !self.claimed.swap(true, std::sync::atomic::Ordering::AcqRel)
    }
}

/// How many tasks ahead of the latest one started a worker may look for a chunk to decode while
/// the chunk it needs is being decoded by another.
const AHEAD_TASKS: usize = 64;

impl std::fmt::Debug for ChunkCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkCache")
            .field("limit", &self.limit)
            .finish()
    }
}

impl ChunkCache {
    /// A cache holding at most `limit` bytes of decoded chunks.
    #[must_use]
    pub fn new(limit: usize) -> ChunkCache {
        ChunkCache {
            limit,
            state: Mutex::default(),
            decoded: AtomicU64::new(0),
            mapped: AtomicU64::new(0),
            frames: Mutex::default(),
        }
    }

    /// The most bytes of decoded chunks it holds.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Announce the pass to come: task `i` of it reads the chunks `needs[i]`. Eviction then
    /// drops the cached chunk whose next use is farthest away (or that no task will read again),
    /// instead of the least recently used one. Clears any earlier schedule.
    ///
    /// Local chunk files of the next tasks are announced to the kernel (`posix_fadvise`
    /// `WILLNEED`) as the pass goes, so that reading them from disk overlaps computing; and a
    /// worker whose chunk is being decoded by another decodes one the next tasks need instead of
    /// waiting idle.
    ///
    /// Returns `false`, changing nothing, when a schedule is already set (a pass nested in
    /// another keeps the outer one's).
    pub fn set_schedule(&self, needs: Vec<Vec<Needed>>) -> bool {
        let mut uses: HashMap<ChunkKey, Vec<usize>> = HashMap::new();
        let mut full = std::collections::HashSet::new();
        for (i, keys) in needs.iter().enumerate() {
            for n in keys {
                if n.values {
                    full.insert(n.key.clone());
                }
                let list = uses.entry(n.key.clone()).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        let Ok(mut st) = self.state.lock() else {
            return false;
        };
        if !st.needs.is_empty() {
            return false;
        }
        let largest = Self::largest_task_bytes(&needs);
        if largest > self.limit {
            tracing::warn!(
                "the memory limit ({} MiB) is below the {} MiB of decoded input chunks one task \
                 reads: chunks will be decoded again and again; raise --memory-limit",
                self.limit >> 20,
                largest.div_ceil(1 << 20)
            );
        }
        st.uses = uses;
        st.full = full;
        st.needs = needs;
        st.position = 0;
        st.prefetched = 0;
        st.announced.clear();
        st.running.clear();
        st.unstarted = 0;
        st.started_ahead.clear();
        true
    }

    /// The most bytes of decoded units any one task of `needs` reads (units whose source is
    /// known): the least cache in which no task evicts its own units.
    #[must_use]
    pub fn largest_task_bytes(needs: &[Vec<Needed>]) -> usize {
        needs
            .iter()
            .map(|task| {
                let mut seen: Vec<&ChunkKey> = Vec::new();
                task.iter()
                    .filter_map(|n| {
                        if n.nan_only_direct() {
                            return None;
                        }
                        let source = n.source.as_ref()?;
                        if seen.contains(&&n.key) {
                            return None;
                        }
                        seen.push(&n.key);
                        Some(expected_size(&**source, &n.key.1))
                    })
                    .sum::<usize>()
            })
            .max()
            .unwrap_or(0)
    }

    /// Task `i` of the scheduled pass has started.
    pub fn started(&self, i: usize) {
        let files: Vec<std::path::PathBuf> = {
            let Ok(mut st) = self.state.lock() else {
                return;
            };
            st.position = st.position.max(i);
            st.running.insert(i);
            if i == st.unstarted {
                st.unstarted += 1;
                while st.started_ahead.first() == Some(&st.unstarted) {
                    st.started_ahead.pop_first();
                    st.unstarted += 1;
                }
            } else if i > st.unstarted {
                st.started_ahead.insert(i);
            }
            let from = st.prefetched.max(i);
            let to = (i + PREFETCH_TASKS).min(st.needs.len());
            if from >= to {
                return;
            }
            st.prefetched = to;
            let mut files: Vec<std::path::PathBuf> = st.needs[from..to]
                .iter()
                .flatten()
                .filter(|n| !st.map.contains_key(&n.key))
                .filter_map(|n| n.path.clone())
                .collect();
            // Neighbouring tasks read the same chunks: announce each file once.
            files.sort_unstable();
            files.dedup();
            files.retain(|f| !st.announced.contains(f));
            st.announced.extend(files.iter().cloned());
            st.announcements += files.len();
            files
        };
        for f in files {
            advise_will_need(&f);
        }
    }

    /// Task `i` of the scheduled pass has finished: the chunks that only it and earlier tasks
    /// read are no longer needed in this pass (eviction gives their buffers back at once).
    pub fn finished(&self, i: usize) {
        if let Ok(mut st) = self.state.lock() {
            st.running.remove(&i);
        }
    }

    /// Forget the schedule (eviction is least recently used again).
    pub fn clear_schedule(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.uses.clear();
            st.full.clear();
            st.needs.clear();
            st.running.clear();
            st.unstarted = 0;
            st.started_ahead.clear();
            st.position = 0;
            st.prefetched = 0;
            st.announced.clear();
        }
        if let Ok(mut frames) = self.frames.lock() {
            frames.clear();
        }
    }

    /// How many chunks have been decoded (a chunk decoded twice, after eviction, counts twice).
    #[must_use]
    pub fn decoded(&self) -> u64 {
        self.decoded.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many buffers for decoded chunks have been newly mapped rather than taken from the
    /// pool.
    #[must_use]
    pub fn buffers_mapped(&self) -> u64 {
        self.mapped.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn poisoned() -> Error {
        Error::Other("chunk cache poisoned".into())
    }

    /// Unit `idx` of `source`, decoded: from the cache, else decoded now (or by the worker
    /// already decoding it), room made for it first.
    fn chunk(&self, source: &dyn ChunkSource, idx: &[u64]) -> Result<Arc<Cached>> {
        let key = (source.id().to_string(), idx.to_vec());
        let slot = {
            let mut st = self.state.lock().map_err(|_| Self::poisoned())?;
            let fresh = !st.map.contains_key(&key);
            let slot = st.insert(&key, source);
            let released = if fresh {
                // Room for the decoded chunk is made before decoding it, so that the cache and
                // the chunks being decoded stay within the limit together.
                let released = self.evict(&mut st, &key);
                st.reserve(&key, source);
                released
            } else {
                Vec::new()
            };
            drop(st);
            drop(released);
            slot
        };
        let value = loop {
            if let Some(v) = slot.value.get() {
                break v.clone();
            }
            if slot.claim() {
                break self.decode(&slot, source, &key).clone();
            }
            // Another worker is decoding this chunk: decode one needed soon meanwhile, or wait
            // (`get_or_init` blocks while another thread initialises the slot).
            if !self.decode_ahead()? {
                break self.decode(&slot, source, &key).clone();
            }
        }
        .map_err(Error::from_shared)?;
        let mut st = self.state.lock().map_err(|_| Self::poisoned())?;
        let released = self.evict(&mut st, &key);
        drop(st);
        drop(released);
        Ok(value)
    }

    /// Decode unit `key` of `source` into `slot`, which the caller has claimed. A failure is
    /// kept as it is, for every task that reads the unit.
    fn decode<'a>(
        &self,
        slot: &'a Slot,
        source: &dyn ChunkSource,
        key: &ChunkKey,
    ) -> &'a std::result::Result<Arc<Cached>, Arc<Error>> {
        slot.value.get_or_init(|| {
            self.decode_unit(source, key)
                .map(Arc::new)
                .map_err(Arc::new)
        })
    }

    /// Decode unit `key` of `source`: into a buffer of the pool where the source can decode
    /// into one ([`ChunkSource::direct`]), else as the source returns it.
    fn decode_unit(&self, source: &dyn ChunkSource, key: &ChunkKey) -> Result<Cached> {
        self.decoded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if std::env::var_os("CUBEFORGE_TRACE_CHUNKS").is_some() {
            eprintln!("decode {} {:?}", key.0, key.1);
        }
        if let Some(direct) = source.direct() {
            let stored = match direct.read_stored(&key.1) {
                Ok(Some(stored)) => stored,
                Ok(None) => {
                    self.release_reservation(key);
                    return Ok(Cached::Fill(source.fill_element()));
                }
                Err(e) => {
                    self.release_reservation(key);
                    return Err(e);
                }
            };
            let mut buf = self.take_buffer(key, direct.unit_len())?;
            return match direct.decode_unit_into(&key.1, &stored, buf.bytes_mut()) {
                Ok(()) => Ok(Cached::Pooled(buf)),
                Err(e) => {
                    self.give_back(buf);
                    Err(e)
                }
            };
        }
        Ok(match source.read_unit(&key.1)? {
            Some(bytes) => Cached::Bytes(bytes),
            None => Cached::Fill(source.fill_element()),
        })
    }

    /// A buffer of `len` bytes for chunk `key`, about to be decoded: the one reserved for it,
    /// else an idle one from the pool (see [`pool::pick_buffer`]; grown when smaller), else a new
    /// anonymous mapping. Idle buffers beyond what the limit leaves room for are released.
    fn take_buffer(&self, key: &ChunkKey, len: usize) -> Result<PoolBuf> {
        let (found, released) = {
            let mut st = self.state.lock().map_err(|_| Self::poisoned())?;
            let found = match st.reserved.remove(key) {
                Some(buf) if buf.serves(len) || buf.capacity() < len => Some(buf),
                other => {
                    if let Some(buf) = other {
                        st.idle.push(buf);
                    }
                    pool::pick_buffer(&st.idle, len).map(|i| st.idle.remove(i))
                }
            };
            let released = st.trim_idle(self.limit);
            (found, released)
        };
        drop(released);
        let trace = std::env::var_os("CUBEFORGE_TRACE_CHUNKS").is_some();
        if let Some(mut buf) = found {
            let from = buf.capacity();
            match buf.resize(len) {
                Ok(()) => {
                    if trace && from < len {
                        eprintln!("grow {from} to {len} for {} {:?}", key.0, key.1);
                    }
                    return Ok(buf);
                }
                // The pool keeps the buffer; the chunk gets a new one.
                Err(_) => self.give_back(buf),
            }
        }
        self.mapped
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if trace {
            eprintln!("map {len} for {} {:?}", key.0, key.1);
        }
        PoolBuf::map(len).map_err(|e| {
            Error::Other(format!(
                "cannot allocate {len} bytes for a decoded chunk: {e}"
            ))
        })
    }

    /// Return the buffer reserved for chunk `key` to the pool (the chunk is not stored, or
    /// could not be read).
    fn release_reservation(&self, key: &ChunkKey) {
        if let Ok(mut st) = self.state.lock() {
            if let Some(buf) = st.reserved.remove(key) {
                st.idle.push(buf);
            }
        }
    }

    /// Return an unused buffer to the pool.
    fn give_back(&self, buf: PoolBuf) {
        if let Ok(mut st) = self.state.lock() {
            st.idle.push(buf);
        }
    }

    /// Decode a chunk that the next scheduled tasks read and that is neither cached nor being
    /// decoded, if there is one and room for it. Returns whether one was decoded.
    fn decode_ahead(&self) -> Result<bool> {
        let (slot, source, key) = {
            let mut st = self.state.lock().map_err(|_| Self::poisoned())?;
            let Some((key, source)) = st.next_to_decode_ahead(self.limit) else {
                return Ok(false);
            };
            let slot = st.insert(&key, &*source);
            let released = self.evict(&mut st, &key);
            st.reserve(&key, &*source);
            drop(st);
            drop(released);
            (slot, source, key)
        };
        if slot.claim() {
            // A failure is kept in the slot and reported to the task that reads the chunk.
            let _ = self.decode(&slot, &*source, &key);
        }
        Ok(true)
    }

    /// Evict decoded chunks other than `keep` until the cache (decoded chunks, plus the expected
    /// size of those being decoded) is within the limit: first the chunk needed again last (or
    /// never) by the scheduled pass, then the least recently used.
    ///
    /// The buffers of evicted chunks go to the pool; returned are those the pool cannot keep
    /// within the limit, to be released once the lock is let go.
    #[must_use]
    fn evict(&self, st: &mut CacheState, keep: &ChunkKey) -> Vec<PoolBuf> {
        // Chunks the pass is done with, and that nobody is reading, go back to the pool at once:
        // the next chunks are decoded into memory already faulted in, and the pool stays as
        // small as the pass allows rather than growing to the limit.
        {
            let done: Vec<ChunkKey> = st
                .map
                .iter()
                .filter(|(k, (slot, _, _))| {
                    *k != keep
                        && Arc::strong_count(slot) == 1
                        && matches!(slot.value.get(), Some(Ok(v)) if Arc::strong_count(v) == 1)
                        && st.done_with(k)
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in done {
                if let Some(entry) = st.map.remove(&k) {
                    if let Some(buf) = pooled_buffer(entry.0) {
                        st.idle.push(buf);
                    }
                }
            }
        }
        st.bytes = st.map.values().map(entry_size).sum();
        while st.bytes > self.limit && st.map.len() > 1 {
            let victim = st
                .map
                .iter()
                .filter(|(k, (c, _, _))| *k != keep && c.value.get().is_some())
                .max_by_key(|(k, (_, t, _))| (st.next_use(k), std::cmp::Reverse(*t)))
                .map(|(k, _)| k.clone());
            let Some(victim) = victim else {
                break;
            };
            if let Some(entry) = st.map.remove(&victim) {
                st.bytes -= entry_size(&entry);
                if let Some(buf) = pooled_buffer(entry.0) {
                    st.idle.push(buf);
                }
            }
        }
        st.trim_idle(self.limit)
    }

    /// Call `f(unit_region, unit)` for every unit of `source` that the region
    /// `start .. start + shape` overlaps, in grid order, each read through the cache.
    fn for_each_chunk(
        &self,
        source: &dyn ChunkSource,
        start: &[u64],
        shape: &[u64],
        mut f: impl FnMut(&Region, &Cached),
    ) -> Result<()> {
        if shape.iter().product::<u64>() == 0 {
            return Ok(());
        }
        for (idx, region) in source.units_in(start, shape)? {
            f(&region, &*self.chunk(source, &idx)?);
        }
        Ok(())
    }

    /// Read a region of a source through the cache.
    ///
    /// # Errors
    /// Read and decode errors naming the chunk.
    pub fn read_region(
        &self,
        source: &dyn ChunkSource,
        start: &[u64],
        shape: &[u64],
    ) -> Result<crate::dtype::RawArray> {
        let esize = source.dtype().size();
        let total: u64 = shape.iter().product();
        let mut out = vec![0u8; usize::try_from(total).unwrap_or(0) * esize];
        self.read_region_into(source, start, shape, &mut out, shape)?;
        Ok(crate::dtype::RawArray {
            dtype: source.dtype(),
            shape: shape.to_vec(),
            bytes: out,
        })
    }

    /// Read a region of a source through the cache into `out` (C order, native endian), a
    /// buffer of shape `layout` (each dimension at least the region's) that holds the region at
    /// the start of each dimension; the rest of `out` is left as it is.
    ///
    /// # Errors
    /// Read and decode errors naming the chunk.
    pub fn read_region_into(
        &self,
        source: &dyn ChunkSource,
        start: &[u64],
        shape: &[u64],
        out: &mut [u8],
        layout: &[u64],
    ) -> Result<()> {
        let esize = source.dtype().size();
        self.for_each_chunk(source, start, shape, |cs, cached| match cached {
            Cached::Fill(elem) => {
                fill_region_in(elem, cs.shape(), cs.start(), out, shape, start, layout);
            }
            stored => copy_region_in(
                stored.bytes(),
                cs.shape(),
                cs.start(),
                out,
                shape,
                start,
                layout,
                esize,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{blosc_2d, blosc_array, blosc_array_of, memory_array};

    /// Unit `i` of `source` as a task reads it; with its source (for decoding ahead) when
    /// `known`.
    fn need(source: &Arc<dyn ChunkSource>, i: u64, known: bool) -> Needed {
        Needed {
            key: (source.id().to_string(), vec![i]),
            path: None,
            source: known.then(|| source.clone()),
            values: true,
        }
    }

    #[test]
    fn cache_keeps_the_chunk_needed_soonest_and_fills_missing_chunks() {
        let array: Arc<dyn ChunkSource> = Arc::new(memory_array("plan-cache-schedule", 4));
        let key = |i: u64| need(&array, i, false);
        // Room for two chunks; tasks read chunks 0, 1, 2, then 0 again.
        let cache = ChunkCache::new(8);
        let order = [0u64, 1, 2, 0];
        assert!(cache.set_schedule(order.iter().map(|i| vec![key(*i)]).collect()));
        let mut got = Vec::new();
        for (task, i) in order.iter().enumerate() {
            cache.started(task);
            let raw = cache.read_region(&*array, &[*i], &[1]).expect("read");
            got.push(f32::from_le_bytes(
                raw.bytes[..4].try_into().expect("4 bytes"),
            ));
        }
        assert_eq!(got, vec![0.0, 1.0, 2.0, 0.0]);
        // Least recently used eviction would have dropped chunk 0 for chunk 2 and decoded it
        // again; the schedule drops chunk 1, which no later task reads.
        assert_eq!(cache.decoded(), 3);
        cache.clear_schedule();
        // The chunk that is not stored reads as the fill value.
        let raw = cache.read_region(&*array, &[2], &[2]).expect("read");
        let last = f32::from_le_bytes(raw.bytes[4..8].try_into().expect("4 bytes"));
        assert!(last.is_nan());
    }

    #[test]
    fn decoding_ahead_takes_the_next_chunk_only_when_it_fits_before_later_needs() {
        let array: Arc<dyn ChunkSource> = Arc::new(memory_array("plan-cache-ahead", 4));
        let need = |i: u64| need(&array, i, true);
        let read = |cache: &ChunkCache, i: u64| -> f32 {
            let raw = cache.read_region(&*array, &[i], &[1]).expect("read");
            f32::from_le_bytes(raw.bytes[..4].try_into().expect("4 bytes"))
        };
        // Room for two chunks; tasks read chunks 0, 1, 2, then 0 again.
        let cache = ChunkCache::new(8);
        assert!(cache.set_schedule([0u64, 1, 2, 0].iter().map(|i| vec![need(*i)]).collect()));
        cache.started(0);
        // Ahead of task 0: chunks 0 and 1 fit.
        assert!(cache.decode_ahead().expect("ahead"));
        assert!(cache.decode_ahead().expect("ahead"));
        assert_eq!(cache.decoded(), 2);
        // Chunk 2 would have to evict chunk 0 or 1, both needed before it: not decoded.
        assert!(!cache.decode_ahead().expect("ahead"));
        assert_eq!(cache.decoded(), 2);
        // Tasks 0 and 1 find their chunks decoded.
        assert_eq!(read(&cache, 0), 0.0);
        cache.started(1);
        assert_eq!(read(&cache, 1), 1.0);
        assert_eq!(cache.decoded(), 2);
        // At task 2, chunk 1 is never needed again and chunk 0 only after chunk 2: chunk 2 is
        // decoded ahead in place of chunk 1.
        cache.started(2);
        assert!(cache.decode_ahead().expect("ahead"));
        assert_eq!(cache.decoded(), 3);
        assert_eq!(read(&cache, 2), 2.0);
        cache.started(3);
        assert_eq!(read(&cache, 0), 0.0);
        // Nothing left to decode ahead; nothing decoded twice.
        assert!(!cache.decode_ahead().expect("ahead"));
        assert_eq!(cache.decoded(), 3);
    }

    #[test]
    fn each_file_is_announced_once_per_pass() {
        let array: Arc<dyn ChunkSource> = Arc::new(memory_array("plan-cache-announce", 4));
        let need = |i: u64| Needed {
            path: Some(std::path::PathBuf::from(format!("/nonexistent/{i}"))),
            ..need(&array, i, true)
        };
        let announced = |cache: &ChunkCache| -> (Vec<std::path::PathBuf>, usize) {
            let st = cache.state.lock().unwrap();
            let mut v: Vec<_> = st.announced.iter().cloned().collect();
            v.sort();
            (v, st.announcements)
        };
        // A hundred tasks reading chunk 0 or 1, started one by one: two announcements.
        let cache = ChunkCache::new(1 << 20);
        let needs = (0..100u64).map(|t| vec![need(t % 2)]).collect();
        assert!(cache.set_schedule(needs));
        for t in 0..100 {
            cache.started(t);
        }
        let both: Vec<std::path::PathBuf> = [0, 1]
            .iter()
            .map(|i| std::path::PathBuf::from(format!("/nonexistent/{i}")))
            .collect();
        assert_eq!(announced(&cache), (both.clone(), 2));
        // A new pass announces again.
        cache.clear_schedule();
        assert!(cache.set_schedule(vec![vec![need(1)]]));
        assert_eq!(announced(&cache), (vec![], 2));
        cache.started(0);
        assert_eq!(announced(&cache), (both[1..].to_vec(), 3));
    }

    #[test]
    fn large_chunks_are_decoded_and_cached_in_parts() {
        // Chunks of 4 x 3 values (48 bytes) in parts of at most 24 bytes: 2 rows each.
        let array = blosc_2d("plan-parts").with_part_bytes(24);
        assert_eq!(array.unit_rows(), Some(2));
        assert_eq!(array.unit_len(), Some(24));
        assert_eq!(array.unit_chunk(&[3, 1]), (vec![1, 1], 1));
        let whole = blosc_2d("plan-parts-whole");
        assert_eq!(whole.unit_rows(), None);
        for (start, shape) in [
            ([1u64, 1u64], [8u64, 4u64]),
            ([0, 0], [10, 6]),
            ([5, 4], [1, 1]),
        ] {
            let parts = ChunkCache::new(1 << 20);
            let got = parts.read_region(&array, &start, &shape).expect("parts");
            let chunks = ChunkCache::new(1 << 20);
            let want = chunks.read_region(&whole, &start, &shape).expect("chunks");
            assert_eq!(got.bytes, want.bytes, "{start:?} {shape:?}");
            let v: Vec<f32> = bytemuck::pod_collect_to_vec(&got.bytes);
            #[allow(clippy::cast_precision_loss)]
            for (k, x) in v.iter().enumerate() {
                let (r, c) = (
                    start[0] + k as u64 / shape[1],
                    start[1] + k as u64 % shape[1],
                );
                if (4..8).contains(&r) && c >= 3 {
                    assert!(x.is_nan(), "({r}, {c}) is in the chunk not stored");
                } else {
                    assert_eq!(*x, (r * 100 + c) as f32, "({r}, {c})");
                }
            }
            // Only the parts the region overlaps are decoded.
            let rows = (start[0] / 2..=(start[0] + shape[0] - 1) / 2).count() as u64;
            let cols = (start[1] / 3..=(start[1] + shape[1] - 1) / 3).count() as u64;
            assert_eq!(parts.decoded(), rows * cols, "{start:?} {shape:?}");
        }
        // A frame with bytes after it (as z5py writes them) is read in part too.
        let array = blosc_array("plan-parts-trailing", 4).with_part_bytes(1024);
        assert_eq!(array.unit_rows(), Some(256));
        let cache = ChunkCache::new(1 << 20);
        let raw = cache.read_region(&array, &[2000], &[200]).expect("read");
        let v: Vec<f32> = bytemuck::pod_collect_to_vec(&raw.bytes);
        #[allow(clippy::cast_precision_loss)]
        let want: Vec<f32> = (2000..2200).map(|i| i as f32).collect();
        assert_eq!(v, want);
    }

    #[test]
    fn blosc_chunks_are_decoded_into_reused_buffers() {
        const N: u32 = 1024;
        let array = blosc_array("plan-cache-pool", 4);
        assert_eq!(array.direct_chunk_len(), Some(4 * N as usize));

        // Room for two chunks and the missing chunk's fill value (plus the pool's one chunk of
        // slack).
        let cache = ChunkCache::new(8 * N as usize + 64);
        for c in [0u64, 1, 2, 3, 0, 1] {
            let start = c * u64::from(N) + 5;
            let raw = cache.read_region(&array, &[start], &[2]).expect("read");
            let v: Vec<f32> = raw
                .bytes
                .chunks(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect();
            if c == 3 {
                // Not stored: the fill value.
                assert!(v.iter().all(|x| x.is_nan()), "{v:?}");
            } else {
                #[allow(clippy::cast_precision_loss)]
                let want = vec![start as f32, (start + 1) as f32];
                assert_eq!(v, want);
            }
        }
        // Chunks 0, 1, 2, 0, 1 decoded (the missing chunk 3 is the fill value), each after the
        // first two into the buffer of a chunk evicted for it.
        assert_eq!(cache.decoded(), 6);
        assert_eq!(cache.buffers_mapped(), 2);
    }

    #[test]
    fn chunks_of_other_sizes_share_the_pooled_buffers() {
        // Chunks of 4 KiB, 5 KiB and 2 KiB, in a cache with room for one chunk at a time.
        let a = blosc_array_of("plan-pool-4k", 3, 1024);
        let b = blosc_array_of("plan-pool-5k", 3, 1280);
        let c = blosc_array_of("plan-pool-2k", 3, 512);
        let cache = ChunkCache::new(6 << 10);
        let read = |array: &dyn ChunkSource, start: u64| -> f32 {
            let raw = cache.read_region(array, &[start], &[1]).expect("read");
            f32::from_le_bytes(raw.bytes[..4].try_into().expect("4 bytes"))
        };
        let mut mapped = Vec::new();
        for (array, start) in [(&a, 7u64), (&b, 1290), (&a, 1030), (&b, 3), (&c, 600)] {
            #[allow(clippy::cast_precision_loss)]
            let want = start as f32;
            assert_eq!(read(array, start), want);
            mapped.push(cache.buffers_mapped());
        }
        // The 4 KiB buffer grows to 5 KiB for the next chunk of `b`, then holds the 4 KiB
        // chunks and the 5 KiB ones in turn; a 2 KiB chunk gets a buffer of its own rather than
        // holding one more than half as large again.
        assert_eq!(mapped, [1, 1, 1, 1, 2]);
        assert_eq!(cache.decoded(), 5);
        let st = cache.state.lock().expect("lock");
        let mut sizes: Vec<usize> = st.idle.iter().map(PoolBuf::capacity).collect();
        sizes.extend(st.map.values().filter_map(|e| match e.0.value.get() {
            Some(Ok(v)) => Some(v.held()),
            _ => None,
        }));
        sizes.sort_unstable();
        assert_eq!(sizes, [2 << 10, 5 << 10]);
    }

    #[test]
    fn largest_task_bytes_counts_each_chunk_of_a_task_once() {
        let array: Arc<dyn ChunkSource> = Arc::new(memory_array("plan-cache-largest", 4));
        let need = |i: u64| need(&array, i, true);
        // Chunks hold one float32: 4 bytes each.
        let needs = vec![vec![need(0)], vec![need(1), need(2), need(1)], vec![]];
        assert_eq!(ChunkCache::largest_task_bytes(&needs), 8);
        assert_eq!(ChunkCache::largest_task_bytes(&[]), 0);
    }

    #[test]
    fn chunks_a_pass_is_done_with_go_back_to_the_pool_at_once() {
        const N: usize = 1024;
        let array: Arc<dyn ChunkSource> = Arc::new(blosc_array("plan-cache-done", 4));
        let need = |i: u64| need(&array, i, false);
        let read = |cache: &ChunkCache, i: u64| -> f32 {
            let start = i * N as u64 + 1;
            let raw = cache.read_region(&*array, &[start], &[1]).expect("read");
            f32::from_le_bytes(raw.bytes[..4].try_into().expect("4 bytes"))
        };
        // Room for all three stored chunks: nothing is ever evicted for lack of room.
        let cache = ChunkCache::new(4 * 4 * N);
        let order = [0u64, 1, 0, 2];
        assert!(cache.set_schedule(order.iter().map(|i| vec![need(*i)]).collect()));
        for (task, i) in order.iter().enumerate() {
            cache.started(task);
            #[allow(clippy::cast_precision_loss)]
            let want = (*i * N as u64 + 1) as f32;
            assert_eq!(read(&cache, *i), want);
            cache.finished(task);
        }
        // Chunk 0, read again by task 2, stayed cached; chunk 1 needed a second buffer while
        // chunk 0 was kept for task 2; chunk 2 took a buffer of the finished chunks.
        assert_eq!(cache.decoded(), 3);
        assert_eq!(cache.buffers_mapped(), 2);
        cache.clear_schedule();

        // A task taken before another but reporting its start after it still counts: chunk 1,
        // read only by task 1, is not done with while task 1 has not started, nor while it runs.
        let cache = ChunkCache::new(4 * 4 * N);
        assert!(cache.set_schedule(order.iter().map(|i| vec![need(*i)]).collect()));
        let done_with = |cache: &ChunkCache, i: u64| {
            let st = cache.state.lock().expect("lock");
            st.done_with(&(array.id().to_string(), vec![i]))
        };
        cache.started(0);
        cache.finished(0);
        cache.started(2);
        cache.finished(2);
        assert!(!done_with(&cache, 1));
        // (Done counts from the first task not finished: chunk 0 waits for task 1 too.)
        assert!(!done_with(&cache, 0));
        cache.started(1);
        assert!(!done_with(&cache, 1));
        cache.finished(1);
        assert!(done_with(&cache, 1));
        assert!(done_with(&cache, 0), "tasks 0 and 2 read chunk 0");
        // A chunk the pass does not read is left for a later pass (or a nested reduction).
        assert!(!done_with(&cache, 3));
        assert!(!done_with(&cache, 2), "task 3 reads chunk 2");
        cache.clear_schedule();

        // The same reads with no task ever reported finished keep every chunk to the limit.
        let cache = ChunkCache::new(4 * 4 * N);
        assert!(cache.set_schedule(order.iter().map(|i| vec![need(*i)]).collect()));
        for (task, i) in order.iter().enumerate() {
            cache.started(task);
            read(&cache, *i);
        }
        assert_eq!(cache.decoded(), 3);
        assert_eq!(cache.buffers_mapped(), 3);
    }

    #[test]
    fn a_chunk_that_does_not_decode_is_a_corrupt_chunk_for_every_reader() {
        let array = blosc_array("cache-corrupt", 4);
        let key = zarrs_storage::StoreKey::new("a/1").expect("key");
        // A Blosc header that promises more than the frame holds.
        let mut frame = crate::formats::zarr::blosc::tests::frame(&[7u8; 4096]);
        frame.truncate(40);
        crate::testkit::put_key(
            &crate::store::Store::open_str("memory://cache-corrupt").expect("store"),
            key.as_str(),
            frame,
        );
        let cache = ChunkCache::new(1 << 20);
        // Two workers ask at once, then a third later: each gets the decoder's error as a
        // corrupt chunk naming its key, not a string.
        let errors: Vec<Error> = std::thread::scope(|s| {
            let read = || {
                s.spawn(|| {
                    cache
                        .read_region(&array, &[1030], &[4])
                        .expect_err("corrupt")
                })
            };
            let (a, b) = (read(), read());
            vec![a.join().expect("thread"), b.join().expect("thread")]
        });
        let later = cache
            .read_region(&array, &[1024], &[1])
            .expect_err("corrupt");
        for e in errors.iter().chain([&later]) {
            match e {
                Error::CorruptChunk { location, .. } => {
                    assert!(location.ends_with("cache-corrupt/a/1"), "{location}");
                }
                other => panic!("not a corrupt chunk: {other:?}"),
            }
        }
        assert_eq!(cache.decoded(), 1, "decoded once, the failure kept");
    }
}
