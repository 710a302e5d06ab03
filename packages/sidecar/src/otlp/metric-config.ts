// Where and how often metrics are exported, from the same flags and variables as
// traces: OTEL_EXPORTER_OTLP_METRICS_{ENDPOINT,PROTOCOL,HEADERS,TIMEOUT,COMPRESSION} over
// the general OTEL_EXPORTER_OTLP_* ones, the period from OTEL_METRIC_EXPORT_INTERVAL
// and OTEL_METRIC_EXPORT_TIMEOUT; OTEL_METRICS_EXPORTER=none turns them off.
import { resolveNetworkConfig, type OtlpConfig, type OtlpFileConfig, type OtlpFlags, type OtlpNetworkConfig } from './config.js';

export interface OtlpMetricsConfig {
  /** The traces' JSON lines file (metrics lines go into the same file). */
  file?: OtlpFileConfig;
  network?: OtlpNetworkConfig;
  /** Time between two periodic exports, in ms. */
  intervalMs: number;
  /** Bound on one export (all its retries), in ms. */
  timeoutMs: number;
}

/** The OTel spec's defaults for OTEL_METRIC_EXPORT_INTERVAL and OTEL_METRIC_EXPORT_TIMEOUT. */
export const DEFAULT_METRIC_EXPORT_INTERVAL_MS = 60_000;
export const DEFAULT_METRIC_EXPORT_TIMEOUT_MS = 30_000;

/**
 * Resolves the metrics exporters' configuration next to the traces' one
 * (`traces`, from resolveOtlpConfig with the same flags and env). Metrics go to
 * the traces' file when it was asked for (--otlp-file) or when metrics have no
 * endpoint of their own; to the collector when an endpoint applies to metrics.
 * Throws an Error naming the flag or variable when one is invalid.
 */
export function resolveOtlpMetricsConfig(flags: OtlpFlags, env: NodeJS.ProcessEnv, traces: OtlpConfig): OtlpMetricsConfig {
  const intervalMs = parseMs('OTEL_METRIC_EXPORT_INTERVAL', env['OTEL_METRIC_EXPORT_INTERVAL']) ?? DEFAULT_METRIC_EXPORT_INTERVAL_MS;
  const timeoutMs = parseMs('OTEL_METRIC_EXPORT_TIMEOUT', env['OTEL_METRIC_EXPORT_TIMEOUT']) ?? DEFAULT_METRIC_EXPORT_TIMEOUT_MS;
  // OTLP is the only metrics exporter agentrace has: any value but `none` (e.g.
  // `prometheus`, meant for the agent that shares this environment) leaves it on
  const off = (env['OTEL_METRICS_EXPORTER'] ?? '').trim().toLowerCase() === 'none';
  // checked even when metrics are off, so a typo does not go unnoticed
  const network = resolveNetworkConfig(flags, env, 'metrics');
  const config: OtlpMetricsConfig = { intervalMs, timeoutMs };
  if (off) return config;
  if (network !== undefined) config.network = network;
  const explicitFile = flags.file !== undefined && flags.file.trim() !== '';
  if (traces.file !== undefined && (explicitFile || network === undefined)) config.file = { ...traces.file };
  return config;
}

/** Milliseconds, a positive integer; undefined when unset or empty. */
function parseMs(source: string, raw: string | undefined): number | undefined {
  const value = raw?.trim();
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n <= 0 || !Number.isSafeInteger(n)) {
    throw new Error(`${source}=${JSON.stringify(raw)} is not valid; expected a positive integer number of milliseconds, e.g. ${source}=60000`);
  }
  return n;
}
