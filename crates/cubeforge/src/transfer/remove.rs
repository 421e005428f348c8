//! `rm`: what a removal would remove, refusing roots and prefixes it must not touch, and the
//! removal itself, in bulk requests where the store has them.

use std::sync::atomic::Ordering;

use futures::StreamExt as _;
use object_store::path::Path as ObjPath;

use super::{
    is_not_found, remove_empty_dirs, Counters, Endpoint, ProgressFn, RemoveReport, TransferOptions,
};
use crate::error::{Error, Result};
use crate::store::{runtime, StoreOptions};

/// Delete `paths` from `ep` with bounded concurrency (bulk requests where the store has them).
pub(super) async fn delete_paths(
    ep: &Endpoint,
    paths: Vec<ObjPath>,
    options: &TransferOptions,
    progress: ProgressFn<'_>,
) -> Result<u64> {
    let counters = Counters::new(paths.len() as u64, 0);
    progress(counters.snapshot());
    let total = paths.len();
    let stream = futures::stream::iter(paths.into_iter().map(Ok)).boxed();
    let mut results = ep.store.delete_stream(stream);
    let _ = options;
    let mut failure = None;
    while let Some(r) = results.next().await {
        match r {
            Ok(_) => {
                counters.objects.fetch_add(1, Ordering::Relaxed);
                progress(counters.snapshot());
            }
            Err(e) if is_not_found(&e) => {
                counters.objects.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let done = counters.objects.load(Ordering::Relaxed);
    if let Some(e) = failure {
        return Err(Error::Transfer {
            location: ep.text.clone(),
            reason: e.to_string(),
            done: format!("{done} of {total} objects removed before the failure"),
        });
    }
    Ok(done)
}

/// What `rm` would remove: the object at the URL, or with `recursive` everything below it.
#[derive(Debug)]
pub struct RemovePlan {
    endpoint: Endpoint,
    paths: Vec<ObjPath>,
    /// Objects to remove.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl RemovePlan {
    /// The location as given.
    #[must_use]
    pub fn location(&self) -> &str {
        &self.endpoint.text
    }
}

/// Plan a removal, refusing what must not be removed: with `recursive`, a bucket, container or
/// file-system root, the current or home directory or a parent of them (unless `force_root`,
/// see [`crate::safety::refuse_root_removal`]); without it, anything but a single object.
///
/// # Errors
/// [`Error::Refused`] as above, [`Error::NotFound`] when nothing is there.
pub fn plan_remove(
    text: &str,
    recursive: bool,
    force_root: bool,
    store_options: &StoreOptions,
) -> Result<RemovePlan> {
    let ep = Endpoint::open(text, store_options)?;
    ep.refuse_read_only()?;
    if recursive {
        crate::safety::refuse_root_removal(&ep.location, force_root)?;
    }
    runtime().block_on(async {
        let own = ep.head_self().await?;
        let mut paths = Vec::new();
        let mut bytes = 0;
        if let Some(e) = &own {
            paths.push(ep.prefix.clone());
            bytes += e.size;
        }
        if recursive {
            for e in ep.list_all(&|_, _| {}).await? {
                paths.push(ep.path_of(&e.key)?);
                bytes += e.size;
            }
        } else if own.is_none() {
            let below = ep.list_all(&|_, _| {}).await?;
            if !below.is_empty() {
                return Err(Error::Refused {
                    location: text.to_string(),
                    reason: format!(
                        "is a prefix holding {} objects, not an object; use rm -r",
                        below.len()
                    ),
                });
            }
        }
        if paths.is_empty() {
            return Err(Error::NotFound {
                location: text.to_string(),
            });
        }
        let objects = paths.len() as u64;
        Ok(RemovePlan {
            endpoint: ep,
            paths,
            objects,
            bytes,
        })
    })
}

/// Carry out a removal planned by [`plan_remove`].
///
/// # Errors
/// [`Error::Transfer`] when the store refuses a deletion; the message says how many objects were
/// removed before it.
pub fn remove(
    plan: RemovePlan,
    options: &TransferOptions,
    progress: ProgressFn<'_>,
) -> Result<RemoveReport> {
    let mut report = RemoveReport {
        location: plan.endpoint.text.clone(),
        deleted: plan.objects,
        bytes: plan.bytes,
        dry_run: options.dry_run,
    };
    if options.dry_run {
        return Ok(report);
    }
    let RemovePlan {
        endpoint, paths, ..
    } = plan;
    report.deleted = runtime().block_on(delete_paths(&endpoint, paths, options, progress))?;
    if let Some(root) = &endpoint.local {
        if root.is_dir() {
            remove_empty_dirs(root, true);
        }
    }
    Ok(report)
}
