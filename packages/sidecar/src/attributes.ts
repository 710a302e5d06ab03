// Attributes from untrusted input (an agent's frames): only what OTLP can
// carry, and no more than OpenTelemetry's span limits allow
// (OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT / OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT,
// OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT / OTEL_ATTRIBUTE_COUNT_LIMIT). What a limit
// cut is counted, never silent.
import type { Attributes } from '@opentelemetry/api';

export interface AttributeLimits {
  /** Longest string value (and array element), in characters. */
  valueLength: number;
  /** Most attributes per span (or resource). */
  count: number;
}

/**
 * OTel's default count limit (128). OTel sets no value-length limit by
 * default; the sidecar takes input from any local process, so it keeps
 * one: 4096 characters, enough for any id, path or command line it makes.
 */
export const DEFAULT_ATTRIBUTE_LIMITS: AttributeLimits = { valueLength: 4096, count: 128 };

/** The limits the standard variables set (span-specific first), or the defaults. */
export function attributeLimitsFromEnv(env: NodeJS.ProcessEnv): AttributeLimits {
  const read = (names: string[], fallback: number): number => {
    for (const name of names) {
      const raw = env[name]?.trim();
      if (!raw) continue;
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 0) throw new RangeError(`${name} must be a whole number, got ${JSON.stringify(raw)}`);
      return n;
    }
    return fallback;
  };
  return {
    valueLength: read(['OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT', 'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT'], DEFAULT_ATTRIBUTE_LIMITS.valueLength),
    count: read(['OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT', 'OTEL_ATTRIBUTE_COUNT_LIMIT'], DEFAULT_ATTRIBUTE_LIMITS.count),
  };
}

export interface Sanitized {
  attributes: Attributes;
  /** Values cut to the length limit. */
  truncated: number;
  /** Attributes left out: over the count or size limit, or of a type OTLP cannot carry. */
  dropped: number;
  /** Characters of what was kept (attributeChars). */
  chars: number;
}

const scalar = (v: unknown): boolean => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/** Characters of an attribute (key and value; 8 for a number or boolean), for the byte budgets. */
export function attributeChars(key: string, v: unknown): number {
  const one = (x: unknown): number => (typeof x === 'string' ? x.length : 8);
  return key.length + (Array.isArray(v) ? v.reduce((n: number, x) => n + one(x), 0) : one(v));
}

/**
 * Keeps only the attribute values OTLP can carry, within `limits`: at most
 * `room` attributes and `chars` characters in all; counts what it cut.
 */
export function sanitize(attrs: unknown, limits: AttributeLimits = DEFAULT_ATTRIBUTE_LIMITS, room = limits.count, chars = Infinity): Sanitized {
  const out: Sanitized = { attributes: {}, truncated: 0, dropped: 0, chars: 0 };
  if (typeof attrs !== 'object' || attrs === null) return out;
  const cut = (v: unknown): unknown => {
    if (typeof v !== 'string' || v.length <= limits.valueLength) return v;
    out.truncated++;
    return v.slice(0, limits.valueLength);
  };
  let kept = 0;
  for (const [k, v] of Object.entries(attrs)) {
    const ok = scalar(v) || (Array.isArray(v) && v.every(scalar));
    if (!ok || kept >= room) {
      out.dropped++;
      continue;
    }
    const key = cut(k) as string;
    const value = Array.isArray(v) ? v.map(cut) : cut(v);
    const size = attributeChars(key, value);
    if (out.chars + size > chars) {
      out.dropped++;
      continue;
    }
    out.attributes[key] = value as string;
    out.chars += size;
    kept++;
  }
  return out;
}
