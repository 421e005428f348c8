//! NetCDF classic (CDF-1, CDF-2, CDF-5) and NetCDF-4/HDF5 files as an [`Input`], read in pure
//! Rust through `netcdf-reader` and `hdf5-reader` over a [`RangeFile`]: only the byte ranges
//! needed are read, locally, from a bucket or over HTTP(S).
//!
//! The dataset is what xarray's netCDF4 engine shows: a dimension's coordinate is the
//! one-dimensional variable of its name; dimensions of parent groups are visible in a group;
//! HDF5 datasets without dimension scales get `phony_dim_N` dimensions, numbered as netCDF-C
//! does; attributes netCDF-C hides are hidden; CF decoding is [`CfDecoding::from_attrs`] with no
//! mask for the default fill (xarray masks only `_FillValue` and `missing_value`). Text variables
//! (character arrays, strings) are read whole into [`Input::texts`]; variables of types cubeforge
//! does not carry (compound, enum, opaque, variable-length) are listed in [`Input::unreadable`]
//! with the type named.
//!
//! | file | what |
//! |---|---|
//! | `netcdf/storage.rs` | the `Storage` the readers read through: byte ranges of a [`RangeFile`] |
//! | `netcdf/attrs.rs` | attributes as JSON, as xarray shows them |
//! | `netcdf/types.rs` | element types, unreadable types' reasons, fill values |
//! | `netcdf/filters.rs` | Zstandard, Blosc and bzip2 decoders; filter names for `info` |
//! | `netcdf/source.rs` | [`NcSource`]: one variable as a [`ChunkSource`](crate::source::ChunkSource) |
//! | `netcdf/text.rs` | text variables read whole, stacked as xarray stacks them |

use std::collections::HashMap;
use std::sync::Arc;

use hdf5_reader::{Dataset, Hdf5File};
use netcdf_reader::{NcFile, NcFormat, NcGroup, NcMetadataMode, NcOpenOptions, NcType, NcVariable};
use serde_json::{Map, Value};

use crate::cf::{CfDecoding, Decoded};
use crate::coord::Coord;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::formats::file::RangeFile;
use crate::formats::memory::MemorySource;
use crate::formats::open::InputOptions;
use crate::lower::{Input, InputDim, InputVar};

mod attrs;
mod filters;
mod source;
mod storage;
mod text;
mod types;

use source::{row_blocks, Reader};
pub use source::{NcSource, ROW_BLOCK_BYTES};

/// Open the group `opts.group` (`""` or `"/"` for the root; `"grp1"` or `"/grp1/sub"`) of the
/// NetCDF or HDF5 file `file` as an [`Input`] located at `file.id()`.
///
/// # Errors
/// [`Error::InvalidMetadata`] naming the file for a file that cannot be parsed (truncated,
/// corrupt, not NetCDF or HDF5); [`Error::Missing`] for a group that does not exist.
pub fn open(file: &RangeFile, opts: &InputOptions) -> Result<Input> {
    open_with_unlimited(file, opts).map(|(input, _)| input)
}

/// [`open`], and the group's unlimited dimensions: its own, as netCDF4-python's
/// `isunlimited()` tells them and xarray's `encoding["unlimited_dims"]` lists them.
///
/// # Errors
/// As [`open`].
pub fn open_with_unlimited(file: &RangeFile, opts: &InputOptions) -> Result<(Input, Vec<String>)> {
    // One storage for both parsers: a remote file's metadata blocks are fetched once.
    let storage = storage::FileStorage::open(file);
    let nc = open_nc(file, &storage)?;
    let hdf5 = match nc.format() {
        NcFormat::Nc4 | NcFormat::Nc4Classic => Some(open_hdf5(file, &storage)?),
        _ => None,
    };
    let nc = Arc::new(nc);
    let bad = |e: netcdf_reader::Error| invalid(file, &e);
    let root = nc.root_group().map_err(bad)?;
    let path: Vec<&str> = opts.group.split('/').filter(|s| !s.is_empty()).collect();
    // The group and its ancestors, the root first.
    let mut chain = vec![root];
    for name in &path {
        let parent = chain[chain.len() - 1];
        let child = parent.group(name).ok_or_else(|| Error::Missing {
            location: file.id().to_string(),
            what: format!("group '/{}'", path.join("/")),
            hint: group_hint(parent),
        })?;
        chain.push(child);
    }
    let group = chain[chain.len() - 1];
    let phony = phony_dims(root);
    let ctx = Ctx {
        file,
        nc: &nc,
        hdf5: hdf5.as_ref(),
        group_path: path.join("/"),
        visible: visible_dims(&chain),
        undecoded_times: opts.undecoded_times,
    };
    let dims_of = |v: &NcVariable| -> Vec<String> {
        let key = (ctx.group_path.clone(), v.name.clone());
        phony
            .get(&key)
            .cloned()
            .unwrap_or_else(|| v.dimensions.iter().map(|d| nc_name(&d.name)).collect())
    };
    let stack = crate::text::stackable_dims(
        &group
            .variables
            .iter()
            .map(|v| (nc_name(&v.name), dims_of(v), v.dtype == NcType::Char))
            .collect::<Vec<_>>(),
    );
    let mut texts = text::TextReader {
        file,
        hdf5: hdf5.as_ref(),
        classic_vars: &root.variables,
        held: 0,
    };
    let mut vars: Vec<OpenedVar> = Vec::new();
    let mut text_vars = Vec::new();
    let mut unreadable = Vec::new();
    for v in &group.variables {
        let dims = dims_of(v);
        if text::is_text(&v.dtype) {
            let stacked = v.dtype == NcType::Char && dims.last().is_some_and(|d| stack.contains(d));
            match texts.read(v, &ctx.path_of(&v.name), dims, stacked) {
                Ok(t) => text_vars.push((nc_name(&v.name), t)),
                Err(reason) => unreadable.push((nc_name(&v.name), reason)),
            }
            continue;
        }
        match ctx.variable(v, dims) {
            Ok(o) => vars.push(o),
            Err(reason) => unreadable.push((nc_name(&v.name), reason)),
        }
    }
    let mut input = assemble(file, group, vars, unreadable, &ctx.visible);
    add_texts(&mut input, text_vars);
    let unlimited = group
        .dimensions
        .iter()
        .filter(|d| d.is_unlimited)
        .map(|d| nc_name(&d.name))
        .collect();
    Ok((input, unlimited))
}

/// `texts` added to `input`, their dimensions with them (after the others, as xarray lists the
/// dimensions of variables in order).
fn add_texts(input: &mut Input, texts: Vec<(String, crate::text::TextVar)>) {
    for (_, t) in &texts {
        for (d, len) in t.dims.iter().zip(&t.values.shape) {
            if !input.dims.iter().any(|x| &x.name == d) {
                input.dims.push(InputDim {
                    name: d.clone(),
                    len: *len,
                    coord: None,
                });
            }
        }
    }
    input.texts = texts;
}

/// The file parsed by `netcdf-reader`, its chunk cache off (the executor has its own) and the
/// Zstandard, Blosc and bzip2 filters registered.
fn open_nc(file: &RangeFile, storage: &hdf5_reader::storage::DynStorage) -> Result<NcFile> {
    let attempt = |mode: NcMetadataMode| {
        let opts = NcOpenOptions {
            chunk_cache_bytes: 0,
            metadata_mode: mode,
            filter_registry: Some(filters::registry()),
            ..NcOpenOptions::default()
        };
        let nc = NcFile::from_storage_with_options(storage.clone(), opts)?;
        // The structure is built on first use: build it now, so its errors show here.
        nc.root_group()?;
        Ok::<_, netcdf_reader::Error>(nc)
    };
    match attempt(NcMetadataMode::Strict) {
        Ok(nc) => Ok(nc),
        // NetCDF-4 metadata that netCDF-C reads with less care (an attribute of text that is
        // not UTF-8, say): rebuilt leniently, leaving out what cannot be decoded.
        Err(netcdf_reader::Error::Hdf5(_) | netcdf_reader::Error::InvalidData(_)) => {
            attempt(NcMetadataMode::Lossy).map_err(|e| invalid(file, &e))
        }
        Err(e) => Err(invalid(file, &e)),
    }
}

/// The same file as HDF5, for reading the datasets' chunks.
fn open_hdf5(file: &RangeFile, storage: &hdf5_reader::storage::DynStorage) -> Result<Hdf5File> {
    let opts = hdf5_reader::OpenOptions {
        chunk_cache_bytes: 0,
        filter_registry: Some(filters::registry()),
        ..hdf5_reader::OpenOptions::default()
    };
    Hdf5File::from_storage_with_options(storage.clone(), opts).map_err(|e| invalid(file, &e))
}

fn invalid(file: &RangeFile, e: &dyn std::fmt::Display) -> Error {
    Error::InvalidMetadata {
        location: file.id().to_string(),
        reason: format!("not a readable NetCDF or HDF5 file: {e}").replace('\n', " "),
    }
}

fn group_hint(parent: &NcGroup) -> String {
    if parent.groups.is_empty() {
        "; the file has no groups there".into()
    } else {
        let names: Vec<&str> = parent.groups.iter().map(|g| g.name.as_str()).collect();
        format!("; groups there: {}", names.join(", "))
    }
}

/// The dimensions visible in the last group of `chain`: its own and its ancestors' (the
/// nearest wins), by name.
fn visible_dims(chain: &[&NcGroup]) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for g in chain {
        for d in &g.dimensions {
            out.insert(nc_name(&d.name), d.size);
        }
    }
    out
}

/// Phony dimension names for the axes of variables without dimension scales, keyed by (group
/// path, variable name), as netCDF-C makes them: numbered across the file, a group's child
/// groups before its own datasets; within a group, a phony dimension of the same length is
/// reused unless the same variable already uses it.
fn phony_dims(root: &NcGroup) -> HashMap<(String, String), Vec<String>> {
    fn visit(
        g: &NcGroup,
        path: &str,
        visible: &HashMap<String, u64>,
        next: &mut usize,
        out: &mut HashMap<(String, String), Vec<String>>,
    ) {
        let mut visible = visible.clone();
        for d in &g.dimensions {
            visible.insert(d.name.clone(), d.size);
        }
        for c in &g.groups {
            let child = if path.is_empty() {
                c.name.clone()
            } else {
                format!("{path}/{}", c.name)
            };
            visit(c, &child, &visible, next, out);
        }
        let mut mine: Vec<(String, u64)> = Vec::new();
        for v in &g.variables {
            if v.dimensions.iter().all(|d| visible.contains_key(&d.name)) {
                continue;
            }
            let mut names: Vec<String> = Vec::new();
            for d in &v.dimensions {
                if visible.contains_key(&d.name) {
                    names.push(d.name.clone());
                    continue;
                }
                let reuse = mine
                    .iter()
                    .find(|(n, s)| *s == d.size && !names.contains(n))
                    .map(|(n, _)| n.clone());
                let name = reuse.unwrap_or_else(|| {
                    let n = format!("phony_dim_{next}");
                    *next += 1;
                    mine.push((n.clone(), d.size));
                    n
                });
                names.push(name);
            }
            out.insert((path.to_string(), v.name.clone()), names);
        }
    }
    let mut out = HashMap::new();
    visit(root, "", &HashMap::new(), &mut 0, &mut out);
    out
}

/// A name as netCDF-C gives it: up to its first NUL (classic files may store names with
/// trailing NULs, which C strings end at), without the `_nc4_non_coord_` prefix netCDF-4
/// stores a variable under when it is named like a dimension it is not the coordinate of.
fn nc_name(name: &str) -> String {
    let name = name.split('\0').next().unwrap_or_default();
    name.strip_prefix("_nc4_non_coord_")
        .unwrap_or(name)
        .to_string()
}

/// What opening a group needs.
struct Ctx<'a> {
    file: &'a RangeFile,
    nc: &'a Arc<NcFile>,
    hdf5: Option<&'a Hdf5File>,
    group_path: String,
    visible: HashMap<String, u64>,
    /// See [`InputOptions::undecoded_times`].
    undecoded_times: bool,
}

/// A variable opened for reading.
struct OpenedVar {
    name: String,
    dims: Vec<String>,
    source: Arc<NcSource>,
    stored_attrs: Map<String, Value>,
    decoding: CfDecoding,
    is_coord_attr_target: bool,
}

impl Ctx<'_> {
    fn path_of(&self, name: &str) -> String {
        if self.group_path.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.group_path)
        }
    }

    /// Open variable `v` with dimensions `dims`, or say why it cannot be read.
    fn variable(
        &self,
        v: &NcVariable,
        dims: Vec<String>,
    ) -> std::result::Result<OpenedVar, String> {
        let dtype = types::dtype_of(&v.dtype)?;
        let shape = v.shape();
        let path = self.path_of(&v.name);
        let id = format!("{}/{path}", self.file.id());
        let stored_attrs = attrs::to_json(&v.attributes);
        let attr_type = |name: &str| v.attribute(name).and_then(|a| attrs::dtype(&a.value));
        let decode = |a: &serde_json::Map<String, serde_json::Value>| {
            CfDecoding::from_attrs_typed(
                a,
                dtype,
                None,
                attr_type("scale_factor"),
                attr_type("add_offset"),
            )
        };
        let decoded = if self.undecoded_times {
            CfDecoding::or_time_undecoded(&stored_attrs, decode)
        } else {
            decode(&stored_attrs).map(|d| (d, None))
        };
        let (decoding, undecoded) = decoded.map_err(|e| format!("{id}: CF decoding: {e}"))?;
        if let Some(why) = undecoded {
            tracing::debug!("{id}: times not decoded ({why}): read as stored");
        }
        let fill = v
            .attribute("_FillValue")
            .and_then(|a| types::fill_from(&a.value, dtype))
            .unwrap_or_else(|| types::default_fill(dtype));
        let (reader, unit, encoding) = match self.hdf5 {
            None => (
                Reader::Classic(self.nc.clone(), v.name.clone()),
                row_blocks(&shape, dtype.size()),
                (Vec::new(), None),
            ),
            Some(h5) => self.hdf5_reader(h5, &path, &shape, dtype)?,
        };
        let source = NcSource::new(id, (dtype, shape, unit), fill, reader, encoding);
        Ok(OpenedVar {
            name: nc_name(&v.name),
            dims,
            source: Arc::new(source),
            stored_attrs,
            decoding,
            is_coord_attr_target: false,
        })
    }

    /// The HDF5 dataset at `path`, its units (chunks, or blocks of rows) and its filters.
    #[allow(clippy::type_complexity)]
    fn hdf5_reader(
        &self,
        h5: &Hdf5File,
        path: &str,
        shape: &[u64],
        dtype: DType,
    ) -> std::result::Result<(Reader, Vec<u64>, (Vec<String>, Option<String>)), String> {
        let mut ds: Dataset = h5.dataset(path).map_err(|e| e.to_string())?;
        if ds.shape() != shape {
            // An unlimited dimension longer than this variable's data: the rest is fill.
            ds = ds.with_padded_shape(shape).map_err(|e| e.to_string())?;
        }
        let unit = match ds.chunks() {
            Some(c) if c.len() == shape.len() && !c.contains(&0) => {
                c.iter().map(|&n| u64::from(n)).collect()
            }
            _ => row_blocks(shape, dtype.size()),
        };
        let filters = filters::of_dataset(h5, &ds)?;
        Ok((Reader::Hdf5(Box::new(ds)), unit, filters))
    }
}

/// The dimensions of `vars` in xarray's order (those of data variables in file order, then
/// those of coordinates), with the coordinates taken out of the variables.
fn assemble(
    file: &RangeFile,
    group: &NcGroup,
    mut vars: Vec<OpenedVar>,
    unreadable: Vec<(String, String)>,
    visible: &HashMap<String, u64>,
) -> Input {
    let mut coord_names: Vec<String> = Vec::new();
    for v in &vars {
        if let Some(Value::String(s)) = v.stored_attrs.get("coordinates") {
            coord_names.extend(s.split_whitespace().map(str::to_string));
        }
    }
    let dim_names: Vec<String> = vars.iter().flat_map(|v| v.dims.clone()).collect();
    for v in &mut vars {
        v.is_coord_attr_target = coord_names.contains(&v.name)
            || (dim_names.contains(&v.name) && v.dims == [v.name.clone()]);
    }
    // Dimensions of unreadable variables (but not a text variable's string length).
    let unreadable_dims: Vec<String> = group
        .variables
        .iter()
        .filter(|v| unreadable.iter().any(|(n, _)| *n == nc_name(&v.name)))
        .flat_map(|v| {
            let n =
                v.dimensions.len() - usize::from(v.dtype == NcType::Char).min(v.dimensions.len());
            v.dimensions[..n]
                .iter()
                .map(|d| nc_name(&d.name))
                .collect::<Vec<_>>()
        })
        .filter(|d| visible.contains_key(d))
        .collect();
    let mut dims: Vec<InputDim> = Vec::new();
    let order = vars
        .iter()
        .filter(|v| !v.is_coord_attr_target)
        .chain(vars.iter().filter(|v| v.is_coord_attr_target));
    let sizes: HashMap<&String, u64> = vars
        .iter()
        .flat_map(|v| v.dims.iter().zip(v.source_shape()))
        .collect();
    for name in order
        .flat_map(|v| v.dims.iter())
        .chain(unreadable_dims.iter())
    {
        if dims.iter().any(|d| &d.name == name) {
            continue;
        }
        let len = sizes
            .get(name)
            .copied()
            .or_else(|| visible.get(name).copied())
            .unwrap_or(0);
        dims.push(InputDim {
            name: name.clone(),
            len,
            coord: None,
        });
    }
    let mut variables = Vec::new();
    for v in vars {
        if let Some(d) = dims
            .iter_mut()
            .find(|d| d.name == v.name && v.dims == [v.name.clone()])
        {
            d.coord = Some(coordinate(v));
            continue;
        }
        let mut attrs = v.decoding.visible_attrs(&v.stored_attrs);
        // Kept as the file has it: xarray reading the cube makes the variables it names
        // coordinates, as it does reading the file.
        if let Some(c) = v.stored_attrs.get("coordinates") {
            attrs.insert("coordinates".into(), c.clone());
        }
        variables.push(InputVar {
            name: v.name,
            dims: v.dims,
            source: v.source,
            decoding: v.decoding,
            attrs,
        });
    }
    Input {
        location: file.id().to_string(),
        dims,
        variables,
        attrs: attrs::to_json(&group.attributes),
        unreadable,
        texts: Vec::new(),
    }
}

/// The coordinate of dimension variable `v`: its stored values and attributes, which the cube
/// keeps as they are, except for packed values that decode to float32 (a `scale_factor` of type
/// float, say). The type of those attributes decides that, and a cube's attributes (JSON) do not
/// keep it: their values are decoded here, in single precision as xarray decodes them, and
/// written decoded (read whole now, as a coordinate always is). Should they not read, the stored
/// values are kept, to fail where they are used.
fn coordinate(v: OpenedVar) -> Coord {
    use crate::source::ChunkSource as _;
    let packed = v.decoding.scale_factor.is_some() || v.decoding.add_offset.is_some();
    if !packed || v.decoding.decoded != Decoded::Numeric(DType::Float32) {
        return Coord::stored(v.source, v.stored_attrs, v.decoding);
    }
    let shape = v.source.shape().to_vec();
    let raw = match v.source.read_region(&vec![0; shape.len()], &shape) {
        Ok(raw) => raw,
        Err(_) => return Coord::stored(v.source, v.stored_attrs, v.decoding),
    };
    let mut bytes = Vec::with_capacity(raw.len() * 4);
    for i in 0..raw.len() {
        let x = v
            .decoding
            .decode_number_f32(raw.get_f64(i))
            .unwrap_or(f32::NAN);
        bytes.extend_from_slice(&x.to_ne_bytes());
    }
    let decoded = MemorySource::new(
        v.source.id(),
        DType::Float32,
        (&shape, v.source.chunk_shape()),
        bytes,
        f32::NAN.to_ne_bytes().to_vec(),
    );
    let Ok(decoded) = decoded else {
        return Coord::stored(v.source, v.stored_attrs, v.decoding);
    };
    let attrs = crate::cf::without_value_coding(&v.stored_attrs);
    match CfDecoding::from_attrs(&attrs, DType::Float32, None) {
        Ok(decoding) => {
            let mut c = Coord::stored(Arc::new(decoded), attrs, decoding);
            c.packed = Some((v.source, v.decoding));
            c
        }
        Err(_) => Coord::stored(v.source, v.stored_attrs, v.decoding),
    }
}

impl OpenedVar {
    fn source_shape(&self) -> Vec<u64> {
        use crate::source::ChunkSource as _;
        self.source.shape().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use hdf5_reader::storage::{DynStorage, Storage, StorageBuffer};

    use super::*;
    use crate::source::ChunkSource as _;

    #[test]
    fn names_end_at_their_first_nul() {
        assert_eq!(nc_name("yy\0"), "yy");
        assert_eq!(nc_name("a\0b"), "a");
        assert_eq!(nc_name("time"), "time");
        assert_eq!(nc_name("_nc4_non_coord_lat"), "lat");
    }

    /// A classic file whose variable name is stored with a trailing NUL (`yy`) shows it as
    /// netCDF-C does, and reads.
    #[test]
    fn classic_variable_named_with_a_nul_is_read() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/real/netcdf-c/ref_nctest_classic.nc");
        if !path.exists() {
            return;
        }
        let file = RangeFile::open(path.to_str().unwrap()).unwrap();
        let input = open(&file, &InputOptions::default()).unwrap();
        let yy = input.variables.iter().find(|v| v.name == "yy").unwrap();
        assert_eq!(yy.dims, ["ii"]);
        assert_eq!(yy.source.read_region(&[0], &[4]).unwrap().len(), 4);
    }

    /// A storage whose every read waits, like a request to a bucket.
    struct Slow(DynStorage);

    impl Storage for Slow {
        fn len(&self) -> u64 {
            self.0.len()
        }

        fn read_range(&self, offset: u64, len: usize) -> hdf5_reader::error::Result<StorageBuffer> {
            std::thread::sleep(Duration::from_millis(40));
            self.0.read_range(offset, len)
        }
    }

    /// Two threads reading a chunk each overlap their reads and decoding: nothing in the reader
    /// holds a lock across either (the `netcdf` crate's global lock would make this take as
    /// long as one thread reading both). Independent of how busy the CPUs are: the waits are
    /// I/O.
    #[test]
    fn chunk_reads_from_two_threads_overlap() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/real/netcdf4-python/20171025_2056.Cloud_Top_Height.nc");
        if !path.exists() {
            return;
        }
        let file = RangeFile::open(path.to_str().unwrap()).unwrap();
        let opts = hdf5_reader::OpenOptions {
            chunk_cache_bytes: 0,
            ..hdf5_reader::OpenOptions::default()
        };
        let storage: DynStorage = Arc::new(Slow(storage::FileStorage::open(&file)));
        let h5 = Hdf5File::from_storage_with_options(storage, opts).unwrap();
        let ds = h5.dataset("HT").unwrap();
        let source = NcSource::new(
            "HT".into(),
            (DType::Int16, vec![300, 500], vec![300, 250]),
            vec![0, 0],
            Reader::Hdf5(Box::new(ds)),
            (Vec::new(), None),
        );
        let units = [[0u64, 0], [0, 1]];
        // The chunk index is read once per unit and kept: read it first, time the chunks.
        for u in &units {
            source.read_unit(u).unwrap();
        }
        let t = Instant::now();
        for u in &units {
            source.read_unit(u).unwrap();
        }
        let serial = t.elapsed();
        let t = Instant::now();
        std::thread::scope(|s| {
            for u in &units {
                let source = &source;
                s.spawn(move || source.read_unit(u).unwrap());
            }
        });
        let parallel = t.elapsed();
        println!("two chunks: {serial:?} on one thread, {parallel:?} on two");
        assert!(
            parallel.as_secs_f64() < 0.75 * serial.as_secs_f64(),
            "serial {serial:?}, two threads {parallel:?}"
        );
    }
}
