//! What a local input path is before it is read as a Zarr store: missing, unreadable, or a file
//! of another format (NetCDF, HDF5, TIFF) given where a store was expected, told apart by the
//! first bytes of the file, so that the message says what the file is rather than what reading
//! `zarr.json` below it failed with.

use std::io::Read as _;
use std::path::Path;

use crate::error::{Error, Result};

/// A file format told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// NetCDF classic (`CDF\x01`) or 64-bit offset (`CDF\x02`), or CDF5 (`CDF\x05`).
    NetCdfClassic,
    /// HDF5, which NetCDF-4 files are (`\x89HDF\r\n\x1a\n`).
    Hdf5,
    /// TIFF or GeoTIFF (`II*\0`, `MM\0*`), BigTIFF (`II+\0`, `MM\0+`).
    Tiff,
    /// Anything else.
    Unknown,
}

impl Sniffed {
    /// The format of a file starting with `head`.
    #[must_use]
    pub fn of(head: &[u8]) -> Sniffed {
        match head {
            [b'C', b'D', b'F', 1 | 2 | 5, ..] => Sniffed::NetCdfClassic,
            [0x89, b'H', b'D', b'F', b'\r', b'\n', 0x1a, b'\n', ..] => Sniffed::Hdf5,
            [b'I', b'I', b'*' | b'+', 0, ..] | [b'M', b'M', 0, b'*' | b'+', ..] => Sniffed::Tiff,
            _ => Sniffed::Unknown,
        }
    }

    /// What the file is, for a message.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Sniffed::NetCdfClassic => "a NetCDF (classic) file",
            Sniffed::Hdf5 => "a NetCDF-4/HDF5 file",
            Sniffed::Tiff => "a GeoTIFF/TIFF file",
            Sniffed::Unknown => "a file",
        }
    }
}

/// Check that the local path `path`, given as a store, is a directory cubeforge can read.
///
/// # Errors
/// [`Error::NotFound`] when nothing is there; [`Error::Io`] (permission denied) when the path or
/// a directory above it cannot be read; [`Error::Unsupported`] naming the format when the path
/// is a NetCDF, HDF5 or TIFF file; [`Error::NotZarr`] for any other file.
pub fn check_local_store(path: &Path) -> Result<()> {
    let shown = path.display().to_string();
    let io = |source: std::io::Error| Error::Io {
        path: shown.clone(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound { location: shown })
        }
        Err(e) => return Err(io(e)),
    };
    if meta.is_dir() {
        // Listing it is what reading the store starts with: a directory that cannot be read
        // says so here, rather than as a missing zarr.json.
        return std::fs::read_dir(path).map(drop).map_err(io);
    }
    let mut head = [0u8; 8];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(io)?;
    match Sniffed::of(&head[..n]) {
        Sniffed::Unknown => Err(Error::NotZarr { location: shown }),
        kind => Err(Error::Unsupported {
            location: shown,
            feature: "input format".into(),
            detail: format!(
                "this is {}, not a Zarr store (NetCDF and GeoTIFF sources are not supported yet)",
                kind.describe()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers() {
        assert_eq!(Sniffed::of(b"CDF\x01rest"), Sniffed::NetCdfClassic);
        assert_eq!(Sniffed::of(b"CDF\x02"), Sniffed::NetCdfClassic);
        assert_eq!(Sniffed::of(b"\x89HDF\r\n\x1a\n"), Sniffed::Hdf5);
        assert_eq!(Sniffed::of(b"II*\0"), Sniffed::Tiff);
        assert_eq!(Sniffed::of(b"MM\0*"), Sniffed::Tiff);
        assert_eq!(Sniffed::of(b"II+\0"), Sniffed::Tiff);
        assert_eq!(Sniffed::of(b"CDF"), Sniffed::Unknown);
        assert_eq!(Sniffed::of(b""), Sniffed::Unknown);
        assert_eq!(Sniffed::of(b"{\"zarr_format\""), Sniffed::Unknown);
    }

    #[test]
    fn a_netcdf_file_given_as_a_store_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nc = dir.path().join("x.nc");
        std::fs::write(&nc, b"\x89HDF\r\n\x1a\n\0\0\0\0").expect("write");
        let e = check_local_store(&nc).expect_err("a file");
        let text = e.to_string();
        assert!(
            text.contains("x.nc") && text.contains("NetCDF-4/HDF5"),
            "{text}"
        );
        let other = dir.path().join("x.txt");
        std::fs::write(&other, b"hello").expect("write");
        assert!(matches!(
            check_local_store(&other),
            Err(Error::NotZarr { .. })
        ));
        assert!(matches!(
            check_local_store(&dir.path().join("none")),
            Err(Error::NotFound { .. })
        ));
        assert!(check_local_store(dir.path()).is_ok());
    }
}
