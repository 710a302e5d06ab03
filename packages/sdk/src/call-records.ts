// Each tool call's record in V8's async context, where the kernel reads it.
//
// On Node with AsyncContextFrame (24+; 22 and 23 with
// --experimental-async-context-frame), AsyncLocalStorage stores live in the
// isolate's continuation-preserved embedder data, which V8 itself swaps on
// every continuation. A call runs inside this storage with its record (an
// OTEP 4947 record and a tag, in a Buffer whose bytes never move), and the
// kernel walks thread -> isolate -> frame -> this storage's store -> record
// at syscall time (the frame rung, packages/bpf/src/bpf/frame.bpf.h): no
// JavaScript runs per await, so the async hook of context-tracker.ts stays
// off on every thread whose registration the kernel proved.
//
// Elsewhere (Node 20, or AsyncContextFrame turned off) nothing here runs:
// an AsyncLocalStorage on async_hooks would cost more than the hook it
// replaces.
import { AsyncLocalStorage } from 'node:async_hooks';
import { CALL_RECORD_BYTES, CALL_RECORD_TAG, CALL_RECORD_TAG_OFFSET, FRAME_KEY_TAG, SLOT_LAYOUT } from '@agentrace/protocol';
import { RAW_ID_BYTES } from './ids.js';

function flagged(flag: string): boolean {
  const options = process.env.NODE_OPTIONS ?? '';
  return process.execArgv.includes(flag) || options.split(/\s+/).includes(flag);
}

/** Whether AsyncLocalStorage is built on AsyncContextFrame in this process. */
export const contextFrames: boolean = (() => {
  if (flagged('--no-async-context-frame') || flagged('--no-experimental-async-context-frame')) return false;
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 24) return true;
  return major >= 22 && flagged('--experimental-async-context-frame');
})();

// The field the kernel tells this storage by among a frame's others (the
// object moves with the GC; its own fields do not change).
class CallStorage extends AsyncLocalStorage<Buffer | undefined> {
  readonly agentraceTag: number = FRAME_KEY_TAG;
}

const storage: CallStorage | undefined = contextFrames ? new CallStorage() : undefined;

/** A call's record: its ids, trace flags and tool word, then the tag (struct ar_call_record). */
export function newCallRecord(raw: Uint8Array, flags: number, tool: number): Buffer {
  // Its own allocation (off the V8 heap: its address is fixed): the record
  // lives as long as some context still holds the call.
  const b = Buffer.allocUnsafeSlow(CALL_RECORD_BYTES).fill(0);
  b.set(raw.subarray(0, RAW_ID_BYTES), SLOT_LAYOUT.trace_id);
  b[SLOT_LAYOUT.trace_flags] = flags;
  b.writeUInt32LE(tool >>> 0, SLOT_LAYOUT.tool);
  b.write(CALL_RECORD_TAG, CALL_RECORD_TAG_OFFSET, 'latin1');
  b[SLOT_LAYOUT.valid] = 1;
  return b;
}

/** The call's tool word changed (the policy's patterns did). */
export function setRecordTool(record: Buffer, tool: number): void {
  record.writeUInt32LE(tool >>> 0, SLOT_LAYOUT.tool);
}

/**
 * Runs fn with `record` as the running call's (undefined: no call's) in
 * the async context it and its continuations run in. Without
 * AsyncContextFrame, runs fn as it is.
 */
export function runWithRecord<A extends unknown[], R>(record: Buffer | undefined, fn: (this: unknown, ...args: A) => R, thisArg?: unknown, ...args: A): R {
  if (storage === undefined) return fn.apply(thisArg, args);
  if (thisArg === undefined) return storage.run(record, fn, ...args);
  return storage.run(record, () => fn.apply(thisArg, args));
}

let framesRead = false;

/** Whether the kernel reads this thread's calls from its async context (the async hook is then not needed). */
export function kernelReadsFrames(): boolean {
  return framesRead;
}

/** The sidecar said whether the kernel proved the frame rung for this thread. */
export function setKernelReadsFrames(on: boolean): void {
  framesRead = on && contextFrames;
}
