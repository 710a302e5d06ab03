// Metrics to a collector (http/protobuf, http/json or grpc) through
// OpenTelemetry JS's own OTLP metric exporter (see otel-transport.ts).
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { safeReporter, type ExportHealth } from './exporter.js';
import type { MetricExporter, MetricExportResult } from './metric-exporter.js';
import { FailureState } from './failure-state.js';
import { OtlpTransport } from './otel-transport.js';
import { DEFAULT_EXPORT_TIMEOUT_MS } from './network-exporter.js';
import type { OtlpCompression, OtlpProtocol } from './protocol.js';

export interface NetworkMetricExporterOptions {
  /** http(s): the metrics URL, e.g. http://127.0.0.1:4318/v1/metrics; grpc: http://127.0.0.1:4317. */
  url: string;
  /** Default http/protobuf. */
  protocol?: OtlpProtocol;
  headers?: Record<string, string>;
  /** Bound on one export, retries included, in ms. Default 10000. */
  timeoutMs?: number;
  /** Default none. */
  compression?: OtlpCompression;
  /** Told about every failure; default: the OpenTelemetry diag logger (warn). */
  onError?: (error: Error) => void;
}

export class OtlpNetworkMetricExporter implements MetricExporter {
  readonly description: string;
  readonly url: string;
  readonly protocol: OtlpProtocol;
  private readonly transport: OtlpTransport<ResourceMetrics>;
  private readonly state: FailureState;

  /** Throws when the URL is not http(s). */
  constructor(options: NetworkMetricExporterOptions) {
    const url = new URL(options.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new Error(`OTLP endpoint ${options.url} must be an http:// or https:// URL`);
    }
    this.url = url.href;
    this.protocol = options.protocol ?? 'http/protobuf';
    this.description = `OTLP ${this.protocol} ${this.url}`;
    this.transport = new OtlpTransport('metrics', {
      url: this.url,
      protocol: this.protocol,
      headers: options.headers ?? {},
      timeoutMs: options.timeoutMs ?? DEFAULT_EXPORT_TIMEOUT_MS,
      compression: options.compression ?? 'none',
    });
    this.state = new FailureState(`metrics to ${this.url}`, safeReporter(options.onError));
  }

  async export(metrics: ResourceMetrics): Promise<MetricExportResult> {
    const outcome = await this.transport.send(metrics);
    if (!outcome.ok) {
      this.state.failed(outcome.reason);
      return 'failed';
    }
    this.state.worked();
    return 'exported';
  }

  health(): ExportHealth {
    return this.state.health();
  }

  shutdown(): Promise<void> {
    return this.transport.shutdown();
  }
}
