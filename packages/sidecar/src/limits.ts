// The limits that bound what agents can make the sidecar hold, by name:
// `--limit NAME=VALUE` (repeatable) or AGENTRACE_LIMITS="NAME=VALUE,...".
// One table, so that the CLI's help, the parser and the memory bound the
// README states all follow the same defaults.
import { AgentraceError } from '@agentrace/protocol';
import { DEFAULT_SOCKET_LIMITS, type SocketLimits } from './socket-server.js';
import { DEFAULT_SPAN_LIMITS, type ToolSpanLimits } from './tool-spans.js';
import { DEFAULT_MAX_QUEUE_SIZE } from './otlp/exporter.js';

export interface Limits {
  socket: SocketLimits;
  spans: Omit<ToolSpanLimits, 'attributes' | 'nameLength'>;
}

interface LimitDef {
  name: string;
  what: string;
  get: (l: Limits) => number;
  set: (l: Limits, v: number) => void;
}

const S = DEFAULT_SOCKET_LIMITS;
const T = DEFAULT_SPAN_LIMITS;

export const DEFAULT_LIMITS: Limits = {
  socket: { ...S },
  spans: {
    maxInFlight: T.maxInFlight,
    maxInFlightPerUser: T.maxInFlightPerUser,
    maxInFlightPerProcess: T.maxInFlightPerProcess,
    spanAttributeChars: T.spanAttributeChars,
    attributeCharsInFlight: T.attributeCharsInFlight,
    attributeCharsInFlightPerUser: T.attributeCharsInFlightPerUser,
    maxEnded: T.maxEnded,
  },
};

export const LIMITS: readonly LimitDef[] = [
  { name: 'connections', what: 'agent connections open (one per agent thread)', get: (l) => l.socket.maxConnections, set: (l, v) => (l.socket.maxConnections = v) },
  { name: 'connections-per-user', what: '... of one user (uid)', get: (l) => l.socket.maxConnectionsPerUser, set: (l, v) => (l.socket.maxConnectionsPerUser = v) },
  { name: 'partial-frame-ms', what: 'time a begun frame has to be complete', get: (l) => l.socket.partialFrameMs, set: (l, v) => (l.socket.partialFrameMs = v) },
  { name: 'unfinished-bytes', what: 'bytes of unfinished frames, all connections', get: (l) => l.socket.maxPendingBytes, set: (l, v) => (l.socket.maxPendingBytes = v) },
  { name: 'frames-per-second-per-process', what: 'frames read from one process (a call is two)', get: (l) => l.socket.framesPerSecondPerProcess, set: (l, v) => (l.socket.framesPerSecondPerProcess = v) },
  { name: 'frames-per-second-per-user', what: '... from all of one user\'s', get: (l) => l.socket.framesPerSecondPerUser, set: (l, v) => (l.socket.framesPerSecondPerUser = v) },
  { name: 'spans-in-flight', what: 'tool spans started, not ended, all agents', get: (l) => l.spans.maxInFlight, set: (l, v) => (l.spans.maxInFlight = v) },
  { name: 'spans-in-flight-per-user', what: '... of one user', get: (l) => l.spans.maxInFlightPerUser, set: (l, v) => (l.spans.maxInFlightPerUser = v) },
  { name: 'spans-in-flight-per-process', what: '... of one process', get: (l) => l.spans.maxInFlightPerProcess, set: (l, v) => (l.spans.maxInFlightPerProcess = v) },
  { name: 'span-attribute-chars', what: 'attribute characters one span keeps', get: (l) => l.spans.spanAttributeChars, set: (l, v) => (l.spans.spanAttributeChars = v) },
  { name: 'attribute-chars-in-flight', what: '... of all spans in flight', get: (l) => l.spans.attributeCharsInFlight, set: (l, v) => (l.spans.attributeCharsInFlight = v) },
  { name: 'attribute-chars-in-flight-per-user', what: '... of one user', get: (l) => l.spans.attributeCharsInFlightPerUser, set: (l, v) => (l.spans.attributeCharsInFlightPerUser = v) },
  { name: 'ended-spans', what: 'ended spans kept for late events (<= 30 s)', get: (l) => l.spans.maxEnded, set: (l, v) => (l.spans.maxEnded = v) },
];

/** [share, what it is a share of]: a share never exceeds its whole. In order: a clamped share can be the whole of the next. */
const SHARES: ReadonlyArray<readonly [string, string]> = [
  ['connections-per-user', 'connections'],
  ['frames-per-second-per-process', 'frames-per-second-per-user'],
  ['spans-in-flight-per-user', 'spans-in-flight'],
  ['spans-in-flight-per-process', 'spans-in-flight-per-user'],
  ['attribute-chars-in-flight-per-user', 'attribute-chars-in-flight'],
];

/** A --limit (or AGENTRACE_LIMITS) that cannot be taken as given. */
export class LimitError extends AgentraceError {
  readonly code = 'AR_ERR_LIMIT';
}

const UNITS: Record<string, number> = { '': 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };

/** A count: digits, optionally with a binary suffix (Ki, Mi, Gi). */
function parseValue(raw: string, where: string): number {
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(raw.trim());
  if (!m) throw new LimitError(`${where}: ${JSON.stringify(raw)} is not a whole number (a suffix Ki, Mi or Gi may follow)`);
  const v = Number(m[1]) * UNITS[m[2] ?? '']!;
  if (!Number.isSafeInteger(v) || v < 1) throw new LimitError(`${where}: ${JSON.stringify(raw)} must be at least 1`);
  return v;
}

/** The defaults, then AGENTRACE_LIMITS, then each `--limit NAME=VALUE` in order. */
export function resolveLimits(flags: readonly string[], env: NodeJS.ProcessEnv): Limits {
  const out: Limits = { socket: { ...DEFAULT_LIMITS.socket }, spans: { ...DEFAULT_LIMITS.spans } };
  const def = (name: string): LimitDef => LIMITS.find((d) => d.name === name)!;
  /** The names given explicitly (variable or flag). */
  const given = new Set<string>();
  const apply = (item: string, where: string): void => {
    const eq = item.indexOf('=');
    const name = (eq < 0 ? item : item.slice(0, eq)).trim();
    const d = LIMITS.find((x) => x.name === name);
    if (!d) throw new LimitError(`${where}: unknown limit ${JSON.stringify(name)}; the limits are ${LIMITS.map((x) => x.name).join(', ')}`);
    if (eq < 0) throw new LimitError(`${where}: ${name} needs a value (${name}=N)`);
    d.set(out, parseValue(item.slice(eq + 1), `${where} ${name}`));
    given.add(name);
  };
  for (const item of (env.AGENTRACE_LIMITS ?? '').split(',')) if (item.trim()) apply(item, 'AGENTRACE_LIMITS');
  for (const item of flags) apply(item, '--limit');
  // A share left at its default follows a smaller total; one given explicitly must fit in it.
  for (const [part, whole] of SHARES) {
    const p = def(part).get(out);
    const w = def(whole).get(out);
    if (p <= w) continue;
    if (given.has(part)) throw new LimitError(`${part} (${p}) is more than ${whole} (${w})`);
    def(part).set(out, w);
  }
  return out;
}

/**
 * What agents can make the sidecar hold at most, in bytes, under `limits`
 * and with `exporters` span exporters, from the costs measured by
 * `pnpm bench --only sidecar-memory` (docs/BENCHMARKS.md): on top of the
 * idle daemon, and before the V8 garbage a busy daemon carries (the soak
 * benchmark shows how much).
 */
export function heldBytes(limits: Limits, exporters = 1): HeldBytes {
  const s = limits.spans;
  const held = {
    connections: limits.socket.maxConnections * BYTES_PER_CONNECTION,
    spans: s.maxInFlight * BYTES_PER_SPAN_IN_FLIGHT,
    // Strings of two-byte characters at worst.
    attributes: s.attributeCharsInFlight * 2,
    unfinished: limits.socket.maxPendingBytes,
    ended: s.maxEnded * BYTES_PER_ENDED_SPAN,
    // Spans waiting in each exporter's queue, with all the attributes one span may keep.
    exportQueues: exporters * DEFAULT_MAX_QUEUE_SIZE * (BYTES_PER_ENDED_SPAN + 2 * s.spanAttributeChars),
  };
  return { ...held, total: Object.values(held).reduce((a, b) => a + b, 0) };
}

export interface HeldBytes {
  connections: number;
  spans: number;
  attributes: number;
  unfinished: number;
  ended: number;
  exportQueues: number;
  total: number;
}

/** Measured (bench/sidecar-memory.ts), rounded up. */
export const BYTES_PER_CONNECTION = 32 * 1024;
export const BYTES_PER_SPAN_IN_FLIGHT = 4 * 1024;
/**
 * One object, in two maps: remembered for late events, watched for late I/O.
 * ~1.6 kB on Node 20, ~4.2 kB on Node 24 (the sidecar's Node since 2026-12-02).
 */
export const BYTES_PER_ENDED_SPAN = 6 * 1024;

/** 67108864 -> "64Mi". */
function withUnit(v: number): string {
  for (const u of ['Gi', 'Mi'] as const) if (v >= UNITS[u]! && v % UNITS[u]! === 0) return `${v / UNITS[u]!}${u}`;
  return String(v);
}

/** The help text's table of limits and their defaults. */
export function limitsHelp(indent: string): string {
  const width = Math.max(...LIMITS.map((d) => d.name.length));
  return LIMITS.map((d) => `${indent}${d.name.padEnd(width)} ${withUnit(d.get(DEFAULT_LIMITS)).padStart(6)}  ${d.what}`).join('\n');
}
