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
//                           registered; on Node 24 the kernel reads the
//                           call from V8's async context (the frame rung)
//                           and no async hook runs
//   traceTool, sidecar, hook  Node 24 only: the same with the frame rung
//                           refused (a copy of this node whose V8 postmortem
//                           constants lie, test/support/patched-node.ts), so
//                           the SDK keeps its async hook, as before the rung
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
import { nodeWithConstant } from '../test/support/patched-node.js';

const ROUNDS = Number(process.env['ROUNDS'] ?? 5);
const CALLS = Number(process.env['CALLS'] ?? 200); // tool calls per measurement
const MICRO_AWAITS = 1000;
const IMMEDIATE_AWAITS = 100;
const CONCURRENCY = [1, 8];

type Mode = 'bare' | 'hook' | 'otel' | 'tool-nosidecar' | 'tool-sidecar' | 'tool-sidecar-hook';
const MODES: Mode[] = ['bare', 'hook', 'otel', 'tool-nosidecar', 'tool-sidecar', 'tool-sidecar-hook'];
const LABEL: Record<Mode, string> = {
  bare: 'bare',
  hook: 'bare + empty async hook',
  otel: 'OTel span + ALS context',
  'tool-nosidecar': 'traceTool, no sidecar',
  'tool-sidecar': 'traceTool, sidecar',
  'tool-sidecar-hook': 'traceTool, sidecar, frame rung refused (hook)',
};
// Long calls, for the cost of an await apart from a call's: the slope
// between calls of LONG_AWAITS and of twice as many (few calls, so the
// sidecar has next to nothing to do meanwhile).
const LONG_AWAITS = 10_000;
type Body = 'micro' | 'long' | 'long2' | 'immediate';
const BODIES: Body[] = ['micro', 'immediate', 'long', 'long2'];
const TABLE_BODIES: Body[] = ['micro', 'immediate'];
const BODY_LABEL: Record<Body, string> = {
  micro: `${MICRO_AWAITS} awaits of a resolved promise`,
  long: `${LONG_AWAITS} awaits of a resolved promise`,
  long2: `${2 * LONG_AWAITS} awaits of a resolved promise`,
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
  /** How the SDK followed the calls: the kernel read them from V8's async context, or its async hook ran. */
  followedBy: 'frames' | 'hook' | 'n/a';
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
    long: { fn: micro, awaits: LONG_AWAITS, calls: (CALLS * MICRO_AWAITS) / LONG_AWAITS },
    long2: { fn: micro, awaits: 2 * LONG_AWAITS, calls: (CALLS * MICRO_AWAITS) / LONG_AWAITS / 2 },
    immediate: { fn: immediate, awaits: IMMEDIATE_AWAITS, calls: CALLS * (MICRO_AWAITS / IMMEDIATE_AWAITS) },
  };
  type Wrap = <A extends unknown[], R>(name: string, f: (...a: A) => Promise<R>) => (...a: A) => Promise<R>;
  let wrap: Wrap = (_name, f) => f;
  let stats: () => { sent: number; dropped: number } = () => ({ sent: 0, dropped: 0 });
  let done = async (): Promise<void> => {};
  let followedBy: () => ChildResult['followedBy'] = () => 'n/a';

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
  } else if (mode === 'tool-nosidecar' || mode === 'tool-sidecar' || mode === 'tool-sidecar-hook') {
    const sdk = await import('@agentrace/sdk');
    const internal = await import('@agentrace/sdk/internal');
    if (mode !== 'tool-nosidecar') {
      if (!(await internal.whenReady(3000))) throw new Error(`no welcome from the sidecar at ${sidecarPath}`);
      // the sidecar's answer about the frame rung follows the welcome
      for (let i = 0; i < 100 && !internal.kernelReadsFrames(); i++) await new Promise((r) => setTimeout(r, 10));
    }
    let hookSeen = false;
    const seeHook = (): void => void (hookSeen ||= internal.trackingEnabled());
    followedBy = () => (hookSeen ? 'hook' : internal.kernelReadsFrames() ? 'frames' : 'n/a');
    const sample = setInterval(seeHook, 5);
    sample.unref();
    wrap = ((name: string, f: (...a: never[]) => unknown) => sdk.traceTool(name, f)) as unknown as Wrap;
    stats = () => {
      const s = internal.state();
      return { sent: s.framesSent, dropped: s.framesDropped };
    };
    done = () => sdk.shutdown();
  }
  const traced: Record<Body, (k: number) => Promise<number>> = {
    micro: wrap('bench_micro', micro),
    long: wrap('bench_micro', micro),
    long2: wrap('bench_micro', micro),
    immediate: wrap('bench_immediate', immediate),
  };
  const tracedNoop = wrap('bench_noop', noop);
  const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

  const perAwait = new Map<string, number[]>();
  const perCall: number[] = [];
  const before = stats();
  const REPS = 5;
  for (let rep = -1; rep < REPS; rep++) {
    for (const body of BODIES) {
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
    followedBy: followedBy(),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

// --------------------------------------------------------------- driver --

const here = fileURLToPath(import.meta.url);


async function runChild(node: string, mode: Mode, socket: string | undefined, mislaid?: string): Promise<ChildResult> {
  const missing = path.join(os.tmpdir(), `agentrace-bench-missing-${process.pid}.sock`);
  const child = spawn(mode === 'tool-sidecar-hook' ? mislaid! : node, ['--no-warnings', '--import', 'tsx', here], {
    env: {
      ...process.env,
      BENCH_SWITCH_MODE: mode,
      AGENTRACE_SOCKET: mode === 'tool-sidecar' || mode === 'tool-sidecar-hook' ? socket! : missing,
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
  const modes = MODES.filter((m) => (m !== 'tool-sidecar' && m !== 'tool-sidecar-hook') || sidecar);
  // Node 24 with the frame rung refused: a copy of it whose V8 constants lie.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-switch-'));
  const mislaid = node24 && sidecar ? nodeWithConstant(node24, tmp, 'v8dbg_class_JSTypedArray__external_pointer__uintptr_t', (v) => v + 8) : undefined;
  const all: ChildResult[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const node of nodes) {
        for (const mode of modes) {
          if (mode === 'tool-sidecar-hook' && node !== node24) continue;
          all.push(await runChild(node, mode, sidecar?.path, mislaid));
        }
      }
    }
  } finally {
    await sidecar?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  // Each row must be what its label says.
  for (const r of all) {
    const want = r.mode === 'tool-sidecar-hook' || (r.mode === 'tool-sidecar' && Number(r.node.slice(1).split('.')[0]) < 24) ? 'hook' : r.mode === 'tool-sidecar' ? 'frames' : undefined;
    if (want && r.followedBy !== want) throw new Error(`${LABEL[r.mode]} on Node ${r.node} was followed by ${r.followedBy}, not ${want}`);
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
  for (const body of TABLE_BODIES) {
    for (const conc of CONCURRENCY) {
      const key = `${body}|${conc}`;
      for (const mode of modes) {
        const cells = versions.map((v) => {
          const x = awaitNs(v, mode, key);
          const base = awaitNs(v, 'bare', key)!;
          return x === undefined ? '– | ' : `${x.toFixed(0)} | ${mode === 'bare' ? '' : delta(x, base)}`;
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
      if (of(v, mode).length === 0) return '– | ';
      const x = median(of(v, mode).map((r) => r.perCall));
      const base = median(of(v, 'bare').map((r) => r.perCall));
      return `${x.toFixed(0)} | ${mode === 'bare' ? '' : delta(x, base)}`;
    });
    console.log(`| ${LABEL[mode]} | ${cells.join(' | ')} |`);
  }
  // What each await costs, apart from what each call costs: the slope
  // between calls of 1000 and of 2000 awaits (ns per extra await).
  const slope = (v: string, mode: Mode, conc: number): number | undefined => {
    const one = awaitNs(v, mode, `long|${conc}`);
    const two = awaitNs(v, mode, `long2|${conc}`);
    return one === undefined || two === undefined ? undefined : (two * 2 * LONG_AWAITS - one * LONG_AWAITS) / LONG_AWAITS;
  };
  console.log(`\nPer await, apart from per call (the slope from ${LONG_AWAITS} to ${2 * LONG_AWAITS} awaits a call), ns, and added to bare:\n`);
  console.log(`| calls at once | mode | ${versions.map((v) => `Node ${v}: ns/await | added`).join(' | ')} |`);
  console.log(`| --- | --- | ${versions.map(() => '--- | ---').join(' | ')} |`);
  for (const conc of CONCURRENCY) {
    for (const mode of modes) {
      const cells = versions.map((v) => {
        const x = slope(v, mode, conc);
        return x === undefined ? '– | ' : `${x.toFixed(0)} | ${mode === 'bare' ? '' : delta(x, slope(v, 'bare', conc)!)}`;
      });
      console.log(`| ${conc} | ${LABEL[mode]} | ${cells.join(' | ')} |`);
    }
  }
  // The goal: on Node 24, with the sidecar reading frames, under 20 ns per await over bare.
  for (const v of versions.filter((x) => Number(x.slice(1).split('.')[0]) >= 24 && of(x, 'tool-sidecar').length)) {
    for (const conc of CONCURRENCY) {
      const added = slope(v, 'tool-sidecar', conc)! - slope(v, 'bare', conc)!;
      const hook = slope(v, 'tool-sidecar-hook', conc);
      const was = hook === undefined ? '' : ` (with the hook instead: ${delta(hook - slope(v, 'bare', conc)!, 0)})`;
      console.log(`\nGoal, Node ${v}, ${conc} call(s) at once: traceTool with the sidecar adds ${delta(added, 0)} ns per await${was}; under 20: ${added < 20 ? 'met' : 'MISSED'}`);
    }
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
