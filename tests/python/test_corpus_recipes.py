"""Corpus, category "recipes": broken, hostile or careless recipes given to ``cubeforge build``.

Each case writes one recipe over a small example store and checks, through
:func:`corpus.refused`, that the build is refused with one line naming what is wrong and where
(the recipe's line, where there is one), that the input is untouched and that nothing at the
destination looks like a finished cube. The recipes start with the same six lines, so the first
operation is on line 7.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from corpus import refused

#: Lines before the first operation: version, inputs (2), output (2), operations.
HEADER_LINES = 6
FIRST_OP = HEADER_LINES + 1
DEEP = 100_000


@pytest.fixture(scope="module")
def store(cubeforge, tmp_path_factory) -> Path:
    """A small example input (20 days), shared by the module's cases."""
    out = tmp_path_factory.mktemp("corpus-recipes") / "io.zarr"
    cubeforge.example_io(out, 20)
    return out


def recipe(store: Path, out: Path, operations: str) -> str:
    """A recipe over ``store`` into ``out`` with ``operations`` (YAML list items, from line 7)."""
    return (
        "version: 1\n"
        "inputs:\n"
        f"  io: {{url: '{store}'}}\n"
        "output:\n"
        f"  url: '{out}'\n"
        "operations:\n"
        f"{operations}"
    )


def op(line: str) -> str:
    """One operation, as the first list item."""
    return f"  - {line}\n"


def chain(n: int) -> str:
    """``x = sst``, then ``n`` times ``x = x + 1``, each an operation of its own."""
    return op("assign: {x: sst}") + op('assign: {x: "x + 1"}') * n


#: (case id, operations or a whole recipe (callable of store and out), expected fragments).
#: ``{L}`` in a fragment stands for ``recipe.yaml:<line>``.
CASES = [
    # Broken YAML.
    ("unclosed-flow", op("keep: [sst, so"), ["recipe.yaml:", "flow"]),
    ("tab-indent", "  - assign:\n\t  x: sst\n", ["recipe.yaml:8", "tab"]),
    ("bad-escape", op('assign: {x: "\\q"}'), ["recipe.yaml:7", "escape"]),
    ("not-a-mapping", lambda s, o: "- a\n- b\n", ["recipe.yaml:1", "expected struct"]),
    ("empty-file", lambda s, o: "", ["recipe.yaml:", "missing field"]),
    ("deep-yaml", lambda s, o: "version: 1\nx: " + "[" * DEEP + "]" * DEEP + "\n", ["recipe.yaml:2", "nested deeper than 128 levels"]),
    # Keys given twice.
    ("duplicate-top-key", lambda s, o: recipe(s, o, op("keep: [sst]")) + "version: 1\n", ["recipe.yaml:8", "duplicate key", "version", "first is at line 1"]),
    ("duplicate-assign-key", "  - assign:\n      x: sst\n      x: so\n", ["recipe.yaml:9", "duplicate key", '"x"', "line 8"]),
    ("duplicate-flow-key", op("assign: {x: sst, x: so}"), ["recipe.yaml:7", "duplicate key", '"x"']),
    ("duplicate-output-key", lambda s, o: recipe(s, o, op("keep: [sst]")).replace("output:\n", "output:\n  zarr_format: 2\n  zarr_format: 3\n"), ["recipe.yaml:6", "duplicate key", "zarr_format"]),
    # Unknown or wrong fields.
    ("unknown-top-field", lambda s, o: recipe(s, o, op("keep: [sst]")) + "colour: red\n", ["recipe.yaml:8", "colour"]),
    ("unknown-operation", op("renam: {sst: t}"), ["recipe.yaml:7", "renam"]),
    ("unknown-op-field", op("drop_all_nan: {variable: sst, dim: time, how: all}"), ["recipe.yaml:7", "how"]),
    ("wrong-type", op("keep: 5"), ["recipe.yaml:7", "keep"]),
    ("version-2", lambda s, o: recipe(s, o, op("keep: [sst]")).replace("version: 1", "version: 2"), ["recipe.yaml:1", "version 2"]),
    ("no-inputs", lambda s, o: recipe(s, o, op("keep: [sst]")).replace(f"  io: {{url: '{s}'}}\n", "").replace("inputs:\n", "inputs: {}\n"), ["recipe.yaml:2", "at least one input"]),
    ("zarr-format-4", lambda s, o: recipe(s, o, op("keep: [sst]")).replace("output:\n", "output:\n  zarr_format: 4\n"), ["recipe.yaml:5", "must be 2 or 3"]),
    ("chunk-zero", lambda s, o: recipe(s, o, op("keep: [sst]")).replace("output:\n", "output:\n  chunks: {time: 0}\n"), ["recipe.yaml:5", "output.chunks.time"]),
    ("empty-keep", op("keep: []"), ["recipe.yaml:7", "at least one variable"]),
    ("unknown-dtype", op("astype: {sst: float128}"), ["recipe.yaml:7", "float128"]),
    # Output: none in the recipe and none given.
    ("no-output", lambda s, o: recipe(s, o, op("keep: [sst]")).replace(f"output:\n  url: '{o}'\n", ""), ["recipe.yaml:1", "no output", "--output"]),
    # Bad expressions.
    ("unclosed-call", op('assign: {x: "log(sst"}'), ["recipe.yaml:7", "operations[0].assign.x", "expected ')'"]),
    ("bad-character", op('assign: {x: "sst $ 2"}'), ["recipe.yaml:7", "'$'"]),
    ("unclosed-backquote", op('assign: {x: "`sst + 1"}'), ["recipe.yaml:7", "unclosed"]),
    ("int-literal-too-large", op('assign: {x: "sst + 99999999999999999999"}'), ["recipe.yaml:7", "out of range"]),
    ("block-scalar-line", "  - assign:\n      x: sst\n      y: |\n        sst +\n        log(so\n", ["recipe.yaml:11", "assign.y"]),
    ("quoted-multiline-line", '  - assign:\n      x: sst\n      y: "sst +\n        log(so"\n', ["recipe.yaml:9", "assign.y"]),
    ("unknown-function", op('assign: {x: "foo(sst)"}'), ["recipe.yaml:7", "unknown function 'foo'"]),
    ("wrong-arity", op('assign: {x: "mean(sst)"}'), ["recipe.yaml:7", "mean(x, 'dim')"]),
    # Deep nesting.
    ("deep-parens", op(f'assign: {{x: "{"(" * DEEP}sst{")" * DEEP}"}}'), ["recipe.yaml:7", "nested deeper than 200 levels"]),
    ("deep-negation", op(f'assign: {{x: "{"-" * DEEP}sst"}}'), ["recipe.yaml:7", "nested deeper than 200 levels"]),
    ("deep-calls", op(f'assign: {{x: "{"abs(" * DEEP}sst{")" * DEEP}"}}'), ["recipe.yaml:7", "nested deeper than 200 levels"]),
    ("long-sum", op(f'assign: {{x: "{" + ".join(["sst"] * DEEP)}"}}'), ["recipe.yaml:7", "nested deeper than 200 levels"]),
    ("chain-of-assigns", chain(10_000), [f"recipe.yaml:{FIRST_OP + 1000}", "operations[1000].assign.x", "deeper than 1000 levels"]),
    ("doubling-assigns", op("assign: {x: sst}") + op('assign: {x: "x + x"}') * 40, [f"recipe.yaml:{FIRST_OP + 16}", "more than 100000 operations"]),
    # Names that would not be one array of the cube.
    ("name-slash", op('assign: {"a/b": sst}'), ["recipe.yaml:7", "invalid variable name", "a/b"]),
    ("name-zarray", op("assign: {.zarray: sst}"), ["recipe.yaml:7", "invalid variable name", ".zarray"]),
    ("name-zarr-json", op("assign: {zarr.json: sst}"), ["recipe.yaml:7", "zarr.json", "metadata key"]),
    ("name-empty", op('assign: {"": sst}'), ["recipe.yaml:7", "invalid variable name", "empty"]),
    ("name-dotdot", op('assign: {"..": sst}'), ["recipe.yaml:7", "invalid variable name", "'..'"]),
    ("name-control", op('assign: {"a\\x01b": sst}'), ["recipe.yaml:7", "control character"]),
    ("rename-target-slash", op('rename: {sst: "x/y"}'), ["recipe.yaml:7", "operations[0].rename", "x/y"]),
    ("season-name-zattrs", op("season: {sin: .zattrs, cos: c, like: sst}"), ["recipe.yaml:7", ".zattrs"]),
    # NumPy 2: bitwise operators need booleans or integers; Python ints must fit the array.
    ("float-and", op('assign: {x: "sst & so"}'), ["recipe.yaml:7", "'&' is not supported on float32 and float32"]),
    ("float-or-literal", op('assign: {x: "sst | 1"}'), ["recipe.yaml:7", "'|' is not supported on float32"]),
    ("float-invert", op('assign: {x: "~sst"}'), ["recipe.yaml:7", "'~' (invert) is not supported on float32"]),
    ("bool-and-float-literal", op('assign: {x: "(sst > 0) & 1.5"}'), ["recipe.yaml:7", "not supported on bool and float64"]),
    ("bool-negation", op('assign: {x: "-(sst > 0)"}'), ["recipe.yaml:7", "'-' is not supported on booleans"]),
    ("int-literal-overflow", op('assign: {x: "`CHL_cmes-land` + 300"}'), ["recipe.yaml:7", "Python integer 300 out of bounds for uint8"]),
    ("negative-literal-unsigned", op('assign: {x: "`CHL_cmes-land` * -1"}'), ["recipe.yaml:7", "Python integer -1 out of bounds for uint8"]),
    # Variables and dimensions that are not there.
    ("missing-variable-expr", op('assign: {x: "nope + 1"}'), ["recipe.yaml:7", "variable 'nope' not found"]),
    ("missing-variable-keep", op("keep: [sst, nope]"), ["recipe.yaml:7", "'nope' not found"]),
    ("missing-mask-variable", op("mask: {where: nope, variables: [sst]}"), ["recipe.yaml:7", "'nope' not found"]),
    ("wrong-reduction-dim", op("assign: {x: \"mean(sst, 'depth')\"}"), ["recipe.yaml:7", "dimension 'depth'"]),
    ("sel-unknown-dim", op("sel: {depth: {start: 0, stop: 10}}"), ["recipe.yaml:7", "depth"]),
    ("drop-all-nan-unknown-dim", op("drop_all_nan: {variable: sst, dim: depth}"), ["recipe.yaml:7", "depth"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_recipe_is_refused(cubeforge, store, tmp_path, case):
    _name, body, expect = case
    out = tmp_path / "out.zarr"
    text = body(store, out) if callable(body) else recipe(store, out, body)
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    # A line number is followed by ':', so that line 7 does not match line 70.
    expect = [f"{e}:" if re.fullmatch(r"recipe\.yaml:\d+", e) else e for e in expect]
    refused(cubeforge.binary, ["build", path], expect=expect, keep=[store], dest=[out])
    assert not out.exists(), f"{out} was created for a refused recipe"
