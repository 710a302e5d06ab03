// @agentrace/sdk/internal: state of this thread's SDK instance, for tests
// and the sidecar's integration tests. An agent never needs it.
import { QUEUE_CAPACITY } from './sidecar-client.js';
import { currentSocketPath, ready, sidecar, slot, slotRegistered, threadId } from './runtime.js';
import { SLOT_BYTES, SLOT_MAGIC } from './thread-slot.js';
import { warningCount } from './warn.js';

export { QUEUE_CAPACITY, SLOT_BYTES, SLOT_MAGIC };
export { trackedCalls } from './context-tracker.js';
export { MAX_CAPTURE_CHARS, toBoundedJson } from './serialize.js';

export interface SdkState {
  socketPath: string;
  /** OS thread id this instance reports in `start` frames. */
  tid: number;
  connected: boolean;
  welcomed: boolean;
  /** The slot is registered on the current, welcomed connection. */
  slotRegistered: boolean;
  /** Registration writes made by this thread so far. */
  slotRegistrations: number;
  /** Connections that got `welcome` so far. */
  welcomes: number;
  framesSent: number;
  framesDropped: number;
  endsSuppressed: number;
  queueLength: number;
  queueCapacity: number;
  /** AgentraceWarnings emitted by this thread. */
  warnings: number;
}

/** This thread's SDK state (starts connecting if nothing did yet). */
export function state(): SdkState {
  const s = sidecar().stats();
  return {
    socketPath: currentSocketPath(),
    tid: threadId(),
    connected: s.connected,
    welcomed: s.welcomed,
    slotRegistered: slotRegistered(),
    slotRegistrations: slot.registrations,
    welcomes: s.welcomes,
    framesSent: s.framesSent,
    framesDropped: s.framesDropped,
    endsSuppressed: s.endsSuppressed,
    queueLength: s.queueLength,
    queueCapacity: s.queueCapacity,
    warnings: warningCount(),
  };
}

/**
 * Resolves true once this thread's connection got `welcome` and its slot is
 * registered; false after timeoutMs. Starts connecting if nothing did yet.
 */
export async function whenReady(timeoutMs: number): Promise<boolean> {
  return ready(timeoutMs);
}

/** A copy of this thread's 32-byte slot as the kernel would read it now. */
export function slotBytes(): Buffer {
  return Buffer.from(slot.buffer);
}

/**
 * Test hook: make registration writes go to `path` (opened O_APPEND|O_CREAT)
 * instead of /dev/null, so a test can read what was written; undefined
 * restores /dev/null.
 */
export function setSlotSink(path: string | undefined): void {
  slot.setSink(path);
}
