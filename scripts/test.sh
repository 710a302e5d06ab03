#!/usr/bin/env bash
# The test command: set up, build, run every test (kernel tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
pnpm -s typecheck
pnpm -s test
