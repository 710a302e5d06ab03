// Kernel events as OpenTelemetry log records, for those who ingest audit
// facts as logs (SIEMs, Loki): one record per exported kernel span that is an
// event (an exec, a connect, a name lookup, a first open, a loss report),
// with its span's attributes, `event.name` per kind, and the trace and span
// of its tool call (also for what a child process of the tool did).
import { SpanStatusCode } from '@opentelemetry/api';
import { SeverityNumber, type ExportLogRecord } from './otlp/log-record.js';
import type { ExportSpan } from './otlp/span.js';

/** The `event.name` of a loss report (a kernel summary that counts dropped events). */
export const LOSS_EVENT = 'agentrace.events.lost';

export function logRecordsOf(spans: readonly ExportSpan[], observedTimeNs: bigint): ExportLogRecord[] {
  const out: ExportLogRecord[] = [];
  for (const span of spans) {
    if (span.event === undefined) continue;
    const warn = span.status.code === SpanStatusCode.ERROR || span.event.name === LOSS_EVENT;
    out.push({
      timeNs: span.startTimeNs,
      observedTimeNs,
      eventName: span.event.name,
      severityNumber: warn ? SeverityNumber.WARN : SeverityNumber.INFO,
      body: span.name,
      attributes: span.attributes,
      traceId: span.traceId,
      spanId: span.event.toolSpanId,
      resource: span.resource,
    });
  }
  return out;
}
