// Metrics into the OTLP JSON lines file: one ExportMetricsServiceRequest in
// OTLP/JSON per line, in the same file as the traces (the OTLP file exporter
// format allows both signals in one file), through the file's shared appender.
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { asError } from '@agentrace/protocol';
import { safeReporter, type ExportHealth } from './exporter.js';
import { acquireLineFile, LineFileError, type LineFileRef } from './line-file.js';
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
      const { recoveredAfter } = await this.file.appendLine(encodeMetrics(metrics, 'json'));
      if (recoveredAfter) this.report(new Error(`writing to ${this.path} again, after ${recoveredAfter} line(s) that could not be written`));
      return 'exported';
    } catch (error) {
      if (!(error instanceof LineFileError) || error.first) this.report(new Error(`metrics not written: ${asError(error).message}`));
      return 'failed';
    }
  }

  health(): ExportHealth {
    return this.file.health();
  }

  shutdown(): Promise<void> {
    return this.file.release();
  }
}
