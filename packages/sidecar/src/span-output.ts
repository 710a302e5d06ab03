// Where every finished span goes: the span exporters, the log exporters (a
// kernel event's span is also a log record) and the caller's onSpans (the
// `run` tree). The one SpanSink the sidecar's parts emit into.
import type { ExportSpan } from './otlp/span.js';
import type { ExportHealth, ExporterStats, LogExporter, SpanExporter } from './otlp/exporter.js';
import { logRecordsOf } from './kernel-logs.js';
import type { ExportLogRecord } from './otlp/log-record.js';
import { nowNs } from './time.js';

/** What the sidecar's parts hand finished spans to (attribution, kernel summaries, tool ends). */
export interface SpanSink {
  emit(spans: ExportSpan[]): void;
}

export class SpanOutput implements SpanSink {
  constructor(
    readonly spanExporters: readonly SpanExporter[],
    readonly logExporters: readonly LogExporter[] = [],
    private readonly onSpans?: (spans: ExportSpan[]) => void,
  ) {}

  emit(spans: ExportSpan[]): void {
    for (const e of this.spanExporters) e.export(spans);
    if (this.logExporters.length > 0) {
      const records = logRecordsOf(spans, nowNs());
      if (records.length > 0) for (const e of this.logExporters) e.export(records);
    }
    this.onSpans?.(spans);
  }

  /** Log records that are no span's (a policy decision outside any call). */
  emitLogs(records: ExportLogRecord[]): void {
    for (const e of this.logExporters) e.export(records);
  }

  /** Per exporter, by its description. */
  stats(): { spans: Record<string, ExporterStats>; logs: Record<string, ExporterStats> } {
    return {
      spans: Object.fromEntries(this.spanExporters.map((e) => [e.description, e.stats()])),
      logs: Object.fromEntries(this.logExporters.map((e) => [e.description, e.stats()])),
    };
  }

  health(): ExportHealth[] {
    return [...this.spanExporters, ...this.logExporters].map((e) => e.health());
  }

  async flush(timeoutMs: number): Promise<void> {
    await Promise.all([...this.spanExporters, ...this.logExporters].map((e) => e.flush(timeoutMs)));
  }

  async shutdown(timeoutMs: number): Promise<void> {
    await Promise.all([...this.spanExporters, ...this.logExporters].map((e) => e.shutdown(timeoutMs)));
  }
}

/** The sum over exporters of one signal. */
export function sumStats(all: Iterable<ExporterStats>): ExporterStats {
  const total: ExporterStats = { exported: 0, dropped: 0, failed: 0 };
  for (const s of all) {
    total.exported += s.exported;
    total.dropped += s.dropped;
    total.failed += s.failed;
  }
  return total;
}
