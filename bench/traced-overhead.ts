// Traced overhead: a realistic tool workload run by an agent process
// (bench/support/workload-agent.mjs: per task, a tool reading 4 files, two
// tool calls making an HTTP request to a server on 127.0.0.1, a tool running
// a child process), its tools wrapped with traceTool; with the real sidecar
// (probes attached, the agent tracked, spans exported) vs without one. Also
// the same functions without the SDK, and the agent untracked beside a
// running sidecar (what the probes cost a process they do not track), for
// reference. Modes interleaved over rounds in one run; each round is a fresh
// agent process, and the sidecar is started for its mode's run only, so the
// other modes run with no probe attached. Then one more traced run with
// kernel.bpf_stats_enabled says how much BPF time a task cost, by program.
// The `collector` mode is the traced one with the spans, metrics and log
// records also sent over OTLP http/protobuf (OpenTelemetry JS's exporter) to a
// collector on 127.0.0.1 that decodes nothing: what network export adds to
// the sidecar's CPU, beside the file export alone.
//
//   pnpm bench --only traced-overhead        (root)
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { BenchOptions, BenchResult } from './support/result.js';
import { realSidecar } from './support/real-sidecar.js';
import { median, record, rotate, signed } from './support/stats.js';
import { table } from './support/markdown.js';
import { benchDir } from './support/build.js';
import { readOtlpFile } from '../test/support/otlp.js';
import { loadedProgramIds, profileLoop, programsLoadedSince, withBpfStats, type ProgramProfile } from './support/bpf-profile.js';
import { summarizeCpuProfile, type CpuProfileSummary } from './support/cpu-profile.js';
import { cpuMs } from './support/proc.js';
import { agentNode, agentNodeVersion } from './support/agent-node.js';

type Mode = 'plain' | 'nosidecar' | 'untracked' | 'sidecar' | 'collector';
const MODES: Mode[] = ['plain', 'nosidecar', 'untracked', 'sidecar', 'collector'];
const LABEL: Record<Mode, string> = {
  plain: 'plain functions (no SDK)',
  nosidecar: 'traceTool, no sidecar',
  untracked: 'traceTool, sidecar running, agent not connected (untracked)',
  sidecar: 'traceTool, real sidecar (probes attached, agent tracked)',
  collector: 'the same, also exporting OTLP http/protobuf to a collector on 127.0.0.1',
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

interface AgentRun {
  /** Wall time of the timed tasks. */
  ms: number;
  /** How long ready() took (0 without a sidecar). */
  welcomeMs: number;
}

/** Runs one agent; `onReady` is called once it was welcomed, before its first task. */
async function runAgent(plan: AgentPlan, socketPath: string, onReady?: () => void): Promise<AgentRun> {
  const child = spawn(agentNode, ['--no-warnings', agentPath, JSON.stringify(plan)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, AGENTRACE_SOCKET: socketPath, OTEL_SERVICE_NAME: 'bench-workload' },
  });
  let out = '';
  let err = '';
  let welcomeMs = 0;
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    let nl: number;
    while ((nl = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      const msg = JSON.parse(line) as { ready?: boolean; welcomeMs?: number; ms?: number };
      if (msg.ready) {
        welcomeMs = msg.welcomeMs ?? 0;
        onReady?.();
      } else if (msg.ms !== undefined) result = msg.ms;
    }
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  let result: number | undefined;
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  if (code !== 0 || result === undefined) throw new Error(`the workload agent (${plan.mode}) failed (exit ${code ?? signal}): ${err.trim()}`);
  return { ms: result, welcomeMs };
}


/** The workload's server (a 2 kB answer), or with `sink` a collector that takes any body and answers 200, empty. */
async function localServer(sink = false): Promise<{ url: string; close: () => Promise<void> }> {
  const body = Buffer.alloc(2048, 'x');
  const server = http.createServer((req, res) => {
    if (sink) {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 }).end());
      return;
    }
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
  const sink = await localServer(true);
  const endpoint = new URL(sink.url).origin;
  const ms = new Map<Mode, number[]>();
  const sidecarCpu: number[] = [];
  const collectorCpu: number[] = [];
  const spans: number[] = [];
  const toolSpans: number[] = [];
  const welcomes: number[] = [];
  let profile: ProgramProfile[] = [];
  let cpuProfile: CpuProfileSummary | undefined;
  let profiledCpu = 0;
  const planFor = (mode: Mode): AgentPlan => ({
    mode: mode === 'plain' ? 'plain' : 'sdk',
    files,
    url: server.url,
    tasks,
    warmup,
    needSidecar: mode === 'sidecar' || mode === 'collector',
  });
  try {
    for (let round = 0; round < rounds; round++) {
      for (const mode of rotate(MODES, round)) {
        if (mode === 'plain' || mode === 'nosidecar') {
          record(ms, mode, (await runAgent(planFor(mode), missingSocket)).ms);
          continue;
        }
        const otlpFile = path.join(dir, `round-${round}.otlp.jsonl`);
        const sidecar = await realSidecar({ otlpFile, ...(mode === 'collector' ? { args: ['--otlp-endpoint', endpoint] } : {}) });
        try {
          let cpu0 = 0;
          const r = await runAgent(planFor(mode), mode === 'untracked' ? missingSocket : sidecar.path, () => (cpu0 = cpuMs(sidecar.pid)));
          record(ms, mode, r.ms);
          if (mode === 'sidecar') {
            sidecarCpu.push(cpuMs(sidecar.pid) - cpu0);
            welcomes.push(r.welcomeMs);
          }
          if (mode === 'collector') collectorCpu.push(cpuMs(sidecar.pid) - cpu0);
        } finally {
          await sidecar.close();
        }
        if (mode !== 'sidecar') continue;
        const exported = readOtlpFile(otlpFile);
        spans.push(exported.length);
        toolSpans.push(exported.filter((s) => s.attributes['gen_ai.operation.name'] === 'execute_tool').length);
      }
    }
    // The profile run, not timed: BPF statistics on (they add to every program
    // run) and the sidecar under V8's sampling profiler.
    const before = loadedProgramIds();
    const profFile = path.join(dir, 'sidecar.cpuprofile');
    const sidecar = await realSidecar({ cpuProfile: profFile });
    try {
      const programs = programsLoadedSince(before);
      let cpu0 = 0;
      profile = await withBpfStats(() =>
        profileLoop(programs, tasks + warmup, () =>
          runAgent(planFor('sidecar'), sidecar.path, () => {
            cpu0 = cpuMs(sidecar.pid);
            sidecar.startCpuProfile();
          }),
        ),
      );
      profiledCpu = cpuMs(sidecar.pid) - cpu0;
      await sidecar.stopCpuProfile();
    } finally {
      await sidecar.close();
    }
    cpuProfile = summarizeCpuProfile(profFile);
  } finally {
    await server.close();
    await sink.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const m = (mode: Mode): number => median(ms.get(mode)!);
  const base = m('nosidecar');
  const traced = m('sidecar');
  // Rounds are paired (same minute of a noisy machine): the ratio is the median of the rounds' ratios.
  const ratios = ms.get('sidecar')!.map((v, i) => v / ms.get('nosidecar')![i]!);
  const ratio = median(ratios);
  const perTask = (v: number): string => `${((v * 1000) / tasks).toFixed(0)} µs`;
  const rows = MODES.map((mode) => [
    LABEL[mode],
    m(mode).toFixed(1),
    perTask(m(mode)),
    mode === 'nosidecar' ? '' : `x${(m(mode) / base).toFixed(3)} (${signed(((m(mode) - base) * 1000) / tasks)} µs per task)`,
  ]);
  const all = ratios.map((r) => `x${r.toFixed(3)}`).join(', ');
  const bpfUs = profile.reduce((sum, p) => sum + p.nsPerOp, 0) / 1000;
  const top = profile
    .slice(0, 8)
    .map((p) => `${p.name} ${p.runsPerOp.toFixed(0)} × ${p.nsPerRun.toFixed(0)} ns`)
    .join(', ');
  const cpuPerTask = median(sidecarCpu) / (tasks + warmup);
  const collectorCpuPerTask = median(collectorCpu) / (tasks + warmup);
  const markdown = [
    `${tasks} tasks per agent process (after ${warmup} not timed), ${TOOLS_PER_TASK} tool calls each, the agent on Node ${agentNodeVersion()}; wall time in ms, median of ${rounds} interleaved rounds.`,
    '',
    table(['agent', 'wall time, ms', 'per task', 'vs traceTool without sidecar'], rows),
    '',
    `With the sidecar vs without, round by round: ${all}; median x${ratio.toFixed(3)}. ` +
      `The sidecar exported ${median(spans)} spans per round (${median(toolSpans)} tool spans: every call of ${tasks + warmup} tasks × ${TOOLS_PER_TASK}). ` +
      `The agent's \`ready()\` (connect, hello, welcome: not timed) took ${median(welcomes).toFixed(0)} ms (median; up to ${Math.max(...welcomes).toFixed(0)} ms).`,
    '',
    `Where the time goes: while the tasks ran, the sidecar used ${median(sidecarCpu).toFixed(0)} ms of CPU (${cpuPerTask.toFixed(2)} ms per task, on 2 cores that the agent, its children and the local server share); ` +
      `also exporting over OTLP http/protobuf to a collector, ${median(collectorCpu).toFixed(0)} ms (${collectorCpuPerTask.toFixed(2)} ms per task, x${(collectorCpuPerTask / cpuPerTask).toFixed(2)}). ` +
      `In one more traced run with \`kernel.bpf_stats_enabled=1\`, agentrace's BPF programs ran ${profile.reduce((n, p) => n + p.runsPerOp, 0).toFixed(0)} times per task for ${bpfUs.toFixed(0)} µs per task in all${top ? `; the largest (runs per task × average ns): ${top}` : ''}.`,
    '',
    cpuProfile
      ? `The sidecar under V8's CPU profiler in that run (from the agent's first task to its exit: ${cpuProfile.busyMs.toFixed(0)} ms sampled busy; ${profiledCpu.toFixed(0)} ms of CPU while the tasks ran), self time by module: ` +
        `${cpuProfile.modules.map((m) => `${m.name} ${m.ms.toFixed(0)} ms`).join(', ')}; by function: ${cpuProfile.top.map((f) => `${f.name} ${f.ms.toFixed(0)} ms`).join(', ')}.`
      : '',
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
        measured: `${signed((ratio - 1) * 100, 1)}% (medians ${perTask(traced)} vs ${perTask(base)} per task)`,
        met: ratio - 1 < GOAL,
      },
    ],
  };
}
