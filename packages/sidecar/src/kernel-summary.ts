// What the kernel kept for each tool span instead of sending events: per-kind
// aggregates (calls, errors, bytes, log2 latency histogram) and the span's
// event accounting (emitted, capped, lost). It becomes one `kernel summary`
// child span per report, and the tool's metrics. The whole lifecycle of an
// aggregate is here: drained from the kernel (@agentrace/bpf reads the maps,
// keeps nothing), held until its span ends, reported a little after the end
// (so I/O in flight lands), reported again while the span is watched (for
// sockets that keep being used), dropped and counted when no span claims it.
// Every call is reported once, and every event not emitted is counted on the
// span it belonged to.
import { SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { mergeAggregates, noEvents, type AggregateKind, type Probes, type SpanAggregates, type SpanKernelSummary, type SyscallAggregate } from '@agentrace/bpf';
import { LOSS_EVENT } from './kernel-logs.js';
import { ATTRIBUTION_INCOMPLETE, PARENT_UNVERIFIED, type ToolSpan } from './tool-spans.js';
import type { ExportSpan } from './otlp/span.js';
import type { SpanSink } from './span-output.js';
import { newSpanId } from './ids.js';

/** How long after a tool ends its summary is first taken. */
export const SETTLE_MS = 250;
/** How long a tool span is watched for late I/O after it ended. */
const WATCH_MS = 30_000;
/** Drained aggregates no span claimed for this long are dropped (and counted): spans never announced, or never ended. */
const UNCLAIMED_TTL_MS = 10 * 60_000;

export const KERNEL_SUMMARY_SPAN = 'kernel summary';

/** What user space folded away for a span: repeated opens of one path. */
export interface UserSpaceCounts {
  repeatedOpens: number;
}

function trimmedBuckets(buckets: number[]): number[] {
  let end = buckets.length;
  while (end > 0 && buckets[end - 1] === 0) end--;
  return buckets.slice(0, end);
}

/**
 * Span attributes of a summary. Per kind: `agentrace.syscall.<kind>.calls`,
 * `.errors`, `.bytes` (I/O kinds), `.duration_sum_ns` and
 * `.duration_log2_ns` (bucket i counts calls of [2^i, 2^(i+1)) ns, trailing
 * empty buckets left out). Events: `agentrace.events.emitted`, `.capped`
 * and `.dropped` (always present, so that "nothing lost" is stated).
 */
export function summaryAttributes(s: SpanKernelSummary, user: UserSpaceCounts): Attributes {
  const a: Attributes = {};
  for (const [kind, agg] of Object.entries(s.aggregates) as Array<[AggregateKind, SyscallAggregate]>) {
    const p = `agentrace.syscall.${kind}`;
    a[`${p}.calls`] = agg.calls;
    a[`${p}.errors`] = agg.errors;
    if (kind === 'read' || kind === 'write' || kind === 'send' || kind === 'recv') a[`${p}.bytes`] = agg.bytes;
    a[`${p}.duration_sum_ns`] = agg.latencySumNs;
    a[`${p}.duration_log2_ns`] = trimmedBuckets(agg.latencyBuckets);
  }
  const e = s.events;
  a['agentrace.events.emitted'] = e.emitted;
  a['agentrace.events.capped'] = e.capped;
  a['agentrace.events.dropped'] = e.ringbufDrops + e.mapFull;
  if (e.ringbufDrops) a['agentrace.events.dropped.ringbuf_full'] = e.ringbufDrops;
  if (e.mapFull) a['agentrace.events.dropped.map_full'] = e.mapFull;
  if (user.repeatedOpens) a['agentrace.file.open.repeated'] = user.repeatedOpens;
  // A connection that carried several calls' requests at once: its I/O is
  // counted here, but how it splits between those calls is unknown.
  if (e.ambiguous) {
    a['agentrace.attribution.ambiguous'] = true;
    a['agentrace.io.ambiguous'] = e.ambiguous;
  }
  return a;
}

/** What user space folded per span (Attribution keeps it). */
export interface UserCounts {
  /** What was folded for a span; called once per report, resets it. */
  takeUserCounts(spanId: string): UserSpaceCounts;
  /** Spans with something folded since their last report. */
  spansWithUserCounts(): Iterable<string>;
  /** The span stopped being watched: forget what was kept for it. */
  forgetSpan(spanId: string): void;
}

/** Told every report, sampled or not (the tool metrics). */
export interface SummaryListener {
  recordSummary(tool: ToolSpan, summary: SpanKernelSummary): void;
}

export interface KernelSummariesOptions {
  kernel: Pick<Probes, 'drainSpanAggregates' | 'takeSpanEventCounts'>;
  sink: SpanSink;
  userCounts: UserCounts;
  listener?: SummaryListener;
  /** Ended spans watched for late I/O at most; the oldest go first. Default 16,384. */
  maxWatched?: number;
}

interface Watch {
  span: ToolSpan;
  endedAtMs: number;
  reports: number;
}

const DEFAULT_MAX_WATCHED = 16_384;

/**
 * Work is proportional to what happened, not to what is remembered: spans
 * wait in end order for their first report, then stay watched (in the same
 * order) only to catch late I/O, which is looked up from the aggregates
 * drained, never by scanning every watched span.
 */
export class KernelSummaries {
  /** Ended, not reported yet; in end order. */
  private readonly settling = new Map<string, Watch>();
  /** Reported once, watched for late I/O; in end order. */
  private readonly watched = new Map<string, Watch>();
  private readonly maxWatched: number;
  /** Drained from the kernel, waiting for their span's report; in first-drain order. */
  private readonly held = new Map<string, { aggregates: SpanAggregates; touchedMs: number }>();
  private lastSweepMs = 0;
  /** Aggregates dropped after UNCLAIMED_TTL_MS with no span to claim them. */
  unclaimed = 0;

  constructor(private readonly opts: KernelSummariesOptions) {
    this.maxWatched = opts.maxWatched ?? DEFAULT_MAX_WATCHED;
  }

  toolEnded(span: ToolSpan, nowMs = Date.now()): void {
    this.settling.set(span.spanId, { span, endedAtMs: nowMs, reports: 0 });
  }

  /** Reports settled spans and late I/O; with `all`, every span, and stops watching them. */
  collect(nowMs = Date.now(), all = false): void {
    const fresh: Watch[] = [];
    for (const w of this.settling.values()) {
      if (!all && nowMs - w.endedAtMs < SETTLE_MS) break;
      fresh.push(w);
    }
    for (const w of fresh) this.settling.delete(w.span.spanId);
    // Late I/O: watched spans with aggregates drained or opens folded since their last report.
    const late = new Map<string, Watch>();
    if (fresh.length > 0 || this.watched.size > 0) {
      for (const id of this.drain(nowMs)) {
        const w = this.watched.get(id);
        if (w) late.set(id, w);
      }
      for (const id of this.opts.userCounts.spansWithUserCounts()) {
        const w = this.watched.get(id);
        if (w) late.set(id, w);
      }
    }
    if (fresh.length === 0 && late.size === 0 && !(all && this.watched.size > 0)) {
      this.expire(nowMs);
      return;
    }
    const due = [...fresh, ...late.values()];
    // The event accounting (a lookup per span) is taken at the first report
    // only; a late report carries the aggregates that came after it.
    const summaries = new Map<string, SpanKernelSummary>();
    const freshIds = new Set(fresh.map((w) => w.span.spanId));
    for (const w of due) {
      const id = w.span.spanId;
      const kept = this.held.get(id);
      const events = freshIds.has(id) ? this.opts.kernel.takeSpanEventCounts(id) : undefined;
      if (!kept && !events) continue;
      this.held.delete(id);
      summaries.set(id, { aggregates: kept?.aggregates ?? {}, events: events ?? noEvents() });
    }
    const out: ExportSpan[] = [];
    for (const w of due) {
      const s = summaries.get(w.span.spanId);
      const user = this.opts.userCounts.takeUserCounts(w.span.spanId);
      // A call flagged incomplete gets a summary even with nothing seen: it says so where the agent exports the call itself.
      if (s || user.repeatedOpens || w.span.incomplete) {
        const summary = s ?? { aggregates: {}, events: noEvents() };
        this.opts.listener?.recordSummary(w.span, summary);
        if (w.span.sampled) out.push(this.span(w.span, summary, user, w.reports > 0));
        w.reports++;
      }
    }
    for (const w of fresh) this.watched.set(w.span.spanId, w);
    if (all) {
      for (const id of this.watched.keys()) this.opts.userCounts.forgetSpan(id);
      this.watched.clear();
    } else {
      this.expire(nowMs);
    }
    if (out.length) this.opts.sink.emit(out);
  }

  /** Ended spans whose first report is still to come. */
  get settlingCount(): number {
    return this.settling.size;
  }

  /** Aggregates held for spans not reported yet. */
  get heldCount(): number {
    return this.held.size;
  }

  /** Moves the kernel's aggregates here, merged per span; returns the spans that got some. */
  private drain(nowMs: number): Iterable<string> {
    const drained = this.opts.kernel.drainSpanAggregates();
    for (const [id, aggregates] of drained) {
      const kept = this.held.get(id);
      if (kept) {
        mergeAggregates(kept.aggregates, aggregates);
        kept.touchedMs = nowMs;
      } else {
        this.held.set(id, { aggregates, touchedMs: nowMs });
      }
    }
    if (nowMs - this.lastSweepMs > UNCLAIMED_TTL_MS / 10) {
      this.lastSweepMs = nowMs;
      for (const [id, kept] of this.held) {
        if (nowMs - kept.touchedMs <= UNCLAIMED_TTL_MS) continue;
        this.held.delete(id);
        this.unclaimed++;
      }
    }
    return drained.keys();
  }

  /** Lets go of spans watched long enough, and of the oldest beyond the cap. */
  private expire(nowMs: number): void {
    for (const [id, w] of this.watched) {
      if (this.watched.size <= this.maxWatched && nowMs - w.endedAtMs < WATCH_MS) break;
      this.watched.delete(id);
      this.opts.userCounts.forgetSpan(id);
    }
  }

  private span(tool: ToolSpan, s: SpanKernelSummary, user: UserSpaceCounts, late: boolean): ExportSpan {
    const attributes = summaryAttributes(s, user);
    if (late) attributes['agentrace.summary.after_end'] = true;
    if (tool.parentUnverified) attributes[PARENT_UNVERIFIED] = true;
    if (tool.incomplete) attributes[ATTRIBUTION_INCOMPLETE] = tool.incomplete;
    const lost = Number(attributes['agentrace.events.dropped'] ?? 0) > 0;
    return {
      ...(lost ? { event: { name: LOSS_EVENT, toolSpanId: tool.spanId } } : {}),
      traceId: tool.traceId,
      spanId: newSpanId(),
      parentSpanId: tool.spanId,
      name: KERNEL_SUMMARY_SPAN,
      kind: SpanKind.INTERNAL,
      startTimeNs: tool.startNs,
      endTimeNs: tool.endNs ?? tool.startNs,
      attributes,
      status: { code: SpanStatusCode.UNSET },
      resource: tool.resource,
    };
  }
}
