// Public API of the sidecar's OTLP exporters.
export type { ExportSpan, ExportSpanEvent } from './span.js';
export type { SpanExporter, LogExporter, ItemExporter, ExporterStats, BatchingOptions } from './exporter.js';
export { resolveOtlpLogsConfig, createLogExporters, type OtlpLogsConfig } from './log-config.js';
export { encodeLogs, SeverityNumber, type ExportLogRecord } from './log-record.js';
export { TRACES, LOGS, type SignalCodec } from './signal.js';
export {
  DEFAULT_MAX_QUEUE_SIZE,
  DEFAULT_MAX_BATCH_SIZE,
  DEFAULT_SCHEDULE_DELAY_MS,
  DEFAULT_FLUSH_TIMEOUT_MS,
} from './exporter.js';
export { OtlpFileExporter, DEFAULT_FILE_SCHEDULE_DELAY_MS, type FileExporterOptions } from './file-exporter.js';
export {
  OtlpHttpExporter,
  DEFAULT_HTTP_TIMEOUT_MS,
  type HttpExporterOptions,
  type OtlpHttpProtocol,
} from './http-exporter.js';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.js';
export { MultiExporter } from './multi-exporter.js';
export {
  resolveOtlpConfig,
  createExporters,
  createExporter,
  DEFAULT_OTLP_FILE,
  SUPPORTED_PROTOCOLS,
  type OtlpFlags,
  type OtlpConfig,
  type OtlpFileConfig,
  type OtlpHttpConfig,
  type ResolveOptions,
  type OtlpSignal,
  resolveHttpConfig,
} from './config.js';
export { encodeTraces, CONTENT_TYPES, type OtlpEncoding, type EncodedTraces } from './trace-serializer.js';
export {
  resolveOtlpMetricsConfig,
  DEFAULT_METRIC_EXPORT_INTERVAL_MS,
  DEFAULT_METRIC_EXPORT_TIMEOUT_MS,
  type OtlpMetricsConfig,
} from './metric-config.js';
export type { MetricExporter, MetricExportResult } from './metric-exporter.js';
export { OtlpFileMetricExporter, type FileMetricExporterOptions } from './metric-file-exporter.js';
export { OtlpHttpMetricExporter, type HttpMetricExporterOptions } from './metric-http-exporter.js';
export {
  MetricsReader,
  createMetricsReader,
  createMetricExporters,
  type MetricProducer,
  type MetricsReaderOptions,
  type MetricsReaderStats,
} from './metric-reader.js';
export { encodeMetrics, rejectedDataPoints } from './metric-serializer.js';
export { SCOPE_NAME, SCOPE_VERSION } from './version.js';
