// Descriptor I/O the kernel counted under each tool span (reads, writes,
// sends, receives, on descriptors opened under it) becomes one `io` child
// span per report. Counts are taken a little after the tool ends, so I/O in
// flight lands, and again while the span is remembered, for sockets that
// keep being used: every byte is reported once, none silently dropped.
import { SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import type { IoTotals, Probes } from '@agentrace/bpf';
import type { ToolSpan } from './tool-spans.js';
import type { ExportSpan } from './otlp/span.js';
import { newSpanId } from './ids.js';

/** How long after a tool ends its counts are first taken. */
const SETTLE_MS = 250;
/** How long a tool span is watched for late I/O after it ended. */
const WATCH_MS = 30_000;

export function ioAttributes(t: IoTotals): Attributes {
  const a: Attributes = {};
  for (const [kind, c] of Object.entries(t) as Array<[keyof IoTotals, { calls: number; bytes: number }]>) {
    if (c.calls === 0) continue;
    a[`agentrace.io.${kind}.calls`] = c.calls;
    a[`agentrace.io.${kind}.bytes`] = c.bytes;
  }
  return a;
}

export class IoSummaries {
  private readonly watched = new Map<string, { span: ToolSpan; endedAtMs: number; reports: number }>();

  constructor(
    private readonly probes: Probes,
    private readonly emit: (spans: ExportSpan[]) => void,
  ) {}

  toolEnded(span: ToolSpan, nowMs = Date.now()): void {
    if (span.sampled) this.watched.set(span.spanId, { span, endedAtMs: nowMs, reports: 0 });
  }

  /** Reports what was counted for settled spans; with `all`, for every span, and stops watching. */
  collect(nowMs = Date.now(), all = false): void {
    const due = [...this.watched.values()].filter((w) => all || nowMs - w.endedAtMs >= SETTLE_MS);
    if (due.length === 0) return;
    const totals = this.probes.takeIoTotals(due.map((w) => w.span.spanId));
    const out: ExportSpan[] = [];
    for (const w of due) {
      const t = totals.get(w.span.spanId);
      if (t) {
        out.push(this.summary(w.span, t, w.reports > 0));
        w.reports++;
      }
      if (all || nowMs - w.endedAtMs >= WATCH_MS) this.watched.delete(w.span.spanId);
    }
    if (out.length) this.emit(out);
  }

  private summary(tool: ToolSpan, t: IoTotals, late: boolean): ExportSpan {
    const attributes = ioAttributes(t);
    if (late) attributes['agentrace.io.after_end'] = true;
    return {
      traceId: tool.traceId,
      spanId: newSpanId(),
      parentSpanId: tool.spanId,
      name: 'io',
      kind: SpanKind.INTERNAL,
      startTimeNs: tool.startNs,
      endTimeNs: tool.endNs ?? tool.startNs,
      attributes,
      status: { code: SpanStatusCode.UNSET },
      resource: tool.resource,
    };
  }
}
