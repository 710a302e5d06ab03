// Where and how often metrics are exported, from the same flags and variables as
// traces: OTEL_EXPORTER_OTLP_METRICS_{ENDPOINT,PROTOCOL,HEADERS,TIMEOUT,COMPRESSION} over
// the general OTEL_EXPORTER_OTLP_* ones, the period from OTEL_METRIC_EXPORT_INTERVAL
// and OTEL_METRIC_EXPORT_TIMEOUT. OTEL_METRICS_EXPORTER (a list, as the OTel
// spec has it) chooses: otlp (the default), prometheus (served for scraping on
// OTEL_EXPORTER_PROMETHEUS_HOST:PORT, or --metrics-port), none.
import { resolveNetworkConfig, type OtlpConfig, type OtlpFileConfig, type OtlpFlags, type OtlpNetworkConfig } from './config.js';

export interface OtlpMetricsConfig {
  /** The traces' JSON lines file (metrics lines go into the same file). */
  file?: OtlpFileConfig;
  network?: OtlpNetworkConfig;
  /** Time between two periodic exports, in ms. */
  intervalMs: number;
  /** Bound on one export (all its retries), in ms. */
  timeoutMs: number;
  /** Serve /metrics (and /healthz, /readyz) for Prometheus here. */
  prometheus?: { host: string; port: number };
}

export interface MetricsFlags extends OtlpFlags {
  /** --metrics-port: [HOST:]PORT to serve /metrics, /healthz and /readyz on. */
  metricsPort?: string;
}

/** The OpenTelemetry specification's defaults for OTEL_EXPORTER_PROMETHEUS_HOST and _PORT. */
export const DEFAULT_PROMETHEUS_HOST = 'localhost';
export const DEFAULT_PROMETHEUS_PORT = 9464;

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
export function resolveOtlpMetricsConfig(flags: MetricsFlags, env: NodeJS.ProcessEnv, traces: OtlpConfig): OtlpMetricsConfig {
  const intervalMs = parseMs('OTEL_METRIC_EXPORT_INTERVAL', env['OTEL_METRIC_EXPORT_INTERVAL']) ?? DEFAULT_METRIC_EXPORT_INTERVAL_MS;
  const timeoutMs = parseMs('OTEL_METRIC_EXPORT_TIMEOUT', env['OTEL_METRIC_EXPORT_TIMEOUT']) ?? DEFAULT_METRIC_EXPORT_TIMEOUT_MS;
  // Values agentrace has no exporter for (`console`) are left alone: under `run`
  // the variable is shared with the agent, which may well have one.
  const chosen = new Set(
    (env['OTEL_METRICS_EXPORTER'] ?? '')
      .split(',')
      .map((v) => v.trim().toLowerCase())
      .filter((v) => v === 'otlp' || v === 'prometheus' || v === 'none'),
  );
  const off = chosen.has('none');
  const otlp = !off && (chosen.size === 0 || chosen.has('otlp'));
  const prometheus = resolvePrometheus(flags.metricsPort, env, !off && chosen.has('prometheus'));
  // checked even when metrics are off, so a typo does not go unnoticed
  const network = resolveNetworkConfig(flags, env, 'metrics');
  const config: OtlpMetricsConfig = { intervalMs, timeoutMs, ...(prometheus ? { prometheus } : {}) };
  if (!otlp) return config;
  if (network !== undefined) config.network = network;
  const explicitFile = flags.file !== undefined && flags.file.trim() !== '';
  if (traces.file !== undefined && (explicitFile || network === undefined)) config.file = { ...traces.file };
  return config;
}

/** --metrics-port wins; else OTEL_EXPORTER_PROMETHEUS_HOST/PORT when prometheus was chosen. */
function resolvePrometheus(flag: string | undefined, env: NodeJS.ProcessEnv, chosen: boolean): { host: string; port: number } | undefined {
  const envHost = env['OTEL_EXPORTER_PROMETHEUS_HOST']?.trim() || DEFAULT_PROMETHEUS_HOST;
  if (flag !== undefined && flag.trim() !== '') {
    const m = /^(?:(\[[0-9a-fA-F:.]+\]|[^:\s]+):)?(\d+)$/.exec(flag.trim());
    const port = Number(m?.[2]);
    if (!m || port > 65535) throw new Error(`--metrics-port ${JSON.stringify(flag)}: expected [HOST:]PORT, e.g. 9464 or 0.0.0.0:9464`);
    return { host: m[1]?.replace(/^\[|\]$/g, '') ?? envHost, port };
  }
  if (!chosen) return undefined;
  const raw = env['OTEL_EXPORTER_PROMETHEUS_PORT']?.trim();
  if (raw === undefined || raw === '') return { host: envHost, port: DEFAULT_PROMETHEUS_PORT };
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65535) throw new Error(`OTEL_EXPORTER_PROMETHEUS_PORT=${JSON.stringify(raw)} is not a port number`);
  return { host: envHost, port };
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
