// OpenTelemetry attribute values -> the protocol's AttrValue, bounded so a
// frame always fits MAX_FRAME_BYTES.
import type { AttrValue, Attrs } from '@agentrace/protocol';
import { MAX_CAPTURE_CHARS } from './serialize.js';

/** At most this many attributes are kept per span beyond the SDK's own (OTel's default limit). */
export const MAX_EXTRA_ATTRIBUTES = 128;
const MAX_ARRAY = 128;

function cut(s: string): string {
  return s.length > MAX_CAPTURE_CHARS ? s.slice(0, MAX_CAPTURE_CHARS - 1) + '…' : s;
}

/** The wire form of an attribute value, or undefined when it has none. */
export function toAttrValue(value: unknown): AttrValue | undefined {
  switch (typeof value) {
    case 'string':
      return cut(value);
    case 'number':
    case 'boolean':
      return value;
    default:
      break;
  }
  if (!Array.isArray(value)) return undefined;
  let kind: string | undefined;
  const out: Array<string | number | boolean> = [];
  for (const v of value.slice(0, MAX_ARRAY)) {
    if (v === null || v === undefined) continue;
    const t = typeof v;
    if (t !== 'string' && t !== 'number' && t !== 'boolean') return undefined;
    if (kind !== undefined && t !== kind) return undefined;
    kind = t;
    out.push(t === 'string' ? cut(v as string) : (v as number | boolean));
  }
  return out as AttrValue;
}

/** Sets key on attrs when the value has a wire form and there is room. */
export function putAttr(attrs: Attrs, key: string, value: unknown, count: { n: number }): void {
  const v = toAttrValue(value);
  if (v === undefined) return;
  if (!(key in attrs)) {
    if (count.n >= MAX_EXTRA_ATTRIBUTES) return;
    count.n++;
  }
  attrs[key] = v;
}
