// The Nodes agents run on in the tests. The SDK runs inside users' agents, on
// their Node (20, 22, 24), so attribution is checked on the oldest and the
// newest: the Node running the tests (the sidecar's, 24 under scripts/test.sh)
// and those scripts/test.sh names in AGENTRACE_NODE20 and AGENTRACE_NODE24.
// Deduplicated by major version, oldest first.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

function majorOf(node: string): number {
  if (node === process.execPath) return Number(process.versions.node.split('.')[0]);
  const r = spawnSync(node, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' });
  const major = Number(r.stdout.trim());
  assert.ok(r.status === 0 && Number.isInteger(major), `${node} is not a working node binary: ${r.stderr || r.error?.message}`);
  return major;
}

const byMajor = new Map<number, string>();
for (const node of [process.execPath, process.env.AGENTRACE_NODE20, process.env.AGENTRACE_NODE24]) {
  if (node === undefined || node === '') continue;
  const major = majorOf(node);
  if (!byMajor.has(major)) byMajor.set(major, node);
}

/** [label, node binary] per Node the agents run on, e.g. ['node 20', '/usr/bin/node']. */
export const runtimes: Array<[string, string]> = [...byMajor.entries()].sort(([a], [b]) => a - b).map(([major, node]) => [`node ${major}`, node]);
/** Node 20 (the oldest users run), when available. */
export const node20: string | undefined = byMajor.get(20);
/** Node 24 (the current LTS), when available. */
export const node24: string | undefined = byMajor.get(24);

type Skippable = { skip: (why: string) => void };

function requireNode(t: Skippable, major: 20 | 24, node: string | undefined): void {
  if (node !== undefined) return;
  const why = `no Node ${major} among the agents' runtimes (${runtimes.map(([l]) => l).join(', ')}): scripts/test.sh sets AGENTRACE_NODE${major}`;
  if (process.env.CI === 'true') assert.fail(why);
  t.skip(why);
}

/** Fails in CI (skips elsewhere) when Node 24 is missing. */
export function requireNode24(t: Skippable): void {
  requireNode(t, 24, node24);
}

/** Fails in CI (skips elsewhere) when Node 20 or Node 24 is missing. */
export function requireBothNodes(t: Skippable): void {
  requireNode(t, 20, node20);
  requireNode(t, 24, node24);
}
