//! The one rule every command that writes or removes follows before it touches a destination:
//! a destination that is, contains, or lies inside one of the inputs is refused (after resolving
//! symbolic links and `..`, and for bucket prefixes too); recursive removal refuses roots (`/`,
//! the current directory and its parents, the home directory and its parents, bucket and
//! container roots); and what is already at a destination is classified, so that `--overwrite`
//! replaces only a Zarr store, an empty directory or what an interrupted cubeforge left.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::store::{Location, ObjectService};

/// The name of the lock object a writer holds in its destination ([`crate::lock`]).
pub const LOCK_KEY: &str = ".cubeforge.lock";
/// The name of the record a build keeps in its destination until it commits: what computed the
/// chunks there, for `--resume` to check ([`crate::lock::BuildRecord`]).
pub const RECORD_KEY: &str = ".cubeforge-build.json";
/// Keys that make a reader take a location for a Zarr store (or a store's array).
pub const ZARR_MARKERS: [&str; 4] = ["zarr.json", ".zgroup", ".zmetadata", ".zarray"];

/// A location reduced to what identifies it: a normalised absolute local path (links resolved
/// where the path exists), or a service, bucket and key segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A local path.
    Local(PathBuf),
    /// An object-store prefix.
    Object {
        /// Which service (`s3` and `s3a` are one).
        service: ObjectService,
        /// Bucket, container (with its account) or host.
        bucket: String,
        /// Key segments below the bucket.
        segments: Vec<String>,
    },
    /// A named in-memory store.
    Memory(String),
}

impl Place {
    /// The place of `location`.
    ///
    /// # Errors
    /// [`Error::Io`] when the current directory cannot be read for a relative path.
    pub fn of(location: &Location) -> Result<Place> {
        Ok(match location {
            Location::Local(p) => Place::Local(resolve(p)?),
            Location::Memory(name) => Place::Memory(name.clone()),
            Location::Object(obj) => {
                let url = &obj.url;
                let mut bucket = url.host_str().unwrap_or_default().to_string();
                if !url.username().is_empty() {
                    bucket = format!("{}@{bucket}", url.username());
                }
                let segments = url
                    .path()
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                Place::Object {
                    service: obj.service,
                    bucket,
                    segments,
                }
            }
        })
    }

    /// Whether `self` is `other` or lies below it.
    #[must_use]
    pub fn within(&self, other: &Place) -> bool {
        match (self, other) {
            (Place::Local(a), Place::Local(b)) => a.starts_with(b),
            (Place::Memory(a), Place::Memory(b)) => a == b,
            (
                Place::Object {
                    service: sa,
                    bucket: ba,
                    segments: a,
                },
                Place::Object {
                    service: sb,
                    bucket: bb,
                    segments: b,
                },
            ) => sa == sb && ba == bb && a.starts_with(b),
            _ => false,
        }
    }

    /// Whether this is a bucket or container root, or the file-system root.
    #[must_use]
    pub fn is_bucket_or_fs_root(&self) -> bool {
        match self {
            Place::Local(p) => p.parent().is_none(),
            Place::Object { segments, .. } => segments.is_empty(),
            Place::Memory(_) => false,
        }
    }
}

/// An absolute, normalised form of `path`, as `realpath -m` gives it: each component that
/// exists with its links resolved, `.` and `..` applied in order (a loop of links, or a
/// component that does not exist, is taken as written).
pub(crate) fn resolve(path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => out.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => {
                out.push(name);
                if let Ok(real) = std::fs::canonicalize(&out) {
                    out = real;
                }
            }
        }
    }
    Ok(out)
}

/// Refuse a `destination` that is, contains, or lies inside one of `inputs`.
///
/// # Errors
/// [`Error::Refused`] naming the destination, the input and how they overlap.
pub fn refuse_overlap(destination: &Location, inputs: &[Location]) -> Result<()> {
    let dst = Place::of(destination)?;
    for input in inputs {
        let src = Place::of(input)?;
        let how = if dst == src {
            "is the input"
        } else if dst.within(&src) {
            "lies inside the input"
        } else if src.within(&dst) {
            "contains the input"
        } else {
            continue;
        };
        return Err(Error::Refused {
            location: destination.to_string(),
            reason: format!("the destination {how} {input}; write somewhere else"),
        });
    }
    Ok(())
}

/// Refuse a recursive removal of a root: `/`, a bucket or container, the current directory or
/// one of its parents, the home directory or one of its parents (unless `force_root`).
///
/// # Errors
/// [`Error::Refused`] saying which root it is.
pub fn refuse_root_removal(location: &Location, force_root: bool) -> Result<()> {
    if force_root {
        return Ok(());
    }
    let place = Place::of(location)?;
    let what = if place.is_bucket_or_fs_root() {
        Some("a whole bucket, container or file-system root")
    } else if let Place::Local(p) = &place {
        let cwd = std::env::current_dir().ok().and_then(|d| resolve(&d).ok());
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .and_then(|h| resolve(Path::new(&h)).ok());
        if cwd.as_ref().is_some_and(|c| c.starts_with(p)) {
            Some("the current directory or one of its parents")
        } else if home.as_ref().is_some_and(|h| h.starts_with(p)) {
            Some("the home directory or one of its parents")
        } else {
            None
        }
    } else {
        None
    };
    match what {
        Some(what) => Err(Error::Refused {
            location: location.to_string(),
            reason: format!(
                "recursive removal of {what}; name something inside it, or pass --force-root"
            ),
        }),
        None => Ok(()),
    }
}

/// What a destination holds before a command writes to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holding {
    /// Nothing (absent, an empty directory or an empty prefix).
    Nothing,
    /// A Zarr store: group, array or consolidated metadata at its root.
    Zarr,
    /// What an interrupted build left: its build record (and chunks), no Zarr metadata yet.
    Interrupted,
    /// Something else: the reason says what, naming an example.
    Other(String),
}

impl Holding {
    /// Classify a destination from the names at its root (files and, with a trailing `/`,
    /// directories or prefixes); `is_file` when the location itself is a plain file or object.
    #[must_use]
    pub fn classify(is_file: bool, names: &[String]) -> Holding {
        if is_file {
            return Holding::Other("is a file, not a directory or a Zarr store".into());
        }
        // A lock alone: a writer stopped (or running) before it wrote anything.
        if names.iter().all(|n| n == LOCK_KEY) {
            return Holding::Nothing;
        }
        if names.iter().any(|n| ZARR_MARKERS.contains(&n.as_str())) {
            return Holding::Zarr;
        }
        // The record is written before any chunk: what is beside it is that build's.
        if names.iter().any(|n| n == RECORD_KEY) {
            return Holding::Interrupted;
        }
        // Callers give the names sorted.
        let shown: Vec<&str> = names.iter().map(String::as_str).take(3).collect();
        Holding::Other(format!(
            "holds {} entr{} but no Zarr metadata (e.g. {}); --overwrite replaces only a Zarr \
             store or an empty directory",
            names.len(),
            if names.len() == 1 { "y" } else { "ies" },
            shown.join(", ")
        ))
    }
}

/// Whether a local `path` is a plain file, and the sorted names at its root (directories with a
/// trailing `/`; none when it does not exist).
///
/// # Errors
/// [`Error::Io`] when the directory cannot be read.
pub fn local_root(path: &Path) -> Result<(bool, Vec<String>)> {
    let io = |e| Error::Io {
        path: path.display().to_string(),
        source: e,
    };
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((false, Vec::new())),
        Err(e) => return Err(io(e)),
        Ok(_) => {}
    }
    if !std::fs::metadata(path).map_err(io)?.is_dir() {
        return Ok((true, Vec::new()));
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let entry = entry.map_err(io)?;
        let mut name = entry.file_name().to_string_lossy().to_string();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            name.push('/');
        }
        names.push(name);
    }
    names.sort();
    Ok((false, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(s: &str) -> Location {
        Location::parse(s).unwrap()
    }

    #[test]
    fn overlap_is_refused_after_links_and_dots() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.zarr");
        std::fs::create_dir_all(&input).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&input, &link).unwrap();
        let s = |p: &Path| loc(p.to_str().unwrap());
        let inputs = [s(&input)];
        for (dst, how) in [
            (input.clone(), "is the input"),
            (link.clone(), "is the input"),
            (link.join("sub/../x.zarr"), "lies inside"),
            (input.join("inner"), "lies inside"),
            (dir.path().to_path_buf(), "contains the input"),
            (dir.path().join("in.zarr/.."), "contains the input"),
        ] {
            let err = refuse_overlap(&s(&dst), &inputs).unwrap_err().to_string();
            assert!(err.contains(how), "{}: {err}", dst.display());
        }
        refuse_overlap(&s(&dir.path().join("out.zarr")), &inputs).unwrap();
        refuse_overlap(&s(&dir.path().join("in.zarr2")), &inputs).unwrap();
    }

    #[test]
    fn bucket_prefixes_overlap_by_segments() {
        let inputs = [loc("s3://b/data/in.zarr")];
        for dst in [
            "s3://b",
            "s3://b/data",
            "s3a://b/data/in.zarr/",
            "s3://b/data/in.zarr/x",
        ] {
            assert!(refuse_overlap(&loc(dst), &inputs).is_err(), "{dst}");
        }
        for dst in [
            "s3://b/data/in.zarr2",
            "s3://c/data/in.zarr",
            "gs://b/data/in.zarr",
        ] {
            refuse_overlap(&loc(dst), &inputs).unwrap();
        }
    }

    #[test]
    fn roots_are_refused_for_recursive_removal() {
        for root in ["/", "s3://bucket", "az://container/", ".", ".."] {
            let err = refuse_root_removal(&loc(root), false)
                .unwrap_err()
                .to_string();
            assert!(err.contains("--force-root"), "{root}: {err}");
            refuse_root_removal(&loc(root), true).unwrap();
        }
        if let Some(home) = std::env::var_os("HOME").filter(|h| h.len() > 1) {
            let home = home.to_string_lossy().to_string();
            assert!(refuse_root_removal(&loc(&home), false).is_err());
        }
        refuse_root_removal(&loc("s3://bucket/prefix"), false).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        refuse_root_removal(&loc(p.to_str().unwrap()), false).unwrap();
    }

    #[test]
    fn holdings_are_classified() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        assert_eq!(Holding::classify(false, &[]), Holding::Nothing);
        assert_eq!(
            Holding::classify(false, &names(&[".zgroup", "a/"])),
            Holding::Zarr
        );
        assert_eq!(
            Holding::classify(false, &names(&["zarr.json"])),
            Holding::Zarr
        );
        assert_eq!(
            Holding::classify(false, &names(&[LOCK_KEY, RECORD_KEY, "t/"])),
            Holding::Interrupted
        );
        assert_eq!(
            Holding::classify(false, &names(&[LOCK_KEY])),
            Holding::Nothing
        );
        assert!(matches!(
            Holding::classify(false, &names(&[LOCK_KEY, "thesis.tex"])),
            Holding::Other(_)
        ));
        let Holding::Other(why) = Holding::classify(false, &names(&["notes.txt", "photos/"]))
        else {
            panic!("not Other")
        };
        assert!(
            why.contains("notes.txt") && why.contains("2 entries"),
            "{why}"
        );
        assert!(matches!(Holding::classify(true, &[]), Holding::Other(_)));
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 256, ..Default::default() })]

        /// Any text as a destination and an input: the rule answers (or the location is invalid)
        /// without panicking, and a location always overlaps itself.
        #[test]
        fn the_rule_never_panics(
            a in "(s3://|gs://|az://|file:///|/|\\.\\./|)[a-z./_%-]{0,24}",
            b in "(s3://|gs://|/|)[a-z./_-]{0,24}",
        ) {
            if let (Ok(x), Ok(y)) = (Location::parse(&a), Location::parse(&b)) {
                let _ = refuse_overlap(&x, std::slice::from_ref(&y));
                let _ = refuse_root_removal(&x, false);
                proptest::prop_assert!(refuse_overlap(&x, std::slice::from_ref(&x)).is_err());
            }
        }
    }
}
