// Metric exporters send whole collections: cumulative metrics need no queue,
// since the next collection carries everything an unsent one had. The
// MetricsReader keeps at most one export in flight per exporter.
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { ExportHealth } from './exporter.js';

/** What became of one collection. */
export type MetricExportResult = 'exported' | 'failed';

export interface MetricExporter {
  /** e.g. "OTLP file /path" or "OTLP http/protobuf http://.../v1/metrics" */
  readonly description: string;
  /** Writes or sends one collection; `signal` aborts it (timeout, shutdown). Never rejects: failures are reported and resolve 'failed'. */
  export(metrics: ResourceMetrics, signal: AbortSignal): Promise<MetricExportResult>;
  health(): ExportHealth;
  /** Releases the file or the connections; later exports fail. */
  shutdown(): Promise<void>;
}
