// Keeps this thread's slot equal to the tool call of the async context that
// is running, so parallel tool calls in one thread are told apart by the
// kernel. async_hooks' before/after callbacks see the context of the
// callback about to run (on Node 20 through async_hooks, on Node 24 through
// AsyncContextFrame: both verified, see PLATFORM.md). The hook costs a few
// hundred ns per callback, so it is enabled only while a tool call is in
// flight (and until the next turn of the loop); with none, switches cost
// nothing.
import { createHook } from 'node:async_hooks';
import { context, createContextKey } from '@opentelemetry/api';
import { slot } from './runtime.js';
import type { SlotSpan } from './thread-slot.js';

/** The context entry naming the tool call a context belongs to. */
export const TOOL_CALL_KEY: symbol = createContextKey('@agentrace/sdk tool call');

let inFlight = 0;
let enabled = false;
let disableScheduled = false;

function follow(): void {
  const call = context.active().getValue(TOOL_CALL_KEY) as SlotSpan | undefined;
  if (call === slot.span) return;
  if (call) slot.set(call);
  else slot.clear();
}

const hook = createHook({ before: follow, after: follow });

/** A tool call started: from now on the slot follows context switches. */
export function trackingStarted(): void {
  inFlight++;
  if (!enabled) {
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
  slot.clear();
}

/** Tool calls being tracked now (for tests). */
export function trackedCalls(): number {
  return inFlight;
}
