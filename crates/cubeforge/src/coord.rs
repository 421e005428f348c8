//! Coordinates of a dimension: stored (the values of a coordinate variable, read from a source)
//! or computed (`start + step × index`, such as the x and y of a target grid), so that a
//! dimension can have coordinates before any array does.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::cf::CfDecoding;
use crate::dtype::{DType, RawArray};
use crate::error::{Error, Result};
use crate::source::ChunkSource;

/// The most values of a coordinate read into memory (2^31): coordinates are held whole.
pub const MAX_COORD_LEN: u64 = 1 << 31;

/// Where a coordinate's values come from.
#[derive(Debug, Clone)]
pub enum CoordValues {
    /// The values of a one-dimensional source (a coordinate variable).
    Stored(Arc<dyn ChunkSource>),
    /// `start + step × i` for `i` in `0 .. len`, cast to the coordinate's type as a cast does.
    Computed {
        /// The first value.
        start: f64,
        /// The step between neighbours.
        step: f64,
        /// How many.
        len: u64,
    },
}

/// One coordinate (index) variable of a dimension.
#[derive(Debug, Clone)]
pub struct Coord {
    /// Its values.
    pub values: CoordValues,
    /// The type its values are stored (and written) as.
    pub dtype: DType,
    /// Its attributes as stored, to write back (`units`, `calendar`, …).
    pub attrs: Map<String, Value>,
    /// How its stored values decode (a CF time, say).
    pub decoding: CfDecoding,
    /// The packed values and their decoding, when `values` were decoded from them as the file
    /// was opened (a NetCDF coordinate with a float32 `scale_factor`): for readers that present
    /// the file as it is stored (the Python package's xarray backend).
    pub packed: Option<(Arc<dyn ChunkSource>, CfDecoding)>,
}

impl Coord {
    /// The coordinate whose values are those of `source`.
    #[must_use]
    pub fn stored(
        source: Arc<dyn ChunkSource>,
        attrs: Map<String, Value>,
        decoding: CfDecoding,
    ) -> Coord {
        Coord {
            dtype: source.dtype(),
            values: CoordValues::Stored(source),
            attrs,
            decoding,
            packed: None,
        }
    }

    /// The coordinate `start + step × i` for `i` in `0 .. len`, of type `dtype`.
    #[must_use]
    pub fn computed(
        start: f64,
        step: f64,
        len: u64,
        dtype: DType,
        attrs: Map<String, Value>,
        decoding: CfDecoding,
    ) -> Coord {
        Coord {
            values: CoordValues::Computed { start, step, len },
            dtype,
            attrs,
            decoding,
            packed: None,
        }
    }

    /// How many values.
    #[must_use]
    pub fn len(&self) -> u64 {
        match &self.values {
            CoordValues::Stored(source) => source.shape().first().copied().unwrap_or(1),
            CoordValues::Computed { len, .. } => *len,
        }
    }

    /// Whether it has no values.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes its values take in memory as stored (`None`: more than fit in 64 bits).
    #[must_use]
    pub fn bytes(&self) -> Option<u64> {
        self.len().checked_mul(self.dtype.size() as u64)
    }

    /// Where it comes from, for messages.
    #[must_use]
    pub fn origin(&self) -> String {
        match &self.values {
            CoordValues::Stored(source) => source.id().to_string(),
            CoordValues::Computed { .. } => "computed coordinate".to_string(),
        }
    }

    /// Refuse a coordinate longer than [`MAX_COORD_LEN`]: its values are held in memory whole.
    ///
    /// # Errors
    /// [`Error::Refused`] with the figures.
    pub fn check_len(&self) -> Result<()> {
        if self.len() > MAX_COORD_LEN {
            return Err(Error::Refused {
                location: self.origin(),
                reason: format!(
                    "a coordinate of {} values is held in memory whole; at most {MAX_COORD_LEN} \
                     values are read",
                    self.len()
                ),
            });
        }
        Ok(())
    }

    /// The values and attributes a cube holds for this coordinate: as stored, with their
    /// attributes, unless decoding masks values of a float coordinate (a `_FillValue` or
    /// `missing_value` that is not NaN, with or without packing). Those are written decoded,
    /// masked values NaN, without the coding attributes, as xarray's `to_zarr` leaves a
    /// decoded float coordinate: a cube's NaN fill value could not say which stored value
    /// was missing.
    ///
    /// # Errors
    /// As [`Coord::raw`].
    pub fn for_output(&self) -> Result<(RawArray, Map<String, Value>)> {
        let raw = self.raw()?;
        let dec = &self.decoding;
        let masks = !dec.fill_values.is_empty() && !dec.is_nan_mask_only();
        let to = match dec.decoded {
            crate::cf::Decoded::Numeric(d @ (DType::Float32 | DType::Float64)) if masks => d,
            _ => return Ok((raw, self.attrs.clone())),
        };
        let mut bytes = Vec::with_capacity(raw.len() * to.size());
        if to == DType::Float32 {
            for x in raw.map_f64(|x| dec.decode_number_f32(x).unwrap_or(f32::NAN)) {
                bytes.extend_from_slice(&x.to_ne_bytes());
            }
        } else {
            for x in raw.map_f64(|x| dec.decode_number(x).unwrap_or(f64::NAN)) {
                bytes.extend_from_slice(&x.to_ne_bytes());
            }
        }
        let attrs = crate::cf::without_value_coding(&self.attrs);
        let shape = raw.shape;
        Ok((
            RawArray {
                dtype: to,
                shape,
                bytes,
            },
            attrs,
        ))
    }

    /// Every value, as stored (not decoded).
    ///
    /// # Errors
    /// Read and decode errors of a stored coordinate, naming its chunk; a coordinate longer
    /// than [`MAX_COORD_LEN`].
    pub fn raw(&self) -> Result<RawArray> {
        self.check_len()?;
        match &self.values {
            CoordValues::Stored(source) => {
                let shape = source.shape().to_vec();
                source.read_region(&vec![0; shape.len()], &shape)
            }
            CoordValues::Computed { start, step, len } => {
                let mut bytes =
                    Vec::with_capacity(usize::try_from(*len).unwrap_or(0) * self.dtype.size());
                for i in 0..*len {
                    #[allow(clippy::cast_precision_loss)]
                    self.dtype.push_f64(start + step * i as f64, &mut bytes);
                }
                Ok(RawArray {
                    dtype: self.dtype,
                    shape: vec![*len],
                    bytes,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computed_coordinates_are_start_plus_step_times_index() {
        let decoding = CfDecoding::from_attrs(&Map::new(), DType::Float64, None).expect("decoding");
        let x = Coord::computed(
            500_000.5,
            -30.0,
            4,
            DType::Float64,
            Map::new(),
            decoding.clone(),
        );
        let raw = x.raw().expect("values");
        assert_eq!(raw.shape, vec![4]);
        assert_eq!(
            raw.to_f64_vec(),
            vec![500_000.5, 499_970.5, 499_940.5, 499_910.5]
        );
        // Cast to the coordinate's type as a cast does.
        let i = Coord::computed(0.0, 2.5, 3, DType::Int16, Map::new(), decoding);
        assert_eq!(i.raw().expect("values").to_f64_vec(), vec![0.0, 2.0, 5.0]);
    }
}
