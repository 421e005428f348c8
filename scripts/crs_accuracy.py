#!/usr/bin/env python3
"""Reference points for the CRS layer (geo/crs.rs, geo/project.rs), from pyproj.

For each pair EPSG:4326 <-> P, P in {32633, 32760, 3577, 3857, 3031, 3413, MODIS sinusoidal}:
N random (lon, lat) uniform in P's area of use (pyproj `CRS.area_of_use`; the sinusoidal one
takes lon -180..180, lat -85..85), projected by `Transformer.from_crs(4326, P, always_xy=True)`
to (x, y); then those (x, y) taken back by the inverse transformer to (lon2, lat2).

Writes OUT.json (the pairs: name, CRS text, n, offset) and OUT.bin (little-endian float64;
per pair 6 arrays of n: lon, lat, x, y, lon2, lat2). The Rust test
`geo::project::tests` reads them and compares every point (1 mm projected, 1e-8 degree).

Without arguments it also writes tests/data/crs/cases.json: CRS texts without an EPSG code
(PROJ strings, GDAL/ESRI WKT 1, WKT 2, BOUNDCRS) with 20 points each, pyproj's forward and
inverse, and for PROJ strings pyproj's WKT1_GDAL (`geo::crs::tests::cases_match_pyproj`).

Usage: crs_accuracy.py [N] [OUT]   (default 1000, crates/cubeforge/tests/data/crs/points)
Full run: crs_accuracy.py 100000 /tmp/crs-points, then
  CUBEFORGE_CRS_POINTS=/tmp/crs-points cargo test --release crs_accuracy_report -- --nocapture
"""
import json
import sys
from pathlib import Path

import numpy as np
from pyproj import CRS, Transformer

SINU = "+proj=sinu +R=6371007.181 +nadgrids=@null +wktext +units=m"
PAIRS = [
    ("utm33n", "EPSG:32633"),
    ("utm60s", "EPSG:32760"),
    ("au_albers", "EPSG:3577"),
    ("web_mercator", "EPSG:3857"),
    ("antarctic_ps", "EPSG:3031"),
    ("nsidc_north_ps", "EPSG:3413"),
    ("modis_sinusoidal", SINU),
]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    root = Path(__file__).resolve().parent.parent
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else root / "crates/cubeforge/tests/data/crs/points"
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(19)
    geo = CRS.from_epsg(4326)
    meta, arrays, offset = [], [], 0
    for name, text in PAIRS:
        crs = CRS.from_user_input(text)
        if text == SINU:
            w, s, e, nn = -180.0, -85.0, 180.0, 85.0
        else:
            a = crs.area_of_use
            w, s, e, nn = a.west, a.south, a.east, a.north
        if e < w:  # crosses the antimeridian
            e += 360.0
        lon = rng.uniform(w, e, n)
        lon = np.where(lon > 180.0, lon - 360.0, lon)
        # Uniform on the sphere within the band: sin(lat) uniform.
        lat = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(s)), np.sin(np.radians(nn)), n)))
        fwd = Transformer.from_crs(geo, crs, always_xy=True)
        inv = Transformer.from_crs(crs, geo, always_xy=True)
        x, y = fwd.transform(lon, lat)
        lon2, lat2 = inv.transform(x, y)
        for arr in (lon, lat, x, y, lon2, lat2):
            assert np.all(np.isfinite(arr)), name
            arrays.append(np.asarray(arr, dtype="<f8"))
        meta.append({"name": name, "geographic": "EPSG:4326", "projected": text,
                     "bbox": [w, s, e, nn], "n": n, "offset": offset})
        offset += 6 * n
    np.concatenate(arrays).tofile(str(out) + ".bin")
    Path(str(out) + ".json").write_text(json.dumps({
        "pyproj": __import__("pyproj").__version__,
        "proj": __import__("pyproj").proj_version_str,
        "layout": "per pair 6 arrays of n little-endian f64: lon, lat, x, y, lon2, lat2",
        "pairs": meta}, indent=1) + "\n")
    print(f"wrote {out}.json/.bin: {len(PAIRS)} pairs x {n} points")


# CRS texts without an EPSG code (or with one in WKT 2), read by `Crs::parse`: points
# (lon, lat) in a region and pyproj's (x, y); for PROJ strings also pyproj's WKT1_GDAL.
MODIS_GDAL_WKT = (
    'PROJCS["unnamed",GEOGCS["Unknown datum based upon the custom spheroid",'
    'DATUM["Not specified (based on custom spheroid)",SPHEROID["Custom spheroid",6371007.181,0]],'
    'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Sinusoidal"],'
    'PARAMETER["longitude_of_center",0],PARAMETER["false_easting",0],'
    'PARAMETER["false_northing",0],UNIT["Meter",1]]'
)
CASES = [
    # (label, text or (source, flavour), lon/lat box)
    ("modis_gdal_wkt1", MODIS_GDAL_WKT, (-180, -80, 180, 80)),
    ("modis_pyproj_wkt1", (SINU, "WKT1_GDAL"), (-180, -80, 180, 80)),
    ("modis_esri_wkt1", (SINU, "WKT1_ESRI"), (-180, -80, 180, 80)),
    ("esri_54008", ("ESRI:54008", "WKT1_ESRI"), (-180, -80, 180, 80)),
    ("laea_wkt2", ("+proj=laea +lat_0=52 +lon_0=10 +x_0=4321000 +y_0=3210000 +ellps=GRS80 +units=m", "WKT2_2019"), (-10, 35, 30, 70)),
    ("aea_boundcrs_wkt2", ("+proj=aea +lat_1=-18 +lat_2=-36 +lat_0=0 +lon_0=132 +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +units=m", "WKT2_2019"), (113, -43, 153, -10)),
    ("epsg3577_wkt2", ("EPSG:3577", "WKT2_2019"), (113, -43, 153, -10)),
    ("epsg27700_wkt2", ("EPSG:27700", "WKT2_2019"), (-7, 50, 1.5, 58)),
    ("lcc_nad83_wkt1", ("+proj=lcc +lat_1=33 +lat_2=45 +lat_0=23 +lon_0=-96 +datum=NAD83 +units=m", "WKT1_GDAL"), (-120, 25, -70, 50)),
    ("utm33_proj", "+proj=utm +zone=33 +datum=WGS84 +units=m +no_defs", (12, 0, 18, 80)),
    ("utm60s_proj", "+proj=utm +zone=60 +south +datum=WGS84", (174, -80, 180, 0)),
    ("tmerc_osgb_proj", "+proj=tmerc +lat_0=49 +lon_0=-2 +k=0.9996012717 +x_0=400000 +y_0=-100000 +ellps=airy +towgs84=446.448,-125.157,542.06,0.15,0.247,0.842,-20.489 +units=m +no_defs", (-7, 50, 1.5, 58)),
    ("aea_proj", "+proj=aea +lat_1=29.5 +lat_2=45.5 +lat_0=23 +lon_0=-96 +x_0=0 +y_0=0 +datum=NAD83 +units=m +no_defs", (-120, 25, -70, 50)),
    ("laea_proj", "+proj=laea +lat_0=52 +lon_0=10 +x_0=4321000 +y_0=3210000 +ellps=GRS80 +units=m +no_defs", (-10, 35, 30, 70)),
    ("stere_south_proj", "+proj=stere +lat_0=-90 +lat_ts=-71 +lon_0=0 +datum=WGS84 +units=m", (-180, -90, 180, -60)),
    ("stere_ups_north_proj", "+proj=stere +lat_0=90 +k=0.994 +lon_0=0 +x_0=2000000 +y_0=2000000 +datum=WGS84 +units=m", (-180, 60, 180, 90)),
    ("merc_proj", "+proj=merc +lon_0=0 +datum=WGS84 +units=m", (-180, -80, 180, 80)),
    ("merc_2sp_proj", "+proj=merc +lat_ts=30 +lon_0=100 +datum=WGS84 +units=m", (-180, -80, 180, 80)),
    ("webmerc_proj", "+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +nadgrids=@null +wktext +no_defs", (-180, -85, 180, 85)),
    ("sinu_proj", SINU, (-180, -80, 180, 80)),
    ("sinu_ellps_proj", "+proj=sinu +lon_0=15 +datum=WGS84 +units=m", (-60, -60, 80, 70)),
    ("lcc_2sp_proj", "+proj=lcc +lat_1=33 +lat_2=45 +lat_0=23 +lon_0=-96 +datum=WGS84 +units=m", (-120, 25, -70, 50)),
    ("lcc_1sp_proj", "+proj=lcc +lat_1=46.8 +lat_0=46.8 +lon_0=2.3372 +k_0=0.99987742 +x_0=600000 +y_0=2200000 +datum=WGS84 +units=m", (-5, 42, 8, 51)),
    ("eqc_proj", "+proj=eqc +lat_ts=30 +lat_0=0 +lon_0=0 +datum=WGS84 +units=m", (-180, -80, 180, 80)),
    ("utm_us_ft_proj", "+proj=tmerc +lat_0=0 +lon_0=-99 +k=0.9996 +x_0=500000.00001016 +y_0=0 +datum=WGS84 +units=us-ft", (-102, 20, -96, 50)),
]


def cases(out_path):
    rng = np.random.default_rng(7)
    geo = CRS.from_epsg(4326)
    out = []
    for label, text, (w, s, e, n) in CASES:
        if isinstance(text, tuple):
            src, flavour = text
            text = CRS.from_user_input(src).to_wkt(flavour)
        crs = CRS.from_user_input(text)
        lon = rng.uniform(w, e, 20)
        lat = rng.uniform(s, n, 20)
        x, y = Transformer.from_crs(geo, crs, always_xy=True).transform(lon, lat)
        lon2, lat2 = Transformer.from_crs(crs, geo, always_xy=True).transform(x, y)
        case = {"label": label, "text": text, "lon": lon.tolist(), "lat": lat.tolist(),
                "x": list(x), "y": list(y), "lon2": list(lon2), "lat2": list(lat2)}
        if text.startswith("+"):
            case["wkt1_gdal"] = crs.to_wkt("WKT1_GDAL")
        out.append(case)
    out_path.write_text(json.dumps({"pyproj": __import__("pyproj").__version__,
                                    "cases": out}, indent=1) + "\n")
    print(f"wrote {out_path}: {len(out)} cases")


if __name__ == "__main__":
    main()
    if len(sys.argv) <= 2:
        cases(Path(__file__).resolve().parent.parent / "crates/cubeforge/tests/data/crs/cases.json")
