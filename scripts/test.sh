#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust unit and integration tests (including every Zarr
# array of the shared real-data corpus), then the Python tests that check cubeforge's output and
# reports with the reference tools (xarray, zarr-python). Sets up what it needs, idempotently.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# Keep build products outside the clone so fresh clones (CI) reuse them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cubeforge/target}"
if [ "${CI:-}" = "true" ]; then export CARGO_TERM_COLOR=never; fi

step() { printf '\n==> %s\n' "$*"; }

step "system packages"
./scripts/setup-system.sh
step "python environment (.venv)"
./scripts/setup-python.sh
step "cloud-storage emulators (Azurite)"
./scripts/emulators.sh
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --release --workspace --all-targets -- -D warnings
step "cargo test"
cargo test --release --workspace
step "python package (wheel, installed into .venv)"
./scripts/python-package.sh
step "python tests"
CUBEFORGE_BIN="$CARGO_TARGET_DIR/release/cubeforge" "$root/.venv/bin/python" -m pytest -q tests/python
