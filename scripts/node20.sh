#!/usr/bin/env bash
# Prints the path of a Node.js 20 binary, the oldest Node users run agents on:
# the `node` on PATH when it is Node 20, else the official build fetched once
# into .cache/node20/ (see node24.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v node >/dev/null && [ "$(node -p 'process.versions.node.split(".")[0]')" = 20 ]; then
  command -v node
else
  exec scripts/fetch-node.sh 20
fi
