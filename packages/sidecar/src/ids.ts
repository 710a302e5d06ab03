// Span ids for the spans the sidecar makes (kernel children).
import { randomFillSync } from 'node:crypto';

const pool = Buffer.alloc(8 * 512);
let next = pool.length;

export function newSpanId(): string {
  if (next >= pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  const id = pool.toString('hex', next, next + 8);
  next += 8;
  // An all-zero id is invalid in OpenTelemetry.
  return id === '0000000000000000' ? newSpanId() : id;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
