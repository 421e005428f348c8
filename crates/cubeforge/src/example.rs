//! The embedded default: a synthetic store shaped like the input of the seed-000 tutorial
//! (NOAA's "mind the chl gap" Indian Ocean store), written as xarray + zarr-python would write it.
//!
//! - grid: `lat` 32.0 down to -12.0 by 0.25 (177, descending), `lon` 42.0 to 102.0 by 0.25 (241),
//!   both float32; `time` daily from 1979-01-01, int64 `days since 1979-01-01`, proleptic
//!   Gregorian;
//! - `CHL_cmes-gapfree` (the response): positive and seasonal, all-NaN over the first 40 % of days
//!   (as in the real record, which starts in 1997), all-NaN on some later days, NaN on land;
//! - `CHL_cmes-land` (uint8, 1 on land); `sst`, `so`, `topo` (float64, lat × lon);
//! - unrelated variables `CHL`, `CHL_cmes-cloud`, `wind_speed`, `u_wind`;
//! - a few inland lakes: land flag 0 but `sst` and `so` always NaN;
//! - chunks (100, 177, 241), `so` (500, 177, 241), 2-D variables in one chunk; Blosc lz4 level 5
//!   with byte shuffle; Zarr v2 with consolidated metadata; chunks that are entirely NaN are not
//!   written (zarr-python's default).
//!
//! Everything is a deterministic function of `seed`: the same seed gives byte-identical stores.

use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use serde_json::{json, Value};
use zarrs::array::Array;
use zarrs_storage::ListableStorageTraits as _;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::formats::zarr::writer::{
    array_doc, commit_group, zarrs_metadata, ArrayDoc, ArrayLayout, Compressor,
};
use crate::store::Store;

/// Number of latitudes.
pub const NLAT: usize = 177;
/// Number of longitudes.
pub const NLON: usize = 241;
/// Chunk length along time for most time-varying variables.
pub const TIME_CHUNK: u64 = 100;
/// Chunk length along time for `so`.
pub const SO_TIME_CHUNK: u64 = 500;
/// The most days the example writes (about 2700 years; 170 GB of each daily variable).
pub const MAX_DAYS: u64 = 1_000_000;

/// Options of the example store.
#[derive(Debug, Clone, Copy)]
pub struct ExampleOptions {
    /// Number of days.
    pub days: u64,
    /// Seed of the pseudo-random parts.
    pub seed: u64,
}

impl Default for ExampleOptions {
    fn default() -> Self {
        ExampleOptions {
            days: 3000,
            seed: 0,
        }
    }
}

/// Latitude of row `i` (32.0 at the top, step -0.25).
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn lat(i: usize) -> f32 {
    32.0 - 0.25 * i as f32
}

/// Longitude of column `j` (42.0 at the left, step 0.25).
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn lon(j: usize) -> f32 {
    42.0 + 0.25 * j as f32
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Uniform in [-1, 1) from a hash.
#[allow(clippy::cast_precision_loss)]
fn unit(h: u64) -> f32 {
    ((h >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

/// Static fields on the lat × lon grid.
struct Grid {
    land: Vec<u8>,
    lake: Vec<bool>,
    chl_base: Vec<f32>,
    sst_base: Vec<f32>,
    so_base: Vec<f32>,
    topo: Vec<f64>,
    lat_weight: Vec<f32>,
}

impl Grid {
    #[allow(clippy::cast_precision_loss)]
    fn new(seed: u64) -> Grid {
        let n = NLAT * NLON;
        let mut g = Grid {
            land: vec![0; n],
            lake: vec![false; n],
            chl_base: vec![0.0; n],
            sst_base: vec![0.0; n],
            so_base: vec![0.0; n],
            topo: vec![0.0; n],
            lat_weight: vec![0.0; n],
        };
        // A few islands placed by the seed, on top of fixed continents.
        let islands: Vec<(f32, f32, f32)> = (0..6)
            .map(|k| {
                let h = splitmix(seed ^ (0x1000 + k));
                (
                    -8.0 + 30.0 * (unit(h) + 1.0) / 2.0,
                    60.0 + 35.0 * (unit(splitmix(h)) + 1.0) / 2.0,
                    0.6 + 0.8 * (unit(splitmix(h ^ 7)) + 1.0) / 2.0,
                )
            })
            .collect();
        for i in 0..NLAT {
            for j in 0..NLON {
                let (y, x) = (lat(i), lon(j));
                let k = i * NLON + j;
                // Arabia (north-west), the Horn of Africa (west), India (a triangle), Sumatra.
                let arabia = y > 12.0 + 0.35 * (x - 42.0) && x < 60.0;
                let africa = x < 51.0 - 0.3 * (12.0 - y).max(0.0) && y > -12.0 && y < 12.0;
                let india = y > 8.0 + 0.9 * (x - 77.0).abs() && x > 68.0 && x < 89.0;
                let asia = y > 22.0 && x > 60.0;
                let sumatra = (y - 0.0).abs() < 5.5 - 0.5 * (x - 99.0).abs() && x > 95.0;
                let island = islands
                    .iter()
                    .any(|(cy, cx, r)| (y - cy).powi(2) + (x - cx).powi(2) < r * r);
                let is_land = arabia || africa || india || asia || sumatra || island;
                g.land[k] = u8::from(is_land);
                g.lat_weight[k] = y / 30.0;
                let coast = ((y * 0.7).sin() * (x * 0.5).cos()).abs();
                g.chl_base[k] = -1.6 + 0.9 * coast + 0.5 * ((x - 60.0) / 40.0);
                g.sst_base[k] = 28.5 - 0.12 * (y - 5.0).abs() + 0.4 * (x * 0.2).sin();
                g.so_base[k] = 35.2 + 0.6 * (y / 30.0) - 0.3 * ((x - 70.0) / 30.0);
                let noise = f64::from(unit(splitmix(seed ^ (k as u64) ^ 0xABCD)));
                g.topo[k] = if is_land {
                    200.0 + 800.0 * f64::from(coast) + 50.0 * noise
                } else {
                    -4000.0 + 1500.0 * f64::from(coast) + 100.0 * noise
                };
            }
        }
        // Inland lakes: small patches inside land, flagged as water but without sst/so.
        for (cy, cx) in [(27.0f32, 50.0f32), (20.0, 78.0), (28.5, 70.0)] {
            for i in 0..NLAT {
                for j in 0..NLON {
                    if (lat(i) - cy).abs() <= 0.5 && (lon(j) - cx).abs() <= 0.75 {
                        let k = i * NLON + j;
                        g.land[k] = 0;
                        g.lake[k] = true;
                    }
                }
            }
        }
        g
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    ChlGapfree,
    Chl,
    Cloud,
    Sst,
    So,
    WindSpeed,
    UWind,
}

struct VarSpec {
    name: &'static str,
    field: Option<Field>,
    dtype: DType,
    chunk_t: u64,
    attrs: Value,
}

fn var_specs() -> Vec<VarSpec> {
    let v = |name, field, dtype, chunk_t, attrs| VarSpec {
        name,
        field,
        dtype,
        chunk_t,
        attrs,
    };
    vec![
        v(
            "CHL",
            Some(Field::Chl),
            DType::Float32,
            TIME_CHUNK,
            json!({"long_name": "Chlorophyll-a concentration, level 3 (gappy)", "units": "milligram m-3", "standard_name": "mass_concentration_of_chlorophyll_a_in_sea_water"}),
        ),
        v(
            "CHL_cmes-cloud",
            Some(Field::Cloud),
            DType::UInt8,
            TIME_CHUNK,
            json!({"long_name": "Cloud flag", "flag_values": [0, 1], "flag_meanings": "clear cloud"}),
        ),
        v(
            "CHL_cmes-gapfree",
            Some(Field::ChlGapfree),
            DType::Float32,
            TIME_CHUNK,
            json!({"long_name": "Chlorophyll-a concentration, gap-free", "units": "milligram m-3", "standard_name": "mass_concentration_of_chlorophyll_a_in_sea_water"}),
        ),
        v(
            "sst",
            Some(Field::Sst),
            DType::Float32,
            TIME_CHUNK,
            json!({"long_name": "Sea surface temperature", "units": "degree_Celsius", "standard_name": "sea_surface_temperature"}),
        ),
        v(
            "so",
            Some(Field::So),
            DType::Float32,
            SO_TIME_CHUNK,
            json!({"long_name": "Sea water salinity", "units": "1e-3", "standard_name": "sea_water_salinity"}),
        ),
        v(
            "wind_speed",
            Some(Field::WindSpeed),
            DType::Float32,
            TIME_CHUNK,
            json!({"long_name": "Wind speed at 10 m", "units": "m s-1"}),
        ),
        v(
            "u_wind",
            Some(Field::UWind),
            DType::Float32,
            TIME_CHUNK,
            json!({"long_name": "Eastward wind at 10 m", "units": "m s-1"}),
        ),
    ]
}

type WriteArray = Array<dyn zarrs_storage::ReadableWritableListableStorageTraits>;

/// An array of the example, its documents as zarr-python writes them (see
/// [`crate::formats::zarr::writer`]; `zarrs`' own writer adds keys of its own), and the `zarrs`
/// array its chunks are written through.
struct ExampleArray {
    doc: ArrayDoc,
    array: WriteArray,
}

impl ExampleArray {
    /// A new array of `store` with the given shape, chunks, type, attributes and dimensions,
    /// Blosc lz4 level 5 with byte shuffle.
    fn new(
        store: &Store,
        name: &str,
        (shape, chunks): (&[u64], &[u64]),
        dtype: DType,
        attrs: &Value,
        dims: &[&str],
    ) -> Result<ExampleArray> {
        let dims: Vec<String> = dims.iter().map(|d| (*d).to_string()).collect();
        let layout = ArrayLayout {
            zarr_format: 2,
            name,
            dims: &dims,
            shape,
            chunks,
            shards: None,
            dtype,
            compressor: &Compressor::default_for(2),
        };
        let doc = array_doc(&layout, attrs.as_object().cloned().unwrap_or_default());
        let array = Array::new_with_metadata(
            store.storage().clone(),
            &format!("/{name}"),
            zarrs_metadata(&doc)?,
        )
        .map_err(|e| Error::Other(format!("{}: {e}", store.location().join(name))))?;
        Ok(ExampleArray { doc, array })
    }

    /// Write the whole array, one chunk.
    fn store_all<T: zarrs::array::Element>(&self, store: &Store, data: &[T]) -> Result<()> {
        let zeros = vec![0u64; self.array.dimensionality()];
        self.array.store_chunk(&zeros, data).map_err(|e| {
            Error::Other(format!(
                "{}: {e}",
                store.location().join(&self.array.path().to_string())
            ))
        })
    }
}

fn day_of_year(day: u64) -> f32 {
    // Days since 1979-01-01 in the proleptic Gregorian calendar to day of year (1-based).
    let mut d = i64::try_from(day).unwrap_or(0);
    let mut year = 1979;
    loop {
        let len = if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
            366
        } else {
            365
        };
        if d < len {
            #[allow(clippy::cast_precision_loss)]
            return (d + 1) as f32;
        }
        d -= len;
        year += 1;
    }
}

/// Where [`fill_chunk`] writes: float32 or uint8 elements.
enum ChunkOut<'a> {
    F32(&'a mut [f32]),
    U8(&'a mut [u8]),
}

/// Fill one chunk of a time-varying variable (`nt` days from `t0`), C order.
#[allow(clippy::cast_precision_loss)]
fn fill_chunk(field: Field, g: &Grid, opts: ExampleOptions, t0: u64, nt: usize, out: ChunkOut<'_>) {
    let (seed, days) = (opts.seed, opts.days);
    let (out32, out8): (&mut [f32], &mut [u8]) = match out {
        ChunkOut::F32(o) => (o, &mut []),
        ChunkOut::U8(o) => (&mut [], o),
    };
    let plane = NLAT * NLON;
    let first_valid = days * 2 / 5; // all-NaN response over the first 40 % of days
    let salt = seed.wrapping_mul(0x100_0000_01B3) ^ (field as u64) << 56;
    for dt in 0..nt {
        let t = t0 + dt as u64;
        let doy = day_of_year(t);
        let season = (std::f32::consts::TAU * (doy - 30.0) / 365.25).cos();
        let monsoon = (std::f32::consts::TAU * (doy - 200.0) / 365.25).cos();
        let day_hash = splitmix(seed ^ t ^ 0x5EED);
        let missing_day = t < first_valid || day_hash % 53 == 0;
        let row_salt = splitmix(salt ^ t);
        for k in 0..plane {
            let idx = dt * plane + k;
            let land = g.land[k] == 1;
            let lake = g.lake[k];
            let h = splitmix(row_salt ^ k as u64);
            let noise = unit(h);
            match field {
                Field::Cloud => {
                    out8[idx] = u8::from(!land && (h >> 8) % 5 == 0);
                }
                Field::ChlGapfree | Field::Chl => {
                    let cloudy = field == Field::Chl && (h >> 8) % 5 == 0;
                    out32[idx] = if land || (field == Field::ChlGapfree && missing_day) || cloudy {
                        f32::NAN
                    } else {
                        (g.chl_base[k]
                            + 0.6 * monsoon * (0.5 + 0.5 * g.lat_weight[k])
                            + 0.15 * noise)
                            .exp()
                    };
                }
                Field::Sst => {
                    out32[idx] = if land || lake {
                        f32::NAN
                    } else {
                        g.sst_base[k] + 2.5 * season * g.lat_weight[k] + 0.2 * noise
                    };
                }
                Field::So => {
                    out32[idx] = if land || lake {
                        f32::NAN
                    } else {
                        g.so_base[k] + 0.3 * monsoon + 0.05 * noise
                    };
                }
                Field::WindSpeed => {
                    out32[idx] = 6.0 + 4.0 * monsoon.abs() + 1.5 * noise;
                }
                Field::UWind => {
                    out32[idx] = 5.0 * monsoon + 2.0 * noise;
                }
            }
        }
    }
}

/// Write the example store. `progress` is called with (chunks done, chunks in all).
///
/// # Errors
/// [`Error::DestinationNotEmpty`] when the destination already holds something (the caller removes
/// it first), and storage errors while writing.
pub fn write_example(
    store: &Store,
    opts: ExampleOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<()> {
    if store.exists()? {
        let listing = store
            .storage()
            .list_dir(&zarrs_storage::StorePrefix::root())
            .map_err(|e| store.storage_error("", e))?;
        if !listing.keys().is_empty() || !listing.prefixes().is_empty() {
            return Err(Error::DestinationNotEmpty {
                location: store.location().to_string(),
            });
        }
    }
    if opts.days == 0 {
        return Err(Error::Other("--days must be at least 1".into()));
    }
    if opts.days > MAX_DAYS {
        let per_day = (NLAT * NLON * 4) as u64;
        return Err(Error::Refused {
            location: store.location().to_string(),
            reason: format!(
                "--days {} is more than the example writes (at most {MAX_DAYS} days, {} bytes \
                 of each daily variable); {} days of one variable alone would be {}",
                opts.days,
                MAX_DAYS * per_day,
                opts.days,
                opts.days.checked_mul(per_day).map_or_else(
                    || "more than 2^64 bytes".to_string(),
                    |b| format!("{b} bytes")
                )
            ),
        });
    }
    let grid = Grid::new(opts.seed);
    // Chunks first, metadata last: a reader never sees a half-written store as complete.
    let mut arrays = write_time_varying(store, &grid, opts, progress)?;
    arrays.extend(write_static(store, &grid, opts.days)?);
    let docs: Vec<ArrayDoc> = arrays.into_iter().map(|a| a.doc).collect();
    let end =
        crate::cf::time::TimeEncoding::parse("days since 1979-01-01", Some("proleptic_gregorian"))
            .and_then(|e| e.decode_i64(i64::try_from(opts.days - 1).unwrap_or(0)))
            .map(|t| t.to_short())
            .unwrap_or_default();
    let global = json!({
        "Conventions": "CF-1.8, ACDD-1.3",
        "title": "Synthetic Indian Ocean chlorophyll, SST and salinity (cubeforge example)",
        "summary": "Synthetic data shaped like the 'mind the chl gap' IO.zarr store used by the NOAA CNN tutorial. Not real observations.",
        "source": format!("cubeforge {} example io --days {} --seed {}", crate::VERSION, opts.days, opts.seed),
        "time_coverage_start": "1979-01-01",
        "time_coverage_end": end,
        "geospatial_lat_min": -12.0, "geospatial_lat_max": 32.0,
        "geospatial_lon_min": 42.0, "geospatial_lon_max": 102.0,
        "example_seed": opts.seed,
    });
    let Value::Object(global) = global else {
        return Err(Error::Other("internal: example attributes".into()));
    };
    commit_group(store, 2, &docs, global)
}

/// The time-varying variables, written chunk by chunk in parallel, bigger chunks first.
fn write_time_varying(
    store: &Store,
    grid: &Grid,
    opts: ExampleOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Vec<ExampleArray>> {
    let days = opts.days;
    let specs = var_specs();
    let mut arrays = Vec::new();
    let mut tasks: Vec<(usize, u64)> = Vec::new();
    for (vi, s) in specs.iter().enumerate() {
        let shape = [days, NLAT as u64, NLON as u64];
        let chunks = [s.chunk_t, NLAT as u64, NLON as u64];
        let dims = ["time", "lat", "lon"];
        let a = ExampleArray::new(store, s.name, (&shape, &chunks), s.dtype, &s.attrs, &dims)?;
        arrays.push(a);
        for c in 0..days.div_ceil(s.chunk_t) {
            tasks.push((vi, c));
        }
    }
    // Bigger chunks first so the two cores finish together.
    tasks.sort_by_key(|(vi, c)| (std::cmp::Reverse(specs[*vi].chunk_t), *c, *vi));
    let total = tasks.len() as u64;
    let done = AtomicU64::new(0);
    tasks.par_iter().try_for_each(|&(vi, c)| -> Result<()> {
        let s = &specs[vi];
        let t0 = c * s.chunk_t;
        let chunk_t = usize::try_from(s.chunk_t).unwrap_or(0);
        let n = chunk_t * NLAT * NLON;
        let nt = usize::try_from((days - t0).min(s.chunk_t)).unwrap_or(0);
        let array = &arrays[vi].array;
        let field = s
            .field
            .ok_or_else(|| Error::Other("internal: static field in time loop".into()))?;
        let key = array.chunk_key(&[c, 0, 0]);
        let write = |r: std::result::Result<(), zarrs::array::ArrayError>| {
            r.map_err(|e| Error::Other(format!("{}: {e}", store.location().join(key.as_str()))))
        };
        if s.dtype == DType::UInt8 {
            let mut out8 = vec![0u8; n];
            fill_chunk(field, grid, opts, t0, nt, ChunkOut::U8(&mut out8));
            write(array.store_chunk(&[c, 0, 0], &out8))?;
        } else {
            // Padding beyond the last day holds the fill value, as zarr-python writes it.
            let mut out32 = vec![f32::NAN; n];
            fill_chunk(field, grid, opts, t0, nt, ChunkOut::F32(&mut out32));
            write(array.store_chunk(&[c, 0, 0], &out32))?;
        }
        progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
        Ok(())
    })?;
    Ok(arrays)
}

/// The static variables (land mask, bathymetry) and the coordinates.
fn write_static(store: &Store, grid: &Grid, days: u64) -> Result<Vec<ExampleArray>> {
    let plane = [NLAT as u64, NLON as u64];
    let planar = (&plane[..], &plane[..]);
    let land = ExampleArray::new(
        store,
        "CHL_cmes-land",
        planar,
        DType::UInt8,
        &json!({"long_name": "Land mask", "flag_values": [0, 1], "flag_meanings": "water land"}),
        &["lat", "lon"],
    )?;
    land.store_all(store, &grid.land)?;
    let topo = ExampleArray::new(
        store,
        "topo",
        planar,
        DType::Float64,
        &json!({"long_name": "Bathymetry and elevation", "units": "m", "positive": "up"}),
        &["lat", "lon"],
    )?;
    topo.store_all(store, &grid.topo)?;
    let nlat = [NLAT as u64];
    let lat_a = ExampleArray::new(
        store,
        "lat",
        (&nlat, &nlat),
        DType::Float32,
        &json!({"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude", "axis": "Y"}),
        &["lat"],
    )?;
    lat_a.store_all(store, &(0..NLAT).map(lat).collect::<Vec<f32>>())?;
    let nlon = [NLON as u64];
    let lon_a = ExampleArray::new(
        store,
        "lon",
        (&nlon, &nlon),
        DType::Float32,
        &json!({"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude", "axis": "X"}),
        &["lon"],
    )?;
    lon_a.store_all(store, &(0..NLON).map(lon).collect::<Vec<f32>>())?;
    let ndays = [days];
    let time_a = ExampleArray::new(
        store,
        "time",
        (&ndays, &ndays),
        DType::Int64,
        &json!({"units": "days since 1979-01-01", "calendar": "proleptic_gregorian", "standard_name": "time", "long_name": "time", "axis": "T"}),
        &["time"],
    )?;
    let times: Vec<i64> = (0..days)
        .map(|d| i64::try_from(d).unwrap_or(i64::MAX))
        .collect();
    time_a.store_all(store, &times)?;
    Ok(vec![land, topo, lat_a, lon_a, time_a])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_has_land_ocean_and_lakes() {
        let g = Grid::new(0);
        let land = g.land.iter().filter(|&&l| l == 1).count();
        let lakes = g.lake.iter().filter(|&&l| l).count();
        assert!(land > 1000 && land < NLAT * NLON / 2, "land cells: {land}");
        assert!(lakes >= 3, "lake cells: {lakes}");
        assert!(g
            .lake
            .iter()
            .zip(&g.land)
            .all(|(lake, land)| !lake || *land == 0));
    }

    #[test]
    fn coordinates_match_the_tutorial_grid() {
        assert_eq!(lat(0), 32.0);
        assert_eq!(lat(NLAT - 1), -12.0);
        assert_eq!(lon(0), 42.0);
        assert_eq!(lon(NLON - 1), 102.0);
        assert_eq!(day_of_year(0), 1.0);
        assert_eq!(day_of_year(365), 1.0); // 1980-01-01
        assert_eq!(day_of_year(365 + 365), 366.0); // 1980-12-31
    }
}
