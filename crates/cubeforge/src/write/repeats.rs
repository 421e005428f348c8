//! Encode-once repeats: the chunks of a variable whose values do not change along some of its
//! dimensions (a broadcast feature, such as a day-of-year sine over `time × lat × lon`) are
//! computed and encoded once, and written wherever they belong.

use std::sync::{Arc, OnceLock};

use crate::error::Error;
use crate::plan::NodeRef;

/// The encoded chunks of a variable whose values do not change along some of its dimensions (a
/// broadcast feature, such as a day-of-year sine over `time × lat × lon`): two chunks that
/// differ only in their place along those dimensions, and have the same shape before padding,
/// hold the same bytes. Each is computed and encoded once, by the first worker that needs it
/// (another that needs it meanwhile waits for it), and written wherever it belongs.
pub(crate) struct Repeats {
    /// Per dimension of the variable: whether its values change along it.
    varying: Vec<bool>,
    /// The latest chunks, by (chunk index along the varying dimensions, shape before padding);
    /// `None` is a chunk of fill values only, which is not written.
    recent: std::sync::Mutex<std::collections::VecDeque<(RepeatKey, RepeatCell)>>,
}

type RepeatKey = (Vec<u64>, Vec<u64>);
pub(crate) type RepeatCell = Arc<OnceLock<std::result::Result<Option<bytes::Bytes>, Arc<Error>>>>;

/// How many encoded chunks [`Repeats`] keeps at least: tasks are taken in order along the
/// outermost dimension, so the chunks that repeat one another are written close together.
pub(crate) const REPEATS_KEPT: usize = 8;

/// How many encoded bytes [`Repeats`] keeps beyond the first [`REPEATS_KEPT`] chunks: a static
/// variable expanded along time has as many distinct chunks as a time step has spatial tiles
/// (169 for 400 × 400 in 32 × 32), each needed again at every time chunk. Beyond this a chunk is
/// computed again (the same bytes, more time).
pub(crate) const REPEATS_BYTES: usize = 32 << 20;

/// The most chunks [`Repeats`] keeps, however small.
const REPEATS_MAX: usize = 4096;

impl Repeats {
    pub(crate) fn of(node: &NodeRef) -> Option<Repeats> {
        let value_dims = node.value_dims();
        (value_dims.len() < node.dims.len()).then(|| Repeats {
            varying: node.dims.iter().map(|d| value_dims.contains(d)).collect(),
            recent: std::sync::Mutex::default(),
        })
    }

    /// The cell holding chunk `idx`'s bytes, of shape `got` before padding: shared with every
    /// chunk that repeats it.
    pub(crate) fn cell(&self, idx: &[u64], got: &[u64]) -> RepeatCell {
        let key: RepeatKey = (
            idx.iter()
                .zip(&self.varying)
                .map(|(i, v)| if *v { *i } else { 0 })
                .collect(),
            got.to_vec(),
        );
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, cell)) = recent.iter().find(|(k, _)| *k == key) {
            return cell.clone();
        }
        let cell = RepeatCell::default();
        recent.push_back((key, cell.clone()));
        let held = |c: &RepeatCell| match c.get() {
            Some(Ok(Some(b))) => b.len(),
            _ => 0,
        };
        let mut bytes: usize = recent.iter().map(|(_, c)| held(c)).sum();
        while recent.len() > REPEATS_KEPT && (bytes > REPEATS_BYTES || recent.len() > REPEATS_MAX) {
            if let Some((_, c)) = recent.pop_front() {
                bytes -= held(&c);
            }
        }
        cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Node, Op, UnOp, VType};

    #[test]
    fn chunks_of_a_broadcast_feature_share_their_encoding() {
        let t = Node::new(
            Op::Along {
                dim: "time".into(),
                values: Arc::new(vec![0.5; 10]),
            },
            vec!["time".into()],
            vec![10],
            VType::F32,
        );
        let dims: Vec<String> = ["time", "lat", "lon"].map(String::from).to_vec();
        let feature = Node::new(Op::Unary(UnOp::Sin, t), dims, vec![10, 5, 5], VType::F32);
        let repeats = Repeats::of(&feature).expect("constant along lat and lon");
        assert_eq!(repeats.varying, [true, false, false]);
        let same = |a: &RepeatCell, b: &RepeatCell| Arc::ptr_eq(a, b);
        // Tiles of one time chunk and one shape share a cell; another shape (an edge tile) or
        // another time chunk do not.
        let first = repeats.cell(&[0, 0, 0], &[4, 3, 3]);
        assert!(same(&first, &repeats.cell(&[0, 0, 1], &[4, 3, 3])));
        assert!(same(&first, &repeats.cell(&[0, 1, 0], &[4, 3, 3])));
        assert!(!same(&first, &repeats.cell(&[0, 1, 1], &[4, 2, 2])));
        assert!(!same(&first, &repeats.cell(&[1, 0, 0], &[4, 3, 3])));
        for i in 2..20 {
            repeats.cell(&[i, 0, 0], &[4, 3, 3]);
        }
        // Cells not yet encoded hold no bytes: all are kept, up to the count bound.
        assert_eq!(repeats.recent.lock().unwrap().len(), 21);
        assert!(same(&first, &repeats.cell(&[0, 0, 0], &[4, 3, 3])));
        // Encoded chunks beyond the byte bound are let go, oldest first.
        let big = bytes::Bytes::from(vec![0u8; REPEATS_BYTES / 4]);
        for i in 20..40 {
            let c = repeats.cell(&[i, 0, 0], &[4, 3, 3]);
            let _ = c.set(Ok(Some(big.clone())));
        }
        let kept = repeats.recent.lock().unwrap().len();
        assert!((REPEATS_KEPT..40).contains(&kept), "{kept}");
        assert!(!same(&first, &repeats.cell(&[0, 0, 0], &[4, 3, 3])));
    }
}
