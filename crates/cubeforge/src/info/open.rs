//! `info` of whatever a location holds: a Zarr store, a NetCDF/HDF5/GeoTIFF file, or several
//! files (a glob, or `concat`) read as one dataset. What the command-line tool prints and the
//! Python package returns.

use crate::dataset::Dataset;
use crate::error::Result;
use crate::formats::{glob, multi, open};
use crate::info::{files, InfoReport, VerifyReport};
use crate::store::{Location, Store};

/// The report on one location, and what could not be read.
#[derive(Debug)]
pub struct Described {
    /// The report.
    pub report: InfoReport,
    /// Every chunk decoded, when asked for.
    pub verified: Option<VerifyReport>,
    /// Variables of a file that cannot be read (strings, compound types), with the reason: the
    /// report describes them; a warning names them.
    pub unreadable: Vec<(String, String)>,
    /// Variables of a Zarr store that cannot be read: the command fails after the report.
    pub problems: Vec<String>,
}

/// Describe `url` (`group` within it; several files joined along `concat`), decoding every
/// chunk too when `verify`.
///
/// # Errors
/// The location cannot be opened or read.
pub fn describe(url: &str, group: &str, concat: Option<&str>, verify: bool) -> Result<Described> {
    let opts = open::InputOptions {
        group: group.to_string(),
        bands: None,
        undecoded_times: false,
    };
    if concat.is_some() || glob::is_glob(url) {
        let opened = multi::open_spec(&[url.to_string()], concat, None, &opts)?;
        let format = match opened.files.first().map(|f| Location::parse(f)) {
            Some(Ok(loc)) => match open::find(&loc)? {
                open::Found::File(_, kind) => files::format_name(kind),
                open::Found::Zarr => "zarr",
            },
            _ => "unknown",
        };
        let details = files::FileDetails {
            format: format.into(),
            files: Some(opened.files.len() as u64),
            raster: None,
        };
        return from_input(&opened.input, group, &details, verify);
    }
    let location = Location::parse(url)?;
    if let open::Found::File(file, kind) = open::find(&location)? {
        let input = open::open_file(&file, kind, &opts)?;
        let details = files::FileDetails {
            format: files::format_name(kind).into(),
            files: None,
            raster: open::raster_details(&file, kind)?,
        };
        return from_input(&input, group, &details, verify);
    }
    let store = Store::open(&location)?;
    let ds = Dataset::open(&store, group)?;
    let report = crate::info::report(&ds)?;
    let verified = if verify {
        Some(crate::info::verify(&ds)?)
    } else {
        None
    };
    let problems = ds
        .variables
        .iter()
        .filter_map(|v| v.problem().map(str::to_string))
        .collect();
    Ok(Described {
        report,
        verified,
        unreadable: Vec::new(),
        problems,
    })
}

fn from_input(
    input: &crate::lower::Input,
    group: &str,
    details: &files::FileDetails,
    verify: bool,
) -> Result<Described> {
    let report = files::report_input(input, group, details)?;
    let verified = if verify {
        Some(files::verify_input(input)?)
    } else {
        None
    };
    Ok(Described {
        report,
        verified,
        unreadable: input.unreadable.clone(),
        problems: Vec::new(),
    })
}

impl Described {
    /// The JSON document `info --json` prints: the report, with `verify` when asked for.
    ///
    /// # Errors
    /// Never in practice (the report serialises).
    pub fn to_json(&self) -> Result<serde_json::Value> {
        let ser = |e: serde_json::Error| crate::Error::Other(format!("cannot describe: {e}"));
        let mut doc = serde_json::to_value(&self.report).map_err(ser)?;
        if let (Some(v), Some(obj)) = (&self.verified, doc.as_object_mut()) {
            obj.insert("verify".into(), serde_json::to_value(v).map_err(ser)?);
        }
        Ok(doc)
    }
}
