// Metrics into the OTLP JSON lines file: one ExportMetricsServiceRequest in
// OTLP/JSON per line, in the same file as the traces (the OTLP file exporter
// format allows both signals in one file), through the file's shared appender.
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { asError } from './batch-queue.js';
import { safeReporter } from './exporter.js';
import { acquireLineFile, type LineFileRef } from './line-file.js';
import type { MetricExporter, MetricExportResult } from './metric-exporter.js';
import { encodeMetrics } from './metric-serializer.js';

export interface FileMetricExporterOptions {
  /** File to append to; relative paths resolve against the working directory. */
  path: string;
  /** Told about every failure; default: the OpenTelemetry diag logger (warn). */
  onError?: (error: Error) => void;
}

export class OtlpFileMetricExporter implements MetricExporter {
  readonly description: string;
  readonly path: string;
  private readonly file: LineFileRef;
  private readonly report: (error: Error) => void;

  constructor(options: FileMetricExporterOptions) {
    this.file = acquireLineFile(options.path);
    this.path = this.file.path;
    this.description = `OTLP file ${this.path}`;
    this.report = safeReporter(options.onError);
  }

  async export(metrics: ResourceMetrics, signal: AbortSignal): Promise<MetricExportResult> {
    if (signal.aborted) return 'failed';
    try {
      await this.file.appendLine(encodeMetrics(metrics, 'json'));
      return 'exported';
    } catch (error) {
      this.report(new Error(`metrics not written to ${this.path}: ${asError(error).message}`));
      return 'failed';
    }
  }

  retries(): number {
    return 0;
  }

  shutdown(): Promise<void> {
    return this.file.release();
  }
}
