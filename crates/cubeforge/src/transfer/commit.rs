//! Zarr-aware transfers: a copy of a Zarr store writes its chunks first, checks that every one
//! arrived whole, and writes the metadata last, the root group key (`.zgroup`, or the root
//! `zarr.json`) last of all; and before it changes an existing store it withdraws that store's
//! group metadata. A transfer killed or failed at any point therefore never leaves something a
//! reader (xarray, zarr-python) opens as a finished store, and rerunning it finishes the job.

use std::collections::HashMap;

use object_store::path::Path as ObjPath;
use object_store::ObjectStoreExt as _;

use super::{is_not_found, storage_err, Endpoint, Entry, Job};
use crate::error::{Error, Result};

/// Metadata documents of Zarr v2 and v3, by file name.
const METADATA_NAMES: [&str; 5] = [".zmetadata", ".zgroup", ".zattrs", ".zarray", "zarr.json"];

/// The root keys whose presence makes a reader open a store, in the order they are withdrawn
/// (the one readers open by first).
pub(super) const ROOT_GROUP_KEYS: [&str; 4] = [".zgroup", "zarr.json", ".zarray", ".zmetadata"];

/// Whether `key` (relative to the store's root) names a metadata document.
pub(super) fn is_metadata(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    METADATA_NAMES.contains(&name)
}

/// Whether the listed `entries` are a Zarr store (metadata at the root).
pub(super) fn is_zarr_store(entries: &[Entry]) -> bool {
    entries
        .iter()
        .any(|e| ROOT_GROUP_KEYS.contains(&e.key.as_str()))
}

/// The order metadata is written in: nested documents first, then the root's attributes and
/// consolidated metadata, then the root key readers open a store by.
fn rank(key: &str) -> (u8, &str) {
    match key {
        ".zattrs" => (1, key),
        ".zmetadata" => (2, key),
        ".zgroup" | ".zarray" | "zarr.json" => (3, key),
        _ => (0, key),
    }
}

/// Split `jobs` of a Zarr store's copy into data (chunks, in any order) and metadata (in commit
/// order).
pub(super) fn split(jobs: Vec<Job>) -> (Vec<Job>, Vec<Job>) {
    let (mut meta, data): (Vec<Job>, Vec<Job>) =
        jobs.into_iter().partition(|j| is_metadata(&j.key));
    meta.sort_by(|a, b| rank(&a.key).cmp(&rank(&b.key)));
    (data, meta)
}

/// The root group metadata keys the store at `dst` has (what [`withdraw`] would remove).
pub(super) fn present(dst: &Endpoint, existing: &HashMap<String, Entry>) -> Vec<String> {
    ROOT_GROUP_KEYS
        .iter()
        .filter(|k| {
            dst.path_of(k)
                .is_ok_and(|p| existing.contains_key(p.as_ref()))
        })
        .map(|k| (*k).to_string())
        .collect()
}

/// Remove the root group metadata of the store at `dst`, so that readers refuse it while it
/// changes; returns the keys that were there (they must be written again at the end).
pub(super) async fn withdraw(
    dst: &Endpoint,
    existing: &HashMap<String, Entry>,
) -> Result<Vec<String>> {
    let mut withdrawn = Vec::new();
    for key in ROOT_GROUP_KEYS {
        let path = dst.path_of(key)?;
        if !existing.contains_key(path.as_ref()) {
            continue;
        }
        match dst.store.delete(&path).await {
            Ok(()) => withdrawn.push(key.to_string()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(storage_err(dst.display(&path), &e)),
        }
    }
    Ok(withdrawn)
}

/// Check, with one listing of `dst`, that every job's object is there with its size; the error
/// names the first that is not.
pub(super) async fn verify(dst: &Endpoint, jobs: &[Job]) -> Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    let found: HashMap<String, u64> = dst
        .list_all(&|_, _| {})
        .await?
        .into_iter()
        .filter_map(|e| Some((dst.path_of(&e.key).ok()?.to_string(), e.size)))
        .collect();
    for job in jobs {
        let got = found.get(job.to.as_ref()).copied();
        if got != Some(job.size) {
            let what = got.map_or_else(|| "is missing".to_string(), |n| format!("has {n} bytes"));
            return Err(Error::Transfer {
                location: dst.display(&job.to),
                reason: format!("{what} after the copy, expected {} bytes", job.size),
                done: "the store's metadata was not written; rerun the command".into(),
            });
        }
    }
    Ok(())
}

/// The destination path of each of `keys` (relative to the store root).
pub(super) fn paths(dst: &Endpoint, keys: &[String]) -> Vec<ObjPath> {
    keys.iter().filter_map(|k| dst.path_of(k).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(key: &str) -> Job {
        Job {
            from: ObjPath::from(key),
            to: ObjPath::from(key),
            size: 1,
            key: key.to_string(),
        }
    }

    #[test]
    fn chunks_first_and_the_root_group_key_last() {
        let keys = [
            ".zgroup",
            "a/0.0",
            ".zmetadata",
            "a/.zarray",
            ".zattrs",
            "a/.zattrs",
            "b/zarr.json",
            "b/c/0",
        ];
        let (data, meta) = split(keys.iter().map(|k| job(k)).collect());
        let names = |v: &[Job]| v.iter().map(|j| j.key.clone()).collect::<Vec<_>>();
        assert_eq!(names(&data), ["a/0.0", "b/c/0"]);
        assert_eq!(
            names(&meta),
            [
                "a/.zarray",
                "a/.zattrs",
                "b/zarr.json",
                ".zattrs",
                ".zmetadata",
                ".zgroup"
            ]
        );
        assert!(is_metadata("x/y/zarr.json") && !is_metadata("x/zarr.json.bak"));
    }
}
