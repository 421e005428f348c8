//! Recipes: a YAML document (`version: 1`) naming inputs, an output and an ordered list of
//! operations. A recipe is data: it is parsed and validated completely, with errors naming the
//! field and its line, before any byte of data is read. See `docs/recipes.md`.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

mod grid;

pub use grid::{
    check_batch, AnchorName, AnchorSpec, BatchSpec, BboxSpec, ExpandSpec, GridSpec, Method,
    MethodSpec, RegridSpec, ResolutionSpec, SizeSpec, VarOf,
};

/// A parsed recipe.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Schema version; only 1 exists.
    pub version: u32,
    /// Inputs by name.
    pub inputs: IndexMap<String, InputSpec>,
    /// The output cube; without one, `--output` must name where it goes (see
    /// [`RecipeDoc::check_output`]).
    #[serde(default)]
    pub output: OutputSpec,
    /// Operations, applied in order; each is a one-key map (`- keep: [a, b]`).
    #[serde(default, with = "serde_norway::with::singleton_map_recursive")]
    pub operations: Vec<Operation>,
    /// The target grid `regrid` brings inputs onto.
    #[serde(default)]
    pub grid: Option<GridSpec>,
}

/// One input: a store or file, or many files read as one dataset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Paths or URLs, each possibly a glob (`src/daily/oc_*.nc`); one text or a list of them.
    #[serde(deserialize_with = "one_or_many")]
    pub url: Vec<String>,
    /// Group within the store (a Zarr store, a NetCDF-4/HDF5 file).
    #[serde(default)]
    pub group: String,
    /// The dimension the files are joined along, ordered by its coordinate; needed when the
    /// urls name more than one file.
    #[serde(default)]
    pub concat: Option<String>,
    /// Where a file without the `concat` dimension's coordinate takes its value from.
    #[serde(default)]
    pub time_from: Option<TimeFrom>,
    /// Names of a raster's bands: one two-dimensional variable each.
    #[serde(default)]
    pub bands: Option<Vec<String>>,
    /// Operations applied to this input alone, before the inputs are merged.
    #[serde(default, with = "serde_norway::with::singleton_map_recursive")]
    pub operations: Vec<Operation>,
}

/// Where a file's time comes from when it has no coordinate along the `concat` dimension.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "TimeFromFields")]
pub enum TimeFrom {
    /// The file name, by strftime codes (`oc_%Y%m%d.nc`).
    Pattern(String),
    /// A global attribute holding a date-time text.
    Attribute(String),
    /// A GDAL metadata item (`ACQUISITION_START`), as the raster reader lists it in the
    /// global attributes.
    Metadata(String),
    /// A TIFF tag (`DateTime`: `YYYY:MM:DD HH:MM:SS`), as the raster reader lists it in the
    /// global attributes (`TIFFTAG_DATETIME` or the tag's name).
    Tag(String),
}

/// `time_from` as written: exactly one of these.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeFromFields {
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    attribute: Option<String>,
    #[serde(default)]
    metadata: Option<String>,
    #[serde(default)]
    tag: Option<String>,
}

impl TryFrom<TimeFromFields> for TimeFrom {
    type Error = String;

    fn try_from(f: TimeFromFields) -> std::result::Result<TimeFrom, String> {
        let given: Vec<TimeFrom> = [
            f.pattern.map(TimeFrom::Pattern),
            f.attribute.map(TimeFrom::Attribute),
            f.metadata.map(TimeFrom::Metadata),
            f.tag.map(TimeFrom::Tag),
        ]
        .into_iter()
        .flatten()
        .collect();
        match <[TimeFrom; 1]>::try_from(given) {
            Ok([one]) => Ok(one),
            Err(_) => {
                Err("time_from takes exactly one of pattern, attribute, metadata, tag".into())
            }
        }
    }
}

impl TimeFrom {
    /// The key and value as written in a recipe, for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            TimeFrom::Pattern(p) => format!("pattern {p:?}"),
            TimeFrom::Attribute(a) => format!("attribute {a:?}"),
            TimeFrom::Metadata(m) => format!("metadata item {m:?}"),
            TimeFrom::Tag(t) => format!("TIFF tag {t:?}"),
        }
    }
}

/// A text or a list of texts, as a list.
fn one_or_many<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged, expecting = "expected a path or URL, or a list of them")]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// The output cube.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Path or URL; empty when the recipe names none.
    #[serde(default)]
    pub url: String,
    /// 2 (default, as the tutorial writes) or 3.
    #[serde(default = "default_format")]
    pub zarr_format: u8,
    /// Chunk length per dimension; dimensions not listed are one chunk, or keep the input's
    /// chunking with `chunks_default: input`.
    #[serde(default)]
    pub chunks: IndexMap<String, u64>,
    /// The chunking of dimensions `chunks` does not list: `whole` (default, one chunk) or
    /// `input` (the input's chunk length along that dimension, as `xarray.to_zarr` keeps the
    /// chunking a NetCDF file had).
    #[serde(default)]
    pub chunks_default: ChunksDefault,
    /// Shard length per dimension (Zarr v3 only); each shard holds whole chunks.
    #[serde(default)]
    pub shards: Option<IndexMap<String, u64>>,
    /// Compressor; default as zarr-python (v2: Blosc lz4 level 5 byte-shuffle; v3: zstd level 0).
    #[serde(default, with = "serde_norway::with::singleton_map_recursive")]
    pub compressor: Option<Compressor>,
    /// Global attributes to set on the output.
    #[serde(default)]
    pub attrs: Map<String, Value>,
    /// The training batch shape each variable's chunks must tile, per dimension.
    #[serde(default)]
    pub batch: BatchSpec,
}

/// The chunking of dimensions a recipe's `chunks` does not list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunksDefault {
    /// One chunk along the whole dimension.
    #[default]
    Whole,
    /// The input's chunk length along it.
    Input,
}

fn default_format() -> u8 {
    2
}

impl Default for OutputSpec {
    fn default() -> OutputSpec {
        OutputSpec {
            url: String::new(),
            zarr_format: default_format(),
            chunks: IndexMap::new(),
            chunks_default: ChunksDefault::Whole,
            shards: None,
            compressor: None,
            attrs: Map::new(),
            batch: BatchSpec::new(),
        }
    }
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

/// `resample`: one value per time bin along `dim`, as xarray's
/// `ds.resample(dim=freq, closed=…, label=…).how()`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resample {
    /// The time dimension (its coordinate must be a CF time).
    pub dim: String,
    /// The bin length: an optional positive count and one of `H` (or `h`), `D`, `W`, `MS`,
    /// `YS` (`1D`, `6H`, `2W`, `MS`, `YS`).
    pub freq: String,
    /// What each bin's values become.
    pub how: ResampleHow,
    /// Which side of a bin is inside it (default `left`).
    #[serde(default)]
    pub closed: Side,
    /// Which edge labels a bin (default `left`).
    #[serde(default)]
    pub label: Side,
}

/// A side of a time bin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The start.
    #[default]
    Left,
    /// The end.
    Right,
}

/// What `resample` makes of each bin's values (NaN skipped, as xarray's `skipna`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResampleHow {
    /// The mean.
    Mean,
    /// The sum (0 when every value is NaN).
    Sum,
    /// The minimum.
    Min,
    /// The maximum.
    Max,
    /// How many values are not NaN.
    Count,
    /// The first value that is not NaN.
    First,
    /// The last value that is not NaN.
    Last,
    /// The median.
    Median,
    /// The population standard deviation (ddof 0).
    Std,
}

impl ResampleHow {
    /// Its name in a recipe.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ResampleHow::Mean => "mean",
            ResampleHow::Sum => "sum",
            ResampleHow::Min => "min",
            ResampleHow::Max => "max",
            ResampleHow::Count => "count",
            ResampleHow::First => "first",
            ResampleHow::Last => "last",
            ResampleHow::Median => "median",
            ResampleHow::Std => "std",
        }
    }
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
    /// Rename dimensions, with their coordinates (`{valid_time: time}`).
    RenameDims(IndexMap<String, String>),
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
    /// One value per time bin along a dimension, with a `DIM_bnds` variable of the bins.
    Resample(Resample),
    /// Gridded variables onto the recipe's `grid`, with GDAL's resampling.
    Regrid(RegridSpec),
    /// Static variables given another variable's dimension.
    Expand(ExpandSpec),
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
            Operation::RenameDims(_) => "rename_dims",
            Operation::Resample(_) => "resample",
            Operation::Regrid(_) => "regrid",
            Operation::Expand(_) => "expand",
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
    /// Where the operations in `recipe.operations` are, as messages name them: `operations`,
    /// or `inputs.NAME.operations` in the view of one input ([`RecipeDoc::for_input`]).
    pub ops_field: String,
    /// The line after the last operation's (`usize::MAX`: the end of the text).
    pub ops_end: usize,
}

impl RecipeDoc {
    /// Parse a recipe document.
    ///
    /// # Errors
    /// [`Error::Recipe`] naming the line and the field for syntax errors, unknown keys or
    /// operations, wrong types, an unsupported version, or invalid output settings.
    pub fn parse(path: &str, text: &str) -> Result<RecipeDoc> {
        // A byte-order mark is no part of the document.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let yaml_error = |e: serde_norway::Error| {
            let line = e.location().map_or(1, |l| l.line());
            Error::Recipe {
                location: format!("{path}:{line}"),
                message: e.to_string(),
            }
        };
        if let Some(line) = flow_too_deep(text) {
            return Err(Error::Recipe {
                location: format!("{path}:{line}"),
                message: format!("YAML nested deeper than {MAX_FLOW_DEPTH} levels of [ ] or {{ }}"),
            });
        }
        // First as plain YAML, which refuses a key given twice in a mapping (the typed pass
        // below would keep the last one silently), then as a recipe.
        serde_norway::from_str::<serde_norway::Value>(text)
            .map_err(|e| duplicate_key(path, text, &e).unwrap_or_else(|| yaml_error(e)))?;
        let recipe: Recipe = serde_norway::from_str(text).map_err(yaml_error)?;
        let doc = RecipeDoc {
            path: path.to_string(),
            op_lines: operation_lines(text),
            text: text.to_string(),
            recipe,
            ops_field: "operations".into(),
            ops_end: usize::MAX,
        };
        doc.validate_static()?;
        for name in doc.recipe.inputs.keys() {
            if let Some(view) = doc.for_input(name) {
                view.validate_inputs_ops()?;
            }
        }
        Ok(doc)
    }

    /// The view of the recipe that input `name`'s own operations are applied with: its
    /// `recipe.operations` are the input's, and lines and fields point at them
    /// (`inputs.NAME.operations[i]`); `None` for no such input.
    #[must_use]
    pub fn for_input(&self, name: &str) -> Option<RecipeDoc> {
        let spec = self.recipe.inputs.get(name)?;
        let (op_lines, ops_end) = input_operation_lines(&self.text, name, spec.operations.len());
        let mut recipe = self.recipe.clone();
        recipe.operations = spec.operations.clone();
        recipe.output.attrs = Map::new();
        Some(RecipeDoc {
            path: self.path.clone(),
            text: self.text.clone(),
            recipe,
            op_lines,
            ops_field: format!("inputs.{name}.operations"),
            ops_end,
        })
    }

    /// The recipe without operations or output attributes (the view of an input that has no
    /// entry in the recipe, given by other means).
    #[must_use]
    pub fn without_operations(&self) -> RecipeDoc {
        let mut doc = self.clone();
        doc.recipe.operations.clear();
        doc.recipe.output.attrs = Map::new();
        doc.op_lines.clear();
        doc
    }

    /// The field of operation `i`, named `name`: `operations[i].name`.
    #[must_use]
    pub fn op_field(&self, i: usize, name: &str) -> String {
        format!("{}[{i}].{name}", self.ops_field)
    }

    /// The line of input `name`'s key, or of `inputs`.
    #[must_use]
    pub fn input_line(&self, name: &str) -> usize {
        input_key_line(&self.text, name).map_or_else(|| self.line_of("inputs"), |(l, _)| l)
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

    /// The line where `key` of operation `i` is given (a key of its mapping, as `name:` or
    /// `"name":`, in block or flow style), or the operation's line when not found.
    #[must_use]
    pub fn key_line(&self, i: usize, key: &str) -> usize {
        let start = self.op_line(i).max(1);
        let end = self.op_lines.get(i + 1).copied().unwrap_or(self.ops_end);
        let forms = [
            format!("{key}:"),
            format!("\"{key}\":"),
            format!("'{key}':"),
        ];
        let is_key_at = |l: &str, at: usize| {
            l[..at]
                .chars()
                .next_back()
                .is_none_or(|c| matches!(c, ' ' | '{' | ',' | '-' | '\t'))
        };
        self.text
            .lines()
            .enumerate()
            .skip(start - 1)
            .take_while(|(n, _)| n + 1 < end)
            .find(|(_, l)| {
                forms
                    .iter()
                    .any(|f| l.match_indices(f.as_str()).any(|(at, _)| is_key_at(l, at)))
            })
            .map_or(start, |(n, _)| n + 1)
    }

    /// The first line of operation `i` holding `needle`, or the operation's line.
    fn text_line(&self, i: usize, needle: &str) -> usize {
        let start = self.op_line(i).max(1);
        if needle.is_empty() {
            return start;
        }
        let end = self.op_lines.get(i + 1).copied().unwrap_or(self.ops_end);
        self.text
            .lines()
            .enumerate()
            .skip(start - 1)
            .take_while(|(n, _)| n + 1 < end)
            .find(|(_, l)| l.contains(needle))
            .map_or(start, |(n, _)| n + 1)
    }

    /// The line of the character at byte `offset` of the value of `key` in operation `i`: the
    /// key's line, or for a literal block scalar (`key: |`) the line of that character.
    #[must_use]
    pub fn value_line(&self, i: usize, key: &str, value: &str, offset: usize) -> usize {
        let line = self.key_line(i, key);
        let block = self
            .text
            .lines()
            .nth(line.saturating_sub(1))
            .is_some_and(|l| {
                let t = l.trim_end();
                t.ends_with('|')
                    || t.ends_with("|-")
                    || t.ends_with("|+")
                    || t.ends_with('>')
                    || t.ends_with(">-")
                    || t.ends_with(">+")
            });
        if !block {
            return line;
        }
        let literal = !self.text.lines().nth(line - 1).unwrap_or("").contains('>');
        let before = value.get(..offset.min(value.len())).unwrap_or(value);
        line + 1
            + if literal {
                before.trim_end().matches('\n').count()
            } else {
                0
            }
    }

    /// Refuse a recipe that names no output when none is given (`--output`) either.
    ///
    /// # Errors
    /// [`Error::Recipe`] at the `output` line (or line 1) naming `output.url`.
    pub fn check_output(&self, given: Option<&str>) -> Result<()> {
        if !self.recipe.output.url.is_empty() || given.is_some_and(|g| !g.is_empty()) {
            return Ok(());
        }
        Err(self.error_at(
            self.line_of("output").max(1),
            "output.url",
            "no output: name one in the recipe (output: {url: …}) or with --output",
        ))
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
        if let Some(g) = &r.grid {
            crate::geo::spec::resolve(self, g)?;
        }
        // The batch is checked once the variables are known (naming one, `lower.rs`), before
        // any chunk is computed; here already when a `drop_all_nan` would scan data first.
        let scans = r
            .operations
            .iter()
            .chain(r.inputs.values().flat_map(|i| &i.operations));
        if scans
            .into_iter()
            .any(|o| matches!(o, Operation::DropAllNan(_)))
        {
            if let Err((dim, message)) = grid::check_batch(&out.batch, &out.chunks, None) {
                return Err(self.error_at(
                    self.line_of("batch").max(1),
                    &format!("output.batch.{dim}"),
                    message,
                ));
            }
        }
        for (name, spec) in &r.inputs {
            self.check_input(name, spec)?;
        }
        self.validate_inputs_ops()
    }

    /// Refuse an input without a url, with several urls but no `concat`, or with an empty
    /// `concat` or band name.
    fn check_input(&self, name: &str, spec: &InputSpec) -> Result<()> {
        let line = self.input_line(name);
        let field = format!("inputs.{name}");
        if spec.url.is_empty() || spec.url.iter().any(|u| u.trim().is_empty()) {
            return Err(self.error_at(line, &format!("{field}.url"), "give a path or URL"));
        }
        if spec.url.len() > 1 && spec.concat.is_none() {
            return Err(self.error_at(
                line,
                &format!("{field}.url"),
                "several files need `concat: DIM`, the dimension they are joined along",
            ));
        }
        if spec.concat.as_ref().is_some_and(|c| c.trim().is_empty()) {
            return Err(self.error_at(line, &format!("{field}.concat"), "name a dimension"));
        }
        if spec.time_from.is_some() && spec.concat.is_none() {
            return Err(self.error_at(
                line,
                &format!("{field}.time_from"),
                "time_from gives the coordinate of the concat dimension; add `concat: DIM`",
            ));
        }
        if let Some(TimeFrom::Pattern(p)) = &spec.time_from {
            if !p.contains('%') {
                return Err(self.error_at(
                    line,
                    &format!("{field}.time_from.pattern"),
                    format!("{p:?} holds no strftime code (such as %Y, %m, %d)"),
                ));
            }
        }
        if spec
            .bands
            .as_ref()
            .is_some_and(|b| b.is_empty() || b.iter().any(String::is_empty))
        {
            return Err(self.error_at(line, &format!("{field}.bands"), "give each band a name"));
        }
        Ok(())
    }

    /// Validate the operations of `recipe.operations` (the top-level ones, or an input's in
    /// its view).
    fn validate_inputs_ops(&self) -> Result<()> {
        let r = &self.recipe;
        for (i, op) in r.operations.iter().enumerate() {
            let field = self.op_field(i, op.name());
            let line = self.op_line(i);
            match op {
                Operation::Assign(map) => {
                    for (name, text) in map {
                        self.check_name(i, &field, name)?;
                        crate::expr::parse(text).map_err(|e| {
                            self.error_at(
                                self.value_line(i, name, text, e.offset),
                                &format!("{field}.{name}"),
                                format!("invalid expression '{}': {e}", shortened(text)),
                            )
                        })?;
                    }
                }
                Operation::Rename(map) | Operation::RenameDims(map) => {
                    for to in map.values() {
                        self.check_name(i, &field, to)?;
                    }
                }
                Operation::Season(season) => {
                    self.check_name(i, &field, &season.sin)?;
                    self.check_name(i, &field, &season.cos)?;
                }
                Operation::Astype(map) => {
                    for (name, dt) in map {
                        if crate::dtype::DType::from_name(dt).is_none() {
                            return Err(self.error_at(line, &format!("{field}.{name}"), format!("unknown dtype '{dt}' (use bool, int8..int64, uint8..uint64, float32, float64)")));
                        }
                    }
                }
                Operation::Resample(r) => {
                    crate::ops::resample::Freq::parse(&r.freq).map_err(|e| {
                        self.error_at(self.key_line(i, "freq"), &format!("{field}.freq"), e)
                    })?;
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

impl RecipeDoc {
    /// Refuse `name` as the name of a new variable: Zarr would store it as a key of the cube, so
    /// it must be one key (no `/`), not a metadata key (`.z…`, `zarr.json`), not `.` or `..`,
    /// not empty, and free of control characters.
    fn check_name(&self, i: usize, field: &str, name: &str) -> Result<()> {
        let problem = if name.is_empty() {
            "is empty"
        } else if name.contains('/') {
            "holds a '/' (it would make a group)"
        } else if name == "." || name == ".." {
            "is '.' or '..'"
        } else if name.starts_with(".z") || name == "zarr.json" {
            "is a Zarr metadata key"
        } else if name.chars().any(char::is_control) {
            "holds a control character"
        } else {
            return Ok(());
        };
        let line = self.text_line(i, name);
        Err(self.error_at(
            line,
            field,
            format!("invalid variable name {name:?}: it {problem}"),
        ))
    }
}

/// How deep `[ ]` and `{ }` may nest in a recipe (as deep as the YAML reader recurses).
const MAX_FLOW_DEPTH: usize = 128;

/// The line where `[` and `{` nest deeper than [`MAX_FLOW_DEPTH`], outside quoted text and
/// comments. The YAML reader refuses such a document too, but only after scanning it in time
/// that grows with the square of its depth (a minute for 100,000 levels).
fn flow_too_deep(text: &str) -> Option<usize> {
    let (mut depth, mut line, mut quote, mut prev) = (0usize, 1, None, ' ');
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\n') => {
                line += 1;
                if quote.is_none() {
                    prev = ' ';
                    continue;
                }
            }
            (Some('"'), '\\') => {
                chars.next();
            }
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') if !prev.is_alphanumeric() => quote = Some(c),
            (None, '#') if prev.is_whitespace() => {
                while chars.peek().is_some_and(|n| *n != '\n') {
                    chars.next();
                }
            }
            (None, '[' | '{') => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Some(line);
                }
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        prev = c;
    }
    None
}

/// A duplicate key, at the line of its second occurrence, when `e` is YAML's refusal of one.
/// The refusal names the key and where its mapping starts; the key's lines are found from there
/// (the first occurrence gives the column; the duplicate is the next at that column, or on the
/// same line in a flow mapping).
fn duplicate_key(path: &str, text: &str, e: &serde_norway::Error) -> Option<Error> {
    let message = e.to_string();
    let prefix = "duplicate entry with key ";
    let shown = &message[message.find(prefix)? + prefix.len()..];
    let shown = shown.split(" at line ").next().unwrap_or(shown);
    let key = shown.trim_matches('"');
    let start = e.location().map_or(1, |l| l.line()).max(1);
    let forms = [
        format!("{key}:"),
        format!("\"{key}\":"),
        format!("'{key}':"),
    ];
    let mut found = text.lines().enumerate().skip(start - 1).flat_map(|(n, l)| {
        let forms = &forms;
        (0..l.len())
            .filter(move |at| {
                l.is_char_boundary(*at)
                    && forms.iter().any(|f| l[*at..].starts_with(f.as_str()))
                    && l[..*at]
                        .chars()
                        .next_back()
                        .is_none_or(|c| matches!(c, ' ' | '{' | ',' | '-' | '\t'))
            })
            .map(move |at| (n + 1, at))
    });
    let (first_line, first_col) = found.next()?;
    let second = found
        .find(|(line, col)| *col == first_col || *line == first_line)
        .map_or(start, |(line, _)| line);
    Some(Error::Recipe {
        location: format!("{path}:{second}"),
        message: format!(
            "duplicate key {shown} (a key may appear once in a mapping; the first is at line {first_line})"
        ),
    })
}

/// `text` cut to a length that fits a one-line message.
fn shortened(text: &str) -> String {
    const MAX: usize = 80;
    let one_line = text.trim().replace('\n', " ");
    match one_line.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}

/// Whether `line` (trimmed of its indentation) is the key `key`, plain or quoted; the rest
/// after the colon.
fn key_rest<'a>(trimmed: &'a str, key: &str) -> Option<&'a str> {
    [
        format!("{key}:"),
        format!("\"{key}\":"),
        format!("'{key}':"),
    ]
    .iter()
    .find_map(|f| trimmed.strip_prefix(f.as_str()))
    .filter(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// The indentation of a line.
fn indent(l: &str) -> usize {
    l.len() - l.trim_start().len()
}

/// Whether a line holds nothing but a comment or spaces.
fn blank(l: &str) -> bool {
    let t = l.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// The line (1-based) of input `name`'s key under the top-level `inputs:`, and its index.
fn input_key_line(text: &str, name: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| key_rest(l, "inputs").is_some())?;
    for (n, l) in lines.iter().enumerate().skip(start + 1) {
        if blank(l) {
            continue;
        }
        if indent(l) == 0 {
            return None;
        }
        if key_rest(l.trim_start(), name).is_some() {
            return Some((n + 1, n));
        }
    }
    None
}

/// Lines (1-based) where the `count` items of input `name`'s `operations:` list start, and the
/// line after the list; in flow style (`operations: [{keep: [a]}]`) every item is at the line
/// of the key. Missing lines fall back to the input's line.
fn input_operation_lines(text: &str, name: &str, count: usize) -> (Vec<usize>, usize) {
    let lines: Vec<&str> = text.lines().collect();
    let Some((input_line, at)) = input_key_line(text, name) else {
        return (vec![0; count], usize::MAX);
    };
    let input_indent = indent(lines[at]);
    let in_block = |l: &&str| blank(l) || indent(l) > input_indent;
    let block_end = lines
        .iter()
        .enumerate()
        .skip(at + 1)
        .find(|(_, l)| !in_block(l))
        .map_or(lines.len(), |(n, _)| n);
    let ops =
        (at + 1..block_end).find(|n| key_rest(lines[*n].trim_start(), "operations").is_some());
    let Some(ops) = ops else {
        // In flow style on the input's own line, or nowhere.
        return (vec![input_line; count], block_end + 1);
    };
    let rest = key_rest(lines[ops].trim_start(), "operations").unwrap_or("");
    if !rest.trim().is_empty() && !rest.trim().starts_with('#') {
        return (vec![ops + 1; count], ops + 2);
    }
    let key_indent = indent(lines[ops]);
    let mut item_indent = None;
    let mut out = Vec::new();
    let mut end = block_end;
    for (n, l) in lines.iter().enumerate().take(block_end).skip(ops + 1) {
        if blank(l) {
            continue;
        }
        let (ind, t) = (indent(l), l.trim_start());
        let item = t.starts_with("- ") || t == "-";
        if ind < key_indent || (ind == key_indent && !item) {
            end = n;
            break;
        }
        if item && item_indent.is_none_or(|i| i == ind) {
            item_indent = Some(ind);
            out.push(n + 1);
        }
    }
    out.resize(count, ops + 1);
    (out, end + 1)
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
            e.contains("r.yaml:12") && e.contains("operations[2].assign.d"),
            "{e}"
        );
        let wrong_type = GOOD.replace("keep: [a, b]", "keep: 5");
        let e = RecipeDoc::parse("r.yaml", &wrong_type)
            .unwrap_err()
            .to_string();
        assert!(e.contains("r.yaml:9"), "{e}");
    }

    fn error(text: &str) -> String {
        RecipeDoc::parse("r.yaml", text).unwrap_err().to_string()
    }

    #[test]
    fn a_key_given_twice_is_refused_at_its_second_line() {
        let top = GOOD.replace("operations:\n", "version: 1\noperations:\n");
        let e = error(&top);
        assert!(
            e.contains("r.yaml:7:") && e.contains("duplicate") && e.contains("version"),
            "{e}"
        );
        let nested = GOOD.replace("      d: \"log(c)\"\n", "      d: \"log(c)\"\n      d: c\n");
        let e = error(&nested);
        assert!(e.contains("r.yaml:13:") && e.contains("\"d\""), "{e}");
        let flow = GOOD.replace("{time: 100}", "{time: 100, time: 5}");
        let e = error(&flow);
        assert!(e.contains("r.yaml:6:") && e.contains("duplicate"), "{e}");
    }

    #[test]
    fn a_byte_order_mark_is_accepted() {
        let doc = RecipeDoc::parse("r.yaml", &format!("\u{feff}{GOOD}")).unwrap();
        assert_eq!(doc.op_lines, vec![9, 10, 11]);
        assert_eq!(doc.line_of("version"), 1);
    }

    #[test]
    fn an_expression_error_names_the_line_of_its_own_scalar() {
        // Block scalars: the line of the character at fault.
        let literal = GOOD.replace(
            "      d: \"log(c)\"\n",
            "      e: c\n      d: |\n        c +\n        log(c\n",
        );
        let e = error(&literal);
        assert!(e.contains("r.yaml:15:") && e.contains("assign.d"), "{e}");
        let folded = GOOD.replace("      d: \"log(c)\"\n", "      d: >\n        c + log(c\n");
        assert!(error(&folded).contains("r.yaml:13:"), "{}", error(&folded));
        // A quoted scalar over two lines, and a key of a flow mapping.
        let quoted = GOOD.replace(
            "      d: \"log(c)\"\n",
            "      e: c\n      d: \"c +\n        log(c\"\n",
        );
        assert!(error(&quoted).contains("r.yaml:13:"), "{}", error(&quoted));
        let flow = GOOD.replace(
            "      d: \"log(c)\"\n",
            "      {e: c,\n       d: \"log(c\"}\n",
        );
        assert!(error(&flow).contains("r.yaml:13:"), "{}", error(&flow));
        // A very long expression is cut short in the message.
        let long = GOOD.replace("log(c)", &format!("{}$", "c + ".repeat(1000)));
        let e = error(&long);
        assert!(e.len() < 300 && e.contains('…'), "{e}");
    }

    #[test]
    fn an_output_may_come_from_the_command_line() {
        let text = GOOD.replace("output:\n  url: out.zarr\n  chunks: {time: 100}\n", "");
        let doc = RecipeDoc::parse("r.yaml", &text).unwrap();
        assert!(doc.check_output(Some("elsewhere.zarr")).is_ok());
        let e = doc.check_output(None).unwrap_err().to_string();
        assert!(
            e.contains("r.yaml:1:") && e.contains("output.url") && e.contains("--output"),
            "{e}"
        );
        let good = RecipeDoc::parse("r.yaml", GOOD).unwrap();
        assert!(good.check_output(None).is_ok());
    }

    #[test]
    fn names_of_new_variables_must_be_single_keys() {
        let bad = [
            ("assign:\n      \"a/b\": c", "a/b"),
            ("assign:\n      .zarray: c", ".zarray"),
            ("assign:\n      .zattrs: c", ".zattrs"),
            ("assign:\n      zarr.json: c", "zarr.json"),
            ("assign:\n      \"\": c", "\"\""),
            ("assign:\n      \"..\": c", ".."),
            ("assign:\n      \"a\\0b\": c", "control"),
            ("assign:\n      \"a\\nb\": c", "control"),
        ];
        for (op, what) in bad {
            let text = GOOD.replace("assign:\n      d: \"log(c)\"", op);
            let e = error(&text);
            assert!(
                e.contains("r.yaml:1") && e.contains("invalid variable name") && e.contains(what),
                "{op}: {e}"
            );
            assert!(e.contains("operations[2].assign"), "{e}");
        }
        let e = error(&GOOD.replace("rename: {a: c}", "rename: {a: \"x/y\"}"));
        assert!(e.contains("r.yaml:10:") && e.contains("\"x/y\""), "{e}");
        let e = error(&GOOD.replace("rename: {a: c}", "season: {sin: .zgroup, cos: c, like: a}"));
        assert!(e.contains("r.yaml:10:") && e.contains(".zgroup"), "{e}");
        // Names with dots, dashes and letters of any script are fine.
        RecipeDoc::parse(
            "r.yaml",
            &GOOD.replace("rename: {a: c}", "rename: {a: c.d-é}"),
        )
        .unwrap();
    }

    #[test]
    fn deeply_nested_yaml_is_refused() {
        let n = 100_000;
        let e = error(&format!("version: 1\nx:\n  {}", "[".repeat(n)));
        assert!(
            e.contains("r.yaml:3:") && e.contains("deeper than 128"),
            "{e}"
        );
        // Brackets in quotes and comments do not count.
        let quoted = format!("{}  # {}\n", GOOD.trim_end(), "[".repeat(200));
        let title = format!(
            "  attrs: {{title: \"{}\", note: '{}'}}\n",
            "{".repeat(200),
            "[".repeat(200)
        );
        let quoted = quoted.replace("output:\n", &format!("output:\n{title}"));
        RecipeDoc::parse("r.yaml", &quoted).unwrap();
        for text in [
            format!("version: 1\nx: {}{}", "[".repeat(n), "]".repeat(n)),
            format!("version: 1\nx: {}", "{a: ".repeat(n)),
            format!(
                "version: 1\n{}",
                (0..2000)
                    .map(|k| format!("{}- \n", " ".repeat(k)))
                    .collect::<String>()
            ),
        ] {
            assert!(RecipeDoc::parse("r.yaml", &text).is_err());
        }
    }

    const INPUTS: &str = "version: 1
inputs:
  oc:
    url: [\"src/a_*.nc\", src/b.nc]
    concat: time
    operations:
      - keep: [chl]
      - rename: {chl: c}
  scenes:
    url: \"s3://b/s/*.tif\"
    concat: time
    time_from: {metadata: ACQUISITION_START}
    bands: [red, nir]
  era: {url: era.nc, operations: [{drop: [u]}]}
output: {url: out.zarr}
operations:
  - keep: [c]
";

    #[test]
    fn inputs_take_lists_globs_time_from_and_their_own_operations() {
        let doc = RecipeDoc::parse("r.yaml", INPUTS).unwrap();
        let oc = &doc.recipe.inputs["oc"];
        assert_eq!(oc.url, vec!["src/a_*.nc", "src/b.nc"]);
        assert_eq!(oc.concat.as_deref(), Some("time"));
        assert_eq!(oc.operations.len(), 2);
        let scenes = &doc.recipe.inputs["scenes"];
        assert_eq!(
            scenes.time_from,
            Some(TimeFrom::Metadata("ACQUISITION_START".into()))
        );
        assert_eq!(scenes.bands, Some(vec!["red".into(), "nir".into()]));
        let view = doc.for_input("oc").unwrap();
        assert_eq!(view.op_lines, vec![7, 8]);
        assert_eq!(view.op_field(1, "rename"), "inputs.oc.operations[1].rename");
        assert_eq!(view.key_line(1, "chl"), 8);
        assert_eq!(doc.for_input("era").unwrap().op_lines, vec![14]);
        assert_eq!(
            doc.for_input("scenes").unwrap().op_lines,
            Vec::<usize>::new()
        );
        assert_eq!(doc.op_lines, vec![17]);
        assert_eq!(doc.input_line("scenes"), 9);
    }

    #[test]
    fn bad_inputs_are_refused_at_their_line() {
        let e = error(&INPUTS.replace("    concat: time\n    operations", "    operations"));
        assert!(
            e.contains("r.yaml:3:") && e.contains("inputs.oc.url") && e.contains("concat"),
            "{e}"
        );
        let e = error(&INPUTS.replace(
            "{metadata: ACQUISITION_START}",
            "{metadata: A, tag: DateTime}",
        ));
        assert!(e.contains("exactly one of pattern"), "{e}");
        let e = error(&INPUTS.replace("{metadata: ACQUISITION_START}", "{pattern: oc.nc}"));
        assert!(e.contains("r.yaml:9:") && e.contains("strftime"), "{e}");
        let e = error(&INPUTS.replace("    bands: [red, nir]", "    colour: red"));
        assert!(e.contains("colour"), "{e}");
        let e = error(&INPUTS.replace("- rename: {chl: c}", "- rename: {chl: \"a/b\"}"));
        assert!(
            e.contains("r.yaml:8:") && e.contains("inputs.oc.operations[1].rename"),
            "{e}"
        );
        let e = error(&INPUTS.replace("[{drop: [u]}]", "[{assign: {x: \"u +\"}}]"));
        assert!(
            e.contains("r.yaml:14:") && e.contains("inputs.era.operations[0].assign.x"),
            "{e}"
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::GOOD;
        use crate::recipe::RecipeDoc;

        /// A change to a text: delete, insert, duplicate or swap.
        #[derive(Debug, Clone)]
        enum Mutation {
            Delete(usize, usize),
            Insert(usize, String),
            DuplicateLine(usize),
            SwapLines(usize, usize),
        }

        fn mutation() -> impl Strategy<Value = Mutation> {
            prop_oneof![
                (any::<usize>(), 1..20usize).prop_map(|(a, n)| Mutation::Delete(a, n)),
                (any::<usize>(), "[ -~\\n\\t\u{feff}é]{1,12}")
                    .prop_map(|(a, t)| Mutation::Insert(a, t)),
                any::<usize>().prop_map(Mutation::DuplicateLine),
                (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
            ]
        }

        fn apply(text: &str, m: &Mutation) -> String {
            let chars: Vec<char> = text.chars().collect();
            let mut lines: Vec<&str> = text.lines().collect();
            let n = chars.len().max(1);
            match m {
                Mutation::Delete(at, len) => {
                    let at = at % n;
                    let end = (at + len).min(chars.len());
                    chars[..at].iter().chain(&chars[end..]).collect()
                }
                Mutation::Insert(at, t) => {
                    let at = at % (chars.len() + 1);
                    chars[..at].iter().collect::<String>()
                        + t
                        + &chars[at..].iter().collect::<String>()
                }
                Mutation::DuplicateLine(k) => {
                    let k = k % lines.len();
                    lines.insert(k, lines[k]);
                    lines.join("\n")
                }
                Mutation::SwapLines(a, b) => {
                    let (a, b) = (a % lines.len(), b % lines.len());
                    lines.swap(a, b);
                    lines.join("\n")
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_text_parses_or_is_refused(text in any::<String>()) {
                let _ = RecipeDoc::parse("r.yaml", &text);
            }

            #[test]
            fn a_mutated_recipe_parses_or_is_refused_with_a_line(
                mutations in proptest::collection::vec(mutation(), 1..6)
            ) {
                let mut text = GOOD.to_string();
                for m in &mutations {
                    text = apply(&text, m);
                }
                if let Err(e) = RecipeDoc::parse("r.yaml", &text) {
                    let shown = e.to_string();
                    prop_assert!(shown.starts_with("r.yaml:"), "{shown}");
                }
            }
        }
    }
}
