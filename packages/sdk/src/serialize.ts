// Bounded, never-throwing JSON for captured tool arguments and results.
// Follows JSON.stringify's rules (toJSON, undefined/functions dropped from
// objects and null in arrays) and adds: circular references become
// "[Circular]", bigint becomes a string, Errors keep name/message/code, and
// the walk stops as soon as the output reaches the limit, so a huge value
// costs no more than the limit.

/** Largest captured attribute, in UTF-16 code units. */
export const MAX_CAPTURE_CHARS = 8 * 1024;
const MAX_DEPTH = 64;
const ELLIPSIS = '…';

class Full extends Error {}

class Writer {
  private parts: string[] = [];
  length = 0;
  constructor(readonly limit: number) {}

  push(s: string): void {
    this.parts.push(s);
    this.length += s.length;
    if (this.length > this.limit) throw new Full();
  }

  text(): string {
    return this.parts.join('');
  }
}

function quote(s: string, room: number): string {
  // Escaping only grows a string, so cutting to the room left first is safe.
  return JSON.stringify(s.length > room ? s.slice(0, room + 1) : s);
}

function write(w: Writer, value: unknown, stack: object[], inArray: boolean): boolean {
  const room = w.limit - w.length;
  switch (typeof value) {
    case 'string':
      w.push(quote(value, room));
      return true;
    case 'number':
      w.push(Number.isFinite(value) ? String(value) : 'null');
      return true;
    case 'boolean':
      w.push(value ? 'true' : 'false');
      return true;
    case 'bigint':
      w.push(`"${value.toString()}"`);
      return true;
    case 'undefined':
    case 'function':
    case 'symbol':
      if (inArray) w.push('null');
      return inArray;
    default:
      break;
  }
  if (value === null) {
    w.push('null');
    return true;
  }
  const obj = value as Record<string, unknown>;
  if (stack.includes(obj)) {
    w.push('"[Circular]"');
    return true;
  }
  if (stack.length >= MAX_DEPTH) {
    w.push('"[Too deep]"');
    return true;
  }
  let toJSON: unknown;
  try {
    toJSON = obj['toJSON'];
  } catch {
    toJSON = undefined;
  }
  if (typeof toJSON === 'function') {
    let replaced: unknown;
    try {
      replaced = (toJSON as () => unknown).call(obj);
    } catch {
      w.push('"[Unserializable]"');
      return true;
    }
    stack.push(obj);
    try {
      return write(w, replaced, stack, inArray);
    } finally {
      stack.pop();
    }
  }
  stack.push(obj);
  try {
    if (Array.isArray(obj)) {
      w.push('[');
      for (let i = 0; i < obj.length; i++) {
        if (i > 0) w.push(',');
        write(w, read(obj, i), stack, true);
      }
      w.push(']');
      return true;
    }
    const source = obj instanceof Error ? errorFields(obj) : obj;
    w.push('{');
    let first = true;
    for (const key of Object.keys(source)) {
      const v = read(source, key);
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
      w.push(first ? quote(key, Infinity) + ':' : ',' + quote(key, Infinity) + ':');
      first = false;
      write(w, v, stack, false);
    }
    w.push('}');
    return true;
  } finally {
    stack.pop();
  }
}

function read(obj: object, key: string | number): unknown {
  try {
    return (obj as Record<string | number, unknown>)[key];
  } catch {
    return '[Unserializable]';
  }
}

function errorFields(err: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) out['code'] = code;
  for (const key of Object.keys(err)) if (!(key in out)) out[key] = read(err, key);
  return out;
}

/**
 * JSON text of `value`, at most `limit` characters (cut ones end with "…").
 * Never throws; a value with no JSON form gives "null".
 */
export function toBoundedJson(value: unknown, limit: number = MAX_CAPTURE_CHARS): string {
  const w = new Writer(limit);
  try {
    if (!write(w, value, [], false)) return 'null';
    return w.text();
  } catch (err) {
    if (err instanceof Full) {
      let s = w.text().slice(0, Math.max(0, limit - ELLIPSIS.length));
      // Do not leave half a surrogate pair at the cut.
      const last = s.charCodeAt(s.length - 1);
      if (last >= 0xd800 && last <= 0xdbff) s = s.slice(0, -1);
      return s + ELLIPSIS;
    }
    return '"[Unserializable]"';
  }
}
