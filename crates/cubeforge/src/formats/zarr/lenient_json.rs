//! Zarr metadata as Python writes it: `json.dumps` (zarr-python, xarray) writes non-finite
//! floats as the bare tokens `NaN`, `Infinity` and `-Infinity`, which are not JSON. A store
//! whose attributes hold one (`missing_value: NaN`, a `valid_min` of NaN) would otherwise be
//! refused whole. Outside strings, such tokens become the strings `"NaN"`, `"Infinity"` and
//! `"-Infinity"`, which is how the Zarr specification writes a non-finite fill value and how
//! [`crate::cf::json_number`] reads numbers.
//!
//! Why by hand: `serde_json` has no option for these tokens, and the rewrite is a small scan
//! over the text (strings and escapes tracked), checked by a property test against Python's
//! spelling of random documents.

use std::borrow::Cow;

use serde_json::Value;

const TOKENS: [&str; 3] = ["-Infinity", "Infinity", "NaN"];

/// `text` parsed as JSON, with the bare non-finite tokens Python writes read as strings.
///
/// # Errors
/// The parser's error for text that is not JSON even so.
pub(crate) fn parse(text: &str) -> serde_json::Result<Value> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(e) => match quote_non_finite(text) {
            Cow::Owned(fixed) => serde_json::from_str(&fixed),
            Cow::Borrowed(_) => Err(e),
        },
    }
}

/// `text` with every bare `NaN`, `Infinity` and `-Infinity` outside strings quoted.
fn quote_non_finite(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 2,
                b'"' => {
                    in_string = false;
                    i += 1;
                }
                _ => i += 1,
            }
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        let token = TOKENS.iter().find(|t| bytes[i..].starts_with(t.as_bytes()));
        let boundary = |j: usize| j >= bytes.len() || !bytes[j].is_ascii_alphanumeric();
        let starts = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        match token {
            Some(t) if starts && boundary(i + t.len()) => {
                let o = out.get_or_insert_with(|| String::with_capacity(text.len() + 16));
                o.push_str(&text[copied..i]);
                o.push('"');
                o.push_str(t);
                o.push('"');
                i += t.len();
                copied = i;
            }
            _ => i += 1,
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn python_spelling_of_non_finite_floats_is_read_as_strings() {
        let text = r#"{"missing_value": NaN, "range": [-Infinity, 1.5, Infinity], "s": "NaN, not a token", "e": "a \" NaN"}"#;
        assert_eq!(
            parse(text).unwrap(),
            json!({"missing_value": "NaN", "range": ["-Infinity", 1.5, "Infinity"],
                   "s": "NaN, not a token", "e": "a \" NaN"})
        );
        assert!(parse(r#"{"a": NaNx}"#).is_err());
        assert!(parse(r#"{"a": 1"#).is_err());
        assert_eq!(parse(r#"{"a": 1}"#).unwrap(), json!({"a": 1}));
    }

    /// A value with floats that may be non-finite, and its expected reading.
    fn doc() -> impl Strategy<Value = (String, Value)> {
        let leaf = prop_oneof![
            any::<i32>().prop_map(|n| (n.to_string(), json!(n))),
            prop_oneof![
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                -1e6..1e6f64
            ]
            .prop_map(|f| {
                if f.is_nan() {
                    ("NaN".to_string(), json!("NaN"))
                } else if f.is_infinite() {
                    let t = if f > 0.0 { "Infinity" } else { "-Infinity" };
                    (t.to_string(), json!(t))
                } else {
                    (serde_json::to_string(&f).unwrap(), json!(f))
                }
            }),
            "[ -~]{0,12}".prop_map(|s| (serde_json::to_string(&s).unwrap(), json!(s))),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(|items| {
                    let text = items
                        .iter()
                        .map(|(t, _)| t.clone())
                        .collect::<Vec<_>>()
                        .join(", ");
                    (
                        format!("[{text}]"),
                        Value::Array(items.into_iter().map(|(_, v)| v).collect()),
                    )
                }),
                prop::collection::vec(("[a-zA-Z]{1,6}", inner), 0..4).prop_map(|fields| {
                    let mut map = serde_json::Map::new();
                    let mut parts = Vec::new();
                    for (k, (t, v)) in fields {
                        // A repeated key is left out of the text and the expectation alike.
                        if !map.contains_key(&k) {
                            parts.push(format!("{}: {t}", serde_json::to_string(&k).unwrap()));
                            map.insert(k, v);
                        }
                    }
                    (format!("{{{}}}", parts.join(", ")), Value::Object(map))
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn random_documents_as_python_writes_them((text, want) in doc()) {
            prop_assert_eq!(parse(&text).unwrap(), want);
        }
    }
}
