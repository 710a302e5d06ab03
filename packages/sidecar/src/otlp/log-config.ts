// Where log records go, from the same flags and variables as traces:
// OTEL_EXPORTER_OTLP_LOGS_{ENDPOINT,PROTOCOL,HEADERS,TIMEOUT,COMPRESSION} over the
// general OTEL_EXPORTER_OTLP_* ones; OTEL_LOGS_EXPORTER=none (or --logs none)
// turns them off. Without an endpoint of their own they go to the traces'
// file, as metrics do.
import { resolveNetworkConfig, type OtlpConfig, type OtlpFileConfig, type OtlpFlags, type OtlpNetworkConfig } from './config.js';
import { OtlpFileExporter } from './file-exporter.js';
import { OtlpNetworkExporter } from './network-exporter.js';
import type { BatchingOptions, LogExporter } from './exporter.js';
import { LOGS } from './signal.js';
import type { ExportLogRecord } from './log-record.js';

export interface OtlpLogsConfig {
  file?: OtlpFileConfig;
  network?: OtlpNetworkConfig;
}

/** `logs`: the --logs flag (`otlp`, the default, or `none`). Throws naming the flag or variable when one is invalid. */
export function resolveOtlpLogsConfig(flags: OtlpFlags & { logs?: string }, env: NodeJS.ProcessEnv, traces: OtlpConfig): OtlpLogsConfig {
  const [source, raw] = flags.logs !== undefined ? ['--logs', flags.logs] : ['OTEL_LOGS_EXPORTER', env['OTEL_LOGS_EXPORTER']];
  const choice = (raw ?? '').trim().toLowerCase();
  // checked even when logs are off, so a typo does not go unnoticed
  const network = resolveNetworkConfig(flags, env, 'logs');
  if (choice === 'none') return {};
  // `console` and the like are meant for an agent sharing this environment: only `none` concerns the sidecar.
  if (source === '--logs' && choice !== 'otlp') throw new Error(`--logs ${JSON.stringify(raw)}: expected otlp or none`);
  const config: OtlpLogsConfig = {};
  if (network !== undefined) config.network = network;
  const explicitFile = flags.file !== undefined && flags.file.trim() !== '';
  if (traces.file !== undefined && (explicitFile || network === undefined)) config.file = { ...traces.file };
  return config;
}

export function createLogExporters(config: OtlpLogsConfig, batching: BatchingOptions = {}): LogExporter[] {
  const exporters: LogExporter[] = [];
  if (config.file !== undefined) exporters.push(new OtlpFileExporter<ExportLogRecord>({ ...batching, path: config.file.path, codec: LOGS }));
  if (config.network !== undefined) exporters.push(new OtlpNetworkExporter<ExportLogRecord>({ ...batching, ...config.network, codec: LOGS }));
  return exporters;
}
