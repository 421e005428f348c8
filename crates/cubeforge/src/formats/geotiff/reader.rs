//! The bytes of a TIFF file for the `tiff` crate's decoders: a `Read + Seek` cursor over a
//! [`RangeFile`] that reads metadata in blocks shared by every cursor of the file (so that each
//! block is fetched once however many decoders parse the IFD), and a chunk's stored bytes from a
//! window fetched whole, in one ranged read, before the decoder is handed the chunk. Decoders
//! are pooled: the thread that decodes a unit takes one, or opens a new one, and gives it back.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tiff::decoder::{Decoder, Limits};

use crate::error::Result;
use crate::formats::file::RangeFile;

/// The size of a metadata block.
const BLOCK: u64 = 64 * 1024;

/// Metadata blocks of one file, fetched once and shared.
#[derive(Debug)]
pub(crate) struct Blocks {
    file: RangeFile,
    cache: Mutex<HashMap<u64, Bytes>>,
}

impl Blocks {
    /// The blocks of `file`, none fetched yet.
    pub(crate) fn new(file: RangeFile) -> Arc<Blocks> {
        Arc::new(Blocks {
            file,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The file.
    pub(crate) fn file(&self) -> &RangeFile {
        &self.file
    }

    fn block(&self, index: u64) -> io::Result<Bytes> {
        if let Some(b) = self.cache.lock().ok().and_then(|c| c.get(&index).cloned()) {
            return Ok(b);
        }
        let start = index * BLOCK;
        let len = BLOCK.min(self.file.len().saturating_sub(start));
        let got = self
            .file
            .read(start, usize::try_from(len).unwrap_or(usize::MAX))
            .map_err(|e| io::Error::other(e.to_string()))?;
        if let Ok(mut c) = self.cache.lock() {
            c.insert(index, got.clone());
        }
        Ok(got)
    }
}

/// A position in the file, reading from the chunk window while one is set (a chunk being
/// decoded) and from the shared blocks otherwise (metadata).
#[derive(Debug)]
pub(crate) struct Cursor {
    blocks: Arc<Blocks>,
    pos: u64,
    window: Option<(u64, Bytes)>,
}

impl Cursor {
    pub(crate) fn new(blocks: Arc<Blocks>) -> Cursor {
        Cursor {
            blocks,
            pos: 0,
            window: None,
        }
    }

    /// Serve reads of `offset .. offset + bytes.len()` from `bytes` (`None`: no window).
    pub(crate) fn set_window(&mut self, window: Option<(u64, Bytes)>) {
        self.window = window;
    }
}

impl Read for Cursor {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some((start, bytes)) = &self.window {
            // A chunk's decoder reads its stored bytes only: past them is the end (decompressors
            // that read ahead must not fetch, nor keep, the rest of the file).
            if self.pos >= *start && self.pos < start + bytes.len() as u64 {
                let from = usize::try_from(self.pos - start).unwrap_or(usize::MAX);
                let n = buf.len().min(bytes.len() - from);
                buf[..n].copy_from_slice(&bytes[from..from + n]);
                self.pos += n as u64;
                return Ok(n);
            }
            return Ok(0);
        }
        if self.pos >= self.blocks.file.len() {
            return Ok(0);
        }
        let block = self.blocks.block(self.pos / BLOCK)?;
        let from = usize::try_from(self.pos % BLOCK).unwrap_or(usize::MAX);
        if from >= block.len() {
            return Ok(0);
        }
        let n = buf.len().min(block.len() - from);
        buf[..n].copy_from_slice(&block[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Cursor {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let base = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.blocks.file.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = base.ok_or_else(|| io::Error::other("seek before the start of the file"))?;
        Ok(self.pos)
    }
}

/// A decoder over the file's first image.
pub(crate) type TiffDecoder = Decoder<Cursor>;

/// Decoders of one file's first image, for the threads that decode its chunks.
#[derive(Debug)]
pub(crate) struct Pool {
    blocks: Arc<Blocks>,
    idle: Mutex<Vec<TiffDecoder>>,
}

impl Pool {
    /// A pool over `blocks`, with `first` (already open) in it.
    pub(crate) fn new(blocks: Arc<Blocks>, first: TiffDecoder) -> Pool {
        Pool {
            blocks,
            idle: Mutex::new(vec![first]),
        }
    }

    /// A decoder positioned on the first image: an idle one, or a new one.
    ///
    /// # Errors
    /// A new decoder that cannot parse the file's header or first IFD.
    pub(crate) fn take(&self) -> Result<TiffDecoder, tiff::TiffError> {
        if let Some(d) = self.idle.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(d);
        }
        open_decoder(&self.blocks)
    }

    /// Give a decoder back.
    pub(crate) fn give(&self, decoder: TiffDecoder) {
        if let Ok(mut v) = self.idle.lock() {
            v.push(decoder);
        }
    }
}

/// A decoder of the file behind `blocks`, on its first image, with limits fit for large tiles
/// and tag arrays (the offsets of a large striped file).
///
/// # Errors
/// The `tiff` crate's complaint about the header or the first IFD.
pub(crate) fn open_decoder(blocks: &Arc<Blocks>) -> Result<TiffDecoder, tiff::TiffError> {
    let mut limits = Limits::default();
    limits.ifd_value_size = 256 * 1024 * 1024;
    limits.decoding_buffer_size = 1024 * 1024 * 1024;
    limits.intermediate_buffer_size = 1024 * 1024 * 1024;
    Ok(Decoder::new(Cursor::new(blocks.clone()))?.with_limits(limits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_blocks_and_stops_at_the_end_of_its_window() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("f.bin");
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        let blocks = Blocks::new(RangeFile::open(path.to_str().expect("path")).expect("open"));
        let mut c = Cursor::new(blocks.clone());
        c.seek(SeekFrom::Start(65_530)).expect("seek");
        let mut buf = vec![0u8; 20];
        c.read_exact(&mut buf).expect("across a block boundary");
        assert_eq!(buf, data[65_530..65_550]);
        c.set_window(Some((100, Bytes::from(data[100..110].to_vec()))));
        c.seek(SeekFrom::Start(105)).expect("seek");
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).expect("read");
        assert_eq!(rest, data[105..110]);
        c.set_window(None);
        c.seek(SeekFrom::End(-3)).expect("seek");
        rest.clear();
        c.read_to_end(&mut rest).expect("read");
        assert_eq!(rest, data[data.len() - 3..]);
        assert!(c.seek(SeekFrom::Current(-1_000_000)).is_err());
    }
}
