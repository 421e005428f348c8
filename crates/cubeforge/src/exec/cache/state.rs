//! The cache's bookkeeping under its lock: the units held and being decoded, the schedule of
//! the pass under way (which tasks read which units), which units the pass is done with, the
//! idle buffers of the pool, and which unit to decode ahead.

use std::collections::HashMap;
use std::sync::Arc;

use super::pool::{pick_buffer, PoolBuf};
use super::{Cached, ChunkKey, ChunkSlot, Needed, Slot, AHEAD_TASKS};
use crate::source::ChunkSource;

/// What the cache holds and knows of the pass under way, under its lock.
#[derive(Default)]
pub(super) struct CacheState {
    /// Slot, last use (tick), expected decoded size.
    pub(super) map: HashMap<ChunkKey, (ChunkSlot, u64, usize)>,
    pub(super) bytes: usize,
    pub(super) tick: u64,
    /// For the pass under way: the (sorted) positions of the tasks that read each chunk.
    pub(super) uses: HashMap<ChunkKey, Vec<usize>>,
    /// For the pass under way: the chunks some task reads the values of (the others are only
    /// asked which values are NaN).
    pub(super) full: std::collections::HashSet<ChunkKey>,
    /// The position of the latest task started.
    pub(super) position: usize,
    /// The tasks started and not yet finished (a task that never reports its end stays here,
    /// which only keeps its chunks longer).
    pub(super) running: std::collections::BTreeSet<usize>,
    /// The first task not started yet, and the tasks after it that have started: workers take
    /// tasks in order but may report their start out of order.
    pub(super) unstarted: usize,
    pub(super) started_ahead: std::collections::BTreeSet<usize>,
    /// For the pass under way: the chunks each task reads.
    pub(super) needs: Vec<Vec<Needed>>,
    /// Tasks below this position have had their files announced to the kernel.
    pub(super) prefetched: usize,
    /// The files announced in the pass under way: each once, however many tasks read it (a
    /// repeated `posix_fadvise` walks the file's cached pages again).
    pub(super) announced: std::collections::HashSet<std::path::PathBuf>,
    /// Files announced so far, over all passes.
    pub(super) announcements: usize,
    /// Buffers of evicted chunks, oldest first, for the next chunks (see [`pick_buffer`]).
    pub(super) idle: Vec<PoolBuf>,
    /// Idle buffers set aside for chunks about to be decoded into them.
    pub(super) reserved: HashMap<ChunkKey, PoolBuf>,
    /// The expected size of the largest chunk asked for so far: the pool's slack.
    pub(super) largest: usize,
}

/// The bytes an entry holds, or will hold once decoded.
pub(super) fn entry_size((slot, _, expected): &(ChunkSlot, u64, usize)) -> usize {
    match slot.value.get() {
        Some(Ok(v)) => v.held(),
        Some(Err(_)) => 0,
        None => *expected,
    }
}

impl CacheState {
    /// The position of the next task that reads `key`, if any (`usize::MAX` when none).
    pub(super) fn next_use(&self, key: &ChunkKey) -> usize {
        self.uses.get(key).map_or(usize::MAX, |u| {
            let i = u.partition_point(|p| *p < self.position);
            u.get(i).copied().unwrap_or(usize::MAX)
        })
    }

    /// Whether the scheduled pass reads `key` and has finished every task that does. A chunk it
    /// does not list (left by an earlier pass for a later one, or read by a reduction computed
    /// within a task) is not: it leaves only when room is needed.
    pub(super) fn done_with(&self, key: &ChunkKey) -> bool {
        if self.needs.is_empty() {
            return false;
        }
        // Below the lowest task running or not started, all have finished.
        let low = self
            .running
            .first()
            .map_or(self.unstarted, |r| (*r).min(self.unstarted));
        self.uses
            .get(key)
            .and_then(|u| u.last())
            .is_some_and(|last| *last < low)
    }

    /// Take out of the pool the oldest idle buffers until they, the buffers reserved for chunks
    /// about to be decoded and the decoded chunks fit in `limit` plus the largest chunk asked
    /// for so far. A chunk being decoded into a newly mapped buffer (no idle one could hold it)
    /// is not counted: there are at most as many as workers.
    ///
    /// The one chunk of slack lets chunks of different sizes take turns (a 500-day chunk of one
    /// variable among 100-day chunks of others) in memory already faulted in: without it, the
    /// small buffers freed for a large chunk would be released just before the next small
    /// chunks need them, and the large one just before the next large chunk.
    pub(super) fn trim_idle(&mut self, limit: usize) -> Vec<PoolBuf> {
        let limit = limit.saturating_add(self.largest);
        let decoded: usize = self
            .map
            .values()
            .filter(|e| e.0.value.get().is_some())
            .map(entry_size)
            .sum();
        let reserved: usize = self.reserved.values().map(PoolBuf::capacity).sum();
        let mut idle: usize = self.idle.iter().map(PoolBuf::capacity).sum();
        let mut released = Vec::new();
        while !self.idle.is_empty() && decoded + reserved + idle > limit {
            // The oldest of the size most idle buffers have: one buffer of each size stays as
            // long as possible, for the next chunk of that size.
            let count = |len: usize| self.idle.iter().filter(|b| b.capacity() == len).count();
            let most = self
                .idle
                .iter()
                .map(|b| count(b.capacity()))
                .max()
                .unwrap_or(0);
            let i = self
                .idle
                .iter()
                .position(|b| count(b.capacity()) == most)
                .unwrap_or(0);
            let buf = self.idle.remove(i);
            idle -= buf.capacity();
            released.push(buf);
        }
        released
    }

    /// Set aside an idle buffer for unit `key` of `source`, just inserted, when the unit will be
    /// decoded into one: trimming the pool then cannot release it before the decode takes it.
    pub(super) fn reserve(&mut self, key: &ChunkKey, source: &dyn ChunkSource) {
        let Some(len) = source.direct().map(|d| d.unit_len()) else {
            return;
        };
        if self.reserved.contains_key(key) {
            return;
        }
        if let Some(i) = pick_buffer(&self.idle, len) {
            let buf = self.idle.remove(i);
            self.reserved.insert(key.clone(), buf);
        }
    }

    /// Insert an empty slot for `key` (a unit of `source`), counting its expected size.
    pub(super) fn insert(&mut self, key: &ChunkKey, source: &dyn ChunkSource) -> ChunkSlot {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.map.entry(key.clone()).or_insert_with(|| {
            let expected = expected_size(source, &key.1);
            (Arc::new(Slot::default()), tick, expected)
        });
        // The pool's slack is the largest chunk the cache has been asked for, known before
        // room is made for it.
        self.largest = self.largest.max(entry.2);
        entry.1 = tick;
        entry.0.clone()
    }

    /// Whether the chunk of `n` will be read by byte planes rather than decoded: a task asks
    /// only which of its values are NaN, no task of the pass reads its values, and it is not
    /// cached already.
    pub(super) fn by_planes(&self, n: &Needed) -> bool {
        n.nan_only_direct() && self.planes_serve(&n.key)
    }

    /// Whether no task of the pass reads the values of chunk `key` and it is not cached.
    pub(super) fn planes_serve(&self, key: &ChunkKey) -> bool {
        !self.full.contains(key) && !self.map.contains_key(key)
    }

    /// A chunk of the scheduled tasks just ahead that is neither cached nor being decoded, and
    /// that fits in `limit` without evicting a chunk needed before it.
    pub(super) fn next_to_decode_ahead(
        &mut self,
        limit: usize,
    ) -> Option<(ChunkKey, Arc<dyn ChunkSource>)> {
        let from = self.position;
        let to = (from + AHEAD_TASKS).min(self.needs.len());
        let (key, source) = self
            .needs
            .get(from..to)?
            .iter()
            .flatten()
            .find(|n| n.source.is_some() && !self.map.contains_key(&n.key) && !self.by_planes(n))
            .and_then(|n| Some((n.key.clone(), n.source.clone()?)))?;
        self.bytes = self.map.values().map(entry_size).sum();
        let wanted = (self.bytes + expected_size(&*source, &key.1)).saturating_sub(limit);
        if wanted > 0 {
            let soon = self.next_use(&key);
            let freeable: usize = self
                .map
                .iter()
                .filter(|(k, e)| e.0.value.get().is_some() && self.next_use(k) > soon)
                .map(|(_, e)| entry_size(e))
                .sum();
            if freeable < wanted {
                return None;
            }
        }
        Some((key, source))
    }
}

/// The pooled buffer of an evicted entry, when nothing else holds the chunk any more.
pub(super) fn pooled_buffer(slot: ChunkSlot) -> Option<PoolBuf> {
    let value = Arc::try_unwrap(slot).ok()?.value.into_inner()?.ok()?;
    match Arc::try_unwrap(value).ok()? {
        Cached::Pooled(buf) => Some(buf),
        _ => None,
    }
}

/// The decoded size of unit `idx` of `source`, in bytes.
pub(super) fn expected_size(source: &dyn ChunkSource, idx: &[u64]) -> usize {
    source.unit_bytes(idx)
}
