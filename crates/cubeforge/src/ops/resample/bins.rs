//! Time bins as pandas makes them for `resample(freq, closed, label)` (xarray's resampling of a
//! `datetime64` index), computed on CF date-times in their own calendar.
//!
//! - `H` and `D` multiples: bins of fixed length counted from midnight of the first timestamp's
//!   day (pandas' default `origin="start_day"`).
//! - `W` (`W-SUN`), `MS`, `YS` multiples: anchored on the calendar (a Sunday, the first of a
//!   month, January 1) at or before the first timestamp's day (`closed: left`), or one period
//!   before it (`closed: right`), then every `n` periods. With `closed: right`, pandas' weekly
//!   bins end at the end of their Sunday (a timestamp on that Sunday belongs to the bin it
//!   closes).
//!
//! The output has every bin from the one holding the first timestamp to the one holding the
//! last, empty ones included. For `W`, `MS` and `YS` pandas runs the edges from the anchor to
//! one period after the day of the last timestamp, so with `closed: right` a bin can be empty at
//! either end; so does this.

use crate::cf::time::{Calendar, CfDateTime, TimeEncoding, TimeUnit};
use crate::recipe::Side;

const NANOS_PER_HOUR: i128 = 3_600_000_000_000;
const NANOS_PER_DAY: i128 = 24 * NANOS_PER_HOUR;

/// The unit of a bin length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreqUnit {
    /// Hours (`H`, `h`).
    Hour,
    /// Days (`D`).
    Day,
    /// Weeks ending on Sunday (`W`, `W-SUN`).
    Week,
    /// Months, labelled by their first day (`MS`).
    MonthStart,
    /// Years, labelled by January 1 (`YS`).
    YearStart,
}

/// A bin length: `count` of `unit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freq {
    /// How many units (at least 1).
    pub count: u32,
    /// The unit.
    pub unit: FreqUnit,
}

impl Freq {
    /// Parse a pandas-style frequency: an optional positive count and one of `H` (or `h`), `D`,
    /// `W` (or `W-SUN`), `MS`, `YS`.
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn parse(text: &str) -> Result<Freq, String> {
        let t = text.trim();
        let digits = t.chars().take_while(char::is_ascii_digit).count();
        let (number, unit) = t.split_at(digits);
        let count = if number.is_empty() {
            1
        } else {
            number
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("'{text}': the count must be a positive integer"))?
        };
        let unit = match unit {
            "H" | "h" => FreqUnit::Hour,
            "D" => FreqUnit::Day,
            "W" | "W-SUN" => FreqUnit::Week,
            "MS" => FreqUnit::MonthStart,
            "YS" | "AS" => FreqUnit::YearStart,
            _ => {
                return Err(format!(
                    "'{text}' is not a supported frequency (a count and one of H, D, W, MS, YS: \
                     1D, 6H, 2W, MS, YS)"
                ))
            }
        };
        Ok(Freq { count, unit })
    }
}

/// The bins of a time axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Bins {
    /// Each bin's label.
    pub labels: Vec<CfDateTime>,
    /// Each bin's nominal edges, start and end.
    pub bounds: Vec<(CfDateTime, CfDateTime)>,
    /// Each bin's samples: positions `start .. end` of the (sorted) time axis.
    pub ranges: Vec<(u64, u64)>,
}

impl Bins {
    /// Whether some bin holds no sample.
    #[must_use]
    pub fn any_empty(&self) -> bool {
        self.ranges.iter().any(|(s, e)| s == e)
    }
}

/// Days since 1970-01-01 and nanoseconds since midnight of a date-time, in its calendar.
fn split(t: &CfDateTime, cal: Calendar) -> Result<(i128, i128), String> {
    let days = TimeEncoding {
        unit: TimeUnit::Days,
        reference: CfDateTime {
            year: 1970,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            nanosecond: 0,
        },
        calendar: cal,
    };
    let midnight = CfDateTime {
        hour: 0,
        minute: 0,
        second: 0,
        nanosecond: 0,
        ..*t
    };
    let d = days
        .encode_i64(&midnight)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{t} is not a day of the {} calendar", cal.name()))?;
    let tod = i128::from(t.hour) * NANOS_PER_HOUR
        + i128::from(t.minute) * 60_000_000_000
        + i128::from(t.second) * 1_000_000_000
        + i128::from(t.nanosecond);
    Ok((i128::from(d), tod))
}

/// Nanoseconds since 1970-01-01 of a date-time, in its calendar.
fn nanos(t: &CfDateTime, cal: Calendar) -> Result<i128, String> {
    let (d, tod) = split(t, cal)?;
    Ok(d * NANOS_PER_DAY + tod)
}

/// The date-time `ns` nanoseconds after 1970-01-01, in `cal`.
fn at(ns: i128, cal: Calendar) -> Result<CfDateTime, String> {
    let days = i64::try_from(ns.div_euclid(NANOS_PER_DAY)).map_err(|e| e.to_string())?;
    let enc = TimeEncoding {
        unit: TimeUnit::Days,
        reference: CfDateTime {
            year: 1970,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            nanosecond: 0,
        },
        calendar: cal,
    };
    let mut t = enc.decode_i64(days).map_err(|e| e.to_string())?;
    let tod = ns.rem_euclid(NANOS_PER_DAY);
    let part = |n: i128| u8::try_from(n).unwrap_or(0);
    t.hour = part(tod / NANOS_PER_HOUR);
    t.minute = part(tod % NANOS_PER_HOUR / 60_000_000_000);
    t.second = part(tod % 60_000_000_000 / 1_000_000_000);
    t.nanosecond = u32::try_from(tod % 1_000_000_000).unwrap_or(0);
    Ok(t)
}

/// A month count (astronomical year × 12 + month − 1) of a date in `cal`.
fn month_index(t: &CfDateTime, cal: Calendar) -> i128 {
    let y = i128::from(t.year);
    let astronomical = if matches!(cal, Calendar::Standard | Calendar::Julian) && y < 0 {
        y + 1
    } else {
        y
    };
    astronomical * 12 + i128::from(t.month) - 1
}

/// Midnight of the first day of month `m` (see [`month_index`]).
fn month_start(m: i128, cal: Calendar) -> Result<CfDateTime, String> {
    let astronomical = m.div_euclid(12);
    let year = if matches!(cal, Calendar::Standard | Calendar::Julian) && astronomical <= 0 {
        astronomical - 1
    } else {
        astronomical
    };
    Ok(CfDateTime {
        year: i64::try_from(year).map_err(|e| e.to_string())?,
        month: u8::try_from(m.rem_euclid(12) + 1).unwrap_or(1),
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        nanosecond: 0,
    })
}

/// The edges of a bin grid: edge `k` for every integer `k`.
enum Grid {
    /// `origin + k × step` nanoseconds.
    Fixed { origin: i128, step: i128 },
    /// The first day of month `origin + k × step`.
    Months { origin: i128, step: i128 },
}

impl Grid {
    fn edge(&self, k: i128, cal: Calendar) -> Result<i128, String> {
        match self {
            Grid::Fixed { origin, step } => Ok(origin + k * step),
            Grid::Months { origin, step } => nanos(&month_start(origin + k * step, cal)?, cal),
        }
    }

    /// The largest `k` whose edge is at or before `t` (nanoseconds; `month` its month index).
    fn floor(&self, t: i128, month: i128) -> i128 {
        match self {
            Grid::Fixed { origin, step } => (t - origin).div_euclid(*step),
            Grid::Months { origin, step } => (month - origin).div_euclid(*step),
        }
    }
}

/// The bin edges of `freq` closed on side `closed`, anchored as pandas anchors them on the
/// first timestamp `first`.
fn grid_of(first: &CfDateTime, cal: Calendar, freq: Freq, closed: Side) -> Result<Grid, String> {
    let n = i128::from(freq.count);
    let (day0, _) = split(first, cal)?;
    Ok(match freq.unit {
        FreqUnit::Hour => Grid::Fixed {
            origin: day0 * NANOS_PER_DAY,
            step: n * NANOS_PER_HOUR,
        },
        FreqUnit::Day => Grid::Fixed {
            origin: day0 * NANOS_PER_DAY,
            step: n * NANOS_PER_DAY,
        },
        FreqUnit::Week => {
            if !matches!(
                cal,
                Calendar::Standard | Calendar::ProlepticGregorian | Calendar::Julian
            ) {
                return Err(format!(
                    "weekly bins need weekdays, which the {} calendar does not have",
                    cal.name()
                ));
            }
            // 1970-01-01 was a Thursday: weekday 4 counting from Sunday.
            let weekday = (day0 + 4).rem_euclid(7);
            let sunday = day0 - weekday;
            let anchor = match closed {
                Side::Left => sunday,
                Side::Right if weekday == 0 => sunday - 7 * n,
                Side::Right => sunday - 7 * (n - 1),
            };
            Grid::Fixed {
                origin: anchor * NANOS_PER_DAY,
                step: 7 * n * NANOS_PER_DAY,
            }
        }
        FreqUnit::MonthStart | FreqUnit::YearStart => {
            let m = month_index(first, cal);
            let (anchor, unit, on) = if freq.unit == FreqUnit::MonthStart {
                (m, 1, first.day == 1)
            } else {
                (m - m.rem_euclid(12), 12, first.day == 1 && first.month == 1)
            };
            let origin = match closed {
                Side::Left => anchor,
                Side::Right if on => anchor - n * unit,
                Side::Right => anchor - (n - 1) * unit,
            };
            Grid::Months {
                origin,
                step: n * unit,
            }
        }
    })
}

/// The bins of the sorted date-times `times` (in calendar `cal`) for `freq`, closed on side
/// `closed`, labelled by side `label`.
///
/// # Errors
/// Dates out of range, or weekly bins in a calendar without weekdays.
pub fn bins(
    times: &[CfDateTime],
    cal: Calendar,
    freq: Freq,
    closed: Side,
    label: Side,
) -> Result<Bins, String> {
    let Some(first) = times.first() else {
        return Err("the time axis is empty".into());
    };
    let n = i128::from(freq.count);
    let grid = grid_of(first, cal, freq, closed)?;
    // pandas' weekly bins closed on the right end at the end of their Sunday: a timestamp
    // belongs to the bin whose edges, a day later, hold it on the left.
    let week_right = freq.unit == FreqUnit::Week && closed == Side::Right;
    let bin_of = |t: &CfDateTime| -> Result<i128, String> {
        let ns = nanos(t, cal)?;
        if week_right {
            return Ok(grid.floor(ns - NANOS_PER_DAY, 0));
        }
        let k = grid.floor(ns, month_index(t, cal));
        if closed == Side::Right && grid.edge(k, cal)? == ns {
            Ok(k - 1)
        } else {
            Ok(k)
        }
    };
    let (k0, k_end) = match grid {
        // pandas' `_adjust_dates_anchored`: from the bin of the first to that of the last.
        Grid::Fixed { .. } if freq.unit != FreqUnit::Week => {
            let last = times.last().unwrap_or(first);
            (bin_of(first)?, bin_of(last)? + 1)
        }
        // Otherwise pandas' edges run from edge 0 to the last edge at or before the day of the
        // last timestamp plus `n` periods (so a bin can be empty at either end), less the last
        // weekly edge when the one before is already past the last timestamp.
        _ => {
            let last = times.last().unwrap_or(first);
            let (day, _) = split(last, cal)?;
            let edges = match (&grid, freq.unit) {
                (Grid::Fixed { origin, step }, _) => {
                    let sunday = day - (day + 4).rem_euclid(7);
                    (sunday * NANOS_PER_DAY + step - origin).div_euclid(*step)
                }
                (Grid::Months { origin, step }, FreqUnit::MonthStart) => {
                    (month_index(last, cal) + n - origin).div_euclid(*step)
                }
                (Grid::Months { origin, step }, _) => {
                    let year_start = month_index(last, cal) - month_index(last, cal).rem_euclid(12);
                    (year_start + 12 * n - origin).div_euclid(*step)
                }
            };
            let mut bins_count = edges;
            if freq.unit == FreqUnit::Week {
                let shift = if week_right { NANOS_PER_DAY - 1 } else { 0 };
                if grid.edge(bins_count - 1, cal)? + shift > nanos(last, cal)? {
                    bins_count -= 1;
                }
            }
            (0, bins_count)
        }
    };
    let unsorted = || "the time coordinate is not sorted".to_string();
    let count = usize::try_from(k_end - k0).map_err(|_| unsorted())?;
    let ks = times
        .iter()
        .map(|t| Ok(bin_of(t)? - k0))
        .collect::<Result<Vec<i128>, String>>()?;
    if ks.windows(2).any(|w| w[1] < w[0]) {
        return Err(unsorted());
    }
    let mut ranges = Vec::with_capacity(count);
    let mut p = 0usize;
    for j in 0..count as i128 {
        let start = p;
        while p < ks.len() && ks[p] == j {
            p += 1;
        }
        if start == p && ks.get(p).is_some_and(|k| *k < j) {
            return Err(unsorted());
        }
        ranges.push((start as u64, p as u64));
    }
    if p < ks.len() {
        return Err(format!(
            "internal: timestamp {} falls outside the bins",
            times[p].to_iso()
        ));
    }
    let mut labels = Vec::with_capacity(ranges.len());
    let mut bounds = Vec::with_capacity(ranges.len());
    for j in 0..ranges.len() {
        let k = k0 + j as i128;
        let (lo, hi) = (
            at(grid.edge(k, cal)?, cal)?,
            at(grid.edge(k + 1, cal)?, cal)?,
        );
        labels.push(if label == Side::Left { lo } else { hi });
        bounds.push((lo, hi));
    }
    Ok(Bins {
        labels,
        bounds,
        ranges,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> CfDateTime {
        TimeEncoding::parse(&format!("seconds since {text}"), None)
            .expect("date")
            .reference
    }

    /// Labels (as `YYYY-MM-DDTHH:MM:SS`) and sample counts of `times` binned.
    fn run(
        times: &[&str],
        cal: Calendar,
        freq: &str,
        closed: Side,
        label: Side,
    ) -> (Vec<String>, Vec<u64>) {
        let ts: Vec<CfDateTime> = times
            .iter()
            .map(|t| {
                TimeEncoding::parse(&format!("seconds since {t}"), Some(cal.name()))
                    .expect("date")
                    .reference
            })
            .collect();
        let b = bins(&ts, cal, Freq::parse(freq).expect("freq"), closed, label).expect("bins");
        for (j, (lo, hi)) in b.bounds.iter().enumerate() {
            let want = if label == Side::Left { lo } else { hi };
            assert_eq!(&b.labels[j], want);
        }
        (
            b.labels.iter().map(CfDateTime::to_iso).collect(),
            b.ranges.iter().map(|(s, e)| e - s).collect(),
        )
    }

    fn l(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    use Side::{Left as L, Right as R};
    const G: Calendar = Calendar::ProlepticGregorian;

    #[test]
    fn frequencies_parse_as_pandas_writes_them() {
        let f = |t: &str| Freq::parse(t);
        assert_eq!(
            f("1D"),
            Ok(Freq {
                count: 1,
                unit: FreqUnit::Day
            })
        );
        assert_eq!(f("6H"), f("6h"));
        assert_eq!(f("W").map(|f| f.unit), Ok(FreqUnit::Week));
        assert_eq!(
            f("3MS"),
            Ok(Freq {
                count: 3,
                unit: FreqUnit::MonthStart
            })
        );
        assert_eq!(f("YS").map(|f| f.count), Ok(1));
        for bad in ["0D", "D2", "1M", "", "1.5H", "-1D", "99999999999D"] {
            assert!(f(bad).is_err(), "{bad}");
        }
    }

    // Each expectation below is what pandas 3.1.1 / xarray 2026.9 gives for
    //   xr.Dataset({"a": ("time", np.arange(n, dtype="f8"))},
    //              coords={"time": pd.to_datetime(TIMES)})
    //     .resample(time=FREQ, closed=CLOSED, label=LABEL).count()
    // read as (out.time.values, out.a.values) with NaN (an empty bin) written as 0.

    #[test]
    fn hourly_and_daily_bins_count_from_midnight_of_the_first_day() {
        // TIMES = ["2000-01-01T05:00", "2000-01-03T01:00"], "1D", left, left
        assert_eq!(
            run(&["2000-01-01T05:00", "2000-01-03T01:00"], G, "1D", L, L),
            (
                l(&[
                    "2000-01-01T00:00:00",
                    "2000-01-02T00:00:00",
                    "2000-01-03T00:00:00"
                ]),
                vec![1, 0, 1]
            )
        );
        // same, "1D", right, right
        assert_eq!(
            run(&["2000-01-01T05:00", "2000-01-03T01:00"], G, "1D", R, R),
            (
                l(&[
                    "2000-01-02T00:00:00",
                    "2000-01-03T00:00:00",
                    "2000-01-04T00:00:00"
                ]),
                vec![1, 0, 1]
            )
        );
        // ["2000-01-01T00:00", "2000-01-03T00:00"], "1D", right, left
        assert_eq!(
            run(&["2000-01-01T00:00", "2000-01-03T00:00"], G, "1D", R, L),
            (
                l(&[
                    "1999-12-31T00:00:00",
                    "2000-01-01T00:00:00",
                    "2000-01-02T00:00:00"
                ]),
                vec![1, 0, 1]
            )
        );
        // ["2000-01-01T05:00", "2000-01-03T01:00"], "2D", right, right
        assert_eq!(
            run(&["2000-01-01T05:00", "2000-01-03T01:00"], G, "2D", R, R),
            (
                l(&["2000-01-03T00:00:00", "2000-01-05T00:00:00"]),
                vec![1, 1]
            )
        );
        // ["2000-01-01T05:30", "2000-01-01T13:00"], "3h", right, right
        assert_eq!(
            run(&["2000-01-01T05:30", "2000-01-01T13:00"], G, "3H", R, R),
            (
                l(&[
                    "2000-01-01T06:00:00",
                    "2000-01-01T09:00:00",
                    "2000-01-01T12:00:00",
                    "2000-01-01T15:00:00"
                ]),
                vec![1, 0, 0, 1]
            )
        );
        // ["2000-01-01T05:30", "2000-01-02T13:00"], "5h", left, left: 5-hour bins from midnight
        let (labels, counts) = run(&["2000-01-01T05:30", "2000-01-02T13:00"], G, "5h", L, L);
        assert_eq!(
            labels.first().map(String::as_str),
            Some("2000-01-01T05:00:00")
        );
        assert_eq!(
            labels.last().map(String::as_str),
            Some("2000-01-02T11:00:00")
        );
        assert_eq!(counts, vec![1, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn weekly_bins_are_anchored_on_sundays() {
        // ["2000-01-05T05:30", "2000-01-20T13:00"], "W", left, left
        assert_eq!(
            run(&["2000-01-05T05:30", "2000-01-20T13:00"], G, "W", L, L),
            (
                l(&[
                    "2000-01-02T00:00:00",
                    "2000-01-09T00:00:00",
                    "2000-01-16T00:00:00"
                ]),
                vec![1, 0, 1]
            )
        );
        // same, "2W", left, left
        assert_eq!(
            run(&["2000-01-05T05:30", "2000-01-20T13:00"], G, "2W", L, L),
            (
                l(&["2000-01-02T00:00:00", "2000-01-16T00:00:00"]),
                vec![1, 1]
            )
        );
        // ["2000-01-09T00:00", "2000-01-20T13:00"], "W", right, right
        assert_eq!(
            run(&["2000-01-09T00:00", "2000-01-20T13:00"], G, "W", R, R),
            (
                l(&[
                    "2000-01-09T00:00:00",
                    "2000-01-16T00:00:00",
                    "2000-01-23T00:00:00"
                ]),
                vec![1, 0, 1]
            )
        );
        let e = bins(
            &[parse("2000-01-01")],
            Calendar::NoLeap,
            Freq::parse("W").expect("freq"),
            L,
            L,
        )
        .unwrap_err();
        assert!(e.contains("noleap"), "{e}");
    }

    #[test]
    fn month_and_year_bins_start_on_the_first() {
        // ["2000-01-05T05:30", "2000-03-20T13:00"], "MS", left, left
        assert_eq!(
            run(&["2000-01-05T05:30", "2000-03-20T13:00"], G, "MS", L, L),
            (
                l(&[
                    "2000-01-01T00:00:00",
                    "2000-02-01T00:00:00",
                    "2000-03-01T00:00:00"
                ]),
                vec![1, 0, 1]
            )
        );
        // ["2000-01-01T00:00", "2000-03-20T13:00"], "MS", right, right
        assert_eq!(
            run(&["2000-01-01T00:00", "2000-03-20T13:00"], G, "MS", R, R),
            (
                l(&[
                    "2000-01-01T00:00:00",
                    "2000-02-01T00:00:00",
                    "2000-03-01T00:00:00",
                    "2000-04-01T00:00:00"
                ]),
                vec![1, 0, 0, 1]
            )
        );
        // ["2000-01-05T05:30", "2000-06-20T13:00"], "2MS", left, left
        assert_eq!(
            run(&["2000-01-05T05:30", "2000-06-20T13:00"], G, "2MS", L, L),
            (
                l(&[
                    "2000-01-01T00:00:00",
                    "2000-03-01T00:00:00",
                    "2000-05-01T00:00:00"
                ]),
                vec![1, 0, 1]
            )
        );
        // ["2000-02-29T05:30", "2003-06-20T13:00"], "YS", left, left (a leap day first)
        assert_eq!(
            run(&["2000-02-29T05:30", "2003-06-20T13:00"], G, "YS", L, L),
            (
                l(&[
                    "2000-01-01T00:00:00",
                    "2001-01-01T00:00:00",
                    "2002-01-01T00:00:00",
                    "2003-01-01T00:00:00"
                ]),
                vec![1, 0, 0, 1]
            )
        );
        // ["2000-02-29T05:30", "2004-06-20T13:00"], "2YS", left, left
        assert_eq!(
            run(&["2000-02-29T05:30", "2004-06-20T13:00"], G, "2YS", L, L),
            (
                l(&[
                    "2000-01-01T00:00:00",
                    "2002-01-01T00:00:00",
                    "2004-01-01T00:00:00"
                ]),
                vec![1, 0, 1]
            )
        );
    }

    #[test]
    fn anchored_bins_closed_right_may_be_empty_at_either_end() {
        // pandas runs the edges of W, MS and YS bins from one period before the first day to
        // one period after the last day, keeping the empty bins that makes.
        // ["2000-01-01T05:00", "2000-03-20T13:00"], "MS", right, right
        assert_eq!(
            run(&["2000-01-01T05:00", "2000-03-20T13:00"], G, "MS", R, R),
            (
                l(&[
                    "2000-01-01T00:00:00",
                    "2000-02-01T00:00:00",
                    "2000-03-01T00:00:00",
                    "2000-04-01T00:00:00"
                ]),
                vec![0, 1, 0, 1]
            )
        );
        // ["2000-01-01T05:00", "2000-03-01T00:00"], "MS", right, left
        assert_eq!(
            run(&["2000-01-01T05:00", "2000-03-01T00:00"], G, "MS", R, L),
            (
                l(&[
                    "1999-12-01T00:00:00",
                    "2000-01-01T00:00:00",
                    "2000-02-01T00:00:00",
                    "2000-03-01T00:00:00"
                ]),
                vec![0, 1, 1, 0]
            )
        );
        // ["2000-01-01T05:00", "2002-03-01T00:00"], "YS", right, right
        assert_eq!(
            run(&["2000-01-01T05:00", "2002-03-01T00:00"], G, "YS", R, R),
            (
                l(&[
                    "2000-01-01T00:00:00",
                    "2001-01-01T00:00:00",
                    "2002-01-01T00:00:00",
                    "2003-01-01T00:00:00"
                ]),
                vec![0, 1, 0, 1]
            )
        );
        // ["2000-01-02T05:00", "2000-01-16T00:00"], "W", right, right (2000-01-02 a Sunday)
        assert_eq!(
            run(&["2000-01-02T05:00", "2000-01-16T00:00"], G, "W", R, R),
            (
                l(&[
                    "2000-01-02T00:00:00",
                    "2000-01-09T00:00:00",
                    "2000-01-16T00:00:00"
                ]),
                vec![1, 0, 1]
            )
        );
        // ["2000-01-02T00:00", "2000-01-16T00:00"], "2W", right, right
        assert_eq!(
            run(&["2000-01-02T00:00", "2000-01-16T00:00"], G, "2W", R, R),
            (
                l(&["2000-01-02T00:00:00", "2000-01-16T00:00:00"]),
                vec![1, 1]
            )
        );
    }

    #[test]
    fn leap_days_and_other_calendars() {
        // These use xarray's CFTimeIndex for the other calendars:
        //   t = xr.CFTimeIndex([cftime.datetime(..., calendar=CAL) for ...]), then as above.
        let t = ["2000-02-27T12:00", "2000-03-01T01:00"];
        // pandas, "1D", left, left: the leap day is a bin of its own
        assert_eq!(
            run(&t, G, "1D", L, L),
            (
                l(&[
                    "2000-02-27T00:00:00",
                    "2000-02-28T00:00:00",
                    "2000-02-29T00:00:00",
                    "2000-03-01T00:00:00"
                ]),
                vec![1, 0, 0, 1]
            )
        );
        // CAL = "noleap", "1D", left, left
        assert_eq!(
            run(&t, Calendar::NoLeap, "1D", L, L),
            (
                l(&[
                    "2000-02-27T00:00:00",
                    "2000-02-28T00:00:00",
                    "2000-03-01T00:00:00"
                ]),
                vec![1, 0, 1]
            )
        );
        // CAL = "noleap", "2D", right, right
        assert_eq!(
            run(&t, Calendar::NoLeap, "2D", R, R),
            (
                l(&["2000-03-01T00:00:00", "2000-03-03T00:00:00"]),
                vec![1, 1]
            )
        );
        // CAL = "all_leap", ["2000-02-28T22:00", "2000-03-01T02:00"], "12h", left, left
        assert_eq!(
            run(
                &["2000-02-28T22:00", "2000-03-01T02:00"],
                Calendar::AllLeap,
                "12H",
                L,
                L
            ),
            (
                l(&[
                    "2000-02-28T12:00:00",
                    "2000-02-29T00:00:00",
                    "2000-02-29T12:00:00",
                    "2000-03-01T00:00:00"
                ]),
                vec![1, 0, 0, 1]
            )
        );
        // CAL = "360_day", ["2000-01-15T12:00", "2000-03-30T01:00"], "MS", left, left
        assert_eq!(
            run(
                &["2000-01-15T12:00", "2000-03-30T01:00"],
                Calendar::Day360,
                "MS",
                L,
                L
            ),
            (
                l(&[
                    "2000-01-01T00:00:00",
                    "2000-02-01T00:00:00",
                    "2000-03-01T00:00:00"
                ]),
                vec![1, 0, 1]
            )
        );
        // CAL = "360_day", ["2000-01-01T00:00", "2000-03-30T01:00"], "MS", right, right
        assert_eq!(
            run(
                &["2000-01-01T00:00", "2000-03-30T01:00"],
                Calendar::Day360,
                "MS",
                R,
                R
            ),
            (
                l(&[
                    "2000-01-01T00:00:00",
                    "2000-02-01T00:00:00",
                    "2000-03-01T00:00:00",
                    "2000-04-01T00:00:00"
                ]),
                vec![1, 0, 0, 1]
            )
        );
        // CAL = "noleap", ["1999-12-31T23:00", "2001-01-01T00:00"], "YS", right, left
        assert_eq!(
            run(
                &["1999-12-31T23:00", "2001-01-01T00:00"],
                Calendar::NoLeap,
                "YS",
                R,
                L
            ),
            (
                l(&[
                    "1999-01-01T00:00:00",
                    "2000-01-01T00:00:00",
                    "2001-01-01T00:00:00"
                ]),
                vec![1, 1, 0]
            )
        );
    }

    #[test]
    fn unsorted_times_are_refused() {
        let ts = [parse("2000-01-02"), parse("2000-01-01")];
        let e = bins(&ts, G, Freq::parse("1D").expect("freq"), L, L).unwrap_err();
        assert!(e.contains("not sorted"), "{e}");
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        fn calendar() -> impl Strategy<Value = Calendar> {
            prop_oneof![
                Just(Calendar::ProlepticGregorian),
                Just(Calendar::Standard),
                Just(Calendar::NoLeap),
                Just(Calendar::Day360),
            ]
        }

        fn freq() -> impl Strategy<Value = Freq> {
            (1u32..6, 0..5usize).prop_map(|(count, u)| Freq {
                count,
                unit: [
                    FreqUnit::Hour,
                    FreqUnit::Day,
                    FreqUnit::Week,
                    FreqUnit::MonthStart,
                    FreqUnit::YearStart,
                ][u],
            })
        }

        fn side() -> impl Strategy<Value = Side> {
            prop_oneof![Just(Side::Left), Just(Side::Right)]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_text_parses_or_is_refused(text in any::<String>()) {
                let _ = Freq::parse(&text);
            }

            /// Bins partition the samples in order, each sample lies inside its bin's edges
            /// (a day later for weekly bins closed on the right), edges follow each other, and
            /// labels are the edges `label` names.
            #[test]
            fn bins_partition_the_samples_inside_their_edges(
                cal in calendar(),
                f in freq(),
                closed in side(),
                label in side(),
                start_minutes in 0i64..(60 * 24 * 400),
                steps in proptest::collection::vec(0i64..(60 * 24 * 50), 1..40),
            ) {
                let enc = TimeEncoding::parse("minutes since 1999-11-30", Some(cal.name()))
                    .expect("encoding");
                let mut at_min = start_minutes;
                let mut times = Vec::new();
                for s in &steps {
                    times.push(enc.decode_i64(at_min).expect("date"));
                    at_min += s;
                }
                let weekdays = matches!(cal, Calendar::ProlepticGregorian | Calendar::Standard);
                let b = match bins(&times, cal, f, closed, label) {
                    Err(e) => {
                        prop_assert!(f.unit == FreqUnit::Week && !weekdays, "{e}");
                        return Ok(());
                    }
                    Ok(b) => b,
                };
                prop_assert_eq!(b.ranges.first().map(|r| r.0), Some(0));
                prop_assert_eq!(b.ranges.last().map(|r| r.1), Some(times.len() as u64));
                let shift = if f.unit == FreqUnit::Week && closed == Side::Right {
                    NANOS_PER_DAY
                } else {
                    0
                };
                for (j, (s, e)) in b.ranges.iter().enumerate() {
                    prop_assert!(s <= e);
                    if j > 0 {
                        prop_assert_eq!(b.ranges[j - 1].1, *s);
                        prop_assert_eq!(b.bounds[j - 1].1, b.bounds[j].0);
                    }
                    let (lo, hi) = b.bounds[j];
                    let (lo, hi) = (nanos(&lo, cal).expect("lo"), nanos(&hi, cal).expect("hi"));
                    prop_assert!(lo < hi);
                    let want = if label == Side::Left { b.bounds[j].0 } else { b.bounds[j].1 };
                    prop_assert_eq!(b.labels[j], want);
                    for t in &times[*s as usize..*e as usize] {
                        let t = nanos(t, cal).expect("t");
                        let inside = match closed {
                            Side::Left => lo <= t && t < hi,
                            Side::Right if shift > 0 => lo + shift <= t && t < hi + shift,
                            Side::Right => lo < t && t <= hi,
                        };
                        prop_assert!(inside, "bin {j}: {lo} {t} {hi}");
                    }
                }
                // Fixed-length bins run from the first sample's bin to the last's.
                if matches!(f.unit, FreqUnit::Hour | FreqUnit::Day) {
                    prop_assert!(b.ranges[0].1 > 0);
                    let last = b.ranges[b.ranges.len() - 1];
                    prop_assert!(last.1 > last.0);
                }
            }
        }
    }
}
