//! Regions of C-ordered arrays: a block at a place in a larger array, and copying or filling
//! the overlap of two blocks row by row. Format-neutral: every source and the executor use them.

/// A block of an array: where it starts and its shape, one entry per dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    start: Vec<u64>,
    shape: Vec<u64>,
}

impl Region {
    /// The block of shape `shape` starting at `start` (as many entries each).
    #[must_use]
    pub fn new(start: Vec<u64>, shape: Vec<u64>) -> Region {
        Region { start, shape }
    }

    /// Where it starts.
    #[must_use]
    pub fn start(&self) -> &[u64] {
        &self.start
    }

    /// Its shape.
    #[must_use]
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// Number of elements.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Whether it holds no element.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The blocks of a regular grid of blocks of shape `block` that the region
/// `start .. start + shape` overlaps, in grid order, each with its grid index and its whole
/// region (beyond the array at its far edges); none for an empty region.
#[must_use]
pub fn grid_blocks(start: &[u64], shape: &[u64], block: &[u64]) -> Vec<(Vec<u64>, Region)> {
    if shape.iter().product::<u64>() == 0 || block.contains(&0) {
        return Vec::new();
    }
    let lo: Vec<u64> = start.iter().zip(block).map(|(s, b)| s / b).collect();
    let hi: Vec<u64> = start
        .iter()
        .zip(shape)
        .zip(block)
        .map(|((s, n), b)| (s + n - 1) / b)
        .collect();
    let mut out = Vec::new();
    let mut idx = lo.clone();
    loop {
        let at: Vec<u64> = idx.iter().zip(block).map(|(i, b)| i * b).collect();
        out.push((idx.clone(), Region::new(at, block.to_vec())));
        let mut d = idx.len();
        loop {
            if d == 0 {
                return out;
            }
            d -= 1;
            if idx[d] < hi[d] {
                idx[d] += 1;
                break;
            }
            idx[d] = lo[d];
        }
    }
}

/// Copy the overlap of a source block (shape `src_shape` at `src_start`) into a destination block
/// (shape `dst_shape` at `dst_start`), both C-ordered with `esize`-byte elements.
pub fn copy_region(
    src: &[u8],
    src_shape: &[u64],
    src_start: &[u64],
    dst: &mut [u8],
    dst_shape: &[u64],
    dst_start: &[u64],
    esize: usize,
) {
    copy_region_in(
        src, src_shape, src_start, dst, dst_shape, dst_start, dst_shape, esize,
    );
}

/// [`copy_region`] into a destination block (shape `dst_shape` at `dst_start`) that sits at the
/// start of each dimension of a larger C-ordered buffer of shape `dst_layout`; the buffer's
/// elements outside the block are left as they are.
#[allow(clippy::too_many_arguments)]
pub fn copy_region_in(
    src: &[u8],
    src_shape: &[u64],
    src_start: &[u64],
    dst: &mut [u8],
    dst_shape: &[u64],
    dst_start: &[u64],
    dst_layout: &[u64],
    esize: usize,
) {
    if src_shape.is_empty() {
        dst[..esize].copy_from_slice(&src[..esize]);
        return;
    }
    overlap_rows_in(
        src_shape,
        src_start,
        dst_shape,
        dst_start,
        dst_layout,
        |so, dof, n| {
            dst[dof * esize..(dof + n) * esize].copy_from_slice(&src[so * esize..(so + n) * esize]);
        },
    );
}

/// Set the overlap of a block of fill values (shape `src_shape` at `src_start`, every element
/// the `elem` bytes) with a destination block (shape `dst_shape` at `dst_start`).
pub fn fill_region(
    elem: &[u8],
    src_shape: &[u64],
    src_start: &[u64],
    dst: &mut [u8],
    dst_shape: &[u64],
    dst_start: &[u64],
) {
    fill_region_in(
        elem, src_shape, src_start, dst, dst_shape, dst_start, dst_shape,
    );
}

/// [`fill_region`] into a block laid out in a larger buffer, as [`copy_region_in`].
pub fn fill_region_in(
    elem: &[u8],
    src_shape: &[u64],
    src_start: &[u64],
    dst: &mut [u8],
    dst_shape: &[u64],
    dst_start: &[u64],
    dst_layout: &[u64],
) {
    let esize = elem.len();
    if src_shape.is_empty() {
        dst[..esize].copy_from_slice(elem);
        return;
    }
    let all_zero = elem.iter().all(|b| *b == 0);
    overlap_rows_in(
        src_shape,
        src_start,
        dst_shape,
        dst_start,
        dst_layout,
        |_, dof, n| {
            let row = &mut dst[dof * esize..(dof + n) * esize];
            if all_zero {
                row.fill(0);
            } else {
                for e in row.chunks_exact_mut(esize) {
                    e.copy_from_slice(elem);
                }
            }
        },
    );
}

/// Call `f(src_offset, dst_offset, len)` (in elements) for every row of the overlap of two
/// C-ordered blocks of the same dimensionality (at least one), in order.
pub(crate) fn overlap_rows(
    src_shape: &[u64],
    src_start: &[u64],
    dst_shape: &[u64],
    dst_start: &[u64],
    f: impl FnMut(usize, usize, usize),
) {
    overlap_rows_in(src_shape, src_start, dst_shape, dst_start, dst_shape, f);
}

/// [`overlap_rows`] with destination offsets in a buffer of shape `dst_layout` (each dimension
/// at least `dst_shape`'s) that holds the destination block at the start of each dimension.
pub(crate) fn overlap_rows_in(
    src_shape: &[u64],
    src_start: &[u64],
    dst_shape: &[u64],
    dst_start: &[u64],
    dst_layout: &[u64],
    mut f: impl FnMut(usize, usize, usize),
) {
    let ndim = src_shape.len();
    let mut lo = vec![0u64; ndim];
    let mut hi = vec![0u64; ndim];
    for d in 0..ndim {
        lo[d] = src_start[d].max(dst_start[d]);
        hi[d] = (src_start[d] + src_shape[d]).min(dst_start[d] + dst_shape[d]);
        if lo[d] >= hi[d] {
            return;
        }
    }
    let strides = |shape: &[u64]| {
        let mut s = vec![1usize; ndim];
        for d in (0..ndim - 1).rev() {
            s[d] = s[d + 1] * usize::try_from(shape[d + 1]).unwrap_or(0);
        }
        s
    };
    let ss = strides(src_shape);
    let ds = strides(dst_layout);
    let row = usize::try_from(hi[ndim - 1] - lo[ndim - 1]).unwrap_or(0);
    let mut idx = lo.clone();
    loop {
        let mut so = 0usize;
        let mut dof = 0usize;
        for d in 0..ndim {
            so += usize::try_from(idx[d] - src_start[d]).unwrap_or(0) * ss[d];
            dof += usize::try_from(idx[d] - dst_start[d]).unwrap_or(0) * ds[d];
        }
        f(so, dof, row);
        // advance the outer indices (all but the last)
        let mut d = ndim - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < hi[d] {
                break;
            }
            idx[d] = lo[d];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_region_2d() {
        // src block 2x3 at (1,1) holding 1..6; dst 4x4 at origin
        let src: Vec<u8> = (1..=6).collect();
        let mut dst = vec![0u8; 16];
        copy_region(&src, &[2, 3], &[1, 1], &mut dst, &[4, 4], &[0, 0], 1);
        assert_eq!(dst, vec![0, 0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 0, 0, 0, 0]);
        // dst window 2x2 at (2,2) sees src (2,2),(2,3)
        let mut win = vec![0u8; 4];
        copy_region(&src, &[2, 3], &[1, 1], &mut win, &[2, 2], &[2, 2], 1);
        assert_eq!(win, vec![5, 6, 0, 0]);
    }

    #[test]
    fn copy_region_in_a_larger_buffer_writes_the_block_only() {
        // src block 2x3 at (1,1) holding 1..6; the window 2x2 at (2,2) held at the start of a
        // 3x4 buffer sees src (2,2),(2,3)
        let src: Vec<u8> = (1..=6).collect();
        let copy_in = |dst_shape: [u64; 2], dst_start: [u64; 2]| {
            let mut buf = vec![9u8; 12];
            copy_region_in(
                &src,
                &[2, 3],
                &[1, 1],
                &mut buf,
                &dst_shape,
                &dst_start,
                &[3, 4],
                1,
            );
            buf
        };
        assert_eq!(
            copy_in([2, 2], [2, 2]),
            vec![5, 6, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]
        );
        // the whole source in a 3x4 window at (1,1): rows of 3 in rows of 4
        assert_eq!(
            copy_in([3, 3], [1, 1]),
            vec![1, 2, 3, 9, 4, 5, 6, 9, 9, 9, 9, 9]
        );
        let mut buf = vec![9u8; 12];
        fill_region_in(&[7], &[2, 3], &[1, 1], &mut buf, &[3, 3], &[0, 0], &[3, 4]);
        assert_eq!(buf, vec![9, 9, 9, 9, 9, 7, 7, 9, 9, 7, 7, 9]);
    }

    #[test]
    fn fill_region_sets_only_the_overlap() {
        // a 2x3 block of fill value 7 (two-byte elements) at (1,1) seen by a 2x2 window at (2,2)
        let mut win = vec![0u8; 8];
        fill_region(&[7, 0], &[2, 3], &[1, 1], &mut win, &[2, 2], &[2, 2]);
        assert_eq!(win, vec![7, 0, 7, 0, 0, 0, 0, 0]);
        // a zero fill value
        let mut dst = vec![9u8; 4];
        fill_region(&[0], &[1, 2], &[0, 0], &mut dst, &[2, 2], &[0, 0]);
        assert_eq!(dst, vec![0, 0, 9, 9]);
    }
}
