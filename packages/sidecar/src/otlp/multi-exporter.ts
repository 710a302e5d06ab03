// Fans spans out to several exporters; stats are summed.
import { combinedHealth, type ExportHealth, type ExporterStats, type SpanExporter } from './exporter.js';
import type { ExportSpan } from './span.js';

export class MultiExporter implements SpanExporter {
  readonly description: string;
  readonly exporters: readonly SpanExporter[];

  constructor(exporters: readonly SpanExporter[]) {
    this.exporters = [...exporters];
    this.description = this.exporters.length === 0 ? 'no OTLP exporter' : this.exporters.map((e) => e.description).join(' + ');
  }

  export(spans: ExportSpan[]): void {
    for (const exporter of this.exporters) {
      try {
        exporter.export(spans);
      } catch {
        // exporters do not throw; this guards against one that does
      }
    }
  }

  async flush(timeoutMs?: number): Promise<void> {
    await Promise.allSettled(this.exporters.map((e) => e.flush(timeoutMs)));
  }

  async shutdown(timeoutMs?: number): Promise<void> {
    await Promise.allSettled(this.exporters.map((e) => e.shutdown(timeoutMs)));
  }

  health(): ExportHealth {
    return combinedHealth(this.exporters.map((e) => e.health()));
  }

  stats(): ExporterStats {
    const total: ExporterStats = { exported: 0, dropped: 0, failed: 0 };
    for (const exporter of this.exporters) {
      const s = exporter.stats();
      total.exported += s.exported;
      total.dropped += s.dropped;
      total.failed += s.failed;
    }
    return total;
  }
}
