"""``assign`` expressions against NumPy 2: result dtypes and values, and the same refusals.

A store written by xarray holds small arrays of several dtypes; each expression of the table is
evaluated by NumPy on the same arrays (Python literals as NEP 50 treats them) and by cubeforge
in one recipe. Where NumPy raises (bitwise operators on floats, an integer literal out of the
array's range, ``-`` on booleans), cubeforge must refuse the recipe, naming the operation.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

ARRAYS = {
    "u8": np.array([[0, 3, 200], [255, 17, 128]], dtype=np.uint8),
    "i16": np.array([[-5, 3, 32000], [-32768, 17, 0]], dtype=np.int16),
    "i32": np.array([[-5, 3, 2_000_000_000], [7, -17, 0]], dtype=np.int32),
    "f32": np.array([[1.5, -2.25, 3.0], [0.1, 1e20, -0.0]], dtype=np.float32),
    "b": np.array([[True, False, True], [False, True, True]]),
    "c": np.array([[False, False, True], [True, True, False]]),
}

#: Expressions NumPy evaluates: their dtype and values must be NumPy's.
ACCEPTED = [
    "u8 * 2",
    "u8 * 2.5",
    "u8 + 250",
    "u8 - 250",
    "u8 / 2",
    "u8 & 3",
    "u8 & True",
    "u8 | i16",
    "~u8",
    "-u8",
    "u8 * f32",
    "u8 == 300",
    "u8 < 300",
    "i16 * 2",
    "i16 * -3",
    "i16 & -1",
    "~i16",
    "-i16",
    "i16 / i16",
    "i16 + f32",
    "i32 + f32",
    "i32 * 2",
    "f32 * 2",
    "f32 * 2.5",
    "f32 / 2",
    "f32 + True",
    "b & c",
    "b | c",
    "~b",
    "b + c",
    "b * c",
    "b + 1",
    "b + 1.5",
    "b + True",
    "b | 1",
    "(u8 > 100) & (i16 < 0)",
]

#: Expressions NumPy refuses, and what cubeforge's error says.
REFUSED = [
    ("f32 & f32", "'&' is not supported on float32"),
    ("f32 | 1", "'|' is not supported on float32"),
    ("~f32", "'~' (invert) is not supported on float32"),
    ("u8 & f32", "'&' is not supported on uint8 and float32"),
    ("b & 1.5", "not supported on bool and float64"),
    ("u8 + 300", "Python integer 300 out of bounds for uint8"),
    ("u8 + -1", "Python integer -1 out of bounds for uint8"),
    ("u8 & -1", "Python integer -1 out of bounds for uint8"),
    ("i16 * 40000", "Python integer 40000 out of bounds for int16"),
    ("-b", "'-' is not supported on booleans"),
    ("b - c", "'-' is not supported on two booleans"),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("numpy2") / "in.zarr"
    ds = xr.Dataset({k: (("y", "x"), v) for k, v in ARRAYS.items()}, coords={"y": [0, 1], "x": [0, 1, 2]})
    ds.to_zarr(path, zarr_format=2, consolidated=True)
    return path


def numpy_eval(expr: str):
    """``expr`` evaluated by NumPy on the arrays (our expressions are Python's syntax)."""
    with np.errstate(all="ignore"):  # 0 / 0 is NaN in both, without a warning
        return eval(expr, {}, dict(ARRAYS))  # noqa: S307


def write_recipe(tmp_path, store, assigns: dict[str, str]) -> tuple:
    """A recipe assigning ``assigns`` (from line 8) and keeping only them; its path and output."""
    out = tmp_path / "out.zarr"
    lines = "".join(f'      {k}: "{v}"\n' for k, v in assigns.items())
    text = (
        f"version: 1\ninputs:\n  i: {{url: '{store}'}}\noutput:\n  url: '{out}'\n"
        f"operations:\n  - assign:\n{lines}  - keep: [{', '.join(assigns)}]\n"
    )
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path, out


def test_dtypes_and_values_are_numpys(cubeforge, store, tmp_path):
    names = {f"r{i}": e for i, e in enumerate(ACCEPTED)}
    recipe, out = write_recipe(tmp_path, store, names)
    cubeforge.run("build", recipe, "--quiet")
    got = xr.open_zarr(out, consolidated=True)
    for name, expr in names.items():
        want = numpy_eval(expr)
        have = got[name].values
        assert have.dtype == want.dtype, f"{expr}: cubeforge {have.dtype}, numpy {want.dtype}"
        np.testing.assert_array_equal(have, want, err_msg=expr)


@pytest.mark.parametrize("expr,message", REFUSED, ids=[e for e, _ in REFUSED])
def test_refusals_are_numpys(cubeforge, store, tmp_path, expr, message):
    with pytest.raises((TypeError, OverflowError)):
        numpy_eval(expr)
    recipe, out = write_recipe(tmp_path, store, {"r": expr})
    line = cubeforge.run_failing("build", recipe)
    assert "recipe.yaml:8:" in line and "operations[0].assign.r:" in line and message in line, line
    assert not out.exists()
