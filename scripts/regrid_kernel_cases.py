#!/usr/bin/env python3
"""Regenerates the expected numbers of the regrid kernel tests
(crates/cubeforge/src/ops/regrid/cases.rs, included by testutil.rs) from rasterio.

Run with the project's venv: `.venv/bin/python scripts/regrid_kernel_cases.py`.
Reference: rasterio 1.4.4 / GDAL 3.10.3. Every case warps one 2-D float64
array EPSG:4326 -> EPSG:4326 with src_nodata = dst_nodata = NaN and
init_dest_nodata=True (design regrid.md section 2.6).

    .venv/bin/python scripts/regrid_kernel_cases.py > crates/cubeforge/src/ops/regrid/cases.rs
"""
import numpy as np
import rasterio
from affine import Affine
from rasterio.warp import Resampling, reproject


def lcg(n, seed):
    """Values the Rust tests rebuild: (x >> 33) % 1000 / 10 of a 64-bit LCG."""
    out, x = [], seed
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) % 2**64
        out.append(((x >> 33) % 1000) / 10.0)
    return np.array(out)


def src(kind, h, w):
    n = h * w
    if kind == "arange":
        a = np.arange(n, dtype="f8")
    elif kind == "square":
        a = np.arange(n, dtype="f8") ** 2
    elif kind == "mod7":
        a = np.arange(n, dtype="f8") % 7
    elif kind.startswith("lcg"):
        a = lcg(n, int(kind[3:]))
    elif kind.startswith("v:"):
        a = np.array([float(v) for v in kind[2:].split(",")])
        a = np.tile(a, n // len(a))
    elif kind == "mod3":
        a = np.arange(n, dtype="f8") % 3
    else:
        raise ValueError(kind)
    return a.reshape(h, w)


# name, source kind, (h, w), NaN cells, src affine (a, c, e, f), dst affine
# (a, c, e, f), dst (h, w), methods. Sources are north-up; affines are
# rasterio's Affine(a, 0, c, 0, e, f).
CASES = [
    # --- design regrid.md table 2.6 (the numbers must equal the table's) ---
    ("t_nan00_avg", "arange", (4, 4), [(0, 0)], (1, 0, -1, 4), (2, 0, -2, 4), (2, 2), ["average"]),
    ("t_1_5", "arange", (3, 3), [], (1, 0, -1, 3), (1.5, 0, -1.5, 3), (2, 2), ["average"]),
    ("t_x025", "v:10,20,30,40", (1, 4), [], (1, 0, -1, 1), (1.5, 0.25, -1, 1), (1, 2), ["average"]),
    ("t_sq", "square", (4, 4), [], (1, 0, -1, 4), (2, 0, -2, 4), (2, 2), ["bilinear"]),
    ("t_div50", "mod7", (100, 100), [], (1, 0, -1, 100), (50, 0, -50, 100), (2, 2),
     ["bilinear", "average", "cubic"]),
    ("t_up2", "v:1,2,3,0", (2, 2), [(1, 1)], (1, 0, -1, 2), (0.5, 0, -0.5, 2), (4, 4), ["bilinear", "cubic"]),
    ("t_nan11", "arange", (4, 4), [(1, 1)], (1, 0, -1, 4), (2, 0, -2, 4), (2, 2),
     ["average", "bilinear", "cubic", "nearest", "min", "max", "med", "mode"]),
    ("t_nan00", "arange", (4, 4), [(0, 0)], (1, 0, -1, 4), (2, 0, -2, 4), (2, 2), ["bilinear", "med", "q1", "q3"]),
    ("t_shift", "v:10,20,30,40", (4, 4), [], (1, 0, -1, 4), (1, 0.25, -1, 4), (4, 3),
     ["bilinear", "cubic", "average", "nearest"]),
    ("t_mode3", "v:1,2,2", (1, 3), [], (1, 0, -1, 1), (1.5, 0, -1, 1), (1, 2), ["mode"]),
    ("t_mode6", "v:1,1,2,2,2,1", (1, 6), [], (1, 0, -1, 1), (1.5, 0, -1, 1), (1, 4), ["mode"]),
    ("t_i16", "v:-2,-3,-2,-2", (1, 4), [], (1, 0, -1, 1), (2, 0, -1, 1), (1, 2), ["average"]),
    ("t_7373", "v:7,3,7,3", (1, 4), [], (1, 0, -1, 1), (1.2, 0.9, -1, 1), (1, 1), ["average", "mode", "med", "max"]),
    ("t_tie_5335", "v:5,3,3,5", (2, 2), [], (1, 0, -1, 2), (2, 0, -2, 2), (1, 1), ["mode"]),
    ("t_tie_3553", "v:3,5,5,3", (2, 2), [], (1, 0, -1, 2), (2, 0, -2, 2), (1, 1), ["mode"]),
    ("t_tie_2211", "v:2,2,1,1", (2, 2), [], (1, 0, -1, 2), (2, 0, -2, 2), (1, 1), ["mode"]),
    ("t_tie_7997", "v:7,9,9,7", (1, 4), [], (1, 0, -1, 1), (4, 0, -1, 1), (1, 1), ["mode"]),
    ("t_tie_9779", "v:9,7,7,9", (1, 4), [], (1, 0, -1, 1), (4, 0, -1, 1), (1, 1), ["mode"]),
    ("t_152", "v:1,5,2", (1, 3), [], (1, 0, -1, 1), (2.5, 0.25, -1, 1), (1, 1), ["mode", "med", "q1", "q3"]),
    ("t_1to15", "v:1,2,3,4,5,6,7,8,9,10,11,12,13,14,15", (1, 15), [], (1, 0, -1, 1), (15, 0, -1, 1), (1, 1),
     ["med", "q1", "q3"]),
    ("t_12310", "v:1,2,3,10", (1, 4), [], (1, 0, -1, 1), (4, 0, -1, 1), (1, 1), ["med"]),
    # one row does not interpolate; four rows do (design 2.6, last paragraph)
    ("t_row1_s01", "v:10,20,30,40", (1, 4), [], (1, 0, -1, 1), (1, 0.01, -1, 1), (1, 3), ["bilinear"]),
    ("t_row1_s49", "v:10,20,30,40", (1, 4), [], (1, 0, -1, 1), (1, 0.49, -1, 1), (1, 3), ["bilinear"]),
    ("t_row4_s01", "v:10,20,30,40", (4, 4), [], (1, 0, -1, 4), (1, 0.01, -1, 4), (1, 3), ["bilinear"]),
    ("t_row4_s49", "v:10,20,30,40", (4, 4), [], (1, 0, -1, 4), (1, 0.49, -1, 4), (1, 3), ["bilinear"]),
    # nearest: a centre on a pixel boundary takes the pixel after it
    ("t_near49", "arange", (4, 4), [], (1, 0, -1, 4), (1, 0.49, -1, 3.51), (3, 3), ["nearest"]),
    ("t_near50", "arange", (4, 4), [], (1, 0, -1, 4), (1, 0.5, -1, 3.5), (3, 3), ["nearest"]),
    ("t_near_2", "arange", (4, 4), [], (1, 0, -1, 4), (2, 0, -2, 4), (2, 2), ["nearest"]),
    # --- own cases ---
    # 0.01 -> 0.03 degrees (scale 1/3), one NaN.
    ("third", "lcg1", (12, 12), [(2, 3)], (0.01, 10.0, -0.01, 50.0),
     (0.03, 10.0, -0.03, 50.0), (4, 4), ["average", "bilinear", "cubic", "mode", "med"]),
    # 1 -> 2.5 (scale 0.4, stretched radius 3 / 5), NaNs inside and on the edge.
    ("r2_5", "lcg2", (10, 10), [(4, 4), (0, 9)], (1, 0, -1, 10), (2.5, 0, -2.5, 10),
     (4, 4), ["average", "bilinear", "cubic", "nearest", "q1", "q3", "max", "mode"]),
    # 1 -> 1.9 with a fractional offset, partly outside the source.
    ("r1_9", "square", (19, 19), [], (1, 0, -1, 19), (1.9, 0.3, -1.9, 18.8),
     (4, 5), ["bilinear", "cubic", "average", "min"]),
    # upsampling 3x: 4x4 cubic inside, bilinear fallback at edges and the NaN.
    ("up3", "lcg3", (5, 5), [(2, 2)], (1, 0, -1, 5), (1 / 3, 0, -1 / 3, 5), (9, 9),
     ["cubic", "bilinear", "nearest"]),
    # 1.04 snaps to scale 1 (4-sample); 1.06 does not (0.943 < 0.95: stretched).
    ("r1_04", "square", (26, 26), [], (1, 0, -1, 26), (1.04, 0, -1.04, 26), (5, 5), ["bilinear", "cubic"]),
    ("r1_06", "square", (20, 20), [], (1, 0, -1, 20), (1.06, 0, -1.06, 20), (5, 5), ["bilinear", "cubic"]),
    # a 0..360 source, target across lon 0 (GDAL wraps the longitudes itself).
    ("seam", "lcg4", (6, 360), [(1, 359)], (1, 0, -1, 3), (1.5, -3.25, -1.5, 3), (2, 4),
     ["average", "bilinear", "nearest", "max", "mode"]),
    # mode / median on repeating floats, ties (scale 1/2.25).
    ("modef", "mod3", (9, 9), [], (1, 0, -1, 9), (2.25, 0, -2.25, 9), (4, 4), ["mode", "med", "q1"]),
    # a 1-D-ish wide row: 40 columns -> 13, rows of more than 5 points (approx).
    # footprints sticking out of the raster: the edge pixel weighs 1.5 (GDAL).
    ("edge_w", "v:10,20,30,40", (4, 4), [], (1, 0, -1, 4), (2, -0.5, -2, 4), (2, 3), ["average", "max"]),
    ("wide", "lcg5", (4, 40), [], (1, 0, -1, 4), (3.05, 0.1, -1, 4), (4, 13), ["bilinear", "average", "nearest"]),
]


def warp(name, kind, shape, nans, sa, da, dshape, method):
    a = src(kind, *shape)
    for r, c in nans:
        a[r, c] = np.nan
    dst = np.full(dshape, np.nan)
    reproject(a, dst, src_transform=Affine(sa[0], 0, sa[1], 0, sa[2], sa[3]), src_crs="EPSG:4326",
              dst_transform=Affine(da[0], 0, da[1], 0, da[2], da[3]), dst_crs="EPSG:4326",
              src_nodata=np.nan, dst_nodata=np.nan, resampling=getattr(Resampling, method),
              init_dest_nodata=True)
    return dst


def lit(v):
    return "NAN" if np.isnan(v) else repr(float(v))


def main():
    print(f"// Generated by scripts/regrid_kernel_cases.py (rasterio {rasterio.__version__}, "
          f"GDAL {rasterio.__gdal_version__}): do not edit.")
    print("const NAN: f64 = f64::NAN;")
    print("const CASES: &[Case] = &[")
    for name, kind, shape, nans, sa, da, dshape, methods in CASES:
        for m in methods:
            d = warp(name, kind, shape, nans, sa, da, dshape, m)
            vals = ", ".join(lit(v) for v in d.ravel())
            nan_s = ", ".join(f"({r}, {c})" for r, c in nans)
            print(f'    Case {{ name: "{name}", kind: "{kind}", src: ({shape[0]}, {shape[1]}), nans: &[{nan_s}], '
                  f'sa: [{", ".join(repr(float(v)) for v in sa)}], da: [{", ".join(repr(float(v)) for v in da)}], '
                  f'dst: ({dshape[0]}, {dshape[1]}), method: "{m}",\n        expect: &[{vals}] }},')
    print("];")


if __name__ == "__main__":
    main()
