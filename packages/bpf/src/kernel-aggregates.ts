// What the kernel aggregates per span (calls, errors, bytes, a log2 latency
// histogram per syscall kind) and counts per span (events emitted, capped,
// lost): drained from its maps in batch syscalls, kept here merged per span
// until the sidecar takes a span's summary, and dropped (counted) when no span
// claims them for AGGREGATE_TTL_MS.
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
/** Drained aggregates no span claimed for this long are dropped (and counted). */
const AGGREGATE_TTL_MS = 10 * 60_000;

export class KernelAggregates {
  /** Aggregates drained from the kernel, waiting for take(). */
  private readonly aggregates = new Map<string, { aggregates: Partial<Record<AggregateKind, SyscallAggregate>>; touchedMs: number }>();
  private lastSweepMs = 0;
  /** Dropped after AGGREGATE_TTL_MS with no span to claim them. */
  unclaimed = 0;

  constructor(private readonly obj: NativeBpfObject) {}

  /** Drains the kernel's aggregates; the spans that have some waiting for take(). */
  spans(): string[] {
    this.drainAggregates();
    return [...this.aggregates.keys()];
  }

  /**
   * Takes what the kernel aggregated and counted for `spanIds` (16 hex
   * digits each) and forgets it, so each call is reported once. Spans with
   * nothing kept are left out. The aggregate map is drained as a whole in a
   * few batch syscalls, whatever the number of spans; what belongs to other
   * spans waits here for them. The event accounting (one lookup each) is
   * taken only for the spans in `countsFor` (default: all of them); the
   * others' stays in the kernel, e.g. for spans already reported once and
   * only watched for late I/O.
   */
  take(spanIds: Iterable<string>, countsFor?: ReadonlySet<string>): Map<string, SpanKernelSummary> {
    this.drainAggregates();
    const out = new Map<string, SpanKernelSummary>();
    const C = readNumber.ar_span_counts;
    for (const spanId of spanIds) {
      const kept = this.aggregates.get(spanId);
      let events: SpanEventCounts | undefined;
      if (!countsFor || countsFor.has(spanId)) {
        const raw = parseHex(spanId, SPAN_ID_LEN, 'spanId');
        const c = this.obj.mapLookup(SPAN_COUNTS, raw);
        if (c) {
          this.obj.mapDelete(SPAN_COUNTS, raw);
          events = {
            emitted: C.emitted(c, 0),
            capped: C.capped(c, 0),
            ringbufDrops: C.ringbuf_drops(c, 0),
            mapFull: C.map_full(c, 0),
            ambiguous: C.ambiguous(c, 0),
          };
        }
      }
      if (!kept && !events) continue;
      this.aggregates.delete(spanId);
      out.set(spanId, {
        aggregates: kept?.aggregates ?? {},
        events: events ?? { emitted: 0, capped: 0, ringbufDrops: 0, mapFull: 0, ambiguous: 0 },
      });
    }
    return out;
  }

  /** Moves everything in the kernel's aggregate map here, merged per span. */
  private drainAggregates(nowMs = Date.now()): void {
    const K = layouts.ar_agg_key;
    const V = layouts.ar_agg_value;
    const { keys, values, count } = this.obj.mapDrain(SPAN_AGGS);
    for (let i = 0; i < count; i++) {
      const k = i * K.size;
      const v = i * V.size;
      const spanId = keys.toString('hex', k + K.fields.span_id, k + K.fields.span_id + SPAN_ID_LEN);
      const kind = aggKindNames[read.ar_agg_key.kind(keys, k)];
      if (kind === undefined) continue;
      let kept = this.aggregates.get(spanId);
      if (!kept) {
        kept = { aggregates: {}, touchedMs: nowMs };
        this.aggregates.set(spanId, kept);
      }
      kept.touchedMs = nowMs;
      const a = (kept.aggregates[kind] ??= { calls: 0, errors: 0, bytes: 0, latencySumNs: 0, latencyBuckets: new Array<number>(HIST_BUCKETS).fill(0) });
      const R = readNumber.ar_agg_value;
      a.calls += R.calls(values, v);
      a.errors += R.errors(values, v);
      a.bytes += R.bytes(values, v);
      a.latencySumNs += R.latency_sum_ns(values, v);
      // the histogram: an array of u64 (abi.generated.ts), one per bucket
      for (let b = 0; b < HIST_BUCKETS; b++) a.latencyBuckets[b]! += Number(values.readBigUInt64LE(v + V.fields.latency_hist + b * 8));
    }
    // Aggregates of spans nobody asks for (never announced, never ended) do
    // not stay forever.
    if (nowMs - this.lastSweepMs > AGGREGATE_TTL_MS / 10) {
      this.lastSweepMs = nowMs;
      for (const [spanId, kept] of this.aggregates) {
        if (nowMs - kept.touchedMs > AGGREGATE_TTL_MS) {
          this.aggregates.delete(spanId);
          this.unclaimed++;
        }
      }
    }
  }
}
