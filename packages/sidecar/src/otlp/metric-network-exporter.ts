// Metrics to a collector (http/protobuf, http/json or grpc) through
// OpenTelemetry JS's own OTLP metric exporter (see otel-transport.ts).
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { safeReporter, type ExportHealth } from './exporter.js';
import type { MetricExporter, MetricExportResult } from './metric-exporter.js';
import { FailureState } from './failure-state.js';
import { OtlpTransport, type TransportOptions } from './otel-transport.js';
import type { OtlpProtocol } from './protocol.js';

export interface NetworkMetricExporterOptions extends TransportOptions {
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
    this.transport = new OtlpTransport('metrics', options);
    this.url = this.transport.url;
    this.protocol = this.transport.protocol;
    this.description = this.transport.description;
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
