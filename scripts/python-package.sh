#!/usr/bin/env bash
# Build the Python package's wheel (maturin, abi3: one wheel for CPython >= 3.10) and install it
# into the test venv, so that the Python tests import `cubeforge` as users get it. Idempotent:
# cargo rebuilds only what changed, and the same wheel reinstalls in a second.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${CUBEFORGE_VENV:-$root/.venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cubeforge/target}"
wheels="$CARGO_TARGET_DIR/wheels"
rm -rf "$wheels"
cd "$root"
"$venv/bin/maturin" build --release --quiet --out "$wheels" >/dev/null
wheel="$(ls "$wheels"/cubeforge-*.whl | head -n 1)"
"$venv/bin/python" -m pip install -q --no-deps --force-reinstall "$wheel"
echo "installed $(basename "$wheel")"
