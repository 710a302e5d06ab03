// Cost per tool call of @agentrace/sdk's traceTool next to a bare
// OpenTelemetry span (tracer.startActiveSpan + span.end around the same
// function, what an app would write by hand), side by side in one run
// (interleaved rounds, medians): a plain call, the bare span, traceTool with
// no sidecar (the socket does not exist) and traceTool connected to the real
// sidecar (started here, probes attached, this process tracked); each
// without a TracerProvider (API only: the SDK makes its own spans) and with
// a BasicTracerProvider (spans recorded, no exporter), for a sync and an
// async function (awaited one by one).
//
//   pnpm bench --only sdk        (root, for the real sidecar)
import fs from 'node:fs';
import os from 'node:os';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { configure, shutdown, traceTool } from '@agentrace/sdk';
import { state, whenReady } from '@agentrace/sdk/internal';
import type { BenchOptions, BenchResult, Goal } from './support/result.js';
import { realSidecar } from './support/real-sidecar.js';
import { grouped, median, pairedDelta, record, signed } from './support/stats.js';
import { table } from './support/markdown.js';
import { summarizeCpuProfile, type CpuProfileSummary } from './support/cpu-profile.js';

const BATCH = 200; // calls between event-loop turns, so the sidecar can drain the socket
const GOAL_NS = 2000;

type Provider = 'none' | 'basic';
type Mode = 'plain' | 'otel' | 'tool-nosidecar' | 'tool-sidecar';
const PROVIDERS: Provider[] = ['none', 'basic'];
const MODES: Mode[] = ['plain', 'otel', 'tool-nosidecar', 'tool-sidecar'];
const LABEL: Record<Mode, string> = {
  plain: 'plain call',
  otel: 'bare OTel span',
  'tool-nosidecar': 'traceTool, no sidecar',
  'tool-sidecar': 'traceTool, real sidecar',
};
const PROVIDER_LABEL: Record<Provider, string> = { none: 'none (API only)', basic: 'BasicTracerProvider' };

const work = (x: number): number => x + 1;
const workAsync = async (x: number): Promise<number> => x + 1;
// Fetched again after each provider switch (trace.disable() orphans old proxies).
let tracer = trace.getTracer('bench');
// Made in run(), once the SDK is pointed at a socket.
let toolSync: (x: number) => number = work;
let toolAsync: (x: number) => Promise<number> = workAsync;
const otelSync = (x: number): number =>
  tracer.startActiveSpan('execute_tool bench_sync', (span) => {
    try {
      return work(x);
    } finally {
      span.end();
    }
  });
const otelAsync = (x: number): Promise<number> =>
  tracer.startActiveSpan('execute_tool bench_async', async (span) => {
    try {
      return await workAsync(x);
    } finally {
      span.end();
    }
  });

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** ns per call of `calls` calls, timed in batches with an event-loop turn (not timed) between them. */
async function measure(mode: Mode, async: boolean, calls: number): Promise<number> {
  const fSync = mode === 'plain' ? work : mode === 'otel' ? otelSync : toolSync;
  const fAsync = mode === 'plain' ? workAsync : mode === 'otel' ? otelAsync : toolAsync;
  let sink = 0;
  let ns = 0n;
  for (let done = 0; done < calls; done += BATCH) {
    const t0 = process.hrtime.bigint();
    if (async) for (let i = 0; i < BATCH; i++) sink += await fAsync(i);
    else for (let i = 0; i < BATCH; i++) sink += fSync(i);
    ns += process.hrtime.bigint() - t0;
    await turn();
  }
  if (sink < 0) throw new Error('unreachable');
  return Number(ns) / calls;
}

const k = (p: Provider, m: Mode, async: boolean): string => `${p}|${m}|${async}`;

/** Runs fn under this process's V8 CPU profiler; its summary. */
async function profiled(fn: () => Promise<unknown>): Promise<CpuProfileSummary> {
  const session = new Session();
  session.connect();
  const file = path.join(os.tmpdir(), `agentrace-bench-sdk-${process.pid}.cpuprofile`);
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
    await fn();
    const { profile } = await session.post('Profiler.stop');
    fs.writeFileSync(file, JSON.stringify(profile));
    return summarizeCpuProfile(file, 10);
  } finally {
    session.disconnect();
    fs.rmSync(file, { force: true });
  }
}

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const rounds = opts.quick ? 3 : 7;
  const calls = opts.quick ? 5_000 : 20_000;
  const sidecar = await realSidecar();
  const missing = path.join(os.tmpdir(), `agentrace-bench-missing-${process.pid}.sock`);
  // The SDK warns each time it finds no sidecar at `missing`: expected here, so not printed.
  const printers = process.listeners('warning');
  process.removeAllListeners('warning');
  configure({ socketPath: missing });
  toolSync = traceTool('bench_sync', work);
  toolAsync = traceTool('bench_async', workAsync);
  // The context manager traceTool would register, for the bare spans too.
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  const results = new Map<string, number[]>();
  let dropped = 0;
  let sent = 0;
  let slowestWelcome = 0;
  let profile: CpuProfileSummary | undefined;
  try {
    // Round -1 warms up (JIT, connection) and is not recorded.
    for (let round = -1; round < rounds; round++) {
      for (const provider of PROVIDERS) {
        trace.disable();
        const basic = provider === 'basic' ? new BasicTracerProvider() : undefined;
        if (basic) trace.setGlobalTracerProvider(basic);
        tracer = trace.getTracer('bench');
        for (const mode of MODES) {
          if (mode === 'tool-nosidecar') configure({ socketPath: missing });
          if (mode === 'tool-sidecar') {
            configure({ socketPath: sidecar.path });
            const asked = Date.now();
            // The sidecar may still be working through the frames of the previous round's connection.
            if (!(await whenReady(60_000))) throw new Error(`no welcome from the sidecar at ${sidecar.path} within 60 s: ${sidecar.stderr()}`);
            slowestWelcome = Math.max(slowestWelcome, Date.now() - asked);
          }
          const before = state();
          for (const async of [false, true]) {
            const v = await measure(mode, async, calls);
            if (round >= 0) record(results, k(provider, mode, async), v);
          }
          if (mode === 'tool-sidecar' && round >= 0) {
            const after = state();
            dropped += after.framesDropped - before.framesDropped;
            sent += after.framesSent - before.framesSent;
          }
        }
        await basic?.shutdown();
      }
    }
    // Where a traceTool call's time goes: V8's profiler over more sync calls
    // (no app provider, with the sidecar), after the timed rounds.
    trace.disable();
    tracer = trace.getTracer('bench');
    configure({ socketPath: sidecar.path });
    if (!(await whenReady(60_000))) throw new Error(`no welcome from the sidecar at ${sidecar.path} within 60 s: ${sidecar.stderr()}`);
    profile = await profiled(() => measure('tool-sidecar', false, calls * 5));
  } finally {
    await shutdown();
    trace.disable();
    context.disable();
    for (const l of printers) process.on('warning', l);
    await sidecar.close();
  }

  const m = (p: Provider, mode: Mode, async: boolean): number => median(results.get(k(p, mode, async))!);
  const rows: string[][] = [];
  const extras: string[] = [];
  let worst = -Infinity;
  for (const p of PROVIDERS) {
    for (const mode of MODES) {
      const cells = [false, true].map((async) => {
        const v = m(p, mode, async);
        const base = m(p, 'otel', async);
        return mode === 'otel' || mode === 'plain' ? v.toFixed(0) : `${v.toFixed(0)} (${signed(v - base)}, x${(v / base).toFixed(2)})`;
      });
      rows.push([mode === 'plain' ? PROVIDER_LABEL[p] : '', LABEL[mode], ...cells]);
    }
    for (const async of [false, true]) {
      const extra = pairedDelta(results.get(k(p, 'tool-sidecar', async))!, results.get(k(p, 'otel', async))!);
      worst = Math.max(worst, extra);
      extras.push(`${p === 'none' ? 'no provider' : 'Basic'}, ${async ? 'async' : 'sync'} ${signed(extra)}`);
    }
  }
  const goal: Goal = {
    name: 'sdk: a traceTool call vs a bare OTel span',
    goal: `under ${GOAL_NS / 1000} µs extra (with the real sidecar)`,
    measured: `worst ${signed(worst)} ns (${extras.join('; ')})`,
    met: worst < GOAL_NS,
  };
  const markdown = [
    `ns per call of a trivial function, median of ${rounds} interleaved rounds of ${grouped(calls)} calls; in brackets, the difference and ratio of the medians to the bare OTel span. The goal uses the median of the rounds' differences.`,
    '',
    table(['app TracerProvider', 'call', 'sync fn', 'async fn'], rows),
    '',
    ...(profile
      ? [
          `Where a call's time goes: V8's CPU profile of ${grouped(calls * 5)} more sync calls with the sidecar and no app provider (${profile.busyMs.toFixed(0)} ms sampled busy), self time by function: ${profile.top.map((f) => `${f.name} ${f.ms.toFixed(0)} ms`).join(', ')}; by module: ${profile.modules.map((f) => `${f.name} ${f.ms.toFixed(0)} ms`).join(', ')}.`,
          '',
        ]
      : []),
    `With the sidecar: ${grouped(sent)} frames sent, ${grouped(dropped)} dropped by the SDK (counted) while more than its limit waited in the socket: at this rate (hundreds of thousands of calls a second) the sidecar cannot read frames as fast as they come, so the "real sidecar" rows partly measure calls whose frames were dropped. The slowest welcome on reconnecting took ${grouped(slowestWelcome)} ms.`,
    '',
    'Reproduce: `pnpm bench --only sdk` (root).',
  ].join('\n');
  return { id: 'sdk', title: 'SDK: a traceTool call vs a bare OTel span', markdown, goals: [goal] };
}
