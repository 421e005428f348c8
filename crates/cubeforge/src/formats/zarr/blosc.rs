//! Blosc frames decompressed straight into a caller's buffer.
//!
//! `zarrs` decodes a Blosc chunk into a `Vec` it allocates. The executor's chunk cache keeps a
//! pool of decoded-chunk buffers instead, so that the pages of a chunk that is evicted are
//! reused for the next one rather than returned and faulted in again; for that it calls the
//! same C-Blosc library (`blosc-src`, which `zarrs` links) directly, also to decompress one part
//! of a large chunk (`blosc_getitem`, see `ZarrArray::unit_rows`). A scan for NaN reads single
//! byte planes of a frame ([`Planes`]), decompressed by the LZ4 library C-Blosc links. These are
//! the library's only foreign calls; anything they do not accept falls back to `zarrs`.

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

/// The byte planes of a Blosc frame of values byte-shuffled into split blocks, readable one at a
/// time.
///
/// C-Blosc (1.x, frame format 2) compresses the bytes of a frame in blocks. With byte shuffle,
/// a block holds first byte 0 of every value, then byte 1, and so on; and unless the frame says
/// otherwise ("split" blocks, C-Blosc's default, and so what zarr-python writes) every one of
/// these byte planes is compressed as a stream of its own. Whether a float is NaN shows in its
/// exponent, which lies in its most significant bytes: a scan for NaN decompresses one or two
/// planes of each block instead of all of them, and never unshuffles. C-Blosc has no call for a
/// single plane, so this reads the frame's layout (header, block starts, stream sizes; the
/// layout `blosc_d` in C-Blosc's `blosc.c` decodes) and decompresses streams with the LZ4
/// library C-Blosc itself uses. Only LZ4 frames of split, byte-shuffled blocks are read this
/// way ([`Planes::parse`] returns `None` for any other, and callers decode it whole).
#[derive(Debug)]
pub struct Planes<'a> {
    src: &'a [u8],
    typesize: usize,
    nbytes: usize,
    blocksize: usize,
    /// The streams of every block, in order: one per plane for split blocks; one for the last
    /// block when it is shorter (C-Blosc never splits that one).
    streams: Vec<Stream>,
    /// Where each block's streams start in `streams`.
    first: Vec<usize>,
}

/// One compressed stream of a block: where its bytes lie in the frame, and how many bytes it
/// decompresses to.
#[derive(Debug, Clone, Copy)]
struct Stream {
    at: usize,
    len: usize,
    out: usize,
}

/// C-Blosc's `MIN_BUFFERSIZE` and `MAX_SPLITS`: blocks of fewer values, or of wider types, are
/// not split.
const MIN_SPLIT_VALUES: usize = 128;
const MAX_SPLITS: usize = 16;

fn le32(src: &[u8], at: usize) -> Option<usize> {
    let b: [u8; 4] = src.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(b)).ok()
}

impl<'a> Planes<'a> {
    /// The layout of frame `src`, when it is a valid Blosc frame of LZ4-compressed, split,
    /// byte-shuffled blocks of `typesize`-byte values; `None` otherwise (or when any stream lies
    /// outside the frame).
    #[must_use]
    pub fn parse(src: &'a [u8], typesize: usize) -> Option<Planes<'a>> {
        let mut nbytes_valid: usize = 0;
        #[allow(unsafe_code)]
        // SAFETY: as in `decompress_into`: reads at most `src.len()` bytes, writes one `usize`.
        let valid = unsafe {
            blosc_src::blosc_cbuffer_validate(
                src.as_ptr().cast::<c_void>(),
                src.len(),
                &raw mut nbytes_valid,
            )
        } == 0;
        if !valid || src.len() < 16 {
            return None;
        }
        let (version, flags) = (src[0], src[2]);
        let shuffle = flags & 0x1 != 0;
        let memcpyed = flags & 0x2 != 0;
        let bitshuffle = flags & 0x4 != 0;
        let dont_split = flags & 0x10 != 0;
        let lz4 = flags >> 5 == 1;
        if version != 2
            || usize::from(src[3]) != typesize
            || !(2..=MAX_SPLITS).contains(&typesize)
            || !shuffle
            || memcpyed
            || bitshuffle
            || dont_split
            || !lz4
        {
            return None;
        }
        let (nbytes, blocksize, cbytes) = (le32(src, 4)?, le32(src, 8)?, le32(src, 12)?);
        if nbytes != nbytes_valid
            || cbytes != src.len()
            || nbytes % typesize != 0
            || blocksize == 0
            || blocksize % typesize != 0
            || blocksize / typesize < MIN_SPLIT_VALUES
        {
            return None;
        }
        let nblocks = nbytes.div_ceil(blocksize);
        let mut streams = Vec::with_capacity(nblocks * typesize);
        let mut first = Vec::with_capacity(nblocks);
        for b in 0..nblocks {
            let bsize = (nbytes - b * blocksize).min(blocksize);
            // As `blosc_d`: a shorter last block is one stream.
            let splits = if bsize == blocksize { typesize } else { 1 };
            let mut at = le32(src, 16 + 4 * b)?;
            first.push(streams.len());
            for _ in 0..splits {
                let len = le32(src, at)?;
                at += 4;
                if at.checked_add(len)? > src.len() {
                    return None;
                }
                streams.push(Stream {
                    at,
                    len,
                    out: bsize / splits,
                });
                at += len;
            }
        }
        Some(Planes {
            src,
            typesize,
            nbytes,
            blocksize,
            streams,
            first,
        })
    }

    /// Values per (full) block.
    #[must_use]
    pub fn block_values(&self) -> usize {
        self.blocksize / self.typesize
    }

    /// Values in the frame.
    #[must_use]
    pub fn values(&self) -> usize {
        self.nbytes / self.typesize
    }

    /// Byte `plane` (0: the first in memory; for little-endian values the least significant) of
    /// the values of block `b`, into `out`, resized to the block's values. `scratch` holds the
    /// whole block when it is not split (the shorter last one).
    ///
    /// # Errors
    /// The reason, for a stream that does not decompress to its size (a corrupt frame).
    pub fn plane(
        &self,
        b: usize,
        plane: usize,
        out: &mut Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> Result<(), String> {
        let (Some(&first), true) = (self.first.get(b), plane < self.typesize) else {
            return Err(format!("no plane {plane} of block {b}"));
        };
        let end = self.first.get(b + 1).copied().unwrap_or(self.streams.len());
        if end - first == self.typesize {
            decompress_stream(self.src, self.streams[first + plane], out)
        } else {
            let whole = self.streams[first];
            decompress_stream(self.src, whole, scratch)?;
            let n = whole.out / self.typesize;
            out.clear();
            out.extend_from_slice(&scratch[plane * n..(plane + 1) * n]);
            Ok(())
        }
    }
}

/// Decompress `stream` of frame `src` into `out` (resized to its decompressed size): stored
/// as is when its size is that (as C-Blosc does for a stream that does not compress), else LZ4.
fn decompress_stream(src: &[u8], stream: Stream, out: &mut Vec<u8>) -> Result<(), String> {
    let data = &src[stream.at..stream.at + stream.len];
    out.resize(stream.out, 0);
    if stream.len == stream.out {
        out.copy_from_slice(data);
        return Ok(());
    }
    let (Ok(len), Ok(cap)) = (i32::try_from(stream.len), i32::try_from(stream.out)) else {
        return Err("a Blosc stream larger than 2 GiB".into());
    };
    #[allow(unsafe_code)]
    // SAFETY: `data` is readable for `len` bytes and `out` writable for `cap` bytes;
    // `LZ4_decompress_safe` reads and writes only within these bounds, whatever the input.
    let written = unsafe {
        lz4_sys::LZ4_decompress_safe(data.as_ptr().cast(), out.as_mut_ptr().cast(), len, cap)
    };
    if written == cap {
        Ok(())
    } else {
        Err(format!(
            "a Blosc stream of {} bytes does not decompress to {} bytes",
            stream.len, stream.out
        ))
    }
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
        frame_with(data, 4, 0, BloscCompressor::LZ4, BloscShuffleMode::Shuffle)
    }

    /// `data` as a Blosc frame of `typesize`-byte values in blocks of `blocksize` bytes (0: as
    /// C-Blosc chooses), with compressor `cname` and shuffle `shuffle`.
    pub(crate) fn frame_with(
        data: &[u8],
        typesize: usize,
        blocksize: usize,
        cname: BloscCompressor,
        shuffle: BloscShuffleMode,
    ) -> Vec<u8> {
        let codec = BloscCodec::new(
            cname,
            BloscCompressionLevel::try_from(5u8).unwrap(),
            Some(blocksize),
            shuffle,
            Some(typesize),
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

    impl Planes<'_> {
        /// Where the compressed bytes of plane `p` of block `b` lie in the frame.
        pub(crate) fn stream_bytes(&self, b: usize, p: usize) -> std::ops::Range<usize> {
            let s = self.streams[self.first[b] + p];
            s.at..s.at + s.len
        }
    }

    /// Values that compress in places and not in others, with NaNs, infinities and zeros.
    fn mixed(n: usize, size: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| {
                #[allow(clippy::cast_precision_loss)]
                let x = match i % 7 {
                    0 => f64::NAN,
                    1 => f64::INFINITY,
                    2 => 0.0,
                    _ => (i as f64).sqrt() * if i % 3 == 0 { -1.0 } else { 1.0 },
                };
                #[allow(clippy::cast_possible_truncation)]
                if size == 4 {
                    (x as f32).to_le_bytes().to_vec()
                } else {
                    x.to_le_bytes().to_vec()
                }
            })
            .collect()
    }

    #[test]
    fn reads_the_byte_planes_of_split_blocks() {
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        for size in [4usize, 8] {
            // Blocks of 64 KiB (C-Blosc multiplies the block size asked for by the type size,
            // and makes split blocks at least 64 KiB); 3.1 blocks: the last one shorter, and not
            // split.
            let per = 65536 / size;
            let n = 3 * per + 1000;
            let data = mixed(n, size);
            let frame = frame_with(
                &data,
                size,
                per,
                BloscCompressor::LZ4,
                BloscShuffleMode::Shuffle,
            );
            let planes = Planes::parse(&frame, size).expect("split LZ4 frame");
            assert_eq!((planes.values(), planes.block_values()), (n, per));
            for b in 0..n.div_ceil(per) {
                for p in 0..size {
                    planes.plane(b, p, &mut out, &mut scratch).expect("plane");
                    let want: Vec<u8> = (b * per..((b + 1) * per).min(n))
                        .map(|i| data[i * size + p])
                        .collect();
                    assert_eq!(out, want, "size {size}, block {b}, plane {p}");
                }
            }
            // The wrong type size.
            assert!(Planes::parse(&frame, 12 - size).is_none());
        }
    }

    #[test]
    fn leaves_frames_it_cannot_read_by_planes_to_decoding() {
        let data = mixed(3 * 16384 + 1000, 4);
        let other = |cname, shuffle| frame_with(&data, 4, 16384, cname, shuffle);
        // Not shuffled, bit-shuffled, or another compressor.
        for frame in [
            other(BloscCompressor::LZ4, BloscShuffleMode::NoShuffle),
            other(BloscCompressor::LZ4, BloscShuffleMode::BitShuffle),
            other(BloscCompressor::Zstd, BloscShuffleMode::Shuffle),
            other(BloscCompressor::BloscLZ, BloscShuffleMode::Shuffle),
        ] {
            assert!(Planes::parse(&frame, 4).is_none());
        }
        let frame = other(BloscCompressor::LZ4, BloscShuffleMode::Shuffle);
        assert!(Planes::parse(&frame, 4).is_some());
        // Cut short, or with bytes after it.
        assert!(Planes::parse(&frame[..frame.len() - 1], 4).is_none());
        let mut longer = frame.clone();
        longer.push(0);
        assert!(Planes::parse(&longer, 4).is_none());
        assert!(Planes::parse(&[], 4).is_none());
        // A stream whose bytes are damaged does not decompress to its size.
        let planes = Planes::parse(&frame, 4).expect("frame");
        let range = planes.stream_bytes(1, 3);
        let mut damaged = frame.clone();
        damaged[range].fill(0xff);
        let planes = Planes::parse(&damaged, 4).expect("layout intact");
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        assert!(planes.plane(1, 3, &mut out, &mut scratch).is_err());
        assert!(planes.plane(0, 3, &mut out, &mut scratch).is_ok());
        assert!(planes.plane(9, 0, &mut out, &mut scratch).is_err());
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
