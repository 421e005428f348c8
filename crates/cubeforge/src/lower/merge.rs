//! Several inputs' states, each after its own operations, merged into one as
//! `xarray.merge(join="exact", combine_attrs="override")` merges datasets: same-named
//! dimensions must have the same length and the same coordinate values, a variable name may be
//! in one input only, and the global attributes are the first input's.
//!
//! Each variable's node reads its own input's sources and holds its own selections, so the
//! merged state keeps them as they are; a dimension keeps the first input's coordinate (and its
//! positions into it), whose values every other input holding the dimension shares.

use indexmap::IndexMap;

use super::{Dim, State};
use crate::cf::Decoded;
use crate::coord::Coord;
use crate::error::{Error, Result};
use crate::recipe::RecipeDoc;

impl<'a> State<'a> {
    /// The states of `inputs` (name and state, in the recipe's order) merged into one state of
    /// `doc`, to which the recipe's top-level operations then apply.
    ///
    /// # Errors
    /// [`Error::Combine`] naming both inputs: a dimension whose length or coordinate differs, a
    /// name that is a variable (or dimension) of both.
    pub fn merge(
        doc: &'a RecipeDoc,
        inputs: Vec<(String, State<'_>)>,
        dry_run: bool,
    ) -> Result<State<'a>> {
        let mut dims: IndexMap<String, Dim> = IndexMap::new();
        let mut owner: IndexMap<String, String> = IndexMap::new();
        let mut merged = State {
            doc,
            dims: IndexMap::new(),
            vars: IndexMap::new(),
            attrs: serde_json::Map::new(),
            dry_run,
            inputs: Vec::new(),
            unreadable: IndexMap::new(),
            input_chunks: IndexMap::new(),
            pruned: false,
            skipped: Vec::new(),
            texts: IndexMap::new(),
            grid: None,
            like: None,
        };
        let mut var_owner: IndexMap<String, String> = IndexMap::new();
        for (k, (name, st)) in inputs.into_iter().enumerate() {
            if merged.grid.is_none() {
                merged.grid.clone_from(&st.grid);
            }
            if merged.like.is_none() {
                merged.like.clone_from(&st.like);
            }
            for (dname, d) in &st.dims {
                match dims.get_mut(dname) {
                    None => {
                        dims.insert(dname.clone(), d.clone());
                        owner.insert(dname.clone(), name.clone());
                    }
                    Some(have) => {
                        let first = &owner[dname];
                        same_dim(first, have, &name, d, dname)?;
                        if have.coord.is_none() && d.coord.is_some() {
                            *have = d.clone();
                        }
                        have.bound_only |= d.bound_only;
                    }
                }
            }
            // A dimension's text coordinate goes with its dimension, checked as it is.
            let texts: Vec<&String> = st
                .texts
                .keys()
                .filter(|k| !st.dims.contains_key(*k))
                .collect();
            let names = st
                .vars
                .keys()
                .chain(st.unreadable.keys())
                .chain(texts.iter().copied());
            for v in names {
                let other = var_owner
                    .get(v)
                    .or_else(|| owner.get(v).filter(|o| **o != name));
                if let Some(first) = other {
                    return Err(Error::Combine {
                        location: format!("inputs '{first}' and '{name}' both have '{v}'"),
                        reason: format!(
                            "rename it in one input's operations (rename: {{{v}: {v}_{name}}}), \
                             or keep or drop it there"
                        ),
                    });
                }
            }
            for v in st.vars.keys().chain(st.unreadable.keys()).chain(texts) {
                var_owner.insert(v.clone(), name.clone());
            }
            if k == 0 {
                merged.attrs = st.attrs.clone();
            }
            merged.vars.extend(st.vars);
            for (k, t) in st.texts {
                match merged.texts.get(&k) {
                    // A dimension's text coordinate in two inputs: the same labels, as for
                    // numeric coordinates.
                    Some(have) if have.values != t.values => {
                        return Err(Error::Combine {
                            location: format!(
                                "inputs '{}' and '{name}' disagree on dimension '{k}'",
                                owner.get(&k).map_or("?", String::as_str)
                            ),
                            reason: "its text coordinates differ; bring them onto one grid first"
                                .into(),
                        });
                    }
                    Some(_) => {}
                    None => {
                        merged.texts.insert(k, t);
                    }
                }
            }
            merged.unreadable.extend(st.unreadable);
            merged.pruned |= st.pruned;
            merged.skipped.extend(st.skipped);
            for (d, c) in st.input_chunks {
                let e = merged.input_chunks.entry(d).or_insert(0);
                *e = (*e).max(c);
            }
            merged.inputs.extend(st.inputs);
        }
        merged.dims = dims;
        Ok(merged)
    }
}

/// Refuse dimension `dim` of input `b` (`db`) unless it is that of input `a` (`da`): the same
/// length and, where both have coordinates, the same values after decoding.
fn same_dim(a: &str, da: &Dim, b: &str, db: &Dim, dim: &str) -> Result<()> {
    let fail = |what: String| Error::Combine {
        location: format!("inputs '{a}' and '{b}' disagree on dimension '{dim}'"),
        reason: format!("{what}; bring them onto one grid first"),
    };
    if da.bound_only || db.bound_only {
        return Ok(()); // a dry run before a data-dependent selection: lengths are not known
    }
    if da.len != db.len {
        return Err(fail(format!("{} positions vs {}", da.len, db.len)));
    }
    let (Some(ca), Some(cb)) = (&da.coord, &db.coord) else {
        return Ok(());
    };
    let va = decoded(ca, &da.index)?;
    let vb = decoded(cb, &db.index)?;
    let kinds = |c: &Coord| matches!(c.decoding.decoded, Decoded::Time(_));
    if kinds(ca) != kinds(cb) {
        return Err(fail("times in one, numbers in the other".into()));
    }
    if let Some(p) = va
        .iter()
        .zip(&vb)
        .position(|(x, y)| !(x == y || x.is_nan() && y.is_nan()))
    {
        let show = |c: &Coord, v: f64| match &c.decoding.decoded {
            Decoded::Time(_) => crate::cf::time::TimeEncoding::parse(
                "nanoseconds since 1970-01-01",
                Some(match &c.decoding.decoded {
                    Decoded::Time(e) => e.calendar.name(),
                    _ => "standard",
                }),
            )
            .ok()
            .and_then(|e| e.decode_i64(v as i64).ok())
            .map_or_else(|| v.to_string(), |t| t.to_short()),
            _ => v.to_string(),
        };
        return Err(fail(format!(
            "coordinates differ, first at position {p}: {} vs {}",
            show(ca, va[p]),
            show(cb, vb[p])
        )));
    }
    Ok(())
}

/// The decoded values of `c` at positions `index` (times as nanoseconds since 1970-01-01).
fn decoded(c: &Coord, index: &[u64]) -> Result<Vec<f64>> {
    let raw = c.raw()?;
    let ns = match &c.decoding.decoded {
        Decoded::Time(e) => Some(
            crate::cf::time::TimeEncoding::parse(
                "nanoseconds since 1970-01-01",
                Some(e.calendar.name()),
            )
            .map_err(|e| Error::Other(format!("internal: {e}")))?,
        ),
        _ => None,
    };
    Ok(index
        .iter()
        .map(|p| {
            let v = raw.get_f64(usize::try_from(*p).unwrap_or(0));
            match (&c.decoding.decoded, &ns) {
                (Decoded::Time(e), Some(ns)) => e
                    .decode_f64(v)
                    .ok()
                    .flatten()
                    .and_then(|t| ns.encode_i64(&t).ok().flatten())
                    .map_or(f64::NAN, |n| n as f64),
                _ => c.decoding.decode_number(v).unwrap_or(f64::NAN),
            }
        })
        .collect())
}
