// Metrics over OTLP/HTTP (POST .../v1/metrics), http/protobuf or http/json, with
// the same sender as traces: retries with backoff, Retry-After, request timeout.
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { asError } from './batch-queue.js';
import { safeReporter } from './exporter.js';
import { OtlpHttpSender, type HttpSenderOptions, type OtlpHttpProtocol } from './http-sender.js';
import type { MetricExporter, MetricExportResult } from './metric-exporter.js';
import { FailureState } from './failure-state.js';
import { countDataPoints, encodeMetrics, rejectedDataPoints } from './metric-serializer.js';

export interface HttpMetricExporterOptions extends HttpSenderOptions {
  /** Full URL of the metrics endpoint, e.g. http://127.0.0.1:4318/v1/metrics (used as-is). */
  url: string;
  /** Told about every failure; default: the OpenTelemetry diag logger (warn). */
  onError?: (error: Error) => void;
}

export class OtlpHttpMetricExporter implements MetricExporter {
  readonly description: string;
  readonly url: string;
  readonly protocol: OtlpHttpProtocol;
  private readonly sender: OtlpHttpSender;
  private readonly report: (error: Error) => void;
  private readonly state: FailureState;

  /** Throws when the URL is not http(s). */
  constructor(options: HttpMetricExporterOptions) {
    this.sender = new OtlpHttpSender(options);
    this.url = this.sender.url;
    this.protocol = this.sender.protocol;
    this.description = `OTLP ${this.protocol} ${this.url}`;
    this.report = safeReporter(options.onError);
    this.state = new FailureState(`metrics to ${this.url}`, this.report);
  }

  async export(metrics: ResourceMetrics, signal: AbortSignal): Promise<MetricExportResult> {
    let body: Uint8Array;
    try {
      body = encodeMetrics(metrics, this.sender.encoding);
    } catch (error) {
      this.report(new Error(`metrics not encoded: ${asError(error).message}`));
      return 'failed';
    }
    const outcome = await this.sender.send(body, signal);
    if (!outcome.ok) {
      this.state.failed(outcome.reason);
      return 'failed';
    }
    this.state.worked();
    const partial = rejectedDataPoints(outcome.responseBody, this.sender.encoding);
    if (partial.rejected > 0) {
      const rejected = Math.min(partial.rejected, countDataPoints(metrics));
      this.report(new Error(`${this.url} rejected ${rejected} metric data point(s)${partial.message ? `: ${partial.message}` : ''}`));
      return 'failed';
    }
    return 'exported';
  }

  retries(): number {
    return this.sender.retries();
  }

  shutdown(): Promise<void> {
    return this.sender.close();
  }
}
