//! `cubeforge convert`: a copy of one input (a file, several files joined along a dimension, or
//! a store) into a Zarr cube without a recipe, like `nccopy` or `gdal_translate`. It writes the
//! recipe the flags stand for and builds it, so that it plans, reports progress, resumes and
//! fails exactly as `cubeforge build` of that recipe does.

use std::fmt::Write as _;

use indexmap::IndexMap;

use crate::error::{Error, Result};

/// What `convert` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct ConvertSpec {
    /// Sources: paths, URLs or globs (several are joined along `concat`).
    pub sources: Vec<String>,
    /// The destination cube.
    pub dest: String,
    /// The dimension several files join along.
    pub concat: Option<String>,
    /// Where each file's position along `concat` comes from when it has no coordinate:
    /// `pattern:FMT`, `attribute:NAME`, `metadata:ITEM` or `tag:NAME`.
    pub time_from: Option<String>,
    /// Variables to keep (coordinates stay); all when empty.
    pub variables: Vec<String>,
    /// Chunk lengths by dimension (`time=100,lat=64`); dimensions not given keep the input's.
    pub chunks: IndexMap<String, u64>,
    /// Zarr format of the cube (2 or 3).
    pub zarr_format: u8,
    /// Names of a raster's bands (one variable per band).
    pub bands: Vec<String>,
    /// The group of a NetCDF-4/HDF5 file or Zarr store to read.
    pub group: String,
}

/// `--chunks time=100,lat=64,lon=64` as a map.
///
/// # Errors
/// [`Error::Other`] naming the part that is not `NAME=LENGTH` with a positive length.
pub fn parse_chunks(text: &str) -> Result<IndexMap<String, u64>> {
    let mut out = IndexMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || {
            Error::Other(format!(
                "--chunks: '{part}' is not DIM=LENGTH with a positive length (e.g. time=100)"
            ))
        };
        let (name, len) = part.split_once('=').ok_or_else(bad)?;
        let len: u64 = len.trim().parse().map_err(|_| bad())?;
        if len == 0 || name.trim().is_empty() {
            return Err(bad());
        }
        out.insert(name.trim().to_string(), len);
    }
    Ok(out)
}

/// A YAML scalar that reads back as exactly `s` (JSON strings are YAML strings).
fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn list(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|s| quoted(s)).collect();
    format!("[{}]", q.join(", "))
}

/// `--time-from KIND:VALUE` as the recipe's `time_from` mapping.
fn time_from(text: &str) -> Result<String> {
    let (kind, value) = text.split_once(':').unwrap_or(("", ""));
    match kind {
        "pattern" | "attribute" | "metadata" | "tag" if !value.is_empty() => {
            Ok(format!("{{{kind}: {}}}", quoted(value)))
        }
        _ => Err(Error::Other(format!(
            "--time-from: '{text}' is not pattern:FORMAT, attribute:NAME, metadata:ITEM or \
             tag:NAME (e.g. pattern:oc_%Y%m%d.nc)"
        ))),
    }
}

/// The recipe `spec` stands for, as YAML text.
///
/// # Errors
/// [`Error::Other`] for flags that cannot make a recipe (no source, a bad `--time-from`, an
/// unknown Zarr format).
pub fn recipe_text(spec: &ConvertSpec) -> Result<String> {
    if spec.sources.is_empty() {
        return Err(Error::Other("convert: give at least one source".into()));
    }
    if !matches!(spec.zarr_format, 2 | 3) {
        return Err(Error::Other(format!(
            "--zarr-format: {} is not 2 or 3",
            spec.zarr_format
        )));
    }
    let mut y = String::from("version: 1\ninputs:\n  source:\n");
    if spec.sources.len() == 1 {
        let _ = writeln!(y, "    url: {}", quoted(&spec.sources[0]));
    } else {
        let _ = writeln!(y, "    url: {}", list(&spec.sources));
    }
    if let Some(c) = &spec.concat {
        let _ = writeln!(y, "    concat: {}", quoted(c));
    }
    if let Some(t) = &spec.time_from {
        let _ = writeln!(y, "    time_from: {}", time_from(t)?);
    }
    if !spec.bands.is_empty() {
        let _ = writeln!(y, "    bands: {}", list(&spec.bands));
    }
    if !spec.group.is_empty() {
        let _ = writeln!(y, "    group: {}", quoted(&spec.group));
    }
    let _ = writeln!(y, "output:\n  url: {}", quoted(&spec.dest));
    let _ = writeln!(y, "  zarr_format: {}", spec.zarr_format);
    y.push_str("  chunks_default: input\n");
    if !spec.chunks.is_empty() {
        y.push_str("  chunks:\n");
        for (k, v) in &spec.chunks {
            let _ = writeln!(y, "    {}: {v}", quoted(k));
        }
    }
    if !spec.variables.is_empty() {
        let _ = writeln!(y, "operations:\n  - keep: {}", list(&spec.variables));
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::RecipeDoc;

    #[test]
    fn chunks_parse_and_refuse_what_is_not_a_length() {
        let c = parse_chunks("time=100, lat=64,lon=64").unwrap();
        assert_eq!(c.get("time"), Some(&100));
        assert_eq!(c.get("lon"), Some(&64));
        for bad in ["time", "time=0", "time=x", "=5"] {
            let e = parse_chunks(bad).unwrap_err().to_string();
            assert!(e.contains("--chunks") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn the_recipe_reads_back_with_every_flag() {
        let spec = ConvertSpec {
            sources: vec!["in/a b.nc".into()],
            dest: "out: x.zarr".into(),
            concat: None,
            time_from: None,
            variables: vec!["sst".into(), "chl".into()],
            chunks: parse_chunks("time=10,lat=4").unwrap(),
            zarr_format: 3,
            bands: Vec::new(),
            group: "grp1".into(),
        };
        let text = recipe_text(&spec).unwrap();
        let doc = RecipeDoc::parse("convert", &text).unwrap();
        let input = &doc.recipe.inputs["source"];
        assert_eq!(input.group, "grp1");
        assert_eq!(doc.recipe.output.url, "out: x.zarr");
        assert_eq!(doc.recipe.output.zarr_format, 3);
        assert_eq!(doc.recipe.output.chunks.get("lat"), Some(&4));
        assert_eq!(doc.recipe.operations.len(), 1);
        assert_eq!(doc.recipe.operations[0].name(), "keep");
    }

    #[test]
    fn a_bad_time_from_names_the_forms() {
        let spec = ConvertSpec {
            sources: vec!["a.nc".into(), "b.nc".into()],
            dest: "o".into(),
            concat: Some("time".into()),
            time_from: Some("file:%Y".into()),
            zarr_format: 2,
            ..ConvertSpec::default()
        };
        let e = recipe_text(&spec).unwrap_err().to_string();
        assert!(e.contains("pattern:FORMAT"), "{e}");
    }
}
