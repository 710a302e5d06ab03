// Where the sidecar listens and how this agent names itself. Defaults come
// from the environment; configure() overrides them.
import { createRequire } from 'node:module';
import type { Attrs } from '@agentrace/protocol';

export const DEFAULT_SOCKET_PATH = '/run/agentrace/agentrace.sock';

export interface AgentraceConfig {
  /** Unix socket of the sidecar. Default: $AGENTRACE_SOCKET, else /run/agentrace/agentrace.sock. */
  socketPath?: string;
  /** service.name of this agent. Default: $OTEL_SERVICE_NAME, else service.name of $OTEL_RESOURCE_ATTRIBUTES, else "unknown_service:node". */
  serviceName?: string;
}

export interface ResolvedConfig {
  socketPath: string;
  serviceName: string;
}

const require = createRequire(import.meta.url);
/** This package's version (package.json sits next to src/ and dist/). */
export const SDK_VERSION: string = (require('../package.json') as { version: string }).version;
export const SDK_NAME = '@agentrace/sdk';

export function resolveConfig(overrides: AgentraceConfig): ResolvedConfig {
  const env = process.env;
  return {
    socketPath: overrides.socketPath || env['AGENTRACE_SOCKET'] || DEFAULT_SOCKET_PATH,
    serviceName:
      overrides.serviceName ||
      env['OTEL_SERVICE_NAME'] ||
      (envResourceAttributes()['service.name'] as string | undefined) ||
      'unknown_service:node',
  };
}

/** OTEL_RESOURCE_ATTRIBUTES: "k1=v1,k2=v2", values percent-encoded. Bad entries are skipped. */
function envResourceAttributes(): Attrs {
  const out: Attrs = {};
  const raw = process.env['OTEL_RESOURCE_ATTRIBUTES'];
  if (!raw) return out;
  for (const pair of raw.split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    try {
      out[decodeURIComponent(pair.slice(0, eq).trim())] = decodeURIComponent(pair.slice(eq + 1).trim());
    } catch {
      // malformed percent-encoding: skip this entry
    }
  }
  return out;
}

/** The resource announced in `hello`. */
export function resourceAttributes(config: ResolvedConfig): Attrs {
  return {
    ...envResourceAttributes(),
    'service.name': config.serviceName,
    'process.pid': process.pid,
    'process.runtime.name': 'nodejs',
    'process.runtime.version': process.versions.node,
    'process.runtime.description': 'Node.js',
    'process.executable.path': process.execPath,
  };
}
