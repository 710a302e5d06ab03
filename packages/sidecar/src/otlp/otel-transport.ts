// The network half of every OTLP exporter: OpenTelemetry JS's own OTLP
// exporters (http/protobuf, http/json, grpc), which own the serialization, the
// retries with backoff and Retry-After, the per-export timeout, compression and
// headers. What the sidecar adds is a promise, and a failure put in words: the
// status and an excerpt of what the collector said, or the errno.
//
// Each exporter package is imported on first use, so a sidecar exporting
// http/protobuf never loads grpc (~90 ms of start-up).
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { OtlpProtocol, OtlpCompression, OtlpSignal } from './protocol.js';
import { SCOPE_VERSION } from './version.js';

/** The OTel specification's default for OTEL_EXPORTER_OTLP_TIMEOUT. */
export const DEFAULT_EXPORT_TIMEOUT_MS = 10_000;

export interface TransportOptions {
  /** http(s): the signal's full URL; grpc: the collector's base URL (http://host:4317). */
  url: string;
  /** Default http/protobuf. */
  protocol?: OtlpProtocol;
  /** Request headers (grpc: metadata), e.g. authorization. */
  headers?: Record<string, string>;
  /** Bound on one export, all its retries included, in ms. Default 10000. */
  timeoutMs?: number;
  /** Default none. */
  compression?: OtlpCompression;
}

/** What became of one export. */
export type SendOutcome = { ok: true } | { ok: false; reason: string };

/** The part of every official OTLP exporter the sidecar uses; T is the signal's SDK model. */
interface OfficialExporter<T> {
  export(items: T, resultCallback: (result: ExportResult) => void): void;
  shutdown(): Promise<void>;
}

type ExporterClass = new (config: Record<string, unknown>) => OfficialExporter<unknown>;

const LOADERS: Readonly<Record<OtlpSignal, Readonly<Record<OtlpProtocol, () => Promise<ExporterClass>>>>> = {
  traces: {
    'http/protobuf': async () => (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter as unknown as ExporterClass,
    'http/json': async () => (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter as unknown as ExporterClass,
    grpc: async () => (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter as unknown as ExporterClass,
  },
  metrics: {
    'http/protobuf': async () => (await import('@opentelemetry/exporter-metrics-otlp-proto')).OTLPMetricExporter as unknown as ExporterClass,
    'http/json': async () => (await import('@opentelemetry/exporter-metrics-otlp-http')).OTLPMetricExporter as unknown as ExporterClass,
    grpc: async () => (await import('@opentelemetry/exporter-metrics-otlp-grpc')).OTLPMetricExporter as unknown as ExporterClass,
  },
  logs: {
    'http/protobuf': async () => (await import('@opentelemetry/exporter-logs-otlp-proto')).OTLPLogExporter as unknown as ExporterClass,
    'http/json': async () => (await import('@opentelemetry/exporter-logs-otlp-http')).OTLPLogExporter as unknown as ExporterClass,
    grpc: async () => (await import('@opentelemetry/exporter-logs-otlp-grpc')).OTLPLogExporter as unknown as ExporterClass,
  },
};

export class OtlpTransport<T> {
  /** The endpoint, normalized. */
  readonly url: string;
  readonly protocol: OtlpProtocol;
  /** e.g. "OTLP http/protobuf http://collector:4318/v1/traces" */
  readonly description: string;
  private readonly options: Required<TransportOptions>;
  private exporter: Promise<OfficialExporter<T>> | undefined;
  private closed = false;

  /** Throws when the URL is not http(s). */
  constructor(
    readonly signal: OtlpSignal,
    options: TransportOptions,
  ) {
    const url = new URL(options.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new Error(`OTLP endpoint ${options.url} must be an http:// or https:// URL`);
    }
    this.url = url.href;
    this.protocol = options.protocol ?? 'http/protobuf';
    this.description = `OTLP ${this.protocol} ${this.url}`;
    this.options = {
      url: this.url,
      protocol: this.protocol,
      headers: options.headers ?? {},
      timeoutMs: options.timeoutMs ?? DEFAULT_EXPORT_TIMEOUT_MS,
      compression: options.compression ?? 'none',
    };
  }

  /** Exports one batch (the SDK's model of it); never rejects. */
  async send(items: T): Promise<SendOutcome> {
    if (this.closed) return { ok: false, reason: 'exporter shut down' };
    let exporter: OfficialExporter<T>;
    try {
      exporter = await this.load();
    } catch (error) {
      return { ok: false, reason: `cannot start the OTLP ${this.options.protocol} exporter: ${describeExportError(error)}` };
    }
    return new Promise<SendOutcome>((resolve) => {
      try {
        exporter.export(items, (result) => {
          resolve(result.code === ExportResultCode.SUCCESS ? { ok: true } : { ok: false, reason: describeExportError(result.error) });
        });
      } catch (error) {
        // the serializer throws synchronously on data it cannot encode
        resolve({ ok: false, reason: `not encoded: ${describeExportError(error)}` });
      }
    });
  }

  /** Waits for exports in flight (each bounded by the timeout), then closes the connections. */
  async shutdown(): Promise<void> {
    this.closed = true;
    if (this.exporter === undefined) return;
    try {
      await (await this.exporter).shutdown();
    } catch {
      // never started, or already closed
    }
  }

  private load(): Promise<OfficialExporter<T>> {
    this.exporter ??= LOADERS[this.signal][this.options.protocol]().then(async (Exporter) => {
      const { url, headers, timeoutMs, compression, protocol } = this.options;
      const common = { url, timeoutMillis: timeoutMs, compression, userAgent: `agentrace/${SCOPE_VERSION}` };
      if (protocol !== 'grpc') return new Exporter({ ...common, headers }) as OfficialExporter<T>;
      const { Metadata } = await import('@grpc/grpc-js');
      const metadata = new Metadata();
      for (const [key, value] of Object.entries(headers)) metadata.set(key, value);
      return new Exporter({ ...common, metadata }) as OfficialExporter<T>;
    });
    return this.exporter;
  }
}

/**
 * What a failed export says, in one line: "HTTP 401 Unauthorized: <body excerpt>",
 * "ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:4318", "gRPC 14 UNAVAILABLE: …".
 */
export function describeExportError(error: unknown): string {
  if (error === undefined || error === null) return 'unknown error';
  if (!(error instanceof Error)) return excerpt(String(error));
  const e = error as Error & { code?: unknown; data?: unknown; details?: unknown };
  if (e.name === 'OTLPExporterError' && typeof e.code === 'number') {
    const body = typeof e.data === 'string' ? excerpt(e.data) : '';
    return `HTTP ${e.code}${e.message ? ` ${e.message}` : ''}${body ? `: ${body}` : ''}`;
  }
  if (typeof e.code === 'number' && typeof e.details === 'string') return `gRPC ${excerpt(e.message)}`;
  if (e.message === 'Export failed with retryable status') {
    return 'the collector kept answering with a retryable status (429, 502, 503 or 504) until the export timeout';
  }
  const errno = typeof e.code === 'string' ? e.code : undefined;
  const message = excerpt(e.message);
  return errno !== undefined && !message.startsWith(errno) && !message.includes(` ${errno} `) ? `${errno}: ${message}` : message;
}

/** Printable, one line, at most 200 characters. */
function excerpt(text: string): string {
  const line = text.replace(/[^\x20-\x7e]+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}
