// Which exporters to build, from CLI flags and the standard OTEL_EXPORTER_OTLP_*
// variables (endpoint, protocol, headers, timeout, compression). Flags win over
// the signal-specific variables (TRACES_, METRICS_, LOGS_), which win over the
// general ones. An empty variable counts as unset (as the OTel spec says).
// Resolved here, not left to the official exporters, so that a wrong value
// stops the sidecar with a message naming the variable and what it accepts
// instead of a diag warning nobody sees and a silent fallback.
import path from 'node:path';
import { OtlpFileExporter } from './file-exporter.js';
import { DEFAULT_EXPORT_TIMEOUT_MS, OtlpNetworkExporter } from './network-exporter.js';
import type { BatchingOptions, SpanExporter } from './exporter.js';
import { SUPPORTED_COMPRESSIONS, SUPPORTED_PROTOCOLS, type OtlpCompression, type OtlpProtocol, type OtlpSignal } from './protocol.js';

export interface OtlpFlags {
  /** --otlp-endpoint: a base URL (/v1/traces, /v1/metrics are appended) or a URL already ending in /v1/traces. */
  endpoint?: string;
  /** --otlp-protocol: http/protobuf, http/json or grpc. */
  protocol?: string;
  /** --otlp-file: OTLP JSON lines file. */
  file?: string;
}

export interface OtlpFileConfig {
  /** Absolute path. */
  path: string;
}

export interface OtlpNetworkConfig {
  /** http(s): the signal's full URL (…/v1/traces); grpc: the collector's URL, as given. */
  url: string;
  protocol: OtlpProtocol;
  headers: Record<string, string>;
  timeoutMs: number;
  compression: OtlpCompression;
}

export interface OtlpConfig {
  file?: OtlpFileConfig;
  network?: OtlpNetworkConfig;
}

export interface ResolveOptions {
  /** File used when neither a file nor an endpoint is configured; undefined: none. Default DEFAULT_OTLP_FILE. */
  defaultFile?: string | undefined;
  /** Base for relative file paths. Default process.cwd(). */
  cwd?: string;
}

/** The embedded default output: an OTLP JSON lines file in the working directory. */
export const DEFAULT_OTLP_FILE = 'agentrace-traces.jsonl';
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

  const network = resolveNetworkConfig(flags, env, 'traces');
  if (network !== undefined) config.network = network;

  const defaultFile = 'defaultFile' in options ? options.defaultFile : DEFAULT_OTLP_FILE;
  if (config.file === undefined && config.network === undefined && defaultFile !== undefined) {
    config.file = { path: path.resolve(cwd, defaultFile) };
  }
  return config;
}

/**
 * The collector settings of one signal, or undefined when it has no endpoint.
 * Throws an Error naming the flag or variable when one is invalid; a protocol
 * given without an endpoint is still checked, so a typo does not go unnoticed.
 */
export function resolveNetworkConfig(flags: OtlpFlags, env: NodeJS.ProcessEnv, signal: OtlpSignal): OtlpNetworkConfig | undefined {
  const SIGNAL = signal.toUpperCase();
  const protocol = resolveProtocol(flags, env, signal);
  const compression = resolveCompression(env, signal);
  const url = resolveEndpoint(flags, env, signal, protocol);
  if (url === undefined) return undefined;
  return {
    url,
    protocol,
    compression,
    headers: {
      ...parseHeaders('OTEL_EXPORTER_OTLP_HEADERS', env['OTEL_EXPORTER_OTLP_HEADERS']),
      ...parseHeaders(`OTEL_EXPORTER_OTLP_${SIGNAL}_HEADERS`, env[`OTEL_EXPORTER_OTLP_${SIGNAL}_HEADERS`]),
    },
    timeoutMs:
      parseTimeout(`OTEL_EXPORTER_OTLP_${SIGNAL}_TIMEOUT`, env[`OTEL_EXPORTER_OTLP_${SIGNAL}_TIMEOUT`]) ??
      parseTimeout('OTEL_EXPORTER_OTLP_TIMEOUT', env['OTEL_EXPORTER_OTLP_TIMEOUT']) ??
      DEFAULT_EXPORT_TIMEOUT_MS,
  };
}

/** Builds the configured exporters (file first, then the collector). */
export function createExporters(config: OtlpConfig, batching: BatchingOptions = {}): SpanExporter[] {
  const exporters: SpanExporter[] = [];
  if (config.file !== undefined) exporters.push(new OtlpFileExporter({ ...batching, path: config.file.path }));
  if (config.network !== undefined) exporters.push(new OtlpNetworkExporter({ ...batching, ...config.network }));
  return exporters;
}

/** grpc: every signal goes to the URL as given (the OTel spec), a flag's /v1/<signal> path aside. */
function resolveEndpoint(flags: OtlpFlags, env: NodeJS.ProcessEnv, signal: OtlpSignal, protocol: OtlpProtocol): string | undefined {
  const own = SIGNAL_PATHS[signal];
  const flag = nonEmpty(flags.endpoint);
  const variable = `OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_ENDPOINT`;
  const specific = nonEmpty(env[variable]);
  const base = nonEmpty(env['OTEL_EXPORTER_OTLP_ENDPOINT']);
  if (protocol === 'grpc') {
    if (flag !== undefined) {
      const url = parseUrl('--otlp-endpoint', flag);
      const pathname = url.pathname.replace(/\/+$/, '');
      const other = Object.values(SIGNAL_PATHS).find((p) => pathname.endsWith(`/${p}`));
      if (other !== undefined) url.pathname = pathname.slice(0, -other.length);
      return url.href;
    }
    if (specific !== undefined) return parseUrl(variable, specific).href;
    if (base !== undefined) return parseUrl('OTEL_EXPORTER_OTLP_ENDPOINT', base).href;
    return undefined;
  }
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
  if (specific !== undefined) return parseUrl(variable, specific).href;
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

function resolveProtocol(flags: OtlpFlags, env: NodeJS.ProcessEnv, signal: OtlpSignal): OtlpProtocol {
  const variable = `OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_PROTOCOL`;
  const candidates: [string, string | undefined][] = [
    ['--otlp-protocol', flags.protocol],
    [variable, env[variable]],
    ['OTEL_EXPORTER_OTLP_PROTOCOL', env['OTEL_EXPORTER_OTLP_PROTOCOL']],
  ];
  for (const [source, raw] of candidates) {
    const value = nonEmpty(raw);
    if (value === undefined) continue;
    const protocol = SUPPORTED_PROTOCOLS.find((p) => p === value.toLowerCase());
    if (protocol !== undefined) return protocol;
    throw new Error(`${source}=${JSON.stringify(value)} is not a supported OTLP protocol; accepted: ${SUPPORTED_PROTOCOLS.join(', ')}`);
  }
  return 'http/protobuf';
}

function resolveCompression(env: NodeJS.ProcessEnv, signal: OtlpSignal): OtlpCompression {
  for (const variable of [`OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_COMPRESSION`, 'OTEL_EXPORTER_OTLP_COMPRESSION']) {
    const value = nonEmpty(env[variable]);
    if (value === undefined) continue;
    const compression = SUPPORTED_COMPRESSIONS.find((c) => c === value.toLowerCase());
    if (compression !== undefined) return compression;
    throw new Error(`${variable}=${JSON.stringify(value)} is not a supported compression; accepted: ${SUPPORTED_COMPRESSIONS.join(', ')}`);
  }
  return 'none';
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
