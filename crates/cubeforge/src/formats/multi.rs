//! One input from what a recipe (or the command line) names: a path or URL, a glob, or a list
//! of them. Globs are expanded ([`super::glob`]); several files are opened at once, each once,
//! on all cores, and joined along the `concat` dimension ([`crate::lower::concat`]).

use rayon::prelude::*;

use super::glob::expand_all;
use super::open::{open_input, InputOptions};
use crate::error::{Error, Result};
use crate::lower::concat::concat_inputs;
use crate::lower::Input;
use crate::recipe::{InputSpec, TimeFrom};
use crate::store::Location;

/// An input opened: the dataset, and every file (or store) it was read from.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The dataset.
    pub input: Input,
    /// The files or stores read, sorted by name.
    pub files: Vec<String>,
}

/// How an input's urls are named in messages and provenance: the url, or the list.
#[must_use]
pub fn describe_urls(urls: &[String]) -> String {
    urls.join(", ")
}

/// The files `urls` name (globs expanded), refusing several without `concat`.
///
/// # Errors
/// [`Error::Combine`]: a glob that matches nothing, or several files but no `concat`.
pub fn files_of(urls: &[String], concat: Option<&str>) -> Result<Vec<String>> {
    let files = expand_all(urls)?;
    if files.len() > 1 && concat.is_none() {
        let shown: Vec<&str> = files.iter().take(3).map(String::as_str).collect();
        return Err(Error::Combine {
            location: describe_urls(urls),
            reason: format!(
                "names {} files ({}{}); give concat: DIM (--concat DIM) to join them along a \
                 dimension",
                files.len(),
                shown.join(", "),
                if files.len() > 3 { ", …" } else { "" }
            ),
        });
    }
    Ok(files)
}

/// Open `files` (from [`files_of`]) as one input named `location`: one file as it is, unless
/// `concat` is given, which joins the files (even one) along that dimension.
///
/// # Errors
/// The readers' errors naming the file; [`Error::Combine`] for files that do not join.
pub fn open_files(
    files: &[String],
    location: &str,
    concat: Option<&str>,
    time_from: Option<&TimeFrom>,
    opts: &InputOptions,
) -> Result<Input> {
    match (concat, files) {
        (None, [one]) => open_input(&Location::parse(one)?, opts),
        (None, _) => Err(Error::Combine {
            location: location.to_string(),
            reason: format!("{} files but no concat dimension to join them", files.len()),
        }),
        (Some(dim), _) => {
            let inputs: Vec<Input> = files
                .par_iter()
                .map(|f| open_input(&Location::parse(f)?, opts))
                .collect::<Result<_>>()?;
            concat_inputs(&inputs, dim, time_from, location)
        }
    }
}

/// Open what `urls` name (paths, URLs or globs) as one input: the files joined along `concat`
/// when given (ordered by its coordinate, or by `time_from` for files without it), every file
/// opened once, on all cores. Returns the input and the files it read.
///
/// # Errors
/// As [`files_of`] and [`open_files`].
pub fn open_spec(
    urls: &[String],
    concat: Option<&str>,
    time_from: Option<&TimeFrom>,
    opts: &InputOptions,
) -> Result<Opened> {
    let files = files_of(urls, concat)?;
    let input = open_files(&files, &describe_urls(urls), concat, time_from, opts)?;
    Ok(Opened { input, files })
}

/// An input of a recipe, opened ([`open_spec`] with its options).
///
/// # Errors
/// As [`open_spec`].
pub fn open_recipe_input(spec: &InputSpec) -> Result<Opened> {
    open_spec(
        &spec.url,
        spec.concat.as_deref(),
        spec.time_from.as_ref(),
        &options_of(spec),
    )
}

/// The reading options of a recipe's input.
#[must_use]
pub fn options_of(spec: &InputSpec) -> InputOptions {
    InputOptions {
        group: spec.group.clone(),
        bands: spec.bands.clone(),
        undecoded_times: false,
    }
}
