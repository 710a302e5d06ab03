// Keeps this thread's slot equal to the tool call of the async context that
// is running, so parallel tool calls in one thread are told apart by the
// kernel. async_hooks' before/after callbacks see the context of the
// callback about to run (on Node 20 through async_hooks, on Node 24 through
// AsyncContextFrame: both verified, see PLATFORM.md). The hook costs a few
// hundred ns per callback, so it is enabled only while a tool call is in
// flight (and until the next turn of the loop) and a sidecar reads the slot;
// otherwise switches cost nothing. On a thread whose calls the kernel reads
// from V8's async context (call-records.ts) the hook is never on.
import { AsyncResource, createHook } from 'node:async_hooks';
import { context, createContextKey } from '@opentelemetry/api';
import { onKernelReadsFrames, slot, slotMayBeRead } from './runtime.js';
import type { SlotSpan } from './thread-slot.js';
import { followHttpRequests } from './http-requests.js';
import { kernelReadsFrames, setKernelReadsFrames } from './call-records.js';

/** The context entry naming the tool call a context belongs to. */
export const TOOL_CALL_KEY: symbol = createContextKey('@agentrace/sdk tool call');

let inFlight = 0;
let enabled = false;
let disableScheduled = false;

function follow(): void {
  // A callback in the context of a call that has ended (a timer it left
  // behind) is still that call's doing, as a child process it forked is.
  // Pooled connections, whose callbacks run in the context of whichever call
  // opened them, are handled where their requests are written
  // (http-requests.ts) and by the kernel's descriptor ownership.
  const call = context.active().getValue(TOOL_CALL_KEY) as SlotSpan | undefined;
  if (call === slot.span) return;
  if (call) slot.set(call);
  else slot.clear();
}

// Callbacks nest (a callback run in another call's scope, inside a callback
// of this one): `before` remembers what the slot held, `after` puts it back,
// rather than asking the context in `after`, which Node 20 has not switched
// back yet at that point.
const saved: Array<SlotSpan | undefined> = [];

function before(): void {
  // A callback that threw never gets its after: do not let that grow the stack.
  if (saved.length > 1024) saved.length = 0;
  saved.push(slot.span);
  follow();
}

function after(): void {
  if (saved.length === 0) return follow();
  slot.restore(saved.pop());
}

const hook = createHook({ before, after });

// Pooled HTTP requests written from another call's callbacks: see http-requests.ts.
followHttpRequests(TOOL_CALL_KEY, () => enabled || (inFlight > 0 && kernelReadsFrames()));

// On AsyncContextFrame (Node 24's AsyncLocalStorage), runInAsyncScope emits
// `before` ahead of switching the context, so the hook sees the caller's
// call there. For those scopes, the function run inside is wrapped to take
// the slot from the context it really runs in. Only while a tool call is in
// flight; everything else passes straight through.
const contextFrames =
  Number(process.versions.node.split('.')[0]) >= 24 && !process.execArgv.includes('--no-async-context-frame');
if (contextFrames) {
  type ScopeFn = (this: unknown, ...args: unknown[]) => unknown;
  type RunInAsyncScope = (this: AsyncResource, fn: ScopeFn, thisArg?: unknown, ...args: unknown[]) => unknown;
  const proto = AsyncResource.prototype as unknown as { runInAsyncScope: RunInAsyncScope };
  const original = proto.runInAsyncScope;
  proto.runInAsyncScope = function runInAsyncScope(fn, thisArg, ...args) {
    if (!enabled) return original.call(this, fn, thisArg, ...args);
    const inScope: ScopeFn = function (...a) {
      const prev = slot.span;
      follow();
      try {
        return fn.apply(this, a);
      } finally {
        slot.restore(prev);
      }
    };
    return original.call(this, inScope, thisArg, ...args);
  };
}

/**
 * A tool call started: from now on the slot follows context switches, if a
 * kernel may read it (the slot is registered and a sidecar answered or is
 * being connected to); with no sidecar nobody would, and the hook would be
 * pure cost.
 */
export function trackingStarted(): void {
  inFlight++;
  if (!enabled && slotMayBeRead() && !kernelReadsFrames()) {
    hook.enable();
    enabled = true;
  }
}

/**
 * A tool call ended. With none left the slot is emptied at once, and the
 * hook goes off on the next turn of the event loop: tools called one after
 * another would otherwise pay for enabling and disabling it every call.
 */
export function trackingEnded(): void {
  if (inFlight === 0) return;
  if (--inFlight > 0) return;
  slot.clear();
  if (disableScheduled) return;
  disableScheduled = true;
  setImmediate(disableIfIdle).unref();
}

function disableIfIdle(): void {
  disableScheduled = false;
  if (inFlight > 0 || !enabled) return;
  hook.disable();
  enabled = false;
  saved.length = 0;
  slot.clear();
}

/**
 * The kernel proved that it reads this thread's calls from its async
 * context: the hook goes off for good, and the slot is emptied (from now on
 * it only overrides the context where the SDK must: its own I/O, a pooled
 * request written for another call).
 */
export function framesConfirmed(): void {
  setKernelReadsFrames(true);
  if (!kernelReadsFrames()) return;
  if (enabled) {
    hook.disable();
    enabled = false;
  }
  saved.length = 0;
  slot.clear();
}

onKernelReadsFrames(framesConfirmed);

/** Whether the hook is on now (for tests). */
export function trackingEnabled(): boolean {
  return enabled;
}

/** Tool calls being tracked now (for tests). */
export function trackedCalls(): number {
  return inFlight;
}
