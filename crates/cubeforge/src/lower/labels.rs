//! xarray's label semantics: slices by label on sorted coordinates, and dates as labels of a CF
//! time coordinate.

use crate::cf::time::TimeEncoding;

/// xarray's `.sel(dim=slice(start, stop))` on a monotonic coordinate: positions of labels between
/// start and stop inclusive, in coordinate order; on a descending coordinate start is the larger.
pub(super) fn label_slice(
    vals: &[f64],
    start: Option<f64>,
    stop: Option<f64>,
) -> std::result::Result<Vec<u64>, String> {
    let asc = vals.windows(2).all(|w| w[0] <= w[1]);
    let desc = vals.windows(2).all(|w| w[0] >= w[1]);
    if !asc && !desc {
        return Err(
            "cannot slice by label on a coordinate that is not sorted; add a sortby first".into(),
        );
    }
    let inside = |v: f64| {
        if asc {
            start.is_none_or(|s| v >= s) && stop.is_none_or(|e| v <= e)
        } else {
            start.is_none_or(|s| v <= s) && stop.is_none_or(|e| v >= e)
        }
    };
    Ok(vals
        .iter()
        .enumerate()
        .filter(|(_, v)| inside(**v))
        .map(|(p, _)| p as u64)
        .collect())
}

/// A date-time label as a raw coordinate value of `enc`'s units (fractional when needed).
pub(super) fn label_time(text: &str, enc: &TimeEncoding) -> Option<f64> {
    let probe =
        TimeEncoding::parse(&format!("seconds since {text}"), Some(enc.calendar.name())).ok()?;
    let t = probe.reference;
    let ns_since = |e: &TimeEncoding| -> Option<i128> {
        let unit_ns = e.unit.nanos();
        let days = TimeEncoding {
            unit: crate::cf::time::TimeUnit::Nanoseconds,
            reference: e.reference,
            calendar: e.calendar,
        };
        let n = days.encode_i64(&t).ok()??;
        let _ = unit_ns;
        Some(i128::from(n))
    };
    let ns = ns_since(enc)?;
    #[allow(clippy::cast_precision_loss)]
    Some(ns as f64 / enc.unit.nanos() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_slices_follow_xarray() {
        let desc = [32.0, 31.75, 31.5, 31.25];
        assert_eq!(
            label_slice(&desc, Some(31.6), Some(31.2)).unwrap(),
            vec![2, 3]
        );
        assert_eq!(
            label_slice(&desc, Some(35.0), None).unwrap(),
            vec![0, 1, 2, 3]
        );
        assert!(label_slice(&desc, Some(31.2), Some(31.6))
            .unwrap()
            .is_empty());
        let asc = [42.0, 42.25, 42.5];
        assert_eq!(
            label_slice(&asc, Some(42.1), Some(45.0)).unwrap(),
            vec![1, 2]
        );
        assert!(label_slice(&[1.0, 3.0, 2.0], None, None).is_err());
    }
}
