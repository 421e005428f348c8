//! The time of a file that has no coordinate along the dimension files are joined along, from
//! its name (strftime codes), a global attribute, a GDAL metadata item or a TIFF tag
//! (`time_from` of a recipe's input).

use chrono::format::{parse, Parsed, StrftimeItems};
use chrono::{Datelike, NaiveTime, Timelike};
use serde_json::Value;

use crate::cf::time::{CfDateTime, TimeEncoding};
use crate::error::{Error, Result};
use crate::lower::Input;
use crate::recipe::TimeFrom;

/// The calendar times taken from files are in.
pub const CALENDAR: &str = "proleptic_gregorian";

/// The time of `input` (read from `file`) by `from`.
///
/// # Errors
/// [`Error::Combine`] naming the file: a name the pattern does not match, an attribute, item
/// or tag that is missing or is not a date-time.
pub fn time_of(from: &TimeFrom, file: &str, input: &Input) -> Result<CfDateTime> {
    let fail = |reason: String| Error::Combine {
        location: file.to_string(),
        reason,
    };
    match from {
        TimeFrom::Pattern(p) => {
            let name = file_name(file);
            from_pattern(p, name).ok_or_else(|| {
                fail(format!(
                    "time_from pattern {p:?} does not match the file name {name:?}"
                ))
            })
        }
        TimeFrom::Attribute(key) | TimeFrom::Metadata(key) | TimeFrom::Tag(key) => {
            let keys: Vec<String> = match from {
                TimeFrom::Tag(k) => vec![
                    k.clone(),
                    format!("TIFFTAG_{}", k.to_uppercase()),
                    k.to_uppercase(),
                ],
                _ => vec![key.clone()],
            };
            let found = keys.iter().find_map(|k| {
                input.attrs.get(k).or_else(|| {
                    // A raster's metadata items may sit on its data variable.
                    input.variables.iter().find_map(|v| v.attrs.get(k))
                })
            });
            let Some(value) = found else {
                return Err(fail(format!(
                    "time_from: no {} in the file (its global attributes: {})",
                    from.describe(),
                    input.attrs.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            };
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            parse_time_text(&text).ok_or_else(|| {
                fail(format!(
                    "time_from: {} is {text:?}, not a date-time",
                    from.describe()
                ))
            })
        }
    }
}

/// The last segment of a path or URL.
#[must_use]
pub fn file_name(location: &str) -> &str {
    let trimmed = location.trim_end_matches('/');
    trimmed.rsplit(['/', '\\']).next().unwrap_or(trimmed)
}

/// The date-time `name` holds by `pattern` (strftime codes; the whole name must match), at
/// midnight when the pattern gives no time of day.
#[must_use]
pub fn from_pattern(pattern: &str, name: &str) -> Option<CfDateTime> {
    let mut parsed = Parsed::new();
    parse(&mut parsed, name, StrftimeItems::new(pattern)).ok()?;
    let date = parsed.to_naive_date().ok()?;
    let time = parsed.to_naive_time().unwrap_or(NaiveTime::MIN);
    Some(CfDateTime {
        year: i64::from(date.year()),
        month: u8::try_from(date.month()).ok()?,
        day: u8::try_from(date.day()).ok()?,
        hour: u8::try_from(time.hour()).ok()?,
        minute: u8::try_from(time.minute()).ok()?,
        second: u8::try_from(time.second()).ok()?,
        nanosecond: time.nanosecond(),
    })
}

/// A date-time text: ISO 8601 and what CF reference dates allow (`2020-01-05`,
/// `2020-01-05T10:30:00Z`, `2020-01-05 10:30:00`), and TIFF's `2020:01:05 10:30:00`.
#[must_use]
pub fn parse_time_text(text: &str) -> Option<CfDateTime> {
    let text = text.trim();
    // TIFF's DateTime: colons in the date.
    let tiff = text.len() >= 10
        && text.as_bytes().get(4) == Some(&b':')
        && text.as_bytes().get(7) == Some(&b':');
    let text = if tiff {
        format!("{}-{}-{}", &text[..4], &text[5..7], &text[8..])
    } else {
        text.to_string()
    };
    TimeEncoding::parse(&format!("seconds since {text}"), Some(CALENDAR))
        .ok()
        .map(|e| e.reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> CfDateTime {
        CfDateTime {
            year: y,
            month: mo,
            day: d,
            hour: h,
            minute: mi,
            second: s,
            nanosecond: 0,
        }
    }

    #[test]
    fn file_names_give_their_date_by_pattern() {
        assert_eq!(
            from_pattern("oc_%Y%m%d.nc", "oc_20200105.nc"),
            Some(at(2020, 1, 5, 0, 0, 0))
        );
        assert_eq!(
            from_pattern("S2_%Y%m%dT%H%M%S.tif", "S2_20210612T103021.tif"),
            Some(at(2021, 6, 12, 10, 30, 21))
        );
        assert_eq!(
            from_pattern("day_%Y_%j.nc", "day_2020_366.nc"),
            Some(at(2020, 12, 31, 0, 0, 0))
        );
        // The whole name must match.
        assert_eq!(from_pattern("oc_%Y%m%d.nc", "oc_20200105.nc.bak"), None);
        assert_eq!(from_pattern("oc_%Y%m%d.nc", "xx_20200105.nc"), None);
        assert_eq!(from_pattern("oc_%Y%m%d.nc", "oc_20201305.nc"), None);
        assert_eq!(file_name("s3://b/src/oc_1.nc"), "oc_1.nc");
        assert_eq!(file_name("/a/b/c.zarr/"), "c.zarr");
    }

    #[test]
    fn date_time_texts_parse() {
        assert_eq!(parse_time_text("2020-01-05"), Some(at(2020, 1, 5, 0, 0, 0)));
        assert_eq!(
            parse_time_text("2020-01-05T10:30:00Z"),
            Some(at(2020, 1, 5, 10, 30, 0))
        );
        assert_eq!(
            parse_time_text("2020:01:05 10:30:07"),
            Some(at(2020, 1, 5, 10, 30, 7))
        );
        assert_eq!(parse_time_text("yesterday"), None);
    }
}
