#!/usr/bin/env bash
# The main job: set up, build, run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
pnpm -s demo "$@"
