#!/usr/bin/env bash
# The test command: set up, build, run every test (kernel tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The SDK runs inside users' agents on Node 22/24: the sidecar tests run
# agents on Node 24 as well, and the SDK's own tests run again on it.
NODE24=$(scripts/node24.sh)
export AGENTRACE_NODE24="$NODE24"
pnpm -s typecheck
pnpm -s test
# (the framework integrations' in-process tests too; their kernel tests run agents on both Nodes already)
"$NODE24" --import tsx --test --test-force-exit --test-timeout=600000 --test-reporter=spec --test-concurrency=1 test/sdk-*.test.ts \
  test/langchain-spans.test.ts test/langchain-unreached.test.ts test/ai-provider.test.ts test/openai-agents-provider.test.ts
