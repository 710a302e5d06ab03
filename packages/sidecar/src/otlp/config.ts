// Which exporters to build, from CLI flags and the standard OTEL_EXPORTER_OTLP_*
// variables. Flags win over the signal-specific variables (TRACES_, METRICS_),
// which win over the general ones. An empty variable counts as unset (as the
// OTel spec says).
import path from 'node:path';
import { OtlpFileExporter } from './file-exporter.js';
import { DEFAULT_HTTP_TIMEOUT_MS, OtlpHttpExporter, type OtlpHttpProtocol } from './http-exporter.js';
import type { BatchingOptions, SpanExporter } from './exporter.js';
import { MultiExporter } from './multi-exporter.js';

export interface OtlpFlags {
  /** --otlp-endpoint: a base URL (/v1/traces, /v1/metrics are appended) or a URL already ending in /v1/traces. */
  endpoint?: string;
  /** --otlp-protocol: http/protobuf or http/json. */
  protocol?: string;
  /** --otlp-file: OTLP JSON lines file. */
  file?: string;
}

export interface OtlpFileConfig {
  /** Absolute path. */
  path: string;
}

export interface OtlpHttpConfig {
  /** Full traces URL. */
  url: string;
  protocol: OtlpHttpProtocol;
  headers: Record<string, string>;
  timeoutMs: number;
}

export interface OtlpConfig {
  file?: OtlpFileConfig;
  http?: OtlpHttpConfig;
}

export interface ResolveOptions {
  /** File used when neither a file nor an endpoint is configured; undefined: none. Default DEFAULT_OTLP_FILE. */
  defaultFile?: string | undefined;
  /** Base for relative file paths. Default process.cwd(). */
  cwd?: string;
}

/** The embedded default output: an OTLP JSON lines file in the working directory. */
export const DEFAULT_OTLP_FILE = 'agentrace-traces.jsonl';
export const SUPPORTED_PROTOCOLS: readonly OtlpHttpProtocol[] = ['http/protobuf', 'http/json'];

/** An OTLP signal: names its variables (OTEL_EXPORTER_OTLP_<SIGNAL>_*) and its path (/v1/<signal>). */
export type OtlpSignal = 'traces' | 'metrics' | 'logs';
const SIGNAL_PATHS: Readonly<Record<OtlpSignal, string>> = { traces: 'v1/traces', metrics: 'v1/metrics', logs: 'v1/logs' };

/**
 * Resolves the exporter configuration. Throws an Error naming the flag or
 * variable and the accepted values when one is invalid.
 */
export function resolveOtlpConfig(
  flags: OtlpFlags,
  env: NodeJS.ProcessEnv,
  options: ResolveOptions = {},
): OtlpConfig {
  const cwd = options.cwd ?? process.cwd();
  const config: OtlpConfig = {};
  const file = nonEmpty(flags.file);
  if (file !== undefined) config.file = { path: path.resolve(cwd, file) };

  const http = resolveHttpConfig(flags, env, 'traces');
  if (http !== undefined) config.http = http;

  const defaultFile = 'defaultFile' in options ? options.defaultFile : DEFAULT_OTLP_FILE;
  if (config.file === undefined && config.http === undefined && defaultFile !== undefined) {
    config.file = { path: path.resolve(cwd, defaultFile) };
  }
  return config;
}

/**
 * The OTLP/HTTP settings of one signal, or undefined when it has no endpoint.
 * Throws an Error naming the flag or variable when one is invalid; a protocol
 * given without an endpoint is still checked, so a typo does not go unnoticed.
 */
export function resolveHttpConfig(flags: OtlpFlags, env: NodeJS.ProcessEnv, signal: OtlpSignal): OtlpHttpConfig | undefined {
  const SIGNAL = signal.toUpperCase();
  const url = resolveEndpoint(flags, env, signal);
  const protocol = resolveProtocol(flags, env, signal);
  if (url === undefined) return undefined;
  return {
    url,
    protocol,
    headers: {
      ...parseHeaders('OTEL_EXPORTER_OTLP_HEADERS', env['OTEL_EXPORTER_OTLP_HEADERS']),
      ...parseHeaders(`OTEL_EXPORTER_OTLP_${SIGNAL}_HEADERS`, env[`OTEL_EXPORTER_OTLP_${SIGNAL}_HEADERS`]),
    },
    timeoutMs:
      parseTimeout(`OTEL_EXPORTER_OTLP_${SIGNAL}_TIMEOUT`, env[`OTEL_EXPORTER_OTLP_${SIGNAL}_TIMEOUT`]) ??
      parseTimeout('OTEL_EXPORTER_OTLP_TIMEOUT', env['OTEL_EXPORTER_OTLP_TIMEOUT']) ??
      DEFAULT_HTTP_TIMEOUT_MS,
  };
}

/** Builds the configured exporters (file first, then HTTP). */
export function createExporters(config: OtlpConfig, batching: BatchingOptions = {}): SpanExporter[] {
  const exporters: SpanExporter[] = [];
  if (config.file !== undefined) exporters.push(new OtlpFileExporter({ ...batching, path: config.file.path }));
  if (config.http !== undefined) {
    exporters.push(
      new OtlpHttpExporter({
        ...batching,
        url: config.http.url,
        protocol: config.http.protocol,
        headers: config.http.headers,
        timeoutMs: config.http.timeoutMs,
      }),
    );
  }
  return exporters;
}

/** One exporter for the whole configuration (a MultiExporter when there are several). */
export function createExporter(config: OtlpConfig, batching: BatchingOptions = {}): SpanExporter {
  const exporters = createExporters(config, batching);
  return exporters.length === 1 && exporters[0] !== undefined ? exporters[0] : new MultiExporter(exporters);
}

function resolveEndpoint(flags: OtlpFlags, env: NodeJS.ProcessEnv, signal: OtlpSignal): string | undefined {
  const own = SIGNAL_PATHS[signal];
  const flag = nonEmpty(flags.endpoint);
  if (flag !== undefined) {
    const url = parseUrl('--otlp-endpoint', flag);
    const pathname = url.pathname.replace(/\/+$/, '');
    if (pathname.endsWith(`/${own}`)) return url.href;
    // the flag may name the traces endpoint; the other signals sit beside it
    const other = Object.values(SIGNAL_PATHS).find((p) => pathname.endsWith(`/${p}`));
    if (other !== undefined) {
      const out = new URL(url.href);
      out.pathname = `${pathname.slice(0, -other.length)}${own}`;
      return out.href;
    }
    return appendSignalPath(url, own);
  }
  const variable = `OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_ENDPOINT`;
  const specific = nonEmpty(env[variable]);
  if (specific !== undefined) return parseUrl(variable, specific).href;
  const base = nonEmpty(env['OTEL_EXPORTER_OTLP_ENDPOINT']);
  if (base !== undefined) return appendSignalPath(parseUrl('OTEL_EXPORTER_OTLP_ENDPOINT', base), own);
  return undefined;
}

function appendSignalPath(url: URL, signalPath: string): string {
  const out = new URL(url.href);
  out.pathname = `${out.pathname.replace(/\/+$/, '')}/${signalPath}`;
  return out.href;
}

function parseUrl(source: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`${source}=${JSON.stringify(value)} is not a valid URL; expected e.g. http://127.0.0.1:4318`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`${source}=${JSON.stringify(value)} must be an http:// or https:// URL`);
  }
  return url;
}

function resolveProtocol(flags: OtlpFlags, env: NodeJS.ProcessEnv, signal: OtlpSignal): OtlpHttpProtocol {
  const variable = `OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_PROTOCOL`;
  const candidates: [string, string | undefined][] = [
    ['--otlp-protocol', flags.protocol],
    [variable, env[variable]],
    ['OTEL_EXPORTER_OTLP_PROTOCOL', env['OTEL_EXPORTER_OTLP_PROTOCOL']],
  ];
  for (const [source, raw] of candidates) {
    const value = nonEmpty(raw);
    if (value === undefined) continue;
    const protocol = value.toLowerCase();
    if (protocol === 'http/protobuf' || protocol === 'http/json') return protocol;
    if (protocol === 'grpc') {
      throw new Error(`${source}=grpc is not supported by agentrace: use http/protobuf (the default) or http/json`);
    }
    throw new Error(`${source}=${JSON.stringify(value)} is not a supported OTLP protocol; accepted: ${SUPPORTED_PROTOCOLS.join(', ')}`);
  }
  return 'http/protobuf';
}

/** W3C-baggage-style `k=v,k2=v2`, keys and values URL-decoded and trimmed. */
export function parseHeaders(source: string, raw: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (raw === undefined) return headers;
  for (const entry of raw.split(',')) {
    if (entry.trim() === '') continue;
    const eq = entry.indexOf('=');
    if (eq <= 0) {
      throw new Error(`${source}: entry ${JSON.stringify(entry.trim())} is not key=value; expected e.g. api-key=secret,x-team=a%20b`);
    }
    const key = decode(source, entry.slice(0, eq)).trim();
    const value = decode(source, entry.slice(eq + 1)).trim();
    if (key === '' || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(key)) {
      throw new Error(`${source}: ${JSON.stringify(key)} is not a valid HTTP header name`);
    }
    if (/[\r\n\0]/.test(value)) throw new Error(`${source}: the value of ${key} contains a line break or NUL`);
    headers[key.toLowerCase()] = value;
  }
  return headers;
}

function decode(source: string, text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new Error(`${source}: ${JSON.stringify(text)} is not valid URL encoding`);
  }
}

/** Milliseconds, a positive integer; undefined when unset. */
export function parseTimeout(source: string, raw: string | undefined): number | undefined {
  const value = nonEmpty(raw);
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) <= 0 || !Number.isSafeInteger(Number(value))) {
    throw new Error(`${source}=${JSON.stringify(value)} is not a timeout; expected a positive integer number of milliseconds`);
  }
  return Number(value);
}

function nonEmpty(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}
