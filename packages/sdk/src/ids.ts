// Span identity kept as raw bytes (what the thread slot and the socket need)
// next to the hex strings OpenTelemetry's API wants, so neither side parses
// the other's form per context switch.
/** 16-byte trace id followed by the 8-byte span id: the slot's first 24 bytes. */
export const RAW_ID_BYTES = 24;

function random32(): number {
  return (Math.random() * 0x1_0000_0000) >>> 0;
}

/**
 * Fresh random ids: a new 24-byte Buffer (trace id, span id). When `traceId`
 * (16 bytes) is given, it is copied in and only the span id is new. Never
 * returns an all-zero (invalid) id. Like OpenTelemetry's RandomIdGenerator,
 * this uses Math.random: ids must be unique, not secret.
 */
export function randomIds(traceId?: Uint8Array): Buffer {
  const raw = Buffer.allocUnsafe(RAW_ID_BYTES);
  if (traceId) {
    raw.set(traceId, 0);
  } else {
    let a: number, b: number, c: number, d: number;
    do {
      a = random32();
      b = random32();
      c = random32();
      d = random32();
    } while ((a | b | c | d) === 0);
    raw.writeUInt32LE(a, 0);
    raw.writeUInt32LE(b, 4);
    raw.writeUInt32LE(c, 8);
    raw.writeUInt32LE(d, 12);
  }
  let e: number, f: number;
  do {
    e = random32();
    f = random32();
  } while ((e | f) === 0);
  raw.writeUInt32LE(e, 16);
  raw.writeUInt32LE(f, 20);
  return raw;
}

/** Raw ids from OpenTelemetry hex strings (32 + 16 hex digits). */
export function idsFromHex(traceId: string, spanId: string): Buffer {
  const raw = Buffer.allocUnsafe(RAW_ID_BYTES);
  raw.write(traceId, 0, 16, 'hex');
  raw.write(spanId, 16, 8, 'hex');
  return raw;
}

/** An 8-byte span id from its hex form. */
export function spanIdFromHex(spanId: string): Buffer {
  return Buffer.from(spanId, 'hex');
}

export function traceIdHex(raw: Buffer): string {
  return raw.toString('hex', 0, 16);
}

export function spanIdHex(raw: Buffer): string {
  return raw.toString('hex', 16, 24);
}
