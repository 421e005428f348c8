//! A [`RangeFile`] as the `Storage` the NetCDF and HDF5 readers read through: every read is a
//! byte range of the file (a local `pread`, or a ranged GET). For files behind a network, the
//! many small reads of metadata parsing go through a small block cache (64 KiB blocks, 4 MiB in
//! all); chunk-sized reads always go straight to the file.

use std::sync::Arc;

use hdf5_reader::storage::{BlockCacheStorage, DynStorage, Storage, StorageBuffer};

use crate::formats::file::RangeFile;

/// Reads smaller than this go through the block cache of a remote file.
const SMALL_READ: usize = 64 * 1024;

/// The storage of one file.
pub(crate) struct FileStorage {
    direct: Arc<Direct>,
    small: Option<BlockCacheStorage>,
}

struct Direct {
    file: RangeFile,
}

impl Storage for Direct {
    fn len(&self) -> u64 {
        self.file.len()
    }

    fn read_range(&self, offset: u64, len: usize) -> hdf5_reader::error::Result<StorageBuffer> {
        let bytes = self
            .file
            .read(offset, len)
            .map_err(|e| hdf5_reader::error::Error::Io(std::io::Error::other(e.to_string())))?;
        Ok(StorageBuffer::from_vec(Vec::from(bytes)))
    }
}

impl FileStorage {
    /// The storage of `file`, with a block cache for small reads when it is not local.
    pub(crate) fn open(file: &RangeFile) -> DynStorage {
        let direct = Arc::new(Direct { file: file.clone() });
        let small = file
            .local_path()
            .is_none()
            .then(|| BlockCacheStorage::new(direct.clone(), SMALL_READ, 64));
        Arc::new(FileStorage { direct, small })
    }
}

impl Storage for FileStorage {
    fn len(&self) -> u64 {
        self.direct.len()
    }

    fn read_range(&self, offset: u64, len: usize) -> hdf5_reader::error::Result<StorageBuffer> {
        match &self.small {
            Some(cache) if len < SMALL_READ => cache.read_range(offset, len),
            _ => self.direct.read_range(offset, len),
        }
    }
}
