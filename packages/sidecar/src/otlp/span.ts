// The span model the rest of the sidecar hands to the exporters.
import type { Attributes, SpanKind, SpanStatusCode } from '@opentelemetry/api';

export interface ExportSpanEvent {
  name: string;
  /** Nanoseconds since the Unix epoch. */
  timeNs: bigint;
  attributes?: Attributes;
}

export interface ExportSpan {
  /** 32 lowercase hex digits. */
  traceId: string;
  /** 16 lowercase hex digits. */
  spanId: string;
  /** 16 lowercase hex digits; absent for a root span. */
  parentSpanId?: string;
  name: string;
  kind: SpanKind;
  /** Nanoseconds since the Unix epoch. */
  startTimeNs: bigint;
  /** Nanoseconds since the Unix epoch. */
  endTimeNs: bigint;
  attributes: Attributes;
  status: { code: SpanStatusCode; message?: string };
  events?: ExportSpanEvent[];
  /** Resource of the process the span belongs to. Spans sharing one resource object are grouped. */
  resource: Attributes;
  /** W3C trace flags; default 1 (sampled). */
  traceFlags?: number;
  /** A kernel event: the span is also exported as a log record of that `event.name`, with its tool call's span id. */
  event?: { name: string; toolSpanId: string };
}

/**
 * Whose span it is, for the exporters' fair share: the agent process (its
 * pid, which the sidecar sets from the kernel), or its resource object.
 */
export function spanOwner(span: ExportSpan): unknown {
  return span.resource['process.pid'] ?? span.resource;
}
