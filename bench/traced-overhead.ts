// Traced overhead: a realistic tool workload run by an agent process
// (bench/support/workload-agent.mjs: per task, a tool reading 4 files, two
// tool calls making an HTTP request to a server on 127.0.0.1, a tool running
// a child process), its tools wrapped with traceTool; with the real sidecar
// (probes attached, the agent tracked, spans exported) vs without one. Also
// the same functions without the SDK, for reference. Modes interleaved
// over rounds in one run; each round is a fresh agent process, and the
// sidecar is started for its round only, so the other rounds run with no
// probe attached.
//
//   pnpm bench --only traced-overhead        (root)
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { execFileSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import type { BenchOptions, BenchResult } from './support/result.js';
import { realSidecar } from './support/real-sidecar.js';
import { median, record, rotate, signed } from './support/stats.js';
import { table } from './support/markdown.js';
import { benchDir } from './support/build.js';
import { readOtlpFile } from '../test/support/otlp.js';

type Mode = 'plain' | 'nosidecar' | 'sidecar';
const MODES: Mode[] = ['plain', 'nosidecar', 'sidecar'];
const LABEL: Record<Mode, string> = {
  plain: 'plain functions (no SDK)',
  nosidecar: 'traceTool, no sidecar',
  sidecar: 'traceTool, real sidecar (probes attached, agent tracked)',
};
const TOOLS_PER_TASK = 4;
const GOAL = 0.02;
const agentPath = path.join(benchDir, 'support', 'workload-agent.mjs');

interface AgentPlan {
  mode: 'plain' | 'sdk';
  files: string[];
  url: string;
  tasks: number;
  warmup: number;
  needSidecar: boolean;
}

async function runAgent(plan: AgentPlan, socketPath: string): Promise<number> {
  const child = spawn(process.execPath, ['--no-warnings', agentPath, JSON.stringify(plan)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, AGENTRACE_SOCKET: socketPath, OTEL_SERVICE_NAME: 'bench-workload' },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  const last = out.trim().split('\n').at(-1) ?? '';
  if (code !== 0) throw new Error(`the workload agent (${plan.mode}) failed (exit ${code ?? signal}): ${err.trim()}`);
  return (JSON.parse(last) as { ms: number }).ms;
}

const clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU time (user + system) process `pid` used so far, ms. */
function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of proc(5) (utime, stime) are 12 and 13 after the name.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
}

async function localServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const body = Buffer.alloc(2048, 'x');
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/search`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const rounds = opts.quick ? 3 : 7;
  const tasks = opts.quick ? 30 : 150;
  const warmup = opts.quick ? 5 : 20;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-bench-workload-'));
  const files = [0, 1, 2, 3].map((i) => {
    const p = path.join(dir, `doc-${i}.txt`);
    fs.writeFileSync(p, `${'lorem ipsum dolor sit amet '.repeat(1200)}${i}\n`);
    return p;
  });
  const missingSocket = path.join(dir, 'no-sidecar.sock');
  const server = await localServer();
  const ms = new Map<Mode, number[]>();
  const sidecarCpu: number[] = [];
  const spans: number[] = [];
  const toolSpans: number[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      for (const mode of rotate(MODES, round)) {
        const plan: AgentPlan = { mode: mode === 'plain' ? 'plain' : 'sdk', files, url: server.url, tasks, warmup, needSidecar: mode === 'sidecar' };
        if (mode !== 'sidecar') {
          record(ms, mode, await runAgent(plan, missingSocket));
          continue;
        }
        const otlpFile = path.join(dir, `round-${round}.otlp.jsonl`);
        const sidecar = await realSidecar({ otlpFile });
        try {
          const cpu0 = cpuMs(sidecar.pid);
          record(ms, mode, await runAgent(plan, sidecar.path));
          sidecarCpu.push(cpuMs(sidecar.pid) - cpu0);
        } finally {
          await sidecar.close();
        }
        const exported = readOtlpFile(otlpFile);
        spans.push(exported.length);
        toolSpans.push(exported.filter((s) => s.attributes['gen_ai.operation.name'] === 'execute_tool').length);
      }
    }
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const m = (mode: Mode): number => median(ms.get(mode)!);
  const base = m('nosidecar');
  const traced = m('sidecar');
  const ratio = traced / base;
  const perTask = (v: number): string => `${((v * 1000) / tasks).toFixed(0)} µs`;
  const rows = MODES.map((mode) => [
    LABEL[mode],
    m(mode).toFixed(1),
    perTask(m(mode)),
    mode === 'nosidecar' ? '' : `x${(m(mode) / base).toFixed(3)} (${signed(((m(mode) - base) * 1000) / tasks)} µs per task)`,
  ]);
  const all = ms.get('sidecar')!.map((v) => v.toFixed(0)).join(', ');
  const markdown = [
    `${tasks} tasks per agent process (after ${warmup} not timed), ${TOOLS_PER_TASK} tool calls each; wall time in ms, median of ${rounds} interleaved rounds.`,
    '',
    table(['agent', 'wall time, ms', 'per task', 'vs traceTool without sidecar'], rows),
    '',
    `With the sidecar: ${all} ms in the ${rounds} rounds; the sidecar used ${median(sidecarCpu).toFixed(0)} ms of CPU during the timed and warm-up tasks (median), and exported ${median(spans)} spans per round (${median(toolSpans)} tool spans: every call of ${tasks + warmup} tasks × ${TOOLS_PER_TASK}).`,
    '',
    'Reproduce: `pnpm bench --only traced-overhead` (root).',
  ].join('\n');
  return {
    id: 'traced-overhead',
    title: 'Traced overhead: a tool workload with and without the sidecar',
    markdown,
    goals: [
      {
        name: 'traced overhead: wall time of a tool workload',
        goal: `under ${GOAL * 100}% with the sidecar`,
        measured: `${signed((ratio - 1) * 100, 1)}% (${signed(((traced - base) * 1000) / tasks)} µs per task of ${perTask(base)})`,
        met: ratio - 1 < GOAL,
      },
    ],
  };
}
