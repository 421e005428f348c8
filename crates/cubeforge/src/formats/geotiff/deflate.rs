//! DEFLATE chunks of integer samples with no predictor or the horizontal one (predictor 2), in
//! the machine's byte order: the common COG layout. The stream is inflated by `flate2` (zlib-rs,
//! the inflater the `tiff` crate uses too) straight into the chunk's buffer, and the horizontal
//! differencing is undone row by row over typed samples.
//!
//! Why not the `tiff` crate here: it undoes predictor 2 one element at a time through byte
//! slices with a bounds check each (`fix_endianness_and_predict`), which measured 16% of the CPU
//! time of converting a 10,980² uint16 COG (perf), more than a third of the inflate itself; the
//! typed loop costs a few percent. Everything else (other compressions, predictor 3, floats,
//! the other byte order) goes through the crate, and so does any stream that does not inflate to
//! exactly the chunk's size, so that the crate's error or leniency applies unchanged.
//! `tests.rs` checks this path against the crate's on generated files (property test).

use crate::dtype::DType;
use crate::formats::geotiff::ifd::Ifd;

/// Whether chunks of `ifd` are decoded here.
pub(crate) fn applies(ifd: &Ifd) -> bool {
    matches!(ifd.compression, 8 | 32946)
        && matches!(ifd.predictor, 1 | 2)
        && ifd.dtype.is_integer()
        && ifd.little_endian == cfg!(target_endian = "little")
}

/// Inflate `stored` into `out` and undo the predictor of `ifd` over rows of `row_len` samples,
/// each pixel `samples` of them. `false`, with `out` in any state, when the stream is not a zlib
/// stream that inflates to exactly `out.len()` bytes.
pub(crate) fn decode(
    stored: &[u8],
    out: &mut [u8],
    ifd: &Ifd,
    row_len: usize,
    samples: usize,
) -> bool {
    let mut z = flate2::Decompress::new(true);
    match z.decompress(stored, out, flate2::FlushDecompress::Finish) {
        Ok(flate2::Status::StreamEnd) if u64::try_from(out.len()) == Ok(z.total_out()) => {}
        _ => return false,
    }
    if ifd.predictor == 2 {
        undo_horizontal(out, ifd.dtype, row_len, samples);
    }
    true
}

/// Undo horizontal differencing in `buf`: rows of `row_len` samples of type `dtype` (native
/// byte order), each sample the difference from the same sample of the pixel before it
/// (`samples` samples a pixel), wrapping as TIFF integer arithmetic does.
pub(crate) fn undo_horizontal(buf: &mut [u8], dtype: DType, row_len: usize, samples: usize) {
    macro_rules! typed {
        ($t:ty) => {{
            const N: usize = std::mem::size_of::<$t>();
            match bytemuck::try_cast_slice_mut::<u8, $t>(buf) {
                // The running sums are kept in registers (`acc`), not reloaded from the
                // element just stored: the loop is bound by one add an element.
                Ok(v) if samples == 1 => {
                    for row in v.chunks_exact_mut(row_len.max(1)) {
                        let mut acc: $t = 0;
                        for x in row.iter_mut() {
                            acc = acc.wrapping_add(*x);
                            *x = acc;
                        }
                    }
                }
                Ok(v) => {
                    let mut acc: Vec<$t> = vec![0; samples];
                    for row in v.chunks_exact_mut(row_len.max(1)) {
                        acc.fill(0);
                        for px in row.chunks_exact_mut(samples) {
                            for (a, x) in acc.iter_mut().zip(px.iter_mut()) {
                                *a = a.wrapping_add(*x);
                                *x = *a;
                            }
                        }
                    }
                }
                // A buffer not aligned for the type: the same, through byte arrays.
                Err(_) => {
                    for row in buf.chunks_exact_mut(row_len.max(1) * N) {
                        for i in samples..row.len() / N {
                            let at = |k: usize| {
                                let mut a = [0u8; N];
                                a.copy_from_slice(&row[k * N..(k + 1) * N]);
                                <$t>::from_ne_bytes(a)
                            };
                            let x = at(i).wrapping_add(at(i - samples));
                            row[i * N..(i + 1) * N].copy_from_slice(&x.to_ne_bytes());
                        }
                    }
                }
            }
        }};
    }
    match dtype.size() {
        1 => typed!(u8),
        2 => typed!(u16),
        4 => typed!(u32),
        _ => typed!(u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizontal_differencing_is_undone_per_row_and_sample_aligned_or_not() {
        // Two rows of two pixels of two u16 samples, as differences.
        let values: [u16; 8] = [10, 20, 1, 65535, 7, 8, 2, 2];
        let want: [u16; 8] = [10, 20, 11, 19, 7, 8, 9, 10];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let mut aligned = bytes.clone();
        undo_horizontal(&mut aligned, DType::UInt16, 4, 2);
        let mut shifted = vec![0u8; bytes.len() + 1];
        shifted[1..].copy_from_slice(&bytes);
        undo_horizontal(&mut shifted[1..], DType::UInt16, 4, 2);
        let want: Vec<u8> = want.iter().flat_map(|v| v.to_ne_bytes()).collect();
        assert_eq!(aligned, want);
        assert_eq!(&shifted[1..], &want[..]);
    }
}
