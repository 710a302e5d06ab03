// What the pipe rung costs a traced MCP agent (issue 17): an agent making
// tools/call requests one after the other to a stdio MCP server without
// agentrace (bench/support/mcp-agent.mjs, mcp-echo-server.mjs), three ways,
// interleaved over rounds beside one real sidecar: plain (no SDK: the agent
// and its server untracked, paying only the host tax), traceMcp with no
// sidecar (the SDK's own cost), traceMcp with the sidecar (agent and server
// tracked: each request written into the server's stdin under its span, read
// there, answered on stdout: the pipe rung). Reported: wall time and CPU per
// round trip (agent, server, sidecar). Then the kernel's side, per round
// trip: which programs ran how often and for how long (kernel.bpf_stats_enabled,
// the difference of two runs of C and 2C calls, so start-up cancels).
// The host tax of the same exchange, for processes agentrace does not track,
// is host-tax's "JSON-RPC over stdio pipes" row.
//
//   pnpm bench --only mcp        (root)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BenchOptions, BenchResult, Goal } from './support/result.js';
import { realSidecar, type RealSidecar } from './support/real-sidecar.js';
import { median, pairedDelta, record, rotate, signed, sleep } from './support/stats.js';
import { table } from './support/markdown.js';
import { benchDir } from './support/build.js';
import { cpuMs } from './support/proc.js';
import { agentNode, agentNodeVersion } from './support/agent-node.js';
import { runJsonChild } from './support/json-child.js';
import { loadedProgramIds, profileLoop, programsLoadedSince, withBpfStats } from './support/bpf-profile.js';

type Mode = 'plain' | 'nosidecar' | 'sidecar';
const MODES: Mode[] = ['plain', 'nosidecar', 'sidecar'];
const LABEL: Record<Mode, string> = {
  plain: 'plain client (no SDK; untracked)',
  nosidecar: 'traceMcp, no sidecar',
  sidecar: 'traceMcp, real sidecar (agent and server tracked: the pipe rung)',
};
/** What a traced round trip may cost over a plain one, agent + server + sidecar CPU. */
const GOAL_CPU_US = 100;
const agentPath = path.join(benchDir, 'support', 'mcp-agent.mjs');
const serverPath = path.join(benchDir, 'support', 'mcp-echo-server.mjs');

interface AgentRun {
  wallUsPerCall: number;
  agentCpuUsPerCall: number;
  serverCpuUsPerCall: number;
}

function runAgent(mode: Mode, socketPath: string, calls: number, warmup: number): Promise<AgentRun> {
  const plan = { mode: mode === 'plain' ? 'plain' : 'traced', server: serverPath, calls, warmup };
  return runJsonChild<AgentRun>(`the MCP agent (${mode})`, agentNode, ['--no-warnings', agentPath, JSON.stringify(plan)], {
    ...process.env,
    AGENTRACE_SOCKET: socketPath,
    OTEL_SERVICE_NAME: 'bench-mcp',
  });
}

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const rounds = opts.quick ? 2 : 5;
  const calls = opts.quick ? 200 : 1000;
  const warmup = 100;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-bench-mcp-'));
  const missingSocket = path.join(dir, 'no-sidecar.sock');
  const wall = new Map<Mode, number[]>();
  const cpu = new Map<Mode, number[]>();
  const agentCpu = new Map<Mode, number[]>();
  const serverCpu = new Map<Mode, number[]>();
  const sidecarCpu = new Map<Mode, number[]>();
  const before = loadedProgramIds();
  let sidecar: RealSidecar | undefined;
  let kernel: Array<{ name: string; runs: number; ns: number }> = [];
  let spans = 0;
  const otlpFile = path.join(dir, 'spans.otlp.jsonl');
  try {
    sidecar = await realSidecar({ otlpFile });
    await sleep(1000);
    for (let round = 0; round < rounds; round++) {
      for (const mode of rotate(MODES, round)) {
        const s0 = cpuMs(sidecar.pid);
        const r = await runAgent(mode, mode === 'sidecar' ? sidecar.path : missingSocket, calls, warmup);
        // its last summaries come after the agent exits
        if (mode === 'sidecar') await sleep(1000);
        const sidecarUs = ((cpuMs(sidecar.pid) - s0) * 1000) / calls;
        record(wall, mode, r.wallUsPerCall);
        record(agentCpu, mode, r.agentCpuUsPerCall);
        record(serverCpu, mode, r.serverCpuUsPerCall);
        record(sidecarCpu, mode, sidecarUs);
        record(cpu, mode, r.agentCpuUsPerCall + r.serverCpuUsPerCall + (mode === 'sidecar' ? sidecarUs : 0));
      }
    }
    await sleep(2000);
    spans = fs.readFileSync(otlpFile, 'utf8').split('"execute_tool echo"').length - 1;
    // The kernel's part per round trip: runs of 2C calls minus runs of C calls.
    const programs = programsLoadedSince(before);
    const socket = sidecar.path;
    const [one, two] = await withBpfStats(async () => [
      await profileLoop(programs, 1, () => runAgent('sidecar', socket, calls, warmup)),
      await profileLoop(programs, 1, () => runAgent('sidecar', socket, 2 * calls, warmup)),
    ]);
    const byName = new Map<string, { runs: number; ns: number }>();
    for (const [sign, rows] of [[-1, one], [1, two]] as const) {
      for (const p of rows) {
        const e = byName.get(p.name) ?? { runs: 0, ns: 0 };
        e.runs += (sign * p.runsPerOp) / calls;
        e.ns += (sign * p.nsPerOp) / calls;
        byName.set(p.name, e);
      }
    }
    kernel = [...byName].map(([name, e]) => ({ name, ...e })).filter((e) => e.runs >= 0.05).sort((a, b) => b.ns - a.ns);
  } finally {
    await sidecar?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const m = (map: Map<Mode, number[]>, mode: Mode): number => median(map.get(mode)!);
  const rows = MODES.map((mode) => [
    LABEL[mode],
    m(wall, mode).toFixed(0),
    mode === 'plain' ? '' : signed(pairedDelta(wall.get(mode)!, wall.get('plain')!)),
    m(agentCpu, mode).toFixed(0),
    m(serverCpu, mode).toFixed(0),
    mode === 'sidecar' ? m(sidecarCpu, mode).toFixed(1) : '',
    m(cpu, mode).toFixed(0),
    mode === 'plain' ? '' : signed(pairedDelta(cpu.get(mode)!, cpu.get('plain')!)),
  ]);
  const tracedCpu = pairedDelta(cpu.get('sidecar')!, cpu.get('plain')!);
  const kernelNs = kernel.reduce((sum, e) => sum + e.ns, 0);
  const markdown = [
    `${calls} tools/call round trips one after the other (after ${warmup} untimed ones) from an MCP client (@modelcontextprotocol/sdk, StdioClientTransport) on Node ${agentNodeVersion()} to an uninstrumented stdio server whose tool answers at once; µs per round trip, medians of ${rounds} interleaved rounds, differences paired by round. CPU is /proc's, in 10 ms ticks over the timed calls (the sidecar's from the agent's start to 1 s after its exit).`,
    '',
    table(['client', 'wall, µs', 'wall vs plain', 'agent CPU, µs', 'server CPU, µs', 'sidecar CPU, µs', 'CPU in all, µs', 'CPU vs plain'], rows),
    '',
    `The sidecar exported ${spans} \`execute_tool echo\` spans over the traced rounds (${rounds} × ${calls + warmup} calls made).`,
    '',
    `The kernel's side of one traced round trip (kernel.bpf_stats_enabled; a run of ${2 * calls} calls minus a run of ${calls}): ` +
      `${kernel.map((e) => `${e.name} ${e.runs.toFixed(1)} × ${(e.ns / Math.max(e.runs, 1e-9)).toFixed(0)} ns`).join(', ')}; ${kernelNs.toFixed(0)} ns of BPF per round trip in all, ` +
      "agent and server together (the tracepoints' own dispatch not included).",
    '',
    'Reproduce: `pnpm bench --only mcp` (root).',
  ].join('\n');
  const goals: Goal[] = [
    {
      name: 'mcp: CPU of a traced round trip to an uninstrumented stdio server',
      goal: `under ${GOAL_CPU_US} µs over a plain client (agent + server + sidecar)`,
      measured: `${signed(tracedCpu)} µs (plain ${m(cpu, 'plain').toFixed(0)}, traced ${m(cpu, 'sidecar').toFixed(0)}); SDK alone ${signed(pairedDelta(cpu.get('nosidecar')!, cpu.get('plain')!))} µs`,
      met: tracedCpu < GOAL_CPU_US,
    },
  ];
  return { id: 'mcp', title: 'MCP: the pipe rung, per round trip', markdown, goals };
}
