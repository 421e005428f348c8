"""Text variables of NetCDF files (character arrays and NetCDF-4 variable-length strings) carried
into cubes: ``cubeforge convert`` and recipes against what xarray reads (netCDF4 and h5netcdf
engines), in Zarr v2 and v3, and the cube opened by zarr-python itself.

What xarray shows, and so the cube: a character array whose last dimension only character arrays
use, last, and that has no variable of its name, stacked into fixed-width bytes ``|S{n}``; with an
``_Encoding``, decoded to ``str``; other character arrays ``|S1``; strings ``<U{n}``.
"""

from __future__ import annotations

import json
import textwrap
import warnings
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr
import zarr

from sources_compare import convert, dataset_mismatches, open_cube, quiet_open, report

STATIONS = ["alpha", "beta", "gamma"]
LABELS = ["Zürich", "Malmö", "ok"]


def chars(values: list[str], width: int, encoding: str = "ascii") -> np.ndarray:
    """``values`` as a character array of ``width`` characters each (NUL-padded)."""
    return np.array([v.encode(encoding) for v in values], dtype=f"S{width}").view("S1").reshape(len(values), width)


def write_stations(path: Path, fmt: str = "NETCDF4", days: tuple[int, ...] = (0, 1, 2), names=STATIONS) -> None:
    """Stations: names ``(station, strlen)`` next to ``temp (time, station)``, a scalar character
    variable, UTF-8 labels, characters over a dimension a number variable shares (stays ``|S1``),
    a record (unlimited time) character variable and, in NetCDF-4, strings."""
    with netCDF4.Dataset(path, "w", format=fmt) as nc:
        nc.createDimension("time", None)
        nc.createDimension("station", len(names))
        nc.createDimension("strlen", 8)
        nc.createDimension("nchar", 8)
        nc.createDimension("shared", 3)
        nc.createDimension("codelen", 4)
        t = nc.createVariable("time", "f8", ("time",))
        t.units = "days since 2020-01-01"
        t[:] = np.array(days, dtype="f8")
        st = nc.createVariable("station", "i4", ("station",))
        st[:] = np.arange(len(names)) * 10
        temp = nc.createVariable("temp", "f4", ("time", "station"))
        temp.units = "K"
        temp[:] = 280 + np.arange(len(days) * len(names), dtype="f4").reshape(len(days), len(names)) + days[0]
        name = nc.createVariable("station_name", "S1", ("station", "strlen"))
        name.long_name = "station name"
        name.cf_role = "timeseries_id"
        name[:] = chars(names, 8)
        flag = nc.createVariable("flag", "S1", ())
        flag[...] = np.array(b"y", dtype="S1")
        label = nc.createVariable("label", "S1", ("station", "nchar"))
        label._Encoding = "utf-8"
        label[:] = chars(LABELS[: len(names)], 8, "utf-8")
        grid = nc.createVariable("grid", "S1", ("station", "shared"))
        grid[:] = np.array([[b"a", b"b", b"c"], [b"d", b"", b"f"], [b"g", b"h", b"i"]][: len(names)])
        nums = nc.createVariable("nums", "i2", ("shared",))
        nums[:] = [1, 2, 3]
        code = nc.createVariable("obs_code", "S1", ("time", "codelen"))
        code[:] = chars([f"c{d:02d}" for d in days], 4)
        if fmt == "NETCDF4":
            platform = nc.createVariable("platform", str, ("station",))
            for i, n in enumerate(names):
                platform[i] = f"{n}-plätform"[: 6 + i]


def refs(path: Path) -> list[tuple[str, xr.Dataset]]:
    out = [("netcdf4", quiet_open(path, engine="netcdf4"))]
    with open(path, "rb") as f:
        if f.read(4) == b"\x89HDF":
            out.append(("h5netcdf", quiet_open(path, engine="h5netcdf")))
    return out


def check(dst: Path, references: list[tuple[str, xr.Dataset]]) -> None:
    cube = open_cube(dst)
    mismatches = []
    for label, ref in references:
        mismatches += [f"[{label}] {m}" for m in dataset_mismatches(cube, ref)]
    assert not mismatches, report(f"cube {dst.name}", mismatches)


def check_zarr_python(dst: Path, ref: xr.Dataset) -> None:
    """zarr-python opens every array of the cube; text arrays hold xarray's bytes or strings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        group = zarr.open_group(dst, mode="r")
        for name in ref.variables:
            got = np.asarray(group[str(name)][...])
            exp = ref[name].values
            if exp.dtype.kind == "O":  # decoded by _Encoding: the cube holds the UTF-8 bytes
                assert got.dtype.kind == "S", (name, got.dtype)
                assert [g.decode("utf-8") for g in got.reshape(-1)] == list(exp.reshape(-1)), name
            elif exp.dtype.kind in "SU":
                assert got.dtype == exp.dtype, (name, got.dtype, exp.dtype)
                assert got.tolist() == exp.tolist(), name


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("fmt", ["NETCDF4", "NETCDF3_CLASSIC", "NETCDF3_64BIT_OFFSET"])
def test_text_variables_convert_as_xarray_reads_them(cubeforge, tmp_path, fmt, zarr_format):
    src = tmp_path / "stations.nc"
    write_stations(src, fmt)
    references = refs(src)
    ref = references[0][1]
    # What this test relies on xarray doing.
    assert ref["station_name"].dtype == np.dtype("S8") and ref["station_name"].dims == ("station",)
    assert ref["flag"].dtype == np.dtype("S1") and ref["flag"].dims == ()
    assert ref["label"].dtype == object and ref["label"].values.tolist() == LABELS
    assert ref["grid"].dtype == np.dtype("S1") and ref["grid"].dims == ("station", "shared")
    assert ref["obs_code"].dtype == np.dtype("S4") and ref["obs_code"].dims == ("time",)
    assert "strlen" not in ref.dims and "nchar" not in ref.dims
    if fmt == "NETCDF4":
        assert ref["platform"].dtype.kind == "U"
    dst = tmp_path / "cube.zarr"
    convert(cubeforge, src, dst, "--zarr-format", str(zarr_format))
    check(dst, references)
    check_zarr_python(dst, ref)


def test_info_shows_xarray_dtypes(cubeforge, tmp_path):
    src = tmp_path / "stations.nc"
    write_stations(src)
    doc = cubeforge.info(src)
    variables = {**doc["coords"], **doc["data_vars"]}
    ref = quiet_open(src)
    for name in ["station_name", "flag", "label", "grid", "obs_code", "platform"]:
        var = variables[name]
        assert not var.get("error"), var
        assert var["dtype"] == str(ref[name].dtype), (name, var["dtype"], ref[name].dtype)
        assert var["dims"] == list(ref[name].dims) and var["shape"] == list(ref[name].shape), name


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_string_coordinate(cubeforge, tmp_path, zarr_format):
    src = tmp_path / "sites.nc"
    with netCDF4.Dataset(src, "w") as nc:
        nc.createDimension("site", 3)
        site = nc.createVariable("site", str, ("site",))
        site.long_name = "site id"
        for i, s in enumerate(["north", "south-east", "w"]):
            site[i] = s
        v = nc.createVariable("v", "f8", ("site",))
        v[:] = [1.5, 2.5, 3.5]
        e = nc.createVariable("empty", str, ("site",))  # never written: empty strings
        del e
    references = refs(src)
    assert references[0][1]["site"].dtype == np.dtype("<U10") and "site" in references[0][1].indexes
    dst = tmp_path / "cube.zarr"
    convert(cubeforge, src, dst, "--zarr-format", str(zarr_format))
    check(dst, references)
    check_zarr_python(dst, references[0][1])
    # Kept with the variable along its dimension.
    convert(cubeforge, src, tmp_path / "kept.zarr", "--variables", "v")
    assert list(open_cube(tmp_path / "kept.zarr")["site"].values) == ["north", "south-east", "w"]


def test_hdf5_fixed_length_strings_read_as_the_netcdf4_engine_reads_them(cubeforge, tmp_path):
    """A plain HDF5 file (h5py) with a fixed-length string dataset and a variable-length one. The
    engines differ on fixed-length strings (netCDF-C makes them strings, ``<U3``; h5netcdf keeps
    bytes, ``|S3``): cubeforge shows what the netCDF4 engine shows, as for everything else."""
    h5py = pytest.importorskip("h5py")
    src = tmp_path / "plain.h5"
    with h5py.File(src, "w") as f:
        f["names"] = np.array([b"ab", b"cde", b""], dtype="S3")
        f.create_dataset("words", data=np.array(["x", "yz", "µ"], dtype=object), dtype=h5py.string_dtype())
    ref = quiet_open(src, engine="netcdf4")
    assert ref["names"].dtype == np.dtype("<U3") and quiet_open(src, engine="h5netcdf")["names"].dtype == np.dtype("S3")
    for zarr_format in (2, 3):
        dst = tmp_path / f"cube{zarr_format}.zarr"
        convert(cubeforge, src, dst, "--zarr-format", str(zarr_format))
        check(dst, [("netcdf4", ref)])
        check_zarr_python(dst, ref)


def write_days(root: Path, names_of_last=STATIONS) -> list[Path]:
    files = []
    for k, days in enumerate([(4, 5), (0, 1), (2, 3)]):
        path = root / f"day_{k}.nc"
        write_stations(path, days=days, names=names_of_last if k == 2 else STATIONS)
        files.append(path)
    return files


def xr_concat(files: list[Path]) -> xr.Dataset:
    parts = sorted((quiet_open(f) for f in files), key=lambda d: d["time"].values[0])
    return xr.concat(
        parts, dim="time", data_vars="minimal", coords="minimal", compat="override", combine_attrs="override"
    ).load()


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_concat_joins_text_along_time_and_takes_the_rest_once(cubeforge, tmp_path, zarr_format):
    files = write_days(tmp_path)
    ref = xr_concat(files)
    assert ref["obs_code"].values.tolist() == [b"c00", b"c01", b"c02", b"c03", b"c04", b"c05"]
    dst = tmp_path / "cube.zarr"
    convert(cubeforge, str(tmp_path / "day_*.nc"), dst, "--concat", "time", "--zarr-format", str(zarr_format))
    check(dst, [("xarray concat", ref)])
    check_zarr_python(dst, ref)


def test_concat_refuses_station_names_that_differ_naming_the_files(cubeforge, tmp_path):
    write_days(tmp_path, names_of_last=["alpha", "beta", "delta"])
    line = cubeforge.run_failing("convert", str(tmp_path / "day_*.nc"), tmp_path / "cube.zarr", "--concat", "time")
    assert "station_name" in line and "day_2.nc" in line, line
    assert "day_1.nc" in line or "day_0.nc" in line, line
    assert not (tmp_path / "cube.zarr" / ".zgroup").exists()


def build(cubeforge, root: Path, src: Path, operations: str, zarr_format: int = 2) -> Path:
    recipe = root / "r.yaml"
    out = root / f"out{zarr_format}.zarr"
    recipe.write_text(
        f'version: 1\ninputs:\n  s: {{url: "{src}"}}\noutput:\n  url: "{out}"\n  zarr_format: {zarr_format}\n'
        f"operations:\n{textwrap.indent(operations, '  ')}"
    )
    cubeforge.run("build", recipe, "--quiet")
    return out


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_selections_along_station_select_the_names(cubeforge, tmp_path, zarr_format):
    src = tmp_path / "stations.nc"
    write_stations(src)
    ops = "- isel: {station: {start: 1, stop: 3}}\n- sel: {station: {start: 15, stop: 25}}\n"
    out = build(cubeforge, tmp_path, src, ops, zarr_format)
    for engine, ref in refs(src):
        want = ref.isel(station=slice(1, 3)).sel(station=slice(15, 25))
        assert want["station_name"].values.tolist() == [b"gamma"]
        mismatches = dataset_mismatches(open_cube(out), want)
        assert not mismatches, report(f"[{engine}] isel/sel", mismatches)
        check_zarr_python(out, want)


def test_keep_drop_rename_carry_text(cubeforge, tmp_path):
    src = tmp_path / "stations.nc"
    write_stations(src)
    ops = "- keep: [temp, station_name, label]\n- rename: {station_name: name}\n- drop: [label]\n"
    out = build(cubeforge, tmp_path, src, ops)
    ref = quiet_open(src)[["temp", "station_name", "label"]].rename({"station_name": "name"}).drop_vars("label")
    mismatches = dataset_mismatches(open_cube(out), ref)
    assert not mismatches, report("keep/rename/drop", mismatches)


def test_resample_drops_text_along_time_as_xarray_does(cubeforge, tmp_path):
    """xarray's ``resample().mean()`` leaves out text along time (it is not numeric); text without
    time it tries to average over no axis, which NumPy refuses for bytes, so xarray fails on such a
    dataset. The cube keeps that text as it is, as xarray keeps every variable without time."""
    src = tmp_path / "stations.nc"
    write_stations(src, days=(0, 1, 2, 3))
    out = build(cubeforge, tmp_path, src, "- resample: {dim: time, freq: 2D, how: mean}\n")
    source = quiet_open(src)
    with pytest.raises(TypeError):
        source.resample(time="2D").mean()
    ref = source[["temp", "obs_code"]].resample(time="2D").mean()
    assert "obs_code" not in ref  # what xarray does with text along time
    cube = open_cube(out)
    assert "obs_code" not in cube
    np.testing.assert_array_equal(cube["temp"].values, ref["temp"].values)
    for name in ["station_name", "label", "grid", "flag", "platform"]:
        got, exp = cube[name], source[name]
        assert got.dtype == exp.dtype and got.values.tolist() == exp.values.tolist(), name


def test_an_expression_on_text_is_refused_naming_it(cubeforge, tmp_path):
    src = tmp_path / "stations.nc"
    write_stations(src)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f'version: 1\ninputs:\n  s: {{url: "{src}"}}\noutput: {{url: "{tmp_path / "o.zarr"}"}}\n'
        "operations:\n  - assign: {x: station_name + 1}\n"
    )
    line = cubeforge.run_failing("build", recipe)
    assert "station_name" in line and "text" in line and "r.yaml:" in line, line


def test_text_with_a_fill_value_is_left_out_with_the_reason(cubeforge, tmp_path):
    """xarray masks a character array's _FillValue into an object array of bytes and NaN, which no
    Zarr array holds (xarray's own to_zarr fails on it): convert leaves it out, a recipe keeping it
    fails naming it."""
    src = tmp_path / "filled.nc"
    with netCDF4.Dataset(src, "w") as nc:
        nc.createDimension("n", 2)
        v = nc.createVariable("code", "S1", ("n",), fill_value=b"X")
        v[0] = b"a"
        w = nc.createVariable("w", "f4", ("n",))
        w[:] = [1, 2]
    dst = tmp_path / "cube.zarr"
    convert(cubeforge, src, dst)
    assert "code" not in open_cube(dst) and "w" in open_cube(dst)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f'version: 1\ninputs:\n  s: {{url: "{src}"}}\noutput: {{url: "{tmp_path / "o.zarr"}"}}\n')
    line = cubeforge.run_failing("build", recipe)
    assert "'code'" in line and "_FillValue" in line, line


def test_merge_carries_text_of_each_input_and_refuses_a_name_in_both(cubeforge, tmp_path):
    a, b = tmp_path / "a.nc", tmp_path / "b.nc"
    write_stations(a)
    write_stations(b)
    out = tmp_path / "merged.zarr"

    def recipe(b_ops: str) -> Path:
        path = tmp_path / "merge.yaml"
        path.write_text(
            textwrap.dedent(
                f"""\
                version: 1
                inputs:
                  a:
                    url: "{a}"
                    operations: [{{keep: [temp, station_name]}}]
                  b:
                    url: "{b}"
                    operations: [{b_ops}]
                output: {{url: "{out}"}}
                """
            )
        )
        return path

    cubeforge.run("build", recipe("{keep: [label, platform]}"), "--quiet")
    src = quiet_open(a)
    ref = xr.merge([src[["temp", "station_name"]], src[["label", "platform"]]], join="exact")
    mismatches = dataset_mismatches(open_cube(out), ref)
    assert not mismatches, report("merge", mismatches)
    line = cubeforge.run_failing("build", recipe("{keep: [station_name]}"), "--overwrite")
    assert "station_name" in line and "'a'" in line and "'b'" in line, line


def test_dry_run_lists_text_variables(cubeforge, tmp_path):
    src = tmp_path / "stations.nc"
    write_stations(src)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f'version: 1\ninputs:\n  s: {{url: "{src}"}}\noutput: {{url: "{tmp_path / "o.zarr"}"}}\n')
    plan = json.loads(cubeforge.run("build", recipe, "--dry-run", "--json").stdout)
    listed = {v["name"]: v for v in plan["plan"]["variables"]}
    ref = quiet_open(src)
    for name in ["station_name", "flag", "label", "grid", "obs_code", "platform"]:
        assert listed[name]["dtype"] == str(ref[name].dtype) and listed[name]["dims"] == list(ref[name].dims), name


def test_merge_refuses_string_coordinates_that_differ(cubeforge, tmp_path):
    def sites(path: Path, names: list[str], var: str) -> None:
        with netCDF4.Dataset(path, "w") as nc:
            nc.createDimension("site", len(names))
            site = nc.createVariable("site", str, ("site",))
            for i, s in enumerate(names):
                site[i] = s
            nc.createVariable(var, "f8", ("site",))[:] = np.arange(len(names))

    sites(tmp_path / "a.nc", ["x", "y"], "u")
    recipe = tmp_path / "m.yaml"
    recipe.write_text(
        f'version: 1\ninputs:\n  a: {{url: "{tmp_path / "a.nc"}"}}\n  b: {{url: "{tmp_path / "b.nc"}"}}\n'
        f'output: {{url: "{tmp_path / "o.zarr"}"}}\n'
    )
    sites(tmp_path / "b.nc", ["x", "y"], "w")
    cubeforge.run("build", recipe, "--quiet")
    ref = xr.merge([quiet_open(tmp_path / "a.nc"), quiet_open(tmp_path / "b.nc")], join="exact")
    mismatches = dataset_mismatches(open_cube(tmp_path / "o.zarr"), ref)
    assert not mismatches, report("merge on a string coordinate", mismatches)
    sites(tmp_path / "b.nc", ["x", "z"], "w")
    line = cubeforge.run_failing("build", recipe, "--overwrite")
    assert "'site'" in line and "'a'" in line and "'b'" in line, line
