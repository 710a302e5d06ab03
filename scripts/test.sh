#!/usr/bin/env bash
# The test command: set up, build, run every test (kernel tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The sidecar runs on the current LTS (Node 24, fetched by the set-up), and so
# do the tests that start it. The SDK runs inside users' agents, on Node 20,
# 22 or 24: the tests run their agents on Node 20 and Node 24, and the SDK's
# own tests run again on Node 20.
NODE24=$(scripts/node24.sh)
NODE20=$(scripts/node20.sh)
export AGENTRACE_NODE24="$NODE24" AGENTRACE_NODE20="$NODE20"
pnpm -s typecheck
pnpm -s test
"$NODE20" --import tsx --test --test-force-exit --test-timeout=600000 --test-reporter=spec --test-concurrency=1 packages/protocol/test/*.test.ts packages/sdk/test/*.test.ts test/sdk-*.test.ts \
  test/langchain-spans.test.ts test/langchain-unreached.test.ts test/ai-provider.test.ts test/openai-agents-provider.test.ts
