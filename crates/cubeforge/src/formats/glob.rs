//! Globs of input files (`src/daily/oc_*.nc`, `s3://bucket/scenes/**/*.tif`): `*`, `?`, `[...]`
//! within one path segment, `**` across segments. A local glob walks the directory before its
//! first wildcard; a glob in a bucket lists the prefix before its first wildcard through the
//! store and matches the keys. A match is a file, or a directory (prefix) whose name matches,
//! such as a Zarr store.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use zarrs_storage::ListableStorageTraits as _;

use crate::error::{Error, Result};
use crate::store::{Location, Store};

/// Whether `text` holds a wildcard.
#[must_use]
pub fn is_glob(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// The files (or stores) `urls` name, each a path, URL or glob: globs expanded and sorted by
/// name, plain entries as given, in the order of `urls`; a file named twice is kept once.
///
/// # Errors
/// [`Error::Combine`] naming a glob that matches nothing; listing errors.
pub fn expand_all(urls: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for u in urls {
        let found = if is_glob(u) {
            expand(u)?
        } else {
            vec![u.clone()]
        };
        for f in found {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    Ok(out)
}

/// The files (or stores) glob `pattern` matches, sorted by name.
///
/// # Errors
/// [`Error::Combine`] naming the pattern when it matches nothing or cannot be parsed; listing
/// errors naming the directory or prefix.
pub fn expand(pattern: &str) -> Result<Vec<String>> {
    let (base, rest) = split(pattern);
    let matcher = GlobBuilder::new(rest)
        .literal_separator(true)
        .build()
        .map_err(|e| Error::Combine {
            location: pattern.to_string(),
            reason: format!("not a valid glob: {e}"),
        })?
        .compile_matcher();
    let mut found = match Location::parse(if base.is_empty() { "." } else { base })? {
        Location::Local(dir) => {
            let depth = if rest.contains("**") {
                usize::MAX
            } else {
                rest.split('/').count()
            };
            let mut out = Vec::new();
            walk(&dir, "", depth, &matcher, &mut out)?;
            out.into_iter()
                .map(|rel| {
                    if base.is_empty() {
                        rel
                    } else {
                        format!("{}/{rel}", base.trim_end_matches('/'))
                    }
                })
                .collect()
        }
        location => in_store(&location, &matcher)?,
    };
    if found.is_empty() {
        return Err(Error::Combine {
            location: pattern.to_string(),
            reason: "no file matches this pattern".into(),
        });
    }
    found.sort();
    Ok(found)
}

/// The part of `pattern` before the segment holding its first wildcard (no trailing `/`), and
/// the rest.
fn split(pattern: &str) -> (&str, &str) {
    // A memory store is named by its first segment; keys inside it are listed from its root.
    if let Some(name) = pattern.strip_prefix("memory://") {
        let end = name
            .find('/')
            .map_or(pattern.len(), |i| i + "memory://".len());
        return (&pattern[..end], pattern.get(end + 1..).unwrap_or(""));
    }
    let first = pattern.find(['*', '?', '[']).unwrap_or(pattern.len());
    match pattern[..first].rfind('/') {
        Some(0) => ("/", &pattern[1..]),
        Some(slash) => (&pattern[..slash], &pattern[slash + 1..]),
        None => ("", pattern),
    }
}

/// Walk `dir` (whose path relative to the glob's base is `rel`) down to `depth` levels, adding
/// the relative paths that match.
fn walk(
    dir: &Path,
    rel: &str,
    depth: usize,
    matcher: &GlobMatcher,
    out: &mut Vec<String>,
) -> Result<()> {
    if depth == 0 {
        return Ok(());
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && rel.is_empty() => return Ok(()),
        Err(source) => {
            return Err(Error::Io {
                path: dir.display().to_string(),
                source,
            })
        }
    };
    let mut names: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let Ok(name) = entry.file_name().into_string() else {
            continue; // not UTF-8: no pattern can name it
        };
        names.push((name, entry.path()));
    }
    for (name, path) in names {
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if matcher.is_match(&child) {
            out.push(child);
        } else if path.is_dir() {
            walk(&path, &child, depth.saturating_sub(1), matcher, out)?;
        }
    }
    Ok(())
}

/// The keys under `location` (a bucket prefix, a memory store) matching, or whose ancestor
/// prefix matches (a store such as `day1.zarr/`), as URLs.
fn in_store(location: &Location, matcher: &GlobMatcher) -> Result<Vec<String>> {
    let store = Store::open(location)?;
    let keys = store
        .storage()
        .list()
        .map_err(|e| store.storage_error("", e))?;
    let mut out: Vec<String> = Vec::new();
    for key in keys {
        let key = key.as_str();
        let mut end = 0;
        let matched = loop {
            let next = key[end..].find('/').map(|i| end + i);
            let candidate = &key[..next.unwrap_or(key.len())];
            if matcher.is_match(candidate) {
                break Some(candidate);
            }
            match next {
                Some(n) => end = n + 1,
                None => break None,
            }
        };
        if let Some(m) = matched {
            let url = location.join(m);
            if !out.contains(&url) {
                out.push(url);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::put_key;

    #[test]
    fn a_local_glob_lists_matching_files_and_stores_by_name() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        for f in [
            "b/oc_3.nc",
            "b/oc_1.nc",
            "b/oc_2.nc",
            "b/other.nc",
            "b/x/oc_9.nc",
        ] {
            std::fs::create_dir_all(root.join(f).parent().expect("dir")).expect("mkdir");
            std::fs::write(root.join(f), b"x").expect("write");
        }
        std::fs::create_dir_all(root.join("b/day_1.zarr/a")).expect("store");
        std::fs::write(root.join("b/day_1.zarr/.zgroup"), b"{}").expect("write");
        let base = root.display().to_string();
        let got = expand(&format!("{base}/b/oc_*.nc")).expect("glob");
        let want: Vec<String> = ["oc_1.nc", "oc_2.nc", "oc_3.nc"]
            .iter()
            .map(|f| format!("{base}/b/{f}"))
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            expand(&format!("{base}/b/oc_[23].nc")).expect("glob"),
            want[1..].to_vec()
        );
        assert_eq!(
            expand(&format!("{base}/b/oc_?.nc")).expect("glob"),
            want.clone()
        );
        // `**` crosses directories; a directory matching is one entry (a store).
        let deep = expand(&format!("{base}/**/oc_*.nc")).expect("glob");
        assert_eq!(deep.len(), 4);
        assert!(deep.contains(&format!("{base}/b/x/oc_9.nc")));
        assert_eq!(
            expand(&format!("{base}/b/*.zarr")).expect("glob"),
            vec![format!("{base}/b/day_1.zarr")]
        );
        // A list mixing globs and paths, a file named twice kept once.
        let list = vec![
            format!("{base}/b/other.nc"),
            format!("{base}/b/oc_[12].nc"),
            format!("{base}/b/oc_1.nc"),
        ];
        assert_eq!(expand_all(&list).expect("list").len(), 3);
        // Nothing matches: the pattern is named.
        let e = expand(&format!("{base}/b/sst_*.nc"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sst_*.nc") && e.contains("no file matches"),
            "{e}"
        );
        let e = expand(&format!("{base}/nowhere/*.nc"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nowhere/*.nc"), "{e}");
    }

    #[test]
    fn a_glob_in_a_store_matches_keys_and_prefixes() {
        let store = Store::open_str("memory://glob-bucket").expect("store");
        for k in [
            "src/oc_20200102.nc",
            "src/oc_20200101.nc",
            "src/sst.nc",
            "src/deep/oc_20200103.nc",
            "src/day_1.zarr/.zgroup",
            "src/day_1.zarr/a/0",
        ] {
            put_key(&store, k, vec![1]);
        }
        let got = expand("memory://glob-bucket/src/oc_*.nc").expect("glob");
        assert_eq!(
            got,
            vec![
                "memory://glob-bucket/src/oc_20200101.nc".to_string(),
                "memory://glob-bucket/src/oc_20200102.nc".to_string()
            ]
        );
        let deep = expand("memory://glob-bucket/src/**/oc_*.nc").expect("glob");
        assert_eq!(deep.len(), 3);
        assert_eq!(
            expand("memory://glob-bucket/src/*.zarr").expect("glob"),
            vec!["memory://glob-bucket/src/day_1.zarr".to_string()]
        );
        let e = expand("memory://glob-bucket/src/none_*")
            .unwrap_err()
            .to_string();
        assert!(e.contains("memory://glob-bucket/src/none_*"), "{e}");
    }
}
