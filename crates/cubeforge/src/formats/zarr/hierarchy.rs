//! Hierarchy discovery: the members of a group (v2 with or without consolidated `.zmetadata`,
//! v3 with or without inline consolidated metadata, implicit v3 groups) or a single array.

use serde_json::{Map, Value};
use zarrs::array::{ArrayMetadata, ArrayMetadataV2, ArrayMetadataV3};
use zarrs_storage::{ListableStorageTraits, ReadableStorageTraits, StoreKey, StorePrefix};

use super::{ArrayMeta, ZarrFormat};
use crate::error::{Error, Result};
use crate::store::Store;

/// One array found in a group, ready to open.
#[derive(Debug, Clone)]
pub struct ArrayEntry {
    /// Name within its group.
    pub name: String,
    /// Node path from the store root (`/sst`, `/group/array`).
    pub path: String,
    /// Metadata summary.
    pub meta: ArrayMeta,
    /// The metadata in `zarrs`'s own form.
    pub(crate) zarrs_meta: std::result::Result<ArrayMetadata, String>,
}

/// The members of one group.
#[derive(Debug, Clone)]
pub struct GroupListing {
    /// Zarr format of the group.
    pub zarr_format: ZarrFormat,
    /// Whether the listing came from consolidated metadata.
    pub consolidated: bool,
    /// Group attributes.
    pub attrs: Map<String, Value>,
    /// Arrays directly in the group, sorted by name.
    pub arrays: Vec<ArrayEntry>,
    /// Sub-groups directly in the group, sorted by name.
    pub groups: Vec<String>,
    /// When the node at the path is itself an array (not a group), this is true and `arrays`
    /// holds that one array.
    pub is_array: bool,
}

impl ArrayEntry {
    /// The array `name` at `path` (from the store root, without the leading `/`).
    fn new(
        name: &str,
        path: &str,
        meta: ArrayMeta,
        zarrs_meta: std::result::Result<ArrayMetadata, String>,
    ) -> ArrayEntry {
        ArrayEntry {
            name: name.to_string(),
            path: format!("/{path}"),
            meta,
            zarrs_meta,
        }
    }
}

impl GroupListing {
    /// A group's listing of its members, sorted by name.
    fn of_members(
        zarr_format: ZarrFormat,
        consolidated: bool,
        attrs: Map<String, Value>,
        mut arrays: Vec<ArrayEntry>,
        mut groups: Vec<String>,
    ) -> GroupListing {
        arrays.sort_by(|a, b| a.name.cmp(&b.name));
        groups.sort();
        GroupListing {
            zarr_format,
            consolidated,
            attrs,
            arrays,
            groups,
            is_array: false,
        }
    }
}

pub(crate) fn key_in(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

fn get_json(store: &Store, key: &str) -> Result<Option<Value>> {
    let k = StoreKey::new(key).map_err(|e| Error::InvalidUrl {
        url: store.location().join(key),
        reason: e.to_string(),
    })?;
    let Some(bytes) = store
        .storage()
        .get(&k)
        .map_err(|e| store.storage_error(key, e))?
    else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&bytes).map_err(|e| Error::InvalidMetadata {
        location: store.location().join(key),
        reason: format!("not UTF-8 text: {e}"),
    })?;
    super::lenient_json::parse(text)
        .map(Some)
        .map_err(|e| Error::InvalidMetadata {
            location: store.location().join(key),
            reason: format!("not valid JSON: {e}"),
        })
}

fn v2_entry(
    store: &Store,
    path: &str,
    name: &str,
    zarray: &Value,
    zattrs: Option<&Value>,
) -> Result<ArrayEntry> {
    let location = store.location().join(&key_in(path, ".zarray"));
    let meta = ArrayMeta::from_v2(zarray, zattrs, &location)?;
    let zarrs_meta = serde_json::from_value::<ArrayMetadataV2>(zarray.clone())
        .map(|mut m| {
            if let Some(Value::Object(a)) = zattrs {
                m.attributes = a.clone();
            }
            ArrayMetadata::V2(m)
        })
        .map_err(|e| e.to_string());
    Ok(ArrayEntry::new(name, path, meta, zarrs_meta))
}

fn v3_entry(store: &Store, path: &str, name: &str, doc: &Value) -> Result<ArrayEntry> {
    let location = store.location().join(&key_in(path, "zarr.json"));
    let meta = ArrayMeta::from_v3(doc, &location)?;
    let zarrs_meta = serde_json::from_value::<ArrayMetadataV3>(doc.clone())
        .map(ArrayMetadata::V3)
        .map_err(|e| e.to_string());
    Ok(ArrayEntry::new(name, path, meta, zarrs_meta))
}

/// List the group (or single array) at `path` (`""` for the root).
///
/// # Errors
/// [`Error::NotFound`] when nothing is there, [`Error::NotZarr`] when there is no Zarr metadata,
/// [`Error::InvalidMetadata`] for unreadable metadata documents.
pub fn list_group(store: &Store, path: &str) -> Result<GroupListing> {
    let path = group_path(store, path)?;
    if let Some(local) = store.location().local_path() {
        crate::formats::sniff::check_local_store(local)?;
    } else if !store.exists()? {
        return Err(Error::NotFound {
            location: store.location().to_string(),
        });
    }
    let name_of = |p: &str| p.rsplit('/').next().unwrap_or("").to_string();

    if let Some(doc) = get_json(store, &key_in(path, "zarr.json"))? {
        check_format(store, &key_in(path, "zarr.json"), &doc, 3)?;
        let node_type = doc.get("node_type").and_then(Value::as_str).unwrap_or("");
        return match node_type {
            "array" => {
                let name = if path.is_empty() {
                    store_stem(store)
                } else {
                    name_of(path)
                };
                Ok(GroupListing {
                    zarr_format: 3,
                    consolidated: false,
                    attrs: Map::new(),
                    arrays: vec![v3_entry(store, path, &name, &doc)?],
                    groups: vec![],
                    is_array: true,
                })
            }
            "group" => list_v3_group(store, path, &doc),
            other => Err(Error::InvalidMetadata {
                location: store.location().join(&key_in(path, "zarr.json")),
                reason: format!("unknown node_type '{other}' (expected 'group' or 'array')"),
            }),
        };
    }
    if let Some(zgroup) = get_json(store, &key_in(path, ".zgroup"))? {
        check_v2_format(store, &key_in(path, ".zgroup"), &zgroup)?;
        return list_v2_group(store, path);
    }
    if let Some(zarray) = get_json(store, &key_in(path, ".zarray"))? {
        check_v2_format(store, &key_in(path, ".zarray"), &zarray)?;
        let zattrs = get_json(store, &key_in(path, ".zattrs"))?;
        let name = if path.is_empty() {
            store_stem(store)
        } else {
            name_of(path)
        };
        return Ok(GroupListing {
            zarr_format: 2,
            consolidated: false,
            attrs: Map::new(),
            arrays: vec![v2_entry(store, path, &name, &zarray, zattrs.as_ref())?],
            groups: vec![],
            is_array: true,
        });
    }
    // A v3 implicit group: no metadata of its own, but children with zarr.json.
    let listing = list_children(store, path, 3)?;
    if !listing.arrays.is_empty() || !listing.groups.is_empty() {
        return Ok(listing);
    }
    Err(Error::NotZarr {
        location: store.location().join(path),
    })
}

/// A group path within the store: `/`-separated names, without `.` or `..` segments, empty
/// segments or a leading `/` (a path that could climb out of the store is refused).
fn group_path<'a>(store: &Store, path: &'a str) -> Result<&'a str> {
    let refuse = |reason: &str| Error::InvalidUrl {
        url: format!("{} (group '{path}')", store.location()),
        reason: reason.to_string(),
    };
    if path.starts_with('/') {
        return Err(refuse(
            "a group path is relative to the store root; leave out the leading '/'",
        ));
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok("");
    }
    if trimmed.contains('\\') {
        return Err(refuse("a group path separates names with '/', not '\\'"));
    }
    if let Some(bad) = trimmed
        .split('/')
        .find(|s| s.is_empty() || crate::store::is_dot_segment(s))
    {
        return Err(refuse(&format!(
            "group path has a '{bad}' segment; it must name groups inside the store"
        )));
    }
    Ok(trimmed)
}

fn store_stem(store: &Store) -> String {
    let text = store.location().to_string();
    let last = text
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("data")
        .to_string();
    last.strip_suffix(".zarr")
        .map_or(last.clone(), str::to_string)
}

fn check_v2_format(store: &Store, key: &str, doc: &Value) -> Result<()> {
    check_format(store, key, doc, 2)
}

/// A metadata document's `zarr_format` must be the version its name belongs to.
fn check_format(store: &Store, key: &str, doc: &Value, version: u64) -> Result<()> {
    let location = store.location().join(key);
    let Some(obj) = doc.as_object() else {
        return Err(Error::InvalidMetadata {
            location,
            reason: format!("expected a JSON object, found {}", short_json(doc)),
        });
    };
    match obj.get("zarr_format") {
        Some(v) if v.as_u64() == Some(version) => Ok(()),
        Some(v) if v.is_u64() => Err(Error::Unsupported {
            location,
            feature: format!("zarr_format {v}"),
            detail: format!(
                "this document must say zarr_format {version}; cubeforge reads Zarr v2 and v3"
            ),
        }),
        Some(v) => Err(Error::InvalidMetadata {
            location,
            reason: format!(
                "'zarr_format' is {}, expected the number {version}",
                short_json(v)
            ),
        }),
        None => Err(Error::InvalidMetadata {
            location,
            reason: "missing 'zarr_format'".into(),
        }),
    }
}

/// A JSON value for a message, cut short.
fn short_json(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(57).collect::<String>())
    } else {
        text
    }
}

fn list_v2_group(store: &Store, path: &str) -> Result<GroupListing> {
    let attrs = get_json(store, &key_in(path, ".zattrs"))?
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let zmeta_key = key_in(path, ".zmetadata");
    if let Some(zmeta) = get_json(store, &zmeta_key)? {
        let Some(entries) = zmeta.get("metadata").and_then(Value::as_object) else {
            return Err(Error::InvalidMetadata {
                location: store.location().join(&zmeta_key),
                reason: "consolidated metadata has no 'metadata' object".into(),
            });
        };
        let mut arrays = Vec::new();
        let mut groups = Vec::new();
        for (key, doc) in entries {
            let Some((child, file)) = key.rsplit_once('/') else {
                continue;
            };
            if child.contains('/') {
                continue; // deeper than one level: belongs to a sub-group
            }
            let child_path = key_in(path, child);
            match file {
                ".zarray" => {
                    let zattrs = entries.get(&format!("{child}/.zattrs"));
                    arrays.push(v2_entry(store, &child_path, child, doc, zattrs)?);
                }
                ".zgroup" => groups.push(child.to_string()),
                _ => {}
            }
        }
        check_consolidated(store, path, &zmeta_key, &arrays, &groups)?;
        return Ok(GroupListing::of_members(2, true, attrs, arrays, groups));
    }
    let mut listing = list_children(store, path, 2)?;
    listing.attrs = attrs;
    Ok(listing)
}

fn list_v3_group(store: &Store, path: &str, doc: &Value) -> Result<GroupListing> {
    let attrs = doc
        .get("attributes")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let consolidated = doc
        .get("consolidated_metadata")
        .and_then(|c| c.get("metadata"))
        .and_then(Value::as_object);
    if let Some(entries) = consolidated {
        let mut arrays = Vec::new();
        let mut groups = Vec::new();
        for (child, child_doc) in entries {
            if child.contains('/') {
                continue;
            }
            match child_doc.get("node_type").and_then(Value::as_str) {
                Some("array") => {
                    arrays.push(v3_entry(store, &key_in(path, child), child, child_doc)?)
                }
                Some("group") => groups.push(child.clone()),
                _ => {}
            }
        }
        check_consolidated(store, path, &key_in(path, "zarr.json"), &arrays, &groups)?;
        return Ok(GroupListing::of_members(3, true, attrs, arrays, groups));
    }
    let mut listing = list_children(store, path, 3)?;
    listing.attrs = attrs;
    Ok(listing)
}

/// Consolidated metadata must not list members the store does not have: one listing of the
/// group's directory, compared with the members the consolidated document names. Skipped
/// where a store cannot be listed (plain HTTP) or lists nothing.
fn check_consolidated(
    store: &Store,
    path: &str,
    doc_key: &str,
    arrays: &[ArrayEntry],
    groups: &[String],
) -> Result<()> {
    if matches!(store.location(), crate::store::Location::Object(o) if o.service == crate::store::ObjectService::Http)
    {
        return Ok(());
    }
    let prefix = if path.is_empty() {
        StorePrefix::root()
    } else {
        match StorePrefix::new(format!("{path}/")) {
            Ok(p) => p,
            Err(_) => return Ok(()),
        }
    };
    let Ok(dir) = store.storage().list_dir(&prefix) else {
        return Ok(());
    };
    if dir.prefixes().is_empty() && dir.keys().is_empty() {
        return Ok(());
    }
    let present: std::collections::HashSet<&str> = dir
        .prefixes()
        .iter()
        .map(|p| {
            let p = p.as_str().trim_end_matches('/');
            p.rsplit('/').next().unwrap_or(p)
        })
        .collect();
    let missing = arrays
        .iter()
        .map(|a| (a.name.as_str(), "array"))
        .chain(groups.iter().map(|g| (g.as_str(), "group")))
        .find(|(name, _)| !present.contains(name));
    match missing {
        Some((name, kind)) => Err(Error::InvalidMetadata {
            location: store.location().join(doc_key),
            reason: format!(
                "consolidated metadata lists {kind} '{name}', which is not in the store \
                 (no {}); consolidate the metadata again",
                key_in(path, name)
            ),
        }),
        None => Ok(()),
    }
}

/// Find children by listing the store (no consolidated metadata).
fn list_children(store: &Store, path: &str, zarr_format: ZarrFormat) -> Result<GroupListing> {
    let prefix = if path.is_empty() {
        StorePrefix::root()
    } else {
        StorePrefix::new(format!("{path}/")).map_err(|e| Error::InvalidUrl {
            url: store.location().join(path),
            reason: e.to_string(),
        })?
    };
    let dir = store
        .storage()
        .list_dir(&prefix)
        .map_err(|e| store.storage_error(path, e))?;
    let mut arrays = Vec::new();
    let mut groups = Vec::new();
    for child_prefix in dir.prefixes() {
        let child_path = child_prefix.as_str().trim_end_matches('/');
        let child = child_path
            .rsplit('/')
            .next()
            .unwrap_or(child_path)
            .to_string();
        if zarr_format == 3 {
            let child_doc = get_json(store, &key_in(child_path, "zarr.json"))?;
            if let Some(doc) = &child_doc {
                check_format(store, &key_in(child_path, "zarr.json"), doc, 3)?;
            }
            match child_doc {
                Some(doc) if doc.get("node_type").and_then(Value::as_str) == Some("array") => {
                    arrays.push(v3_entry(store, child_path, &child, &doc)?);
                }
                Some(_) => groups.push(child),
                None => {
                    if has_metadata_below(store, child_prefix)? {
                        groups.push(child); // implicit group
                    }
                }
            }
        } else if let Some(zarray) = get_json(store, &key_in(child_path, ".zarray"))? {
            check_v2_format(store, &key_in(child_path, ".zarray"), &zarray)?;
            let zattrs = get_json(store, &key_in(child_path, ".zattrs"))?;
            arrays.push(v2_entry(
                store,
                child_path,
                &child,
                &zarray,
                zattrs.as_ref(),
            )?);
        } else if get_json(store, &key_in(child_path, ".zgroup"))?.is_some() {
            groups.push(child);
        }
    }
    Ok(GroupListing::of_members(
        zarr_format,
        false,
        Map::new(),
        arrays,
        groups,
    ))
}

fn has_metadata_below(store: &Store, prefix: &StorePrefix) -> Result<bool> {
    let keys = store
        .storage()
        .list_prefix(prefix)
        .map_err(|e| store.storage_error(prefix.as_str(), e))?;
    Ok(keys.iter().any(|k| k.as_str().ends_with("zarr.json")))
}

/// Remove every key under `prefix` (`""` for the whole store).
///
/// # Errors
/// [`Error::Storage`] when the backend refuses.
pub fn erase_prefix(store: &Store, prefix: &str) -> Result<()> {
    use zarrs_storage::WritableStorageTraits as _;
    let p = prefix.trim_matches('/');
    let sp = if p.is_empty() {
        StorePrefix::root()
    } else {
        StorePrefix::new(format!("{p}/")).map_err(|e| Error::Other(e.to_string()))?
    };
    store
        .storage()
        .erase_prefix(&sp)
        .map_err(|e| store.storage_error(p, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory_store(name: &str, files: &[(&str, Value)]) -> Store {
        let store = Store::open_str(&format!("memory://hierarchy-{name}")).expect("store");
        for (key, doc) in files {
            crate::testkit::put_key(&store, key, doc.to_string().into_bytes());
        }
        store
    }

    fn zarray() -> Value {
        serde_json::json!({"zarr_format": 2, "shape": [4], "chunks": [2], "dtype": "<f4",
                           "compressor": null, "fill_value": "NaN", "order": "C", "filters": null})
    }

    #[test]
    fn group_paths_stay_inside_the_store() {
        let store = memory_store(
            "paths",
            &[(".zgroup", serde_json::json!({"zarr_format": 2}))],
        );
        for bad in [
            "..",
            "../..",
            "a/../../b",
            "./a",
            "/etc",
            "a//b",
            "a\\..\\b",
        ] {
            let e = list_group(&store, bad).expect_err(bad).to_string();
            assert!(e.contains(&format!("group '{bad}'")), "{e}");
        }
        assert!(list_group(&store, "").is_ok());
        assert!(list_group(&store, "sub/").is_err()); // no such group: not a refusal of the path
    }

    #[test]
    fn consolidated_metadata_names_only_members_that_exist() {
        let zmeta = serde_json::json!({"zarr_consolidated_format": 1, "metadata": {
            ".zgroup": {"zarr_format": 2}, "a/.zarray": zarray(), "gone/.zarray": zarray()}});
        let store = memory_store(
            "consolidated",
            &[
                (".zgroup", serde_json::json!({"zarr_format": 2})),
                (".zmetadata", zmeta),
                ("a/.zarray", zarray()),
            ],
        );
        let e = list_group(&store, "")
            .expect_err("gone is listed")
            .to_string();
        assert!(e.contains(".zmetadata") && e.contains("'gone'"), "{e}");
        crate::testkit::put_key(&store, "gone/.zarray", zarray().to_string().into_bytes());
        assert_eq!(list_group(&store, "").expect("both exist").arrays.len(), 2);
    }

    #[test]
    fn zarr_format_must_be_the_documents_own() {
        let store = memory_store(
            "format",
            &[(
                "zarr.json",
                serde_json::json!({"zarr_format": 4, "node_type": "group"}),
            )],
        );
        let e = list_group(&store, "").expect_err("v4").to_string();
        assert!(
            e.contains("zarr.json") && e.contains("zarr_format 4"),
            "{e}"
        );
        let store = memory_store(
            "format-text",
            &[(".zgroup", serde_json::json!({"zarr_format": "2"}))],
        );
        let e = list_group(&store, "").expect_err("text").to_string();
        assert!(e.contains(".zgroup") && e.contains("zarr_format"), "{e}");
    }
}
