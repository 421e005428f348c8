//! Recipes: a YAML document (`version: 1`) naming inputs, an output and an ordered list of
//! operations. A recipe is data: it is parsed and validated completely, with errors naming the
//! field and its line, before any byte of data is read. See `docs/recipes.md`.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A parsed recipe.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Schema version; only 1 exists.
    pub version: u32,
    /// Inputs by name.
    pub inputs: IndexMap<String, InputSpec>,
    /// The output cube.
    pub output: OutputSpec,
    /// Operations, applied in order; each is a one-key map (`- keep: [a, b]`).
    #[serde(default, with = "serde_norway::with::singleton_map_recursive")]
    pub operations: Vec<Operation>,
}

/// One input store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Path or URL.
    pub url: String,
    /// Group within the store.
    #[serde(default)]
    pub group: String,
}

/// The output cube.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Path or URL.
    pub url: String,
    /// 2 (default, as the tutorial writes) or 3.
    #[serde(default = "default_format")]
    pub zarr_format: u8,
    /// Chunk length per dimension; dimensions not listed are one chunk.
    #[serde(default)]
    pub chunks: IndexMap<String, u64>,
    /// Shard length per dimension (Zarr v3 only); each shard holds whole chunks.
    #[serde(default)]
    pub shards: Option<IndexMap<String, u64>>,
    /// Compressor; default as zarr-python (v2: Blosc lz4 level 5 byte-shuffle; v3: zstd level 0).
    #[serde(default, with = "serde_norway::with::singleton_map_recursive")]
    pub compressor: Option<Compressor>,
    /// Global attributes to set on the output.
    #[serde(default)]
    pub attrs: Map<String, Value>,
}

fn default_format() -> u8 {
    2
}

pub use crate::formats::zarr::writer::Compressor;

/// A label slice (`{start: 35, stop: -5}`), with xarray's `.sel(dim=slice(start, stop))` meaning.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSlice {
    /// First label (inclusive); absent means from the beginning.
    #[serde(default)]
    pub start: Option<Label>,
    /// Last label (inclusive); absent means to the end.
    #[serde(default)]
    pub stop: Option<Label>,
}

/// A coordinate label: a number or a date-time text (`"2000-01-01"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    untagged,
    expecting = "expected a number or a date-time text such as \"2000-01-01\""
)]
pub enum Label {
    /// A number.
    Number(f64),
    /// A date-time.
    Text(String),
}

/// A positional slice (`{start: 0, stop: 10, step: 1}`), Python slice semantics without negatives.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSlice {
    /// First position.
    #[serde(default)]
    pub start: Option<u64>,
    /// One past the last position.
    #[serde(default)]
    pub stop: Option<u64>,
}

/// `drop_all_nan`: drop positions along `dim` where `variable` is NaN everywhere else.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropAllNan {
    /// The variable tested.
    pub variable: String,
    /// The dimension whose positions are dropped.
    pub dim: String,
}

/// `mask`: set variables to NaN where a condition is false (`xr.where(cond, var, nan)`), keeping
/// each variable's own dimension order.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mask {
    /// A boolean (or 0/1) variable.
    #[serde(rename = "where")]
    pub condition: String,
    /// Variables to mask.
    pub variables: Vec<String>,
}

/// `season`: day-of-year features `sin(2*pi*doy/365.25)` and `cos(…)`, float32, broadcast to
/// the dimensions of `like`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Season {
    /// Name of the sine feature.
    pub sin: String,
    /// Name of the cosine feature.
    pub cos: String,
    /// A variable whose dimensions the features take.
    pub like: String,
    /// The time dimension (default `time`).
    #[serde(default = "default_time")]
    pub time: String,
}

fn default_time() -> String {
    "time".into()
}

/// One operation.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Operation {
    /// Keep only these variables (coordinates stay).
    Keep(Vec<String>),
    /// Drop these variables.
    Drop(Vec<String>),
    /// Rename variables (and dimensions of the same name).
    Rename(IndexMap<String, String>),
    /// Select by coordinate labels.
    Sel(IndexMap<String, LabelSlice>),
    /// Select by position.
    Isel(IndexMap<String, IndexSlice>),
    /// Drop positions where a variable is all-NaN over its other dimensions.
    DropAllNan(DropAllNan),
    /// Sort along a dimension by its coordinate (ascending).
    Sortby(String),
    /// Assign variables from expressions.
    Assign(IndexMap<String, String>),
    /// Set variables to NaN where a condition does not hold.
    Mask(Mask),
    /// Seasonal day-of-year features.
    Season(Season),
    /// Cast variables to a dtype.
    Astype(IndexMap<String, String>),
    /// Set attributes of variables (`{variable: {key: value}}`); `_global` for the dataset.
    Attrs(IndexMap<String, Map<String, Value>>),
}

impl Operation {
    /// The operation's key in the recipe.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Keep(_) => "keep",
            Operation::Drop(_) => "drop",
            Operation::Rename(_) => "rename",
            Operation::Sel(_) => "sel",
            Operation::Isel(_) => "isel",
            Operation::DropAllNan(_) => "drop_all_nan",
            Operation::Sortby(_) => "sortby",
            Operation::Assign(_) => "assign",
            Operation::Mask(_) => "mask",
            Operation::Season(_) => "season",
            Operation::Astype(_) => "astype",
            Operation::Attrs(_) => "attrs",
        }
    }
}

/// A recipe together with its source text, for messages that point at lines.
#[derive(Debug, Clone)]
pub struct RecipeDoc {
    /// Where it was read from.
    pub path: String,
    /// The text.
    pub text: String,
    /// The parsed recipe.
    pub recipe: Recipe,
    /// Line (1-based) of each operation.
    pub op_lines: Vec<usize>,
}

impl RecipeDoc {
    /// Parse a recipe document.
    ///
    /// # Errors
    /// [`Error::Recipe`] naming the line and the field for syntax errors, unknown keys or
    /// operations, wrong types, an unsupported version, or invalid output settings.
    pub fn parse(path: &str, text: &str) -> Result<RecipeDoc> {
        let recipe: Recipe = serde_norway::from_str(text).map_err(|e| {
            let line = e.location().map_or(0, |l| l.line());
            Error::Recipe {
                location: format!("{path}:{line}"),
                message: e.to_string(),
            }
        })?;
        let doc = RecipeDoc {
            path: path.to_string(),
            op_lines: operation_lines(text),
            text: text.to_string(),
            recipe,
        };
        doc.validate_static()?;
        Ok(doc)
    }

    /// An error at `line` about `field`.
    #[must_use]
    pub fn error_at(&self, line: usize, field: &str, message: impl Into<String>) -> Error {
        Error::Recipe {
            location: format!("{}:{line}", self.path),
            message: format!("{field}: {}", message.into()),
        }
    }

    /// The line of a top-level or nested key (first occurrence), 0 when not found.
    #[must_use]
    pub fn line_of(&self, key: &str) -> usize {
        self.text
            .lines()
            .position(|l| {
                let t = l.trim_start();
                t.starts_with(&format!("{key}:")) || t.starts_with(&format!("- {key}:"))
            })
            .map_or(0, |i| i + 1)
    }

    /// The line of operation `i`.
    #[must_use]
    pub fn op_line(&self, i: usize) -> usize {
        self.op_lines
            .get(i)
            .copied()
            .unwrap_or_else(|| self.line_of("operations"))
    }

    fn validate_static(&self) -> Result<()> {
        let r = &self.recipe;
        if r.version != 1 {
            return Err(self.error_at(
                self.line_of("version"),
                "version",
                format!(
                    "unsupported recipe version {} (this cubeforge reads version 1)",
                    r.version
                ),
            ));
        }
        if r.inputs.is_empty() {
            return Err(self.error_at(
                self.line_of("inputs"),
                "inputs",
                "at least one input is needed",
            ));
        }
        let out = &r.output;
        if !matches!(out.zarr_format, 2 | 3) {
            return Err(self.error_at(
                self.line_of("zarr_format"),
                "output.zarr_format",
                format!("must be 2 or 3, not {}", out.zarr_format),
            ));
        }
        for (dim, n) in &out.chunks {
            if *n == 0 {
                return Err(self.error_at(
                    self.line_of("chunks"),
                    &format!("output.chunks.{dim}"),
                    "chunk size must be at least 1",
                ));
            }
        }
        if let Some(shards) = &out.shards {
            if out.zarr_format != 3 {
                return Err(self.error_at(
                    self.line_of("shards"),
                    "output.shards",
                    "sharding needs zarr_format: 3",
                ));
            }
            for (dim, n) in shards {
                let chunk = out.chunks.get(dim).copied();
                if *n == 0 || chunk.is_some_and(|c| n % c != 0) {
                    return Err(self.error_at(
                        self.line_of("shards"),
                        &format!("output.shards.{dim}"),
                        format!(
                            "shard length {n} must be a positive multiple of the chunk length {}",
                            chunk.unwrap_or(0)
                        ),
                    ));
                }
            }
        }
        for (i, op) in r.operations.iter().enumerate() {
            let field = format!("operations[{i}].{}", op.name());
            let line = self.op_line(i);
            match op {
                Operation::Assign(map) => {
                    for (name, text) in map {
                        crate::expr::parse(text).map_err(|e| {
                            self.error_at(
                                line,
                                &format!("{field}.{name}"),
                                format!("invalid expression '{text}': {e}"),
                            )
                        })?;
                    }
                }
                Operation::Astype(map) => {
                    for (name, dt) in map {
                        if crate::dtype::DType::from_name(dt).is_none() {
                            return Err(self.error_at(line, &format!("{field}.{name}"), format!("unknown dtype '{dt}' (use bool, int8..int64, uint8..uint64, float32, float64)")));
                        }
                    }
                }
                Operation::Keep(v) | Operation::Drop(v) if v.is_empty() => {
                    return Err(self.error_at(line, &field, "give at least one variable"));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Lines (1-based) where the items of the top-level `operations:` list start.
fn operation_lines(text: &str) -> Vec<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines.iter().position(|l| l.starts_with("operations:")) else {
        return Vec::new();
    };
    let mut indent = None;
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate().skip(start + 1) {
        let trimmed = l.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let ind = l.len() - trimmed.len();
        if ind == 0 && !trimmed.starts_with('-') {
            break; // the next top-level key
        }
        if trimmed.starts_with("- ") || trimmed == "-" {
            match indent {
                None => {
                    indent = Some(ind);
                    out.push(i + 1);
                }
                Some(n) if n == ind => out.push(i + 1),
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "version: 1
inputs:
  io: {url: in.zarr}
output:
  url: out.zarr
  chunks: {time: 100}
operations:
  # a comment
  - keep: [a, b]
  - rename: {a: c}
  - assign:
      d: \"log(c)\"
";

    #[test]
    fn parses_and_finds_operation_lines() {
        let doc = RecipeDoc::parse("r.yaml", GOOD).unwrap();
        assert_eq!(doc.recipe.operations.len(), 3);
        assert_eq!(doc.op_lines, vec![9, 10, 11]);
        assert_eq!(doc.recipe.output.zarr_format, 2);
    }

    #[test]
    fn errors_name_line_and_field() {
        let bad_op = GOOD.replace("- rename: {a: c}", "- renam: {a: c}");
        let e = RecipeDoc::parse("r.yaml", &bad_op).unwrap_err().to_string();
        assert!(e.contains("r.yaml:10") && e.contains("renam"), "{e}");
        let bad_key = GOOD.replace(
            "  chunks: {time: 100}",
            "  chunks: {time: 100}\n  colour: red",
        );
        let e = RecipeDoc::parse("r.yaml", &bad_key)
            .unwrap_err()
            .to_string();
        assert!(e.contains("r.yaml:7") && e.contains("colour"), "{e}");
        let zero = GOOD.replace("time: 100", "time: 0");
        let e = RecipeDoc::parse("r.yaml", &zero).unwrap_err().to_string();
        assert!(
            e.contains("r.yaml:6") && e.contains("output.chunks.time"),
            "{e}"
        );
        let expr = GOOD.replace("log(c)", "log(c");
        let e = RecipeDoc::parse("r.yaml", &expr).unwrap_err().to_string();
        assert!(
            e.contains("r.yaml:11") && e.contains("operations[2].assign.d"),
            "{e}"
        );
        let wrong_type = GOOD.replace("keep: [a, b]", "keep: 5");
        let e = RecipeDoc::parse("r.yaml", &wrong_type)
            .unwrap_err()
            .to_string();
        assert!(e.contains("r.yaml:9"), "{e}");
    }
}
