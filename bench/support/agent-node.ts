// The Node an agent runs on in the benchmarks: this one (the sidecar's, 24),
// or AGENTRACE_BENCH_AGENT_NODE (e.g. Node 20, as users run it).
import { execFileSync } from 'node:child_process';

export const agentNode: string = process.env.AGENTRACE_BENCH_AGENT_NODE || process.execPath;

/** Its version, for the reports. */
export function agentNodeVersion(): string {
  return agentNode === process.execPath ? process.versions.node : execFileSync(agentNode, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim();
}
