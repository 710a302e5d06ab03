// A realistic agent loop (issue 16): a mock model in its own process that
// answers in LATENCY_MS, an agent that runs TURNS turns of TOOLS_PER_TURN
// parallel tool calls (read a file, fetch a page, run `ls`, append a note)
// with the global fetch, as users write one (bench/support/loop-agent.mjs,
// no ready()). Three ways, interleaved over rounds: plain functions, traceTool
// with no sidecar, traceTool beside the real sidecar (probes attached, file
// export). Reported: the loop's wall time, the agent's CPU, the sidecar's CPU
// (from before the agent starts to 1 s after it exits: its last summaries),
// and the sidecar's CPU per tool call; then, in one more run, where the
// sidecar's time goes (V8's CPU profiler) and what it exported.
//
//   pnpm bench --only agent-loop        (root)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { BenchOptions, BenchResult, Goal } from './support/result.js';
import { realSidecar, type RealSidecar } from './support/real-sidecar.js';
import { median, pairedRatio, record, rotate, signed, sleep } from './support/stats.js';
import { table } from './support/markdown.js';
import { benchDir } from './support/build.js';
import { readOtlpFile } from '../test/support/otlp.js';
import { summarizeCpuProfile, type CpuProfileSummary } from './support/cpu-profile.js';
import { cpuMs } from './support/proc.js';
import { agentNode, agentNodeVersion } from './support/agent-node.js';
import { runJsonChild } from './support/json-child.js';

type Mode = 'plain' | 'nosidecar' | 'sidecar';
const MODES: Mode[] = ['plain', 'nosidecar', 'sidecar'];
const LABEL: Record<Mode, string> = {
  plain: 'plain functions (no SDK)',
  nosidecar: 'traceTool, no sidecar',
  sidecar: 'traceTool, real sidecar (agent tracked)',
};
const LATENCY_MS = 300;
const TOOLS_PER_TURN = 2;
/** Goals of issue 16. */
const GOAL_SIDECAR_MS_PER_CALL = 0.3;
const GOAL_WALL = 0.005;
const GOAL_CPU = 0.05;
const agentPath = path.join(benchDir, 'support', 'loop-agent.mjs');
const modelPath = path.join(benchDir, 'support', 'mock-model.mjs');

interface LoopRun {
  ms: number;
  cpuMs: number;
  toolCalls: number;
  turns: number;
}

interface Origins {
  model: string;
  web: string;
}

async function mockModel(turns: number): Promise<{ origins: Origins; close: () => Promise<void> }> {
  const child = spawn(process.execPath, [modelPath, JSON.stringify({ latencyMs: LATENCY_MS, turns, toolsPerTurn: TOOLS_PER_TURN })], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return {
    origins: JSON.parse(line.toString()) as Origins,
    close: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function runLoop(mode: Mode, origins: Origins, dir: string, socketPath: string): Promise<LoopRun> {
  const plan = { mode: mode === 'plain' ? 'plain' : 'sdk', ...origins, dir };
  return runJsonChild<LoopRun>(`the loop agent (${mode})`, agentNode, ['--no-warnings', agentPath, JSON.stringify(plan)], {
    ...process.env,
    AGENTRACE_SOCKET: socketPath,
    OTEL_SERVICE_NAME: 'bench-agent-loop',
  });
}

/** The agent's loop beside `sidecar`, and the sidecar's CPU over it (and 1 s after, for its last summaries). */
async function tracedLoop(sidecar: RealSidecar, origins: Origins, dir: string, onStart?: () => void): Promise<{ loop: LoopRun; sidecarCpuMs: number }> {
  const cpu0 = cpuMs(sidecar.pid);
  onStart?.();
  const loop = await runLoop('sidecar', origins, dir, sidecar.path);
  await sleep(1000);
  return { loop, sidecarCpuMs: cpuMs(sidecar.pid) - cpu0 };
}

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const rounds = opts.quick ? 2 : 5;
  const turns = opts.quick ? 10 : 25;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-bench-loop-'));
  for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(dir, `doc-${i}.txt`), `${'lorem ipsum dolor sit amet '.repeat(400)}${i}\n`);
  const missingSocket = path.join(dir, 'no-sidecar.sock');
  const model = await mockModel(turns);
  const wall = new Map<Mode, number[]>();
  const agentCpu = new Map<Mode, number[]>();
  const sidecarCpu: number[] = [];
  const idleCpu: number[] = [];
  let toolCalls = 0;
  let exported: { spans: number; tools: number; byName: Map<string, number> } | undefined;
  let cpuProfile: CpuProfileSummary | undefined;
  try {
    for (let round = 0; round < rounds; round++) {
      for (const mode of rotate(MODES, round)) {
        let r: LoopRun;
        if (mode === 'sidecar') {
          const otlpFile = path.join(dir, `round-${round}.otlp.jsonl`);
          const sidecar = await realSidecar({ otlpFile });
          try {
            // What it burns doing nothing (its housekeeping), once its start is over.
            await sleep(1000);
            const idle0 = cpuMs(sidecar.pid);
            await sleep(2000);
            idleCpu.push((cpuMs(sidecar.pid) - idle0) / 2000);
            const t = await tracedLoop(sidecar, model.origins, dir);
            r = t.loop;
            sidecarCpu.push(t.sidecarCpuMs);
          } finally {
            await sidecar.close();
          }
          if (!exported) {
            const spans = readOtlpFile(otlpFile);
            const byName = new Map<string, number>();
            for (const s of spans) byName.set(s.name, (byName.get(s.name) ?? 0) + 1);
            exported = { spans: spans.length, tools: spans.filter((s) => s.attributes['gen_ai.operation.name'] === 'execute_tool').length, byName };
          }
        } else {
          r = await runLoop(mode, model.origins, dir, missingSocket);
        }
        if (r.turns !== turns) throw new Error(`the loop ran ${r.turns} turns, not ${turns}`);
        toolCalls = r.toolCalls;
        record(wall, mode, r.ms);
        record(agentCpu, mode, r.cpuMs);
      }
    }
    // One more traced run under V8's CPU profiler: where the sidecar's time goes.
    const profFile = path.join(dir, 'sidecar.cpuprofile');
    const sidecar = await realSidecar({ cpuProfile: profFile });
    try {
      await tracedLoop(sidecar, model.origins, dir, () => sidecar.startCpuProfile());
      await sidecar.stopCpuProfile();
    } finally {
      await sidecar.close();
    }
    cpuProfile = summarizeCpuProfile(profFile);
  } finally {
    await model.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const m = (mode: Mode): number => median(wall.get(mode)!);
  const c = (mode: Mode): number => median(agentCpu.get(mode)!);
  // Paired by round: a noisy minute hits every mode of its round.
  const wallRatio = pairedRatio(wall.get('sidecar')!, wall.get('plain')!);
  const sidecarMs = median(sidecarCpu);
  const totalTraced = agentCpu.get('sidecar')!.map((v, i) => v + sidecarCpu[i]!);
  const cpuRatio = pairedRatio(totalTraced, agentCpu.get('plain')!);
  const perCall = sidecarMs / toolCalls;
  const loopSeconds = m('sidecar') / 1000;
  const idlePerLoop = median(idleCpu) * (m('sidecar') + 1000);
  const rows = MODES.map((mode) => [
    LABEL[mode],
    m(mode).toFixed(0),
    mode === 'plain' ? '' : signed(((m(mode) - m('plain')) / m('plain')) * 100, 2) + '%',
    c(mode).toFixed(0),
    mode === 'plain' ? '' : signed(((c(mode) - c('plain')) / c('plain')) * 100, 0) + '%',
    mode === 'sidecar' ? sidecarMs.toFixed(0) : '',
    mode === 'sidecar' ? (c(mode) + sidecarMs).toFixed(0) : c(mode).toFixed(0),
  ]);
  const names = exported ? [...exported.byName].sort((a, b) => b[1] - a[1]).map(([n, k]) => `${n} ${k}`).join(', ') : '';
  const markdown = [
    `${turns} turns of ${TOOLS_PER_TURN} parallel tool calls (${toolCalls} calls), the mock model answering in ${LATENCY_MS} ms; the agent on Node ${agentNodeVersion()}, from its start (imports included) to its exit; medians of ${rounds} interleaved rounds.`,
    '',
    table(['agent', 'wall, ms', 'wall vs plain', 'agent CPU, ms', 'agent CPU vs plain', 'sidecar CPU, ms', 'agent + sidecar CPU, ms'], rows),
    '',
    `With the sidecar vs plain functions, paired by round: wall x${wallRatio.toFixed(4)}, CPU (agent + sidecar) x${cpuRatio.toFixed(3)}. ` +
      `The sidecar's CPU: ${sidecarMs.toFixed(0)} ms over the loop and the second after it, ${perCall.toFixed(2)} ms per tool call; ` +
      `idle, it uses ${(median(idleCpu) * 1000).toFixed(1)} ms per second (${idlePerLoop.toFixed(0)} ms of the ${sidecarMs.toFixed(0)}; 10 ms clock ticks). ` +
      (exported ? `It exported ${exported.spans} spans per loop (${exported.tools} tool spans): ${names}.` : ''),
    '',
    cpuProfile
      ? `The sidecar under V8's CPU profiler over one more loop (${cpuProfile.busyMs.toFixed(0)} ms sampled busy in ${loopSeconds.toFixed(1)} s), self time by module: ` +
        `${cpuProfile.modules.map((x) => `${x.name} ${x.ms.toFixed(0)} ms`).join(', ')}; by function: ${cpuProfile.top.map((f) => `${f.name} ${f.ms.toFixed(0)} ms`).join(', ')}.`
      : '',
    '',
    'Reproduce: `pnpm bench --only agent-loop` (root).',
  ].join('\n');
  const goals: Goal[] = [
    {
      name: 'agent loop: sidecar CPU per tool call',
      goal: `under ${GOAL_SIDECAR_MS_PER_CALL} ms`,
      measured: `${perCall.toFixed(2)} ms (${sidecarMs.toFixed(0)} ms for ${toolCalls} calls)`,
      met: perCall < GOAL_SIDECAR_MS_PER_CALL,
    },
    {
      name: 'agent loop: wall time with the sidecar vs plain functions',
      goal: `under +${GOAL_WALL * 100}%`,
      measured: `${signed((wallRatio - 1) * 100, 2)}%`,
      met: wallRatio - 1 < GOAL_WALL,
    },
    {
      name: 'agent loop: CPU (agent + sidecar) vs plain functions',
      goal: `under +${GOAL_CPU * 100}%`,
      measured: `${signed((cpuRatio - 1) * 100, 0)}%`,
      met: cpuRatio - 1 < GOAL_CPU,
    },
  ];
  return { id: 'agent-loop', title: 'A realistic agent loop: a model that thinks, tools that touch the system', markdown, goals };
}
