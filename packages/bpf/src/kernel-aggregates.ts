// What the kernel aggregates per span (calls, errors, bytes, a log2 latency
// histogram per syscall kind) and counts per span (events emitted, capped,
// lost), read out of its maps: the aggregate map drained whole in batch
// syscalls, a span's counts taken by lookup. Nothing is kept here: what a
// drain returns for spans not reported yet is the sidecar's to hold
// (packages/sidecar/src/kernel-summary.ts owns the whole lifecycle).
import type { NativeBpfObject } from './native.js';
import { AggKind, HIST_BUCKETS, layouts, SPAN_ID_LEN } from './layout.js';
import type { maps } from './abi.generated.js';
import { read, readNumber } from './abi.generated.js';
import { parseHex } from './hex.js';

export type AggregateKind = 'read' | 'write' | 'send' | 'recv' | 'open' | 'connect' | 'exec';

export interface SyscallAggregate {
  calls: number;
  /** Calls that failed (returned an error). */
  errors: number;
  /** Bytes transferred (read, write, send, recv). */
  bytes: number;
  latencySumNs: number;
  /** HIST_BUCKETS counts: bucket i is [2^i, 2^(i+1)) ns, the last open-ended. */
  latencyBuckets: number[];
}

/** Events of one span: emitted, and every one not emitted by reason. */
export interface SpanEventCounts {
  emitted: number;
  /** Over the span's cap: counted in the aggregates only. */
  capped: number;
  /** Lost: the ring buffer was full. */
  ringbufDrops: number;
  /** Lost: a per-span map was full. */
  mapFull: number;
  /** I/O syscalls on a connection that carried several calls' requests at once (HTTP/2, pipelining): counted, but the split between those calls is unknown. */
  ambiguous: number;
}

/** Everything the kernel kept for one span. */
export interface SpanKernelSummary {
  aggregates: Partial<Record<AggregateKind, SyscallAggregate>>;
  events: SpanEventCounts;
}

const aggKindNames: Record<number, AggregateKind> = {
  [AggKind.Read]: 'read',
  [AggKind.Write]: 'write',
  [AggKind.Send]: 'send',
  [AggKind.Recv]: 'recv',
  [AggKind.Open]: 'open',
  [AggKind.Connect]: 'connect',
  [AggKind.Exec]: 'exec',
};

const SPAN_AGGS: (typeof maps)[number] = 'ar_span_aggs';
const SPAN_COUNTS: (typeof maps)[number] = 'ar_span_counts';

/** Per-kind aggregates of one span. */
export type SpanAggregates = Partial<Record<AggregateKind, SyscallAggregate>>;

/** The event accounting of a span the kernel counted nothing for. */
export function noEvents(): SpanEventCounts {
  return { emitted: 0, capped: 0, ringbufDrops: 0, mapFull: 0, ambiguous: 0 };
}

export function emptyAggregate(): SyscallAggregate {
  return { calls: 0, errors: 0, bytes: 0, latencySumNs: 0, latencyBuckets: new Array<number>(HIST_BUCKETS).fill(0) };
}

/** Adds `from` into `into`, kind by kind. */
export function mergeAggregates(into: SpanAggregates, from: SpanAggregates): void {
  for (const [kind, b] of Object.entries(from) as Array<[AggregateKind, SyscallAggregate]>) {
    const a = (into[kind] ??= emptyAggregate());
    a.calls += b.calls;
    a.errors += b.errors;
    a.bytes += b.bytes;
    a.latencySumNs += b.latencySumNs;
    for (let i = 0; i < HIST_BUCKETS; i++) a.latencyBuckets[i]! += b.latencyBuckets[i]!;
  }
}

/**
 * Moves everything in the kernel's aggregate map out, merged per span (16
 * hex digits): a few batch syscalls, whatever the number of spans. What is
 * returned is no longer in the kernel.
 */
export function drainAggregates(obj: NativeBpfObject): Map<string, SpanAggregates> {
  const K = layouts.ar_agg_key;
  const V = layouts.ar_agg_value;
  const R = readNumber.ar_agg_value;
  const out = new Map<string, SpanAggregates>();
  const { keys, values, count } = obj.mapDrain(SPAN_AGGS);
  for (let i = 0; i < count; i++) {
    const k = i * K.size;
    const v = i * V.size;
    const kind = aggKindNames[read.ar_agg_key.kind(keys, k)];
    if (kind === undefined) continue;
    const spanId = keys.toString('hex', k + K.fields.span_id, k + K.fields.span_id + SPAN_ID_LEN);
    let span = out.get(spanId);
    if (!span) out.set(spanId, (span = {}));
    const a = (span[kind] ??= emptyAggregate());
    a.calls += R.calls(values, v);
    a.errors += R.errors(values, v);
    a.bytes += R.bytes(values, v);
    a.latencySumNs += R.latency_sum_ns(values, v);
    // the histogram: an array of u64 (abi.generated.ts), one per bucket
    for (let b = 0; b < HIST_BUCKETS; b++) a.latencyBuckets[b]! += Number(values.readBigUInt64LE(v + V.fields.latency_hist + b * 8));
  }
  return out;
}

/** Takes (reads and deletes) the kernel's event accounting of one span; undefined when it has none. */
export function takeEventCounts(obj: NativeBpfObject, spanId: string): SpanEventCounts | undefined {
  const raw = parseHex(spanId, SPAN_ID_LEN, 'spanId');
  const c = obj.mapLookup(SPAN_COUNTS, raw);
  if (!c) return undefined;
  obj.mapDelete(SPAN_COUNTS, raw);
  const C = readNumber.ar_span_counts;
  return { emitted: C.emitted(c, 0), capped: C.capped(c, 0), ringbufDrops: C.ringbuf_drops(c, 0), mapFull: C.map_full(c, 0), ambiguous: C.ambiguous(c, 0) };
}
