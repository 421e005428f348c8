//! HDF5 filters: the decoders registered beyond the reader's built-in ones (deflate, shuffle,
//! fletcher32, szip, n-bit, scale-offset, LZ4), and each filter's name as `info` shows it.
//!
//! | id | filter | decoded with |
//! |---|---|---|
//! | 32015 | Zstandard | the `zstd` crate (libzstd, which `zarrs` links too) |
//! | 32001 | Blosc | C-Blosc through [`crate::formats::zarr::blosc`] |
//! | 307 | bzip2 | the `bzip2` crate (libbz2, which `zarrs` links too) |

use std::io::Read as _;

use hdf5_reader::error::Error as H5Error;
use hdf5_reader::messages::filter_pipeline::FilterDescription;
use hdf5_reader::FilterRegistry;

use crate::formats::zarr::blosc;

/// HDF5's registered id of the Zstandard filter.
pub(crate) const ZSTD: u16 = 32015;
/// HDF5's registered id of the Blosc filter.
pub(crate) const BLOSC: u16 = 32001;
/// HDF5's registered id of the bzip2 filter.
pub(crate) const BZIP2: u16 = 307;

/// The largest decoded chunk a registered decoder produces (HDF5's own chunk limit is 4 GiB).
const MAX_DECODED: u64 = 1 << 32;

/// The reader's registry with Zstandard, Blosc and bzip2 added.
pub(crate) fn registry() -> FilterRegistry {
    let mut r = FilterRegistry::new();
    r.register(ZSTD, Box::new(|_, data, _| zstd_decode(data)));
    r.register(BLOSC, Box::new(|_, data, _| blosc_decode(data)));
    r.register(BZIP2, Box::new(|_, data, _| bzip2_decode(data)));
    r
}

fn failed(filter: &str, why: impl std::fmt::Display) -> H5Error {
    H5Error::DecompressionError(format!("{filter}: {why}"))
}

fn read_bounded(
    mut reader: impl std::io::Read,
    filter: &str,
) -> hdf5_reader::error::Result<Vec<u8>> {
    let mut out = Vec::new();
    let n = reader
        .by_ref()
        .take(MAX_DECODED + 1)
        .read_to_end(&mut out)
        .map_err(|e| failed(filter, e))?;
    if n as u64 > MAX_DECODED {
        return Err(failed(filter, "decodes to more than 4 GiB"));
    }
    Ok(out)
}

fn zstd_decode(data: &[u8]) -> hdf5_reader::error::Result<Vec<u8>> {
    let decoder = zstd::stream::read::Decoder::new(data).map_err(|e| failed("zstd", e))?;
    read_bounded(decoder, "zstd")
}

fn bzip2_decode(data: &[u8]) -> hdf5_reader::error::Result<Vec<u8>> {
    read_bounded(bzip2::read::MultiBzDecoder::new(data), "bzip2")
}

fn blosc_decode(data: &[u8]) -> hdf5_reader::error::Result<Vec<u8>> {
    // The frame's header: the decoded size is the little-endian u32 at bytes 4..8.
    let nbytes = data
        .get(4..8)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| failed("blosc", "frame shorter than its header"))?;
    let mut out = vec![0u8; nbytes as usize];
    if blosc::decompress_into(data, &mut out, 1) {
        Ok(out)
    } else {
        Err(failed("blosc", "not a valid Blosc frame"))
    }
}

/// Whether a filter can be decoded by [`registry`].
pub(crate) fn known(id: u16) -> bool {
    matches!(id, 1..=6 | 32004 | ZSTD | BLOSC | BZIP2)
}

/// A filter as `info` shows it: `deflate(level=4)`, `shuffle`, `zstd(level=3)`,
/// `blosc(lz4, clevel=5, shuffle)`, or its id and stored name for one without a decoder.
/// The filters of dataset `ds` of `h5`, as [`describe`] names them, in the order they apply
/// when writing, and the first one without a decoder.
pub(crate) fn of_dataset(
    h5: &hdf5_reader::Hdf5File,
    ds: &hdf5_reader::Dataset,
) -> std::result::Result<(Vec<String>, Option<String>), String> {
    let header = h5
        .get_or_parse_header(ds.address())
        .map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    let mut undecodable = None;
    for m in &header.messages {
        if let hdf5_reader::messages::HdfMessage::FilterPipeline(p) = m {
            for f in &p.filters {
                let name = describe(f);
                if !known(f.id) && undecodable.is_none() {
                    undecodable = Some(name.clone());
                }
                names.push(name);
            }
        }
    }
    Ok((names, undecodable))
}

pub(crate) fn describe(f: &FilterDescription) -> String {
    let cd = |i: usize| f.client_data.get(i).copied();
    match f.id {
        1 => cd(0).map_or("deflate".into(), |l| format!("deflate(level={l})")),
        2 => "shuffle".into(),
        3 => "fletcher32".into(),
        4 => "szip".into(),
        5 => "nbit".into(),
        6 => "scaleoffset".into(),
        32004 => "lz4".into(),
        ZSTD => cd(0).map_or("zstd".into(), |l| format!("zstd(level={l})")),
        BZIP2 => cd(0).map_or("bzip2".into(), |b| format!("bzip2(blocksize={b})")),
        BLOSC => {
            let cname = match cd(6) {
                Some(0) => "blosclz",
                Some(1) => "lz4",
                Some(2) => "lz4hc",
                Some(3) => "snappy",
                Some(4) => "zlib",
                Some(5) => "zstd",
                _ => "?",
            };
            let shuffle = match cd(5) {
                Some(1) => ", shuffle",
                Some(2) => ", bitshuffle",
                _ => "",
            };
            format!("blosc({cname}, clevel={}{shuffle})", cd(4).unwrap_or(0))
        }
        id => match f.name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => format!("filter {id} ({name})"),
            None => format!("filter {id}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(id: u16, client_data: Vec<u32>) -> FilterDescription {
        FilterDescription {
            id,
            name: None,
            client_data,
        }
    }

    #[test]
    fn registered_decoders_round_trip() {
        let data: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 97).to_le_bytes())
            .collect();
        let r = registry();
        let z = zstd::bulk::compress(&data, 3).unwrap();
        assert_eq!(r.apply(&filter(ZSTD, vec![3]), &z, 4).unwrap(), data);
        let mut bz = Vec::new();
        let mut enc = bzip2::read::BzEncoder::new(&data[..], bzip2::Compression::new(9));
        enc.read_to_end(&mut bz).unwrap();
        assert_eq!(r.apply(&filter(BZIP2, vec![9]), &bz, 4).unwrap(), data);
        let frame = blosc::tests::frame(&data);
        assert_eq!(r.apply(&filter(BLOSC, vec![]), &frame, 4).unwrap(), data);
        // Garbage is an error, not a panic.
        for id in [ZSTD, BZIP2, BLOSC] {
            assert!(r
                .apply(&filter(id, vec![]), &[1, 2, 3, 4, 5, 6, 7, 8, 9], 4)
                .is_err());
        }
        assert!(r.apply(&filter(32099, vec![]), &z, 4).is_err());
    }

    #[test]
    fn filters_are_named_with_their_settings() {
        assert_eq!(describe(&filter(1, vec![4])), "deflate(level=4)");
        assert_eq!(describe(&filter(ZSTD, vec![3])), "zstd(level=3)");
        assert_eq!(
            describe(&filter(BLOSC, vec![2, 2, 4, 24, 5, 1, 1])),
            "blosc(lz4, clevel=5, shuffle)"
        );
        assert_eq!(describe(&filter(32099, vec![])), "filter 32099");
        assert!(!known(32099) && known(ZSTD));
    }
}
