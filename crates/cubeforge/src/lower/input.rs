//! What lowering starts from, whatever the format: the input's dimensions with their coordinates,
//! and its variables, each readable as a [`ChunkSource`] and decoded by its CF attributes.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::cf::CfDecoding;
use crate::coord::Coord;
use crate::dataset::Dataset;
use crate::source::ChunkSource;
use crate::text::TextVar;

/// A dataset to build from.
#[derive(Debug, Clone)]
pub struct Input {
    /// Where it is, as the cube's provenance names it.
    pub location: String,
    /// Its dimensions, in order of first appearance.
    pub dims: Vec<InputDim>,
    /// Its variables that can be read (coordinates of dimensions are in `dims`).
    pub variables: Vec<InputVar>,
    /// Global attributes.
    pub attrs: Map<String, Value>,
    /// Variables (and coordinates) that cannot be read, with the reason: lowering refuses a
    /// recipe that uses or outputs one.
    pub unreadable: Vec<(String, String)>,
    /// Text variables (character arrays, strings), held in memory, by name; one named after a
    /// dimension is that dimension's coordinate.
    pub texts: Vec<(String, TextVar)>,
}

/// A dimension of an input.
#[derive(Debug, Clone)]
pub struct InputDim {
    /// Name.
    pub name: String,
    /// Length.
    pub len: u64,
    /// Its coordinate, when it has one.
    pub coord: Option<Coord>,
}

/// A variable of an input.
#[derive(Debug, Clone)]
pub struct InputVar {
    /// Name.
    pub name: String,
    /// Dimension names, one per axis of `source`.
    pub dims: Vec<String>,
    /// Its values.
    pub source: Arc<dyn ChunkSource>,
    /// How its stored values decode.
    pub decoding: CfDecoding,
    /// Its attributes after decoding (CF coding attributes removed).
    pub attrs: Map<String, Value>,
}

impl Input {
    /// The variables of a Zarr group that cubeforge can read, at `location`: a dimension's
    /// coordinate is the one-dimensional variable of its name; variables that cannot be opened
    /// (an unsupported type or codec) are listed in `unreadable` with the reason.
    #[must_use]
    pub fn from_dataset(ds: &Dataset, location: String) -> Input {
        let dims: Vec<InputDim> = ds
            .dims
            .iter()
            .map(|(name, len)| {
                let coord = ds
                    .variables
                    .iter()
                    .find(|v| &v.name == name && v.dims.len() == 1)
                    .and_then(|v| {
                        let array = v.array(&ds.store).ok()?.clone();
                        let decoding = v.decoding.clone()?;
                        Some(Coord::stored(
                            Arc::new(array),
                            v.meta.attrs.clone(),
                            decoding,
                        ))
                    });
                InputDim {
                    name: name.clone(),
                    len: *len,
                    coord,
                }
            })
            .collect();
        let variables = ds
            .variables
            .iter()
            .filter(|v| !dims.iter().any(|d| d.name == v.name))
            .filter_map(|v| {
                let (Ok(array), Some(decoding)) = (v.array(&ds.store), v.decoding.clone()) else {
                    return None;
                };
                Some(InputVar {
                    name: v.name.clone(),
                    dims: v.dims.clone(),
                    source: Arc::new(array.clone()),
                    decoding,
                    attrs: v.attrs(),
                })
            })
            .collect();
        let unreadable = ds
            .variables
            .iter()
            .filter_map(|v| {
                let reason = v.array(&ds.store).err()?.to_string();
                Some((v.name.clone(), reason.replace('\n', " ")))
            })
            .collect();
        Input {
            location,
            dims,
            variables,
            attrs: ds.attrs.clone(),
            unreadable,
            texts: Vec::new(),
        }
    }
}
