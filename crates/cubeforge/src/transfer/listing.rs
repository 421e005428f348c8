//! `ls` and `du`: one level of a prefix (a Zarr store listed as one entry, with its variables),
//! and the bytes below a prefix per first key segment.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{basename, is_not_found, storage_err, Endpoint, Entry};
use crate::error::{Error, Result};
use crate::store::{runtime, StoreOptions};

/// One line of `ls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListEntry {
    /// Key below the listed prefix (prefixes end with `/`).
    pub name: String,
    /// `object`, `prefix` or `zarr`.
    pub kind: &'static str,
    /// Bytes (objects; Zarr stores with `long`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Objects in a Zarr store (with `long`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects: Option<u64>,
    /// Last modification (objects), RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// Zarr format of a Zarr store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zarr_format: Option<u8>,
    /// Variables (arrays) and sub-groups of a Zarr store.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<String>,
}

fn object_entry(e: &Entry, name: String) -> ListEntry {
    ListEntry {
        name,
        kind: "object",
        size: Some(e.size),
        objects: None,
        last_modified: Some(e.last_modified.to_rfc3339()),
        zarr_format: None,
        variables: Vec::new(),
    }
}

/// The arrays and groups of the Zarr store at `text` (best effort: empty when unreadable).
fn zarr_members(text: &str) -> Vec<String> {
    let Ok(store) = crate::store::Store::open_str(text) else {
        return Vec::new();
    };
    match crate::zarr::list_group(&store, "") {
        Ok(g) => g
            .arrays
            .iter()
            .map(|a| a.name.clone())
            .chain(g.groups.iter().map(|g| format!("{g}/")))
            .collect(),
        Err(e) => {
            tracing::debug!("{text}: cannot list Zarr members: {e}");
            Vec::new()
        }
    }
}

/// List a location. Without `recursive`, one level: objects, prefixes and Zarr stores (one
/// entry each, with their variables); a URL that is itself a Zarr store lists as that one entry.
/// With `recursive`, every object below. With `long`, Zarr stores also get their total size and
/// object count.
///
/// # Errors
/// [`Error::NotFound`] when nothing is there; [`Error::Storage`] when listing fails.
pub fn list(
    text: &str,
    long: bool,
    recursive: bool,
    store_options: &StoreOptions,
) -> Result<Vec<ListEntry>> {
    let ep = Endpoint::open(text, store_options)?;
    let mut zarr_texts: Vec<(usize, String)> = Vec::new();
    let entries = runtime().block_on(async {
        if let Some(own) = ep.head_self().await? {
            let name = match &ep.local {
                Some(p) => p.display().to_string(),
                None => basename(&ep.prefix),
            };
            return Ok(vec![object_entry(&own, name)]);
        }
        if recursive {
            let all = ep.list_all(&|_, _| {}).await?;
            if all.is_empty() {
                return Err(Error::NotFound {
                    location: text.to_string(),
                });
            }
            return Ok(all.iter().map(|e| object_entry(e, e.key.clone())).collect());
        }
        if let Some(format) = ep.zarr_format_at("").await? {
            let mut e = ListEntry {
                name: text.trim_end_matches('/').to_string(),
                kind: "zarr",
                size: None,
                objects: None,
                last_modified: None,
                zarr_format: Some(format),
                variables: Vec::new(),
            };
            if long {
                let all = ep.list_all(&|_, _| {}).await?;
                e.size = Some(all.iter().map(|e| e.size).sum());
                e.objects = Some(all.len() as u64);
            }
            zarr_texts.push((0, text.to_string()));
            return Ok(vec![e]);
        }
        let (objects, prefixes) = list_one_level(&ep).await?;
        if objects.is_empty() && prefixes.is_empty() {
            return Err(Error::NotFound {
                location: text.to_string(),
            });
        }
        let mut out = Vec::new();
        for p in &prefixes {
            let child = Endpoint::open(&ep.location.join(p), store_options)?;
            let format = child.zarr_format_at("").await?;
            let mut e = ListEntry {
                name: format!("{p}/"),
                kind: if format.is_some() { "zarr" } else { "prefix" },
                size: None,
                objects: None,
                last_modified: None,
                zarr_format: format,
                variables: Vec::new(),
            };
            if format.is_some() {
                if long {
                    let all = child.list_all(&|_, _| {}).await?;
                    e.size = Some(all.iter().map(|e| e.size).sum());
                    e.objects = Some(all.len() as u64);
                }
                zarr_texts.push((out.len(), ep.location.join(p)));
            }
            out.push(e);
        }
        for o in &objects {
            out.push(object_entry(o, o.key.clone()));
        }
        Ok(out)
    })?;
    let mut entries = entries;
    for (i, t) in zarr_texts {
        entries[i].variables = zarr_members(&t);
    }
    Ok(entries)
}

/// Objects and sub-prefixes directly below the endpoint's prefix.
async fn list_one_level(ep: &Endpoint) -> Result<(Vec<Entry>, Vec<String>)> {
    if let Some(p) = &ep.local {
        if !p.is_dir() {
            return Ok((Vec::new(), Vec::new()));
        }
    }
    let prefix = (!ep.prefix.as_ref().is_empty()).then_some(&ep.prefix);
    let listing = match ep.store.list_with_delimiter(prefix).await {
        Ok(l) => l,
        Err(e) if is_not_found(&e) => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(storage_err(ep.text.clone(), &e)),
    };
    let objects = listing
        .objects
        .into_iter()
        .filter_map(|m| ep.entry(m))
        .filter(|e| !e.key.is_empty())
        .collect();
    let mut prefixes: Vec<String> = listing
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename().map(ToString::to_string))
        .collect();
    prefixes.sort();
    Ok((objects, prefixes))
}

/// Bytes and objects below a location, with the parts below it (variables of a Zarr store).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// The location as given.
    pub location: String,
    /// Total bytes.
    pub bytes: u64,
    /// Total objects.
    pub objects: u64,
    /// Zarr format when the location is a Zarr store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zarr_format: Option<u8>,
    /// Per first key segment (a Zarr store's variables; `(metadata)` for objects directly at the
    /// location), sorted by name.
    pub parts: BTreeMap<String, PartUsage>,
}

/// Bytes and objects of one part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PartUsage {
    /// Bytes.
    pub bytes: u64,
    /// Objects.
    pub objects: u64,
}

/// Measure a location (`du`). `on_found` sees the running count and size while listing.
///
/// # Errors
/// [`Error::NotFound`] when nothing is there; [`Error::Storage`] when listing fails.
pub fn usage(
    text: &str,
    store_options: &StoreOptions,
    on_found: &(dyn Fn(u64, u64) + Sync),
) -> Result<Usage> {
    let ep = Endpoint::open(text, store_options)?;
    runtime().block_on(async {
        let mut u = Usage {
            location: text.to_string(),
            ..Usage::default()
        };
        if let Some(own) = ep.head_self().await? {
            u.bytes = own.size;
            u.objects = 1;
            return Ok(u);
        }
        let all = ep.list_all(on_found).await?;
        if all.is_empty() {
            return Err(Error::NotFound {
                location: text.to_string(),
            });
        }
        u.zarr_format = ep.zarr_format_at("").await?;
        for e in &all {
            u.bytes += e.size;
            u.objects += 1;
            let part = match e.key.split_once('/') {
                Some((first, _)) => first.to_string(),
                None => "(metadata)".to_string(),
            };
            let p = u.parts.entry(part).or_default();
            p.bytes += e.size;
            p.objects += 1;
        }
        Ok(u)
    })
}
