// Which call a pooled HTTP request belongs to while its bytes are written.
// undici (global fetch, Pool, Agent) writes a request when its connection
// can take it, often from inside a callback of another call: the first
// pipelined request's dispatch writes the second one too, the previous
// response's callback writes the next queued request. The slot would then
// name that other call, and the kernel would count the request, and hand
// the connection and the response read on it, to the wrong call. undici's
// diagnostics channels say which request is written: a request is created
// in its caller's context (`undici:request:create`);
// `undici:client:sendHeaders` is published synchronously just before its
// bytes are written and `undici:request:bodySent` once they are. In between
// the slot names the request's own call (or no call), so the connection
// passes to the call that asked, and a connection that carries two calls'
// requests at once is seen as such (and flagged ambiguous) by the kernel.
// A request created outside any call's context (the agent's own, or one an
// undici Pool queued itself while all its connections were busy, which
// loses its caller's context) is written as nobody's (the slot says so to
// the kernel): counted for nobody rather than for the wrong call, and when
// it is pipelined behind a call's unanswered request, that call's I/O is
// flagged ambiguous.
import diagnostics_channel from 'node:diagnostics_channel';
import { context } from '@opentelemetry/api';
import { slot } from './runtime.js';
import { NOBODY, type SlotSpan } from './thread-slot.js';

interface RequestMessage {
  request: object;
}

/** The call each request was made in; requests made outside any call are not kept. */
const callOf = new WeakMap<object, SlotSpan>();
/** While a request's bytes are written: what the slot held before, and what it was set to. */
const writing = new WeakMap<object, { prev: SlotSpan | undefined; set: SlotSpan }>();

let key: symbol | undefined;
let active: () => boolean = () => false;

/**
 * Starts following undici's requests (once). `toolCallKey` is the context
 * entry naming the running call; `tracking` says whether the slot is kept
 * current now (calls in flight, a sidecar reading): otherwise nothing is done.
 */
export function followHttpRequests(toolCallKey: symbol, tracking: () => boolean): void {
  if (key !== undefined) return;
  key = toolCallKey;
  active = tracking;
  diagnostics_channel.subscribe('undici:request:create', onCreate);
  diagnostics_channel.subscribe('undici:client:sendHeaders', onSendHeaders);
  diagnostics_channel.subscribe('undici:request:bodySent', onBodySent);
}

function onCreate(message: unknown): void {
  if (!active()) return;
  const request = (message as RequestMessage).request;
  const call = context.active().getValue(key!) as SlotSpan | undefined;
  if (call && !call.ended) callOf.set(request, call);
}

function onSendHeaders(message: unknown): void {
  if (!active()) return;
  const request = (message as RequestMessage).request;
  let call = callOf.get(request);
  if (call?.ended) call = undefined;
  const next = call ?? NOBODY;
  const prev = slot.span;
  if (next === prev) return;
  writing.set(request, { prev, set: next });
  slot.set(next);
}

function onBodySent(message: unknown): void {
  const request = (message as RequestMessage).request;
  callOf.delete(request);
  const w = writing.get(request);
  if (!w) return;
  writing.delete(request);
  // Only if nothing switched the slot since (a body streamed over several
  // callbacks: the context tracker has set it for each of them).
  if (slot.span === w.set) slot.restore(w.prev);
}
