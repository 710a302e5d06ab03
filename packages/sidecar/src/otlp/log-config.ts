// Where log records go, from the same flags and variables as traces:
// OTEL_EXPORTER_OTLP_LOGS_{ENDPOINT,PROTOCOL,HEADERS,TIMEOUT} over the
// general OTEL_EXPORTER_OTLP_* ones; OTEL_LOGS_EXPORTER=none (or --logs none)
// turns them off. Without an endpoint of their own they go to the traces'
// file, as metrics do.
import { resolveHttpConfig, type OtlpConfig, type OtlpFileConfig, type OtlpFlags, type OtlpHttpConfig } from './config.js';
import { OtlpFileExporter } from './file-exporter.js';
import { OtlpHttpExporter } from './http-exporter.js';
import type { BatchingOptions, LogExporter } from './exporter.js';
import { LOGS } from './signal.js';
import type { ExportLogRecord } from './log-record.js';

export interface OtlpLogsConfig {
  file?: OtlpFileConfig;
  http?: OtlpHttpConfig;
}

/** `logs`: the --logs flag (`otlp`, the default, or `none`). Throws naming the flag or variable when one is invalid. */
export function resolveOtlpLogsConfig(flags: OtlpFlags & { logs?: string }, env: NodeJS.ProcessEnv, traces: OtlpConfig): OtlpLogsConfig {
  const [source, raw] = flags.logs !== undefined ? ['--logs', flags.logs] : ['OTEL_LOGS_EXPORTER', env['OTEL_LOGS_EXPORTER']];
  const choice = (raw ?? '').trim().toLowerCase();
  // checked even when logs are off, so a typo does not go unnoticed
  const http = resolveHttpConfig(flags, env, 'logs');
  if (choice === 'none') return {};
  // `console` and the like are meant for an agent sharing this environment: only `none` concerns the sidecar.
  if (source === '--logs' && choice !== 'otlp') throw new Error(`--logs ${JSON.stringify(raw)}: expected otlp or none`);
  const config: OtlpLogsConfig = {};
  if (http !== undefined) config.http = http;
  const explicitFile = flags.file !== undefined && flags.file.trim() !== '';
  if (traces.file !== undefined && (explicitFile || http === undefined)) config.file = { ...traces.file };
  return config;
}

export function createLogExporters(config: OtlpLogsConfig, batching: BatchingOptions = {}): LogExporter[] {
  const exporters: LogExporter[] = [];
  if (config.file !== undefined) exporters.push(new OtlpFileExporter<ExportLogRecord>({ ...batching, path: config.file.path, codec: LOGS }));
  if (config.http !== undefined) {
    const { url, protocol, headers, timeoutMs } = config.http;
    exporters.push(new OtlpHttpExporter<ExportLogRecord>({ ...batching, url, protocol, headers, timeoutMs, codec: LOGS }));
  }
  return exporters;
}
