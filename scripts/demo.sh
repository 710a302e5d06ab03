#!/usr/bin/env bash
# The main job: set up, build, then run the example agent under
# `bin/agentrace run`, which prints each tool call with what it did in the
# kernel and writes the OTLP file whose path it prints.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec bin/agentrace run "$@" -- node examples/agent/agent.mjs
