//! The pool of buffers units are decoded into: anonymous mappings, faulted in once, reused from
//! one unit to the next (and grown for a larger one) instead of allocated afresh.

/// A buffer of the chunk cache's pool: an anonymous mapping, faulted in whole, whose first `len`
/// bytes hold a chunk. A buffer serves any chunk of at most its size and at least two thirds of
/// it ([`PoolBuf::SERVES`]), and grows (the kernel moves the pages it has, and faults in only
/// the new ones) for a larger chunk when the pool has no buffer that large: chunks of several
/// sizes (100-day chunks of one variable, quarters of 500-day chunks of another) then share the
/// memory already faulted in, rather than each size mapping and zeroing its own.
#[derive(Debug)]
pub(super) struct PoolBuf {
    map: memmap2::MmapMut,
    len: usize,
}

impl PoolBuf {
    /// The smallest part of a buffer a chunk may use, as a fraction (numerator, denominator): a
    /// larger buffer is left for a larger chunk.
    pub(super) const SERVES: (usize, usize) = (2, 3);

    /// A new buffer of `len` bytes, faulted in.
    pub(super) fn map(len: usize) -> std::io::Result<PoolBuf> {
        let map = memmap2::MmapOptions::new()
            .len(len.max(1))
            .populate()
            .map_anon()?;
        Ok(PoolBuf { map, len })
    }

    pub(super) fn capacity(&self) -> usize {
        self.map.len()
    }

    /// Whether the buffer can hold a chunk of `len` bytes without growing, and is not much
    /// larger than it.
    pub(super) fn serves(&self, len: usize) -> bool {
        let cap = self.capacity();
        cap >= len && cap.saturating_mul(Self::SERVES.0) <= len.saturating_mul(Self::SERVES.1)
    }

    /// Make the buffer `len` bytes long, growing it when it is smaller. On failure the buffer is
    /// unchanged (and still usable at its old size).
    pub(super) fn resize(&mut self, len: usize) -> std::io::Result<()> {
        let old = self.capacity();
        if len > old {
            // SAFETY: the mapping is anonymous and owned by this buffer alone, and `&mut self`
            // guarantees that no slice of it is borrowed: moving it invalidates no reference.
            #[allow(unsafe_code)]
            unsafe {
                self.map
                    .remap(len, memmap2::RemapOptions::new().may_move(true))?;
            }
            // Fault in the new pages at once, as a new buffer is (best effort: on kernels
            // before 5.14 they are faulted in as the chunk is written).
            let _ = self
                .map
                .advise_range(memmap2::Advice::PopulateWrite, old, len - old);
        }
        self.len = len;
        Ok(())
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.map[..self.len]
    }

    pub(super) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map[..self.len]
    }
}

/// Of the `idle` buffers, the one to hold a chunk of `len` bytes: the smallest that serves it
/// as it is, else the largest of those smaller than it (to grow), else none.
pub(super) fn pick_buffer(idle: &[PoolBuf], len: usize) -> Option<usize> {
    let fitting = idle
        .iter()
        .enumerate()
        .filter(|(_, b)| b.serves(len))
        .min_by_key(|(_, b)| b.capacity());
    let growing = || {
        idle.iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() < len)
            .max_by_key(|(_, b)| b.capacity())
    };
    fitting.or_else(growing).map(|(i, _)| i)
}
