// The cost of switch tracking: @agentrace/sdk keeps the thread slot equal to
// the running tool call with an async_hooks before/after hook, on only
// while a call is in flight (packages/sdk/src/context-tracker.ts). Here a
// promise-heavy tool body runs as:
//
//   bare                    the body, agentrace not loaded
//   bare + empty hook       the body with an empty before/after hook enabled:
//                           what async_hooks itself costs (PLATFORM.md)
//   OTel span + ALS         the body inside tracer.startActiveSpan with the
//                           AsyncLocalStorage context manager: what an app
//                           that propagates OTel context pays anyway
//   traceTool, no sidecar   the socket path does not exist
//   traceTool, sidecar      the real sidecar (`agentrace sidecar`, probes
//                           attached, started here; needs root), slot
//                           registered
//
// with two bodies: 1000 `await`s of a resolved promise (microtask
// switches), and 100 `await`s of a setImmediate turn (a macrotask and its
// promise reaction each time); one call at a time, and 8 calls at once
// (every await then switches to another tool call, so the slot is
// rewritten). Reported: ns per await, and what each mode adds to bare. Then
// what a trivial async tool call costs beside its body.
//
// Each mode runs in a fresh process (async hooks, once enabled, and
// AsyncLocalStorage change how every later promise runs), under Node 20 (this
// node) and Node 24 (AGENTRACE_NODE24 or .cache/node24, fetched by
// scripts/node24.sh), against one sidecar; rounds interleave modes and
// runtimes; medians are printed side by side:
//
//   node --import tsx bench/switch-tracking.ts         (ROUNDS=5 CALLS=200; ~3 min)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createHook } from 'node:async_hooks';
import { fileURLToPath } from 'node:url';
import { realSidecar } from './support/real-sidecar.js';

const ROUNDS = Number(process.env['ROUNDS'] ?? 5);
const CALLS = Number(process.env['CALLS'] ?? 200); // tool calls per measurement
const MICRO_AWAITS = 1000;
const IMMEDIATE_AWAITS = 100;
const CONCURRENCY = [1, 8];

type Mode = 'bare' | 'hook' | 'otel' | 'tool-nosidecar' | 'tool-sidecar';
const MODES: Mode[] = ['bare', 'hook', 'otel', 'tool-nosidecar', 'tool-sidecar'];
const LABEL: Record<Mode, string> = {
  bare: 'bare',
  hook: 'bare + empty async hook',
  otel: 'OTel span + ALS context',
  'tool-nosidecar': 'traceTool, no sidecar',
  'tool-sidecar': 'traceTool, sidecar',
};
type Body = 'micro' | 'immediate';
const BODY_LABEL: Record<Body, string> = {
  micro: `${MICRO_AWAITS} awaits of a resolved promise`,
  immediate: `${IMMEDIATE_AWAITS} awaits of setImmediate`,
};

/** What one process measured for one mode. */
interface ChildResult {
  node: string;
  mode: Mode;
  /** `${body}|${concurrency}` -> ns per await (median of the process's repetitions) */
  perAwait: Record<string, number>;
  /** ns per trivial async call */
  perCall: number;
  framesSent: number;
  framesDropped: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// ---------------------------------------------------------------- child --

async function measureChild(mode: Mode): Promise<void> {
  const sidecarPath = process.env['BENCH_SIDECAR_SOCKET'];
  const resolved = Promise.resolve();
  const micro = async (k: number): Promise<number> => {
    let n = 0;
    for (let i = 0; i < k; i++) {
      await resolved;
      n++;
    }
    return n;
  };
  const immediate = async (k: number): Promise<number> => {
    let n = 0;
    for (let i = 0; i < k; i++) {
      await new Promise<void>((r) => setImmediate(r));
      n++;
    }
    return n;
  };
  const noop = async (x: number): Promise<number> => x + 1;
  // Calls per measurement: ~200,000 awaits of either kind.
  const bodies: Record<Body, { fn: (k: number) => Promise<number>; awaits: number; calls: number }> = {
    micro: { fn: micro, awaits: MICRO_AWAITS, calls: CALLS },
    immediate: { fn: immediate, awaits: IMMEDIATE_AWAITS, calls: CALLS * (MICRO_AWAITS / IMMEDIATE_AWAITS) },
  };
  type Wrap = <A extends unknown[], R>(name: string, f: (...a: A) => Promise<R>) => (...a: A) => Promise<R>;
  let wrap: Wrap = (_name, f) => f;
  let stats: () => { sent: number; dropped: number } = () => ({ sent: 0, dropped: 0 });
  let done = async (): Promise<void> => {};

  if (mode === 'hook') {
    createHook({ before() {}, after() {} }).enable();
  } else if (mode === 'otel') {
    const { context, trace } = await import('@opentelemetry/api');
    const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
    const { BasicTracerProvider } = await import('@opentelemetry/sdk-trace-base');
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(new BasicTracerProvider());
    const tracer = trace.getTracer('bench');
    wrap = (name, f) =>
      (...a) =>
        tracer.startActiveSpan(`execute_tool ${name}`, async (span) => {
          try {
            return await f(...a);
          } finally {
            span.end();
          }
        });
  } else if (mode === 'tool-nosidecar' || mode === 'tool-sidecar') {
    const sdk = await import('@agentrace/sdk');
    const internal = await import('@agentrace/sdk/internal');
    if (mode === 'tool-sidecar') {
      if (!(await internal.whenReady(3000))) throw new Error(`no welcome from the sidecar at ${sidecarPath}`);
    }
    wrap = ((name: string, f: (...a: never[]) => unknown) => sdk.traceTool(name, f)) as unknown as Wrap;
    stats = () => {
      const s = internal.state();
      return { sent: s.framesSent, dropped: s.framesDropped };
    };
    done = () => sdk.shutdown();
  }
  const traced: Record<Body, (k: number) => Promise<number>> = {
    micro: wrap('bench_micro', micro),
    immediate: wrap('bench_immediate', immediate),
  };
  const tracedNoop = wrap('bench_noop', noop);
  const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

  const perAwait = new Map<string, number[]>();
  const perCall: number[] = [];
  const before = stats();
  const REPS = 5;
  for (let rep = -1; rep < REPS; rep++) {
    for (const body of ['micro', 'immediate'] as Body[]) {
      const { awaits, calls } = bodies[body];
      for (const conc of CONCURRENCY) {
        await turn();
        const t0 = process.hrtime.bigint();
        for (let n = 0; n < calls; n += conc) {
          if (conc === 1) await traced[body](awaits);
          else await Promise.all(Array.from({ length: conc }, () => traced[body](awaits)));
        }
        const ns = Number(process.hrtime.bigint() - t0) / (calls * awaits);
        if (rep >= 0) perAwait.set(`${body}|${conc}`, [...(perAwait.get(`${body}|${conc}`) ?? []), ns]);
      }
    }
    // A trivial async tool: what one call costs beside its body. Batches of
    // 20 calls with a 1 ms pause between them (not timed), so the sidecar
    // keeps up with the frames instead of the SDK dropping them.
    let sink = 0;
    const N = 2_000;
    const BATCH = 20;
    let ns = 0n;
    for (let i = 0; i < N; i += BATCH) {
      await new Promise((r) => setTimeout(r, 1));
      const t0 = process.hrtime.bigint();
      for (let j = 0; j < BATCH; j++) sink += await tracedNoop(i + j);
      ns += process.hrtime.bigint() - t0;
    }
    if (sink < 0) console.error(sink);
    if (rep >= 0) perCall.push(Number(ns) / N);
  }
  const after = stats();
  await done();
  const out: ChildResult = {
    node: process.version,
    mode,
    perAwait: Object.fromEntries([...perAwait].map(([k, v]) => [k, median(v)])),
    perCall: median(perCall),
    framesSent: after.sent - before.sent,
    framesDropped: after.dropped - before.dropped,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

// --------------------------------------------------------------- driver --

const here = fileURLToPath(import.meta.url);


async function runChild(node: string, mode: Mode, socket: string | undefined): Promise<ChildResult> {
  const missing = path.join(os.tmpdir(), `agentrace-bench-missing-${process.pid}.sock`);
  const child = spawn(node, ['--no-warnings', '--import', 'tsx', here], {
    env: {
      ...process.env,
      BENCH_SWITCH_MODE: mode,
      AGENTRACE_SOCKET: mode === 'tool-sidecar' ? socket! : missing,
      ...(socket ? { BENCH_SIDECAR_SOCKET: socket } : {}),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`the bench (${mode}) under ${node} exited with ${code}`);
  return JSON.parse(out.trim().split('\n').pop()!) as ChildResult;
}

async function driver(): Promise<void> {
  const { bpfUnavailableReason } = await import('@agentrace/bpf');
  const noBpf = bpfUnavailableReason();
  const sidecar = noBpf === null ? await realSidecar() : undefined;
  if (!sidecar) console.error(`no real sidecar (${noBpf}): the "sidecar" rows are left out`);
  const nodes: string[] = [process.execPath];
  const cached = fileURLToPath(new URL('../.cache/node24/bin/node', import.meta.url));
  const node24 = process.env['AGENTRACE_NODE24'] ?? (fs.existsSync(cached) ? cached : undefined);
  if (node24) nodes.push(node24);
  else console.error('Node 24 not found (scripts/node24.sh fetches it): this Node only');
  const modes = MODES.filter((m) => m !== 'tool-sidecar' || sidecar);
  const all: ChildResult[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const node of nodes) for (const mode of modes) all.push(await runChild(node, mode, sidecar?.path));
    }
  } finally {
    await sidecar?.close();
  }
  const versions = [...new Set(all.map((r) => r.node))];
  const of = (node: string, mode: Mode) => all.filter((r) => r.node === node && r.mode === mode);
  const awaitNs = (node: string, mode: Mode, key: string): number | undefined => {
    const xs = of(node, mode).map((r) => r.perAwait[key]!);
    return xs.length ? median(xs) : undefined;
  };
  const delta = (v: number, base: number): string => `${v - base >= 0 ? '+' : ''}${(v - base).toFixed(0)}`;

  console.log(
    `switch tracking: ${CALLS * MICRO_AWAITS} awaits per measurement, 5 per process, each mode in its own process, ${ROUNDS} rounds, medians`,
  );
  console.log(`sidecar: ${sidecar ? 'real (agentrace sidecar, probes attached)' : `none (${noBpf})`}\n`);
  console.log(`| body | calls at once | mode | ${versions.map((v) => `Node ${v}: ns/await | added`).join(' | ')} |`);
  console.log(`| --- | --- | --- | ${versions.map(() => '--- | ---').join(' | ')} |`);
  for (const body of ['micro', 'immediate'] as Body[]) {
    for (const conc of CONCURRENCY) {
      const key = `${body}|${conc}`;
      for (const mode of modes) {
        const cells = versions.map((v) => {
          const x = awaitNs(v, mode, key)!;
          const base = awaitNs(v, 'bare', key)!;
          return `${x.toFixed(0)} | ${mode === 'bare' ? '' : delta(x, base)}`;
        });
        console.log(`| ${BODY_LABEL[body]} | ${conc} | ${LABEL[mode]} | ${cells.join(' | ')} |`);
      }
    }
  }
  console.log(`\nA trivial async tool call (ns per call, batches of 20, and added to a bare async call):\n`);
  console.log(`| mode | ${versions.map((v) => `Node ${v}: ns/call | added`).join(' | ')} |`);
  console.log(`| --- | ${versions.map(() => '--- | ---').join(' | ')} |`);
  for (const mode of modes) {
    const cells = versions.map((v) => {
      const x = median(of(v, mode).map((r) => r.perCall));
      const base = median(of(v, 'bare').map((r) => r.perCall));
      return `${x.toFixed(0)} | ${mode === 'bare' ? '' : delta(x, base)}`;
    });
    console.log(`| ${LABEL[mode]} | ${cells.join(' | ')} |`);
  }
  for (const v of versions) {
    const rs = of(v, 'tool-sidecar');
    if (rs.length) {
      const sent = rs.reduce((n, r) => n + r.framesSent, 0);
      const dropped = rs.reduce((n, r) => n + r.framesDropped, 0);
      console.log(`\nNode ${v} with the sidecar: ${sent} frames sent, ${dropped} dropped`);
    }
  }
}

const childMode = process.env['BENCH_SWITCH_MODE'] as Mode | undefined;
if (childMode) await measureChild(childMode);
else await driver();
