// The instrumentation scope every exported span carries: `agentrace` at the
// version of this package (read once from its package.json).
import { readFileSync } from 'node:fs';

function readPackageVersion(): string {
  try {
    // src/otlp/version.ts and dist/otlp/version.js both sit two levels below the package root.
    const raw: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    if (typeof raw === 'object' && raw !== null && 'version' in raw && typeof raw.version === 'string') {
      return raw.version;
    }
  } catch {
    // fall through: a missing or unreadable package.json must not stop the exporter
  }
  return '0.0.0';
}

export const SCOPE_NAME = 'agentrace';
export const SCOPE_VERSION: string = readPackageVersion();
