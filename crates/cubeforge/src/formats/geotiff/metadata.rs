//! GDAL's metadata tag (`GDAL_METADATA`, 42112): `<GDALMetadata><Item name="…" [sample="n"]
//! [role="…"] [domain="…"]>value</Item>…</GDALMetadata>`. Items of the default domain without a
//! sample are the dataset's; with one, band `n + 1`'s. Roles `scale`, `offset`, `description`
//! and `unittype` are a band's scale, offset, description and units.

/// One item of the default domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    /// Its name.
    pub name: String,
    /// The band (0-based) it belongs to, or `None` for the dataset.
    pub sample: Option<u16>,
    /// Its role, if any.
    pub role: Option<String>,
    /// Its value, entities decoded (twice, as GDAL reads it).
    pub value: String,
}

/// The default-domain items of `xml`, in order; anything unreadable is skipped.
pub(crate) fn items(xml: &str) -> Vec<Item> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find("<Item") {
        rest = &rest[at + 5..];
        let Some(tag_end) = rest.find('>') else { break };
        let head = &rest[..tag_end];
        let self_closing = head.ends_with('/');
        rest = &rest[tag_end + 1..];
        let value = if self_closing {
            String::new()
        } else {
            let Some(end) = rest.find("</Item>") else {
                break;
            };
            // GDAL escapes a value before its XML writer escapes it again, and unescapes it
            // once more after parsing: values are unescaped twice.
            let v = unescape(&unescape(&rest[..end]));
            rest = &rest[end + 7..];
            v
        };
        let attr = |key: &str| attribute(head, key);
        if attr("domain").is_some_and(|d| !d.is_empty()) {
            continue;
        }
        let Some(name) = attr("name") else { continue };
        let sample = match attr("sample") {
            Some(s) => match s.trim().parse::<u16>() {
                Ok(n) => Some(n),
                Err(_) => continue,
            },
            None => None,
        };
        out.push(Item {
            name,
            sample,
            role: attr("role"),
            value,
        });
    }
    out
}

/// The value of attribute `key` in a tag's head (`name="x" sample="0"`).
fn attribute(head: &str, key: &str) -> Option<String> {
    let mut from = 0;
    while let Some(at) = head[from..].find(key) {
        let start = from + at;
        let before_ok = start == 0 || head[..start].ends_with(char::is_whitespace);
        let after = head[start + key.len()..].trim_start();
        if before_ok {
            if let Some(after) = after.strip_prefix('=') {
                let after = after.trim_start();
                let quote = after.chars().next()?;
                if quote == '"' || quote == '\'' {
                    let body = &after[1..];
                    let end = body.find(quote)?;
                    return Some(unescape(&body[..end]));
                }
                return None;
            }
        }
        from = start + key.len();
    }
    None
}

/// XML entities decoded (`&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&#n;`, `&#xh;`).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn reads_gdal_items() {
        let xml =
            "<GDALMetadata>\n  <Item name=\"OFFSET\" sample=\"0\" role=\"offset\">12</Item>\n  \
                   <Item name=\"SCALE\" sample=\"0\" role=\"scale\">1.2</Item>\n  \
                   <Item name=\"ACQUISITION_START\">2020-01-02T03:04:05</Item>\n  \
                   <Item name=\"X\" domain=\"IMAGE_STRUCTURE\">y</Item>\n  \
                   <Item name=\"D\" sample=\"1\" role=\"description\">a &amp; b &lt;c&gt;</Item>\n\
                   </GDALMetadata>";
        let got = items(xml);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].name, "OFFSET");
        assert_eq!(got[0].sample, Some(0));
        assert_eq!(got[0].role.as_deref(), Some("offset"));
        assert_eq!(got[1].value, "1.2");
        assert_eq!(got[2].sample, None);
        assert_eq!(got[2].value, "2020-01-02T03:04:05");
        assert_eq!(got[3].value, "a & b <c>");
        assert_eq!(got[3].sample, Some(1));
    }

    #[test]
    fn values_are_unescaped_twice_as_gdal_writes_them() {
        let xml = "<GDALMetadata><Item name=\"XML_com.adobe.xmp\">&amp;lt;x:xmpmeta \
                   x=&amp;quot;a&amp;quot;&amp;gt;</Item></GDALMetadata>";
        let got = items(xml);
        assert_eq!(got[0].value, "<x:xmpmeta x=\"a\">");
    }

    proptest! {
        #[test]
        fn any_text_is_read_without_panic(s in ".{0,200}") {
            let _ = items(&s);
            let _ = items(&format!("<GDALMetadata><Item name=\"{s}\">{s}</Item>"));
        }

        #[test]
        fn escaped_values_read_back(name in "[A-Za-z_][A-Za-z0-9_]{0,12}", value in ".{0,60}", band in proptest::option::of(0u16..8)) {
            let escape = |v: &str| v.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
            let esc = escape(&escape(&value));
            let sample = band.map(|b| format!(" sample=\"{b}\"")).unwrap_or_default();
            let xml = format!("<GDALMetadata>\n  <Item name=\"{name}\"{sample}>{esc}</Item>\n</GDALMetadata>");
            let got = items(&xml);
            prop_assert_eq!(got.len(), 1);
            prop_assert_eq!(&got[0].name, &name);
            prop_assert_eq!(got[0].sample, band);
            prop_assert_eq!(&got[0].value, &value);
        }
    }
}
