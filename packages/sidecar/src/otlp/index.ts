// Public API of the sidecar's OTLP exporters.
export type { ExportSpan, ExportSpanEvent } from './span.js';
export type { SpanExporter, LogExporter, ItemExporter, ExporterStats, ExportHealth, BatchingOptions } from './exporter.js';
export { combinedHealth } from './exporter.js';
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
export { OtlpNetworkExporter, DEFAULT_EXPORT_TIMEOUT_MS, type NetworkExporterOptions } from './network-exporter.js';
export { describeExportError } from './otel-transport.js';
export { SUPPORTED_PROTOCOLS, SUPPORTED_COMPRESSIONS, type OtlpProtocol, type OtlpCompression, type OtlpSignal } from './protocol.js';
export {
  resolveOtlpConfig,
  createExporters,
  DEFAULT_OTLP_FILE,
  type OtlpFlags,
  type OtlpConfig,
  type OtlpFileConfig,
  type OtlpNetworkConfig,
  type ResolveOptions,
  resolveNetworkConfig,
} from './config.js';
export { encodeTraces, type OtlpEncoding, type EncodedTraces } from './trace-serializer.js';
export {
  resolveOtlpMetricsConfig,
  DEFAULT_METRIC_EXPORT_INTERVAL_MS,
  DEFAULT_METRIC_EXPORT_TIMEOUT_MS,
  DEFAULT_PROMETHEUS_HOST,
  DEFAULT_PROMETHEUS_PORT,
  type OtlpMetricsConfig,
  type MetricsFlags,
} from './metric-config.js';
export type { MetricExporter, MetricExportResult } from './metric-exporter.js';
export { OtlpFileMetricExporter, type FileMetricExporterOptions } from './metric-file-exporter.js';
export { OtlpNetworkMetricExporter, type NetworkMetricExporterOptions } from './metric-network-exporter.js';
export {
  MetricsReader,
  createMetricsReader,
  createMetricExporters,
  type MetricProducer,
  type MetricsReaderOptions,
  type MetricsReaderStats,
} from './metric-reader.js';
export { encodeMetrics } from './metric-serializer.js';
export { SCOPE_NAME, SCOPE_VERSION } from './version.js';
