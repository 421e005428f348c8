//! Write-behind: objects handed to a few background threads, so that the threads computing
//! output chunks never wait for a disk or an upload.
//!
//! [`WriteBehind`] wraps any store. [`WritableStorageTraits::set`] queues the object and returns
//! at once, unless the queue already holds its byte limit (or `MAX_QUEUED` objects), in which
//! case it waits for room: the memory it holds is bounded whatever the speed of the store. Two
//! writes of one key are done one after the other, in the order they were queued. Reads, listings and erasures see
//! queued objects as written. [`WriteBehind::finish`] waits for every queued write and reports
//! the first that failed; after a failure, further writes are refused at once, so that a build
//! stops early.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use zarrs_storage::byte_range::ByteRangeIterator;
use zarrs_storage::{
    Bytes, ListableStorageTraits, MaybeBytes, MaybeBytesIterator, OffsetBytesIterator,
    ReadableStorageTraits, ReadableWritableListableStorage, StorageError, StoreKey, StoreKeys,
    StoreKeysPrefixes, StorePrefix, WritableStorageTraits,
};

/// The most objects queued at once, whatever their size: a lookup of a key scans the queue.
const MAX_QUEUED: usize = 1024;

/// A store whose whole-object writes are done by background threads.
pub struct WriteBehind {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for WriteBehind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBehind").finish_non_exhaustive()
    }
}

struct Shared {
    inner: ReadableWritableListableStorage,
    limit_bytes: usize,
    state: Mutex<State>,
    /// Signalled when an object is queued or the queue is closed: the writer threads wait on it.
    work: Condvar,
    /// Signalled when a write has finished or a queued object was dropped: callers waiting for
    /// room or for a key to settle wait on it.
    done: Condvar,
}

#[derive(Default)]
struct State {
    queued: VecDeque<(StoreKey, Bytes)>,
    /// Objects a thread is writing now.
    writing: Vec<(StoreKey, Bytes)>,
    /// Bytes of `queued` and `writing`.
    held_bytes: usize,
    closed: bool,
    /// The first write that failed.
    failure: Option<(StoreKey, String)>,
}

impl State {
    /// The latest object queued or being written for `key`.
    fn pending(&self, key: &StoreKey) -> Option<&Bytes> {
        self.queued
            .iter()
            .rev()
            .chain(&self.writing)
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking writer thread cannot leave the state inconsistent: every update is a
        // single assignment or push/pop under the lock.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wait<'a>(&self, on: &Condvar, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        on.wait(guard)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn run(&self) {
        let mut st = self.lock();
        loop {
            // The oldest queued object whose key no other thread is writing: two writes of one
            // key never run at once, and the later one lands last.
            let next = st
                .queued
                .iter()
                .position(|(k, _)| !st.writing.iter().any(|(w, _)| w == k));
            let Some((key, value)) = next.and_then(|i| st.queued.remove(i)) else {
                if st.closed && st.queued.is_empty() {
                    return;
                }
                st = self.wait(&self.work, st);
                continue;
            };
            st.writing.push((key.clone(), value.clone()));
            let skip = st.failure.is_some();
            drop(st);
            let len = value.len();
            let result = if skip {
                Ok(())
            } else {
                // A store that panics fails this write instead of leaving it "being written"
                // for ever, which would hang `finish`.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.inner.set(&key, value)
                }))
                .unwrap_or_else(|_| Err(StorageError::Other("the store panicked".into())))
            };
            st = self.lock();
            if let Some(i) = st.writing.iter().position(|(k, _)| *k == key) {
                st.writing.swap_remove(i);
            }
            st.held_bytes -= len;
            if let Err(e) = result {
                if st.failure.is_none() {
                    st.failure = Some((key, e.to_string()));
                }
            }
            // An object of the same key may have waited for this write.
            if !st.queued.is_empty() {
                self.work.notify_one();
            }
            self.done.notify_all();
        }
    }

    /// Wait until `key` is neither queued nor being written.
    fn settle(&self, key: &StoreKey) {
        let mut st = self.lock();
        while st.pending(key).is_some() {
            st = self.wait(&self.done, st);
        }
    }

    /// Wait until nothing is queued or being written.
    fn drain(&self) {
        let mut st = self.lock();
        while !st.queued.is_empty() || !st.writing.is_empty() {
            st = self.wait(&self.done, st);
        }
    }
}

impl WriteBehind {
    /// Wrap `inner`, writing with `threads` background threads and holding at most
    /// `limit_bytes` of queued objects (one object more when a single object is larger).
    ///
    /// # Errors
    /// When the operating system refuses a thread.
    pub fn new(
        inner: ReadableWritableListableStorage,
        threads: usize,
        limit_bytes: usize,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            inner,
            limit_bytes,
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let s = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("cubeforge-write-{i}"))
                .spawn(move || s.run());
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    stop(&shared, &mut handles);
                    return Err(e);
                }
            }
        }
        Ok(Self {
            shared,
            threads: Mutex::new(handles),
        })
    }

    /// The first write that failed so far: its key and the store's error.
    #[must_use]
    pub fn failure(&self) -> Option<(StoreKey, String)> {
        self.shared.lock().failure.clone()
    }

    /// Wait for every queued write and stop the threads.
    ///
    /// # Errors
    /// The key of the first write that failed and the store's error.
    pub fn finish(&self) -> Result<(), (StoreKey, String)> {
        let mut handles = self
            .threads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        stop(&self.shared, &mut handles);
        match self.failure() {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }
}

fn stop(shared: &Shared, handles: &mut Vec<JoinHandle<()>>) {
    shared.lock().closed = true;
    shared.work.notify_all();
    for h in handles.drain(..) {
        let _ = h.join();
    }
}

impl Drop for WriteBehind {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

impl ReadableStorageTraits for WriteBehind {
    fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        if let Some(v) = self.shared.lock().pending(key) {
            return Ok(Some(v.clone()));
        }
        self.shared.inner.get(key)
    }
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        self.shared.settle(key);
        self.shared.inner.get_partial_many(key, byte_ranges)
    }
    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        if let Some(v) = self.shared.lock().pending(key) {
            return Ok(Some(v.len() as u64));
        }
        self.shared.inner.size_key(key)
    }
    fn supports_get_partial(&self) -> bool {
        self.shared.inner.supports_get_partial()
    }
}

impl ListableStorageTraits for WriteBehind {
    fn list(&self) -> Result<StoreKeys, StorageError> {
        self.shared.drain();
        self.shared.inner.list()
    }
    fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        self.shared.drain();
        self.shared.inner.list_prefix(prefix)
    }
    fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        self.shared.drain();
        self.shared.inner.list_dir(prefix)
    }
    fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        self.shared.drain();
        self.shared.inner.size_prefix(prefix)
    }
}

impl WritableStorageTraits for WriteBehind {
    fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        let s = &self.shared;
        let mut st = s.lock();
        loop {
            if let Some((k, e)) = &st.failure {
                return Err(StorageError::Other(format!(
                    "not written: the write of {k} failed before: {e}"
                )));
            }
            if st.closed {
                drop(st);
                return s.inner.set(key, value);
            }
            let room = st.held_bytes == 0
                || (st.held_bytes + value.len() <= s.limit_bytes && st.queued.len() < MAX_QUEUED);
            if room {
                break;
            }
            st = s.wait(&s.done, st);
        }
        // Two writes of one key are done in the order they were queued (see `Shared::run`).
        st.held_bytes += value.len();
        st.queued.push_back((key.clone(), value));
        drop(st);
        s.work.notify_one();
        Ok(())
    }
    fn set_partial_many(
        &self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator,
    ) -> Result<(), StorageError> {
        self.shared.settle(key);
        self.shared.inner.set_partial_many(key, offset_values)
    }
    fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
        {
            let mut st = self.shared.lock();
            let dropped: usize = st
                .queued
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.len())
                .sum();
            if dropped > 0 {
                st.queued.retain(|(k, _)| k != key);
                st.held_bytes -= dropped;
                self.shared.done.notify_all();
            }
        }
        self.shared.settle(key);
        self.shared.inner.erase(key)
    }
    fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
        self.shared.drain();
        self.shared.inner.erase_prefix(prefix)
    }
    fn supports_set_partial(&self) -> bool {
        self.shared.inner.supports_set_partial()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zarrs_storage::store::MemoryStore;

    fn key(s: &str) -> StoreKey {
        StoreKey::new(s).unwrap()
    }

    #[test]
    fn queued_objects_are_visible_and_written_by_finish() {
        let mem = Arc::new(MemoryStore::new());
        let wb = WriteBehind::new(mem.clone(), 2, 10).unwrap();
        for i in 0..20u8 {
            wb.set(&key(&format!("a/{i}")), Bytes::from(vec![i; 4]))
                .unwrap();
            assert_eq!(
                wb.get(&key(&format!("a/{i}"))).unwrap().unwrap()[..],
                [i; 4]
            );
        }
        // A second write of a key: read back at once, and the one that lands last.
        wb.set(&key("a/3"), Bytes::from(vec![9; 2])).unwrap();
        assert_eq!(wb.get(&key("a/3")).unwrap().unwrap()[..], [9, 9]);
        assert_eq!(wb.size_key(&key("a/3")).unwrap(), Some(2));
        wb.erase(&key("a/5")).unwrap();
        assert!(wb.get(&key("a/5")).unwrap().is_none());
        wb.finish().unwrap();
        let keys = mem.list().unwrap();
        assert_eq!(keys.len(), 19);
        assert_eq!(mem.get(&key("a/3")).unwrap().unwrap()[..], [9, 9]);
        assert_eq!(mem.get(&key("a/7")).unwrap().unwrap()[..], [7; 4]);
        assert!(mem.get(&key("a/5")).unwrap().is_none());
    }

    #[test]
    fn many_small_objects_are_queued_a_bounded_number_at_a_time() {
        let mem = Arc::new(MemoryStore::new());
        let wb = WriteBehind::new(mem.clone(), 2, 1 << 30).unwrap();
        for i in 0..5000u32 {
            wb.set(
                &key(&format!("k/{i}")),
                Bytes::from(i.to_le_bytes().to_vec()),
            )
            .unwrap();
            assert!(wb.shared.lock().queued.len() <= MAX_QUEUED);
        }
        wb.finish().unwrap();
        assert_eq!(mem.list().unwrap().len(), 5000);
        assert_eq!(wb.shared.lock().held_bytes, 0);
    }

    /// A store whose writes of one key fail.
    #[derive(Debug)]
    struct Failing(MemoryStore);
    impl ReadableStorageTraits for Failing {
        fn get_partial_many<'a>(
            &'a self,
            key: &StoreKey,
            r: ByteRangeIterator<'a>,
        ) -> Result<MaybeBytesIterator<'a>, StorageError> {
            self.0.get_partial_many(key, r)
        }
        fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
            self.0.size_key(key)
        }
        fn supports_get_partial(&self) -> bool {
            true
        }
    }
    impl ListableStorageTraits for Failing {
        fn list(&self) -> Result<StoreKeys, StorageError> {
            self.0.list()
        }
        fn list_prefix(&self, p: &StorePrefix) -> Result<StoreKeys, StorageError> {
            self.0.list_prefix(p)
        }
        fn list_dir(&self, p: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
            self.0.list_dir(p)
        }
        fn size_prefix(&self, p: &StorePrefix) -> Result<u64, StorageError> {
            self.0.size_prefix(p)
        }
    }
    impl WritableStorageTraits for Failing {
        fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
            if key.as_str() == "bad" {
                return Err(StorageError::Other("disk full".into()));
            }
            assert!(key.as_str() != "boom", "a store bug");
            self.0.set(key, value)
        }
        fn set_partial_many(
            &self,
            key: &StoreKey,
            v: OffsetBytesIterator,
        ) -> Result<(), StorageError> {
            self.0.set_partial_many(key, v)
        }
        fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
            self.0.erase(key)
        }
        fn erase_prefix(&self, p: &StorePrefix) -> Result<(), StorageError> {
            self.0.erase_prefix(p)
        }
        fn supports_set_partial(&self) -> bool {
            false
        }
    }

    #[test]
    fn the_first_failed_write_is_reported_and_stops_later_writes() {
        let wb = WriteBehind::new(Arc::new(Failing(MemoryStore::new())), 1, 1 << 20).unwrap();
        wb.set(&key("good"), Bytes::from_static(b"x")).unwrap();
        wb.set(&key("bad"), Bytes::from_static(b"y")).unwrap();
        // The failure is recorded once the queue has been worked through.
        wb.shared.drain();
        let (k, e) = wb.failure().unwrap();
        assert_eq!((k.as_str(), e.as_str()), ("bad", "disk full"));
        let refused = wb.set(&key("later"), Bytes::from_static(b"z")).unwrap_err();
        assert!(refused.to_string().contains("bad"), "{refused}");
        let (k, _) = wb.finish().unwrap_err();
        assert_eq!(k.as_str(), "bad");
        assert_eq!(
            wb.shared.inner.get(&key("good")).unwrap().unwrap()[..],
            *b"x"
        );
        assert!(wb.shared.inner.get(&key("later")).unwrap().is_none());
    }

    #[test]
    fn a_store_that_panics_fails_the_write_instead_of_hanging() {
        let wb = WriteBehind::new(Arc::new(Failing(MemoryStore::new())), 2, 1 << 20).unwrap();
        wb.set(&key("boom"), Bytes::from_static(b"x")).unwrap();
        let (k, e) = wb.finish().unwrap_err();
        assert_eq!((k.as_str(), e.as_str()), ("boom", "the store panicked"));
    }
}
