#!/usr/bin/env bash
# Prints the path of the Node.js 24 binary the sidecar runs on (the current
# LTS), fetched once into .cache/node24/ by fetch-node.sh.
set -euo pipefail
exec "$(dirname "$0")/fetch-node.sh" 24
