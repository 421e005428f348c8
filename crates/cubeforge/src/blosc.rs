//! Blosc frames decompressed straight into a caller's buffer.
//!
//! `zarrs` decodes a Blosc chunk into a `Vec` it allocates. The executor's chunk cache keeps a
//! pool of decoded-chunk buffers instead, so that the pages of a chunk that is evicted are
//! reused for the next one rather than returned and faulted in again; for that it calls the
//! same C-Blosc library (`blosc-src`, which `zarrs` links) directly, also to decompress one part
//! of a large chunk (`blosc_getitem`, see `ZarrArray::unit_rows`). These are the library's only
//! foreign calls; anything they do not accept falls back to `zarrs`.

use std::ffi::c_void;

/// Decompress the Blosc frame `src` into `dest` when the frame is valid and holds exactly
/// `dest.len()` bytes, on `threads` threads (C-Blosc's own, for the frame's blocks). Returns
/// whether it did; `false` leaves the decoding (and the error message, for a corrupt frame) to
/// `zarrs`.
#[must_use]
pub fn decompress_into(src: &[u8], dest: &mut [u8], threads: usize) -> bool {
    let mut nbytes: usize = 0;
    #[allow(unsafe_code)]
    // SAFETY: `blosc_cbuffer_validate` reads at most `src.len()` bytes of `src` (it checks
    // that the header's compressed size equals `src.len()`) and writes one `usize`.
    let valid = unsafe {
        blosc_src::blosc_cbuffer_validate(src.as_ptr().cast::<c_void>(), src.len(), &raw mut nbytes)
    } == 0;
    if !valid || nbytes != dest.len() || i32::try_from(nbytes).is_err() {
        return false;
    }
    let threads = i32::try_from(threads.clamp(1, 16)).unwrap_or(1);
    #[allow(unsafe_code)]
    // SAFETY: the frame was validated above ("safe to attempt decompression" per C-Blosc's
    // documentation of `blosc_cbuffer_validate`); `dest` is writable for `dest.len()` bytes,
    // which C-Blosc never exceeds (it refuses frames larger than `destsize`); the `_ctx`
    // variant keeps its threads and state to this call, touching no global state.
    let written = unsafe {
        blosc_src::blosc_decompress_ctx(
            src.as_ptr().cast::<c_void>(),
            dest.as_mut_ptr().cast::<c_void>(),
            dest.len(),
            threads,
        )
    };
    usize::try_from(written).is_ok_and(|w| w == dest.len())
}

/// Decompress the bytes `from .. from + dest.len()` of the data in the Blosc frame `src` into
/// `dest`, decompressing only the blocks they lie in. Returns whether it did; `false` (an
/// invalid frame, a range outside it or not whole elements of the frame's type size) leaves
/// the decoding to `zarrs`, as [`decompress_into`] does.
#[must_use]
pub fn getitem_into(src: &[u8], from: usize, dest: &mut [u8]) -> bool {
    let mut nbytes: usize = 0;
    #[allow(unsafe_code)]
    // SAFETY: as in `decompress_into`.
    let valid = unsafe {
        blosc_src::blosc_cbuffer_validate(src.as_ptr().cast::<c_void>(), src.len(), &raw mut nbytes)
    } == 0;
    // The header's fourth byte is the type size the frame counts items in.
    let typesize = usize::from(src.get(3).copied().unwrap_or(0));
    let whole = typesize > 0 && from % typesize == 0 && dest.len() % typesize == 0;
    if !valid || !whole || from.checked_add(dest.len()).is_none_or(|end| end > nbytes) {
        return false;
    }
    let (Ok(start), Ok(nitems)) = (
        i32::try_from(from / typesize),
        i32::try_from(dest.len() / typesize),
    ) else {
        return false;
    };
    #[allow(unsafe_code)]
    // SAFETY: the frame was validated above, which C-Blosc documents as making
    // `blosc_getitem` safe to attempt; the items `start .. start + nitems` lie within the
    // frame's data (checked above, so C-Blosc's own bounds checks pass), and it writes exactly
    // `nitems` items of `typesize` bytes, `dest.len()`, to `dest`. It keeps its state in a
    // context of its own, so concurrent calls are safe.
    let written = unsafe {
        blosc_src::blosc_getitem(
            src.as_ptr().cast::<c_void>(),
            start,
            nitems,
            dest.as_mut_ptr().cast::<c_void>(),
        )
    };
    usize::try_from(written).is_ok_and(|w| w == dest.len())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use zarrs::array::codec::{
        BloscCodec, BloscCompressionLevel, BloscCompressor, BloscShuffleMode,
    };
    use zarrs::array::BytesToBytesCodecTraits as _;

    /// `data` as a Blosc frame (LZ4, level 5, byte shuffle of 4-byte items), as zarr-python
    /// writes float32 chunks.
    pub(crate) fn frame(data: &[u8]) -> Vec<u8> {
        let codec = BloscCodec::new(
            BloscCompressor::LZ4,
            BloscCompressionLevel::try_from(5u8).unwrap(),
            None,
            BloscShuffleMode::Shuffle,
            Some(4),
        )
        .unwrap();
        codec
            .encode(
                std::borrow::Cow::Borrowed(data),
                &zarrs::array::CodecOptions::default(),
            )
            .unwrap()
            .into_owned()
    }

    fn data() -> Vec<u8> {
        (0..50_000u32)
            .flat_map(|i| (i as f32 * 0.25).to_le_bytes())
            .collect()
    }

    #[test]
    fn decompresses_a_frame_into_a_buffer_of_its_size() {
        let data = data();
        let encoded = frame(&data);
        assert!(encoded.len() < data.len());
        let mut out = vec![7u8; data.len()];
        assert!(decompress_into(&encoded, &mut out, 1));
        let mut out2 = vec![7u8; data.len()];
        assert!(decompress_into(&encoded, &mut out2, 2));
        assert_eq!(out2, data);
        assert_eq!(out, data);
    }

    #[test]
    fn decompresses_part_of_a_frame() {
        let data = data();
        let encoded = frame(&data);
        let mut part = vec![7u8; 40_000];
        assert!(getitem_into(&encoded, 80_000, &mut part));
        assert_eq!(part, data[80_000..120_000]);
        let mut tail = vec![0u8; 8];
        assert!(getitem_into(&encoded, data.len() - 8, &mut tail));
        assert_eq!(tail, data[data.len() - 8..]);
        // Beyond the data, not whole 4-byte items, or not a frame: left to zarrs.
        assert!(!getitem_into(&encoded, data.len() - 4, &mut tail));
        assert!(!getitem_into(&encoded, 2, &mut part));
        assert!(!getitem_into(&encoded[..encoded.len() / 2], 0, &mut part));
    }

    #[test]
    fn leaves_other_sizes_trailing_bytes_and_garbage_to_zarrs() {
        let data = data();
        let encoded = frame(&data);
        let mut small = vec![0u8; data.len() - 4];
        assert!(!decompress_into(&encoded, &mut small, 1));
        let mut out = vec![0u8; data.len()];
        let mut trailing = encoded.clone();
        trailing.extend_from_slice(&[0, 1, 2, 3]);
        assert!(!decompress_into(&trailing, &mut out, 1));
        assert!(!decompress_into(&encoded[..encoded.len() / 2], &mut out, 1));
        assert!(!decompress_into(&[1, 2, 3], &mut out, 1));
        assert!(!decompress_into(&[], &mut out, 1));
    }
}
