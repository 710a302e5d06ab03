// @agentrace/sdk/internal: state of this thread's SDK instance, for tests
// and the sidecar's integration tests. An agent never needs it.
import { QUEUE_CAPACITY, type SidecarClientStats } from './sidecar-client.js';
import { currentSocketPath, sidecar, slot, slotRegistered, threadId } from './runtime.js';
import { warningCount } from './warn.js';

export { QUEUE_CAPACITY };
export { trackedCalls, trackingEnabled } from './context-tracker.js';
/** Whether the kernel reads this thread's calls from its V8 async context (its registration was proved; no async hook). */
export { kernelReadsFrames } from './call-records.js';
export { MAX_CAPTURE_CHARS, toBoundedJson } from './serialize.js';

/** This thread's connection state (see SidecarClientStats) plus its slot and warnings. */
export interface SdkState extends Omit<SidecarClientStats, 'closed' | 'generation'> {
  socketPath: string;
  /** OS thread id this instance reports in `start` frames. */
  tid: number;
  /** The slot is registered on the current, welcomed connection. */
  slotRegistered: boolean;
  /** Registration writes made by this thread so far. */
  slotRegistrations: number;
  /** AgentraceWarnings emitted by this thread. */
  warnings: number;
}

/** This thread's SDK state (starts connecting if nothing did yet). */
export function state(): SdkState {
  const { closed: _closed, generation: _generation, ...client } = sidecar().stats();
  return {
    ...client,
    socketPath: currentSocketPath(),
    tid: threadId(),
    slotRegistered: slotRegistered(),
    slotRegistrations: slot.registrations,
    warnings: warningCount(),
  };
}

/** Same as the public ready(), under the name the tests use. */
export { ready as whenReady } from './runtime.js';

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

/** The context manager the SDK registers when the app has none (tested against the library's behaviour). */
export { AsyncLocalStorageContextManager } from './context-manager.js';
