//! One input file read by byte ranges, wherever it lives: a local file (read with `pread`, which
//! many threads may do at once) or an object in a bucket or behind HTTP(S) (ranged GETs through
//! the store of its parent prefix). NetCDF, HDF5 and TIFF readers read their metadata and each
//! chunk or tile through it, so only the bytes needed cross the network.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use zarrs_storage::byte_range::ByteRange;
use zarrs_storage::StoreKey;

use crate::error::{Error, Result};
use crate::store::{Location, ObjectUrl, Store};

/// A file readable by byte ranges; cheap to clone (the handle is shared).
#[derive(Clone)]
pub struct RangeFile {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    len: u64,
    backend: Backend,
}

enum Backend {
    Local { path: PathBuf, file: std::fs::File },
    Object { store: Store, key: StoreKey },
}

impl std::fmt::Debug for RangeFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeFile")
            .field("id", &self.inner.id)
            .field("len", &self.inner.len)
            .finish()
    }
}

impl RangeFile {
    /// Open the file at `url` (a path or an object URL).
    ///
    /// # Errors
    /// As [`RangeFile::open_location`], and [`Error::InvalidUrl`] for a URL that cannot be parsed.
    pub fn open(url: &str) -> Result<RangeFile> {
        RangeFile::open_location(&Location::parse(url)?)
    }

    /// Open the file at `location`: its size is read (a local `stat`, or a `HEAD` request).
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such file or object, [`Error::Io`] when a local file
    /// cannot be opened (permission denied) or is a directory, [`Error::Storage`] when the
    /// object store refuses.
    pub fn open_location(location: &Location) -> Result<RangeFile> {
        let id = location.to_string();
        match location {
            Location::Local(path) => {
                let io = |source: std::io::Error| Error::Io {
                    path: id.clone(),
                    source,
                };
                let file = match std::fs::File::open(path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(Error::NotFound { location: id })
                    }
                    Err(e) => return Err(io(e)),
                };
                let meta = file.metadata().map_err(io)?;
                if meta.is_dir() {
                    return Err(io(std::io::Error::new(
                        std::io::ErrorKind::IsADirectory,
                        "is a directory, not a file",
                    )));
                }
                Ok(RangeFile {
                    inner: Arc::new(Inner {
                        id,
                        len: meta.len(),
                        backend: Backend::Local {
                            path: path.clone(),
                            file,
                        },
                    }),
                })
            }
            Location::Memory(_) => Err(Error::Unsupported {
                location: id,
                feature: "input".into(),
                detail: "a file cannot be read from a memory:// store".into(),
            }),
            Location::Object(obj) => {
                let (parent, name) = split_object(obj).ok_or_else(|| Error::InvalidUrl {
                    url: id.clone(),
                    reason: "names a prefix, not a file".into(),
                })?;
                let store = Store::open(&parent)?;
                let key = StoreKey::new(name.as_str()).map_err(|e| Error::InvalidUrl {
                    url: id.clone(),
                    reason: e.to_string(),
                })?;
                let len = store
                    .storage()
                    .size_key(&key)
                    .map_err(|e| Error::storage(id.clone(), e))?
                    .ok_or_else(|| Error::NotFound {
                        location: id.clone(),
                    })?;
                Ok(RangeFile {
                    inner: Arc::new(Inner {
                        id,
                        len,
                        backend: Backend::Object { store, key },
                    }),
                })
            }
        }
    }

    /// The file's full path or URL, for messages and cache keys.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Its size in bytes.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.inner.len
    }

    /// Whether it holds no bytes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.inner.len == 0
    }

    /// The local path, for a local file.
    #[must_use]
    pub fn local_path(&self) -> Option<&Path> {
        match &self.inner.backend {
            Backend::Local { path, .. } => Some(path),
            Backend::Object { .. } => None,
        }
    }

    /// The `len` bytes at `offset`.
    ///
    /// # Errors
    /// [`Error::CorruptChunk`] when the range runs past the end of the file (a truncated file),
    /// [`Error::Io`] / [`Error::Storage`] when reading fails.
    pub fn read(&self, offset: u64, len: usize) -> Result<Bytes> {
        let end = offset.checked_add(len as u64);
        if end.is_none_or(|e| e > self.inner.len) {
            return Err(self.truncated(offset, len as u64));
        }
        if len == 0 {
            return Ok(Bytes::new());
        }
        match &self.inner.backend {
            Backend::Local { file, .. } => {
                use std::os::unix::fs::FileExt as _;
                let mut buf = vec![0u8; len];
                file.read_exact_at(&mut buf, offset).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        self.truncated(offset, len as u64)
                    } else {
                        Error::Io {
                            path: self.inner.id.clone(),
                            source: e,
                        }
                    }
                })?;
                Ok(Bytes::from(buf))
            }
            Backend::Object { store, key } => {
                let range = ByteRange::FromStart(offset, Some(len as u64));
                let got = store
                    .storage()
                    .get_partial(key, range)
                    .map_err(|e| Error::storage(self.inner.id.clone(), e))?
                    .ok_or_else(|| Error::NotFound {
                        location: self.inner.id.clone(),
                    })?;
                if got.len() != len {
                    return Err(self.truncated(offset, len as u64));
                }
                Ok(got)
            }
        }
    }

    /// The whole file (small files, headers).
    ///
    /// # Errors
    /// As [`RangeFile::read`]; [`Error::Refused`] for a file too large to hold in memory.
    pub fn read_all(&self) -> Result<Bytes> {
        let len = usize::try_from(self.inner.len).map_err(|_| Error::Refused {
            location: self.inner.id.clone(),
            reason: "file too large to read whole".into(),
        })?;
        self.read(0, len)
    }

    /// The error for a range past the end of the file.
    #[must_use]
    pub fn truncated(&self, offset: u64, len: u64) -> Error {
        Error::CorruptChunk {
            location: self.inner.id.clone(),
            reason: format!(
                "truncated file: bytes {offset}..{} asked for, the file has {}",
                offset.saturating_add(len),
                self.inner.len
            ),
        }
    }
}

/// The prefix an object lies under and its name: `s3://b/a/f.nc` is (`s3://b/a`, `f.nc`).
fn split_object(obj: &ObjectUrl) -> Option<(Location, String)> {
    let mut url = obj.url.clone();
    let path = url.path().to_string();
    let (dir, name) = path.rsplit_once('/')?;
    if name.is_empty() {
        return None;
    }
    let name = percent_decode(name);
    url.set_path(&format!("{dir}/"));
    Some((
        Location::Object(ObjectUrl {
            service: obj.service,
            url,
        }),
        name,
    ))
}

/// `%XX` escapes decoded (object keys are stored unescaped).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ranges_of_a_local_file_and_names_a_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        std::fs::write(&path, (0u8..100).collect::<Vec<_>>()).unwrap();
        let f = RangeFile::open(path.to_str().unwrap()).unwrap();
        assert_eq!(f.len(), 100);
        assert_eq!(&f.read(10, 3).unwrap()[..], &[10, 11, 12]);
        let e = f.read(98, 5).unwrap_err().to_string();
        assert!(e.contains("f.bin") && e.contains("truncated"), "{e}");
        let missing = RangeFile::open(dir.path().join("no.nc").to_str().unwrap()).unwrap_err();
        assert!(matches!(missing, Error::NotFound { .. }), "{missing}");
        let d = RangeFile::open(dir.path().to_str().unwrap()).unwrap_err();
        assert!(d.to_string().contains("directory"), "{d}");
    }

    #[test]
    fn an_object_url_splits_into_its_prefix_and_name() {
        let Location::Object(obj) = Location::parse("s3://bucket/a/b/f%20x.nc").unwrap() else {
            panic!("not an object URL")
        };
        let (parent, name) = split_object(&obj).unwrap();
        assert_eq!(parent.to_string(), "s3://bucket/a/b");
        assert_eq!(name, "f x.nc");
    }
}
