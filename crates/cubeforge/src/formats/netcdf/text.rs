//! Text variables of a NetCDF file read whole into memory ([`TextVar`]): character arrays
//! (classic and NetCDF-4) and NetCDF-4 variable-length strings, as xarray reads them
//! (see [`crate::text`]).

use std::sync::Arc;

use hdf5_reader::Hdf5File;
use netcdf_reader::{NcType, NcVariable};

use super::attrs;
use crate::formats::file::RangeFile;
use crate::text::{TextArray, TextData, TextVar, MAX_TEXT_BYTES};

/// Whether variables of type `t` are text.
pub(super) fn is_text(t: &NcType) -> bool {
    matches!(t, NcType::Char | NcType::String)
}

/// What reading text variables needs of their file.
pub(super) struct TextReader<'a> {
    pub(super) file: &'a RangeFile,
    pub(super) hdf5: Option<&'a Hdf5File>,
    /// The classic file's variables (its record stride).
    pub(super) classic_vars: &'a [NcVariable],
    /// Bytes of text read so far from this file.
    pub(super) held: u64,
}

impl TextReader<'_> {
    /// Text variable `v` (at `path` in the file) of dimensions `dims` (the file's), stacked
    /// along its last dimension when `stack`; or why it is not carried.
    pub(super) fn read(
        &mut self,
        v: &NcVariable,
        path: &str,
        mut dims: Vec<String>,
        stack: bool,
    ) -> Result<TextVar, String> {
        let attrs = attrs::to_json(&v.attributes);
        for a in ["_FillValue", "missing_value"] {
            if attrs.contains_key(a) {
                return Err(format!(
                    "a text variable with {a}: xarray reads it as an object array mixing text \
                     and NaN, which a Zarr array does not hold"
                ));
            }
        }
        let shape = v.shape();
        let count: u64 = shape.iter().product();
        // Strings: their references now, their text after.
        let estimate = if v.dtype == NcType::Char {
            count
        } else {
            count * 16
        };
        self.hold(estimate)?;
        let file_dims = dims.clone();
        let values = self.values(v, path, &mut dims, stack, estimate);
        let values = values.inspect_err(|_| self.held = self.held.saturating_sub(estimate))?;
        if let Some(enc) = attrs.get("_Encoding").and_then(|e| e.as_str()) {
            check_encoding(&values, enc)
                .inspect_err(|_| self.held = self.held.saturating_sub(values.nbytes()))?;
        }
        let dataset = self.hdf5.and_then(|h5| Some((h5, h5.dataset(path).ok()?)));
        let stored_chunks = dataset.as_ref().and_then(|(_, ds)| {
            ds.chunks()
                .filter(|c| c.len() == shape.len())
                .map(|c| c.iter().map(|n| u64::from(*n)).collect::<Vec<u64>>())
        });
        let filters = dataset
            .as_ref()
            .and_then(|(h5, ds)| super::filters::of_dataset(h5, ds).ok())
            .map(|(names, _)| names)
            .unwrap_or_default();
        let mut chunks = stored_chunks.clone().unwrap_or_else(|| shape.clone());
        chunks.truncate(dims.len());
        let storage = crate::text::TextStorage {
            char_dim: (dims.len() < file_dims.len())
                .then(|| file_dims.last().cloned())
                .flatten(),
            stored_chunks,
            filters,
        };
        Ok(TextVar {
            dims,
            values: Arc::new(values),
            attrs,
            chunks,
            storage,
        })
    }

    /// The values of text variable `v` (`estimate` bytes counted for it so far), its string
    /// dimension taken out of `dims` when `stack`.
    fn values(
        &mut self,
        v: &NcVariable,
        path: &str,
        dims: &mut Vec<String>,
        stack: bool,
        estimate: u64,
    ) -> Result<TextArray, String> {
        let shape = v.shape();
        let count: u64 = shape.iter().product();
        Ok(if v.dtype == NcType::Char {
            let bytes = self.chars(v, path, &shape)?;
            if stack {
                dims.pop();
            }
            TextArray::from_chars(&shape, bytes, stack)?
        } else {
            let h5 = self.hdf5.ok_or("strings in a classic file")?;
            let ds = h5.dataset(path).map_err(|e| e.to_string())?;
            let strings = ds.read_strings().map_err(|e| e.to_string())?;
            if strings.len() as u64 != count {
                return Err(format!("{} strings for shape {shape:?}", strings.len()));
            }
            let data = TextData::Str(strings);
            let a = TextArray {
                shape: shape.clone(),
                data,
            };
            // The references' estimate replaced by the text itself.
            self.held -= estimate;
            if let Err(e) = self.hold(a.nbytes()) {
                self.held += estimate;
                return Err(e);
            }
            a
        })
    }

    /// Count `n` more bytes held; refuse (counting nothing) beyond [`MAX_TEXT_BYTES`].
    fn hold(&mut self, n: u64) -> Result<(), String> {
        if self.held.saturating_add(n) > MAX_TEXT_BYTES {
            return Err(format!(
                "text is held in memory, and with this variable ({n} bytes) the file's text \
                 would exceed {MAX_TEXT_BYTES} bytes"
            ));
        }
        self.held += n;
        Ok(())
    }

    /// The bytes of character variable `v` of shape `shape`, in C order.
    fn chars(&self, v: &NcVariable, path: &str, shape: &[u64]) -> Result<Vec<u8>, String> {
        if let Some(h5) = self.hdf5 {
            let ds = h5.dataset(path).map_err(|e| e.to_string())?;
            if ds.shape() != shape {
                return Err(format!(
                    "stored shape {:?}, dimensions {shape:?}",
                    ds.shape()
                ));
            }
            return ds.read_raw_bytes().map_err(|e| e.to_string());
        }
        let n = usize::try_from(shape.iter().product::<u64>()).map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(Vec::new());
        }
        if !v.is_record_var {
            let b = self
                .file
                .read(v.data_offset, n)
                .map_err(|e| e.to_string())?;
            return Ok(b.to_vec());
        }
        // A record variable: one slab a record, records a stride apart.
        let stride = netcdf_reader::classic::data::compute_record_stride(self.classic_vars)
            .map_err(|e| e.to_string())?;
        let records = shape.first().copied().unwrap_or(0);
        let per = n / usize::try_from(records.max(1)).map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(n);
        for r in 0..records {
            let b = self
                .file
                .read(v.data_offset + r * stride, per)
                .map_err(|e| e.to_string())?;
            out.extend_from_slice(&b);
        }
        Ok(out)
    }
}

/// Refuse bytes that do not decode in `encoding` (xarray would fail reading them).
fn check_encoding(values: &TextArray, encoding: &str) -> Result<(), String> {
    let utf8 = matches!(
        encoding
            .to_ascii_lowercase()
            .replace(['-', '_'], "")
            .as_str(),
        "utf8" | "ascii"
    );
    if !utf8 {
        return Err(format!(
            "_Encoding '{encoding}' is not supported (utf-8 is)"
        ));
    }
    if let TextData::Bytes { .. } = values.data {
        for i in 0..values.len() {
            if std::str::from_utf8(values.element(i)).is_err() {
                return Err(format!(
                    "element {i} is not {encoding} text (xarray cannot decode it)"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_beyond_the_bound_is_refused_naming_the_sizes() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("f.nc");
        std::fs::write(&path, b"CDF\x01").expect("write");
        let file = RangeFile::open(path.to_str().expect("utf-8")).expect("file");
        let mut r = TextReader {
            file: &file,
            hdf5: None,
            classic_vars: &[],
            held: MAX_TEXT_BYTES - 10,
        };
        assert!(r.hold(10).is_ok());
        let e = r.hold(7).unwrap_err();
        assert!(
            e.contains("(7 bytes)") && e.contains(&MAX_TEXT_BYTES.to_string()),
            "{e}"
        );
        assert_eq!(r.held, MAX_TEXT_BYTES, "a refused variable holds nothing");
    }

    #[test]
    fn encodings_other_than_utf8_and_undecodable_bytes_are_refused() {
        let a = TextArray::from_chars(&[2, 2], b"ok\xff\0".to_vec(), true).expect("chars");
        assert!(check_encoding(&a.take(0, &[0]), "utf-8").is_ok());
        assert!(check_encoding(&a, "UTF8")
            .unwrap_err()
            .contains("element 1"));
        assert!(check_encoding(&a, "latin-1")
            .unwrap_err()
            .contains("latin-1"));
    }
}
