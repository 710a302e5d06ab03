import type { Attributes } from '@opentelemetry/api';

const scalar = (v: unknown): boolean => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/** Keeps only the attribute values OTLP can carry (from untrusted input). */
export function sanitizeAttributes(attrs: unknown): Attributes {
  const out: Attributes = {};
  if (typeof attrs !== 'object' || attrs === null) return out;
  for (const [k, v] of Object.entries(attrs)) {
    if (scalar(v)) out[k] = v as string | number | boolean;
    else if (Array.isArray(v) && v.every(scalar)) out[k] = v as string[];
  }
  return out;
}
