// traceTool(name, fn): one OpenTelemetry span per call of a tool, following
// the GenAI semantic conventions, published to this thread's slot while fn
// runs (its synchronous part here, its async continuations through
// context-tracker.ts) and announced to the sidecar with start/end frames.
import {
  context,
  isSpanContextValid,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Context,
  type Exception,
  type Span,
  type SpanContext,
  type SpanStatus,
} from '@opentelemetry/api';
import { now } from './clock.js';
import { idsFromHex, randomIds, spanIdFromHex } from './ids.js';
import { appTracer, ensureContextManager } from './otel.js';
import type { Attrs, SpanStartMessage, WireTime } from '@agentrace/protocol';
import { onToolPatterns, toolKey, toolKeyVersion } from './tool-key.js';
import { contextFrames, kernelReadsFrames, newCallRecord, runWithRecord, setRecordTool } from './call-records.js';
import { sidecar, slot, slotRegistered, threadId } from './runtime.js';
import { NOT_SENT } from './sidecar-client.js';
import { toBoundedJson } from './serialize.js';
import type { SlotSpan } from './thread-slot.js';
import { ToolSpan } from './tool-span.js';
import { TOOL_CALL_KEY, trackingEnded, trackingStarted } from './context-tracker.js';

/** Any function; `this` and parameters are kept by traceTool. */
export type ToolFunction = (this: never, ...args: never[]) => unknown;

export type CaptureKind = 'arguments' | 'result';

/**
 * Options of traceTool. F is the wrapped function's type (it types callId's
 * arguments); the default accepts any arguments, so options declared apart
 * from a tool fit every tool.
 */
export interface TraceToolOptions<F extends ToolFunction = (...args: unknown[]) => unknown> {
  /** gen_ai.tool.type: 'function' (default), 'extension' or 'datastore'. */
  type?: string;
  /** gen_ai.tool.description. */
  description?: string;
  /** gen_ai.tool.call.id: a fixed string or computed from the call's arguments. */
  callId?: string | ((...args: Parameters<F>) => string | undefined);
  /** Record gen_ai.tool.call.arguments (JSON, after mask). Default false. */
  captureArguments?: boolean;
  /** Record gen_ai.tool.call.result (JSON, after mask; the settled value for promises). Default false. */
  captureResult?: boolean;
  /**
   * Rewrites a captured value before it is serialized (default: unchanged).
   * For 'arguments' it gets the single argument, or the argument array when
   * the tool was called with another number of arguments. If it throws, the
   * attribute is left out.
   */
  mask?: (value: unknown, kind: CaptureKind) => unknown;
}

const ATTR_OPERATION = 'gen_ai.operation.name';
const ATTR_TOOL_NAME = 'gen_ai.tool.name';
const ATTR_TOOL_TYPE = 'gen_ai.tool.type';
const ATTR_TOOL_DESCRIPTION = 'gen_ai.tool.description';
const ATTR_CALL_ID = 'gen_ai.tool.call.id';
const ATTR_ARGUMENTS = 'gen_ai.tool.call.arguments';
const ATTR_RESULT = 'gen_ai.tool.call.result';
const ATTR_ERROR_TYPE = 'error.type';

interface ToolDef {
  readonly fn: (...args: unknown[]) => unknown;
  readonly spanName: string;
  readonly attrs: Attrs;
  readonly options: TraceToolOptions;
}

/** One call in flight. It is what the slot holds while fn (or one of its continuations) runs. */
export interface ToolCall extends SlotSpan {
  readonly raw: Buffer;
  readonly flags: number;
  readonly span: Span;
  /** Connection generation the start frame went to (or NOT_SENT). */
  readonly gen: number;
  /** gen_ai.tool.name (or what the call is about, for calls other than tools). */
  readonly toolName: string;
  /** Its tool word (tool-key.ts): what the thread slot tells the kernel's policy. */
  tool: number;
  toolVersion: number;
  ctx: Context;
  /** Set by the first endCall: a thenable that settles twice ends the span once. */
  ended: boolean;
  /** Its record in V8's async context, where the kernel reads it (call-records.ts); absent without AsyncContextFrame. */
  readonly record?: Buffer;
  /** Its entry in `recorded`, while it runs. */
  recordedAs?: WeakRef<ToolCall>;
}

/**
 * Calls in flight with a record: keyed again when the policy's patterns
 * change. Weakly: a call whose promise never settles and that nothing holds
 * any more is not kept alive by this (its entry goes at the next sweep).
 */
const recorded = new Set<WeakRef<ToolCall>>();
const SWEEP_AT = 4096;

function rekeyRecords(): void {
  for (const ref of recorded) {
    const call = ref.deref();
    if (!call) {
      recorded.delete(ref);
      continue;
    }
    call.tool = toolKey(call.toolName);
    call.toolVersion = toolKeyVersion();
    setRecordTool(call.record!, call.tool);
  }
}
onToolPatterns(rekeyRecords);

function remember(call: ToolCall): void {
  if (recorded.size >= SWEEP_AT) for (const ref of recorded) if (!ref.deref()) recorded.delete(ref);
  call.recordedAs = new WeakRef(call);
  recorded.add(call.recordedAs);
}

/**
 * Runs fn in the call's context: its OpenTelemetry context, its record in
 * V8's async context, and (where the kernel does not read that) its span in
 * this thread's slot for fn's synchronous part.
 */
function inCall<T>(call: ToolCall, fn: () => T): T {
  const useSlot = !kernelReadsFrames();
  const prev = useSlot ? slot.set(call) : undefined;
  try {
    return runWithRecord(call.record, () => context.with(call.ctx, fn));
  } finally {
    if (useSlot) slot.restore(prev);
  }
}

/**
 * Wraps a tool function: every call becomes a span `execute_tool {name}`
 * (kind INTERNAL) that is active while fn runs and ends when its result
 * settles. Return values, `this` and thrown errors pass through unchanged;
 * a native promise result is replaced by one chained to it that settles the
 * same way. Tracing problems never reach the caller.
 */
export function traceTool<F extends ToolFunction>(name: string, fn: F, options: TraceToolOptions<NoInfer<F>> = {}): F {
  const attrs: Attrs = {
    [ATTR_OPERATION]: 'execute_tool',
    [ATTR_TOOL_NAME]: String(name),
    [ATTR_TOOL_TYPE]: options.type ?? 'function',
  };
  if (options.description !== undefined) attrs[ATTR_TOOL_DESCRIPTION] = String(options.description);
  const tool: ToolDef = {
    fn: fn as unknown as (...args: unknown[]) => unknown,
    spanName: `execute_tool ${name}`,
    attrs,
    options: options as TraceToolOptions,
  };
  // Connect now: tools are wrapped at startup, so the slot is usually
  // registered before the first call.
  try {
    sidecar();
  } catch {
    // the client reports its own problems
  }
  const wrapped = function (this: unknown, ...args: unknown[]): unknown {
    return invoke(tool, this, args);
  };
  Object.defineProperty(wrapped, 'name', { value: fn.name, configurable: true });
  Object.defineProperty(wrapped, 'length', { value: fn.length, configurable: true });
  return wrapped as unknown as F;
}

function invoke(tool: ToolDef, thisArg: unknown, args: unknown[]): unknown {
  let call: ToolCall | undefined;
  try {
    call = startCall(tool, args);
  } catch {
    call = undefined;
  }
  if (!call) return tool.fn.apply(thisArg, args);

  let result: unknown;
  try {
    result = inCall(call, () => tool.fn.apply(thisArg, args));
  } catch (err) {
    endCall(tool, call, true, err);
    throw err;
  }

  let then: unknown;
  try {
    then = isObjectLike(result) ? (result as { then?: unknown }).then : undefined;
  } catch {
    then = undefined;
  }
  if (typeof then !== 'function') {
    endCall(tool, call, false, result);
    return result;
  }
  const c = call;
  const onFulfilled = (value: unknown): unknown => {
    endCall(tool, c, false, value);
    return value;
  };
  const onRejected = (err: unknown): never => {
    endCall(tool, c, true, err);
    throw err;
  };
  if (result instanceof Promise) {
    // A chained promise keeps unhandled-rejection reporting as it was.
    return result.then(onFulfilled, onRejected);
  }
  // Another thenable: observe it and hand back the same object.
  try {
    (then as (ok: (v: unknown) => void, fail: (e: unknown) => void) => unknown).call(
      result,
      (v: unknown) => void endCall(tool, c, false, v),
      (e: unknown) => void endCall(tool, c, true, e),
    );
  } catch (err) {
    endCall(tool, c, true, err);
  }
  return result;
}

function isObjectLike(v: unknown): boolean {
  return (typeof v === 'object' && v !== null) || typeof v === 'function';
}

/** The parent of a new tool span: raw ids and flags, from our own span without formatting hex. */
interface Parent {
  readonly trace: Uint8Array;
  readonly span: Uint8Array;
  readonly flags: number;
  readonly traceState: SpanContext['traceState'];
  readonly spanIdHex: () => string;
  readonly traceIdHex: string | undefined;
}

function parentOf(parentCtx: Context): Parent | undefined {
  const span = trace.getSpan(parentCtx);
  if (span === undefined) return undefined;
  if (span instanceof ToolSpan) {
    return {
      trace: span.raw.subarray(0, 16),
      span: span.raw.subarray(16, 24),
      flags: span.flags,
      traceState: span.state,
      spanIdHex: () => span.spanContext().spanId,
      traceIdHex: undefined,
    };
  }
  const sc = span.spanContext();
  if (!isSpanContextValid(sc)) return undefined;
  return {
    trace: Buffer.from(sc.traceId, 'hex'),
    span: spanIdFromHex(sc.spanId),
    flags: sc.traceFlags,
    traceState: sc.traceState,
    spanIdHex: () => sc.spanId,
    traceIdHex: sc.traceId,
  };
}

function startCall(tool: ToolDef, args: unknown[]): ToolCall {
  let attrs = tool.attrs;
  const opts = tool.options;
  if (opts.callId !== undefined || opts.captureArguments) {
    attrs = { ...attrs };
    if (opts.callId !== undefined) {
      const id = callIdOf(opts.callId, args);
      if (id !== undefined) attrs[ATTR_CALL_ID] = id;
    }
    if (opts.captureArguments) {
      const json = capture(opts, args.length === 1 ? args[0] : args, 'arguments');
      if (json !== undefined) attrs[ATTR_ARGUMENTS] = json;
    }
  }
  return openCall(tool.spanName, SpanKind.INTERNAL, attrs, String(tool.attrs[ATTR_TOOL_NAME]), context.active());
}

/** Starts a call's span (the app's tracer or our own), announces it to the sidecar, and makes its context. */

function openCall(spanName: string, kind: SpanKind, attrs: Attrs, toolName: string, parentCtx: Context): ToolCall {
  ensureContextManager();
  const client = sidecar();
  const parent = parentOf(parentCtx);
  const start = now();

  let span: Span | undefined;
  let raw: Buffer | undefined;
  let flags = 0;
  let own = false;
  const tracer = appTracer();
  if (tracer) {
    const s = tracer.startSpan(spanName, { kind, attributes: attrs, startTime: start }, parentCtx);
    const sc = s.spanContext();
    // A no-op tracer gives back the parent's (or an invalid) context: then we make our own.
    if (isSpanContextValid(sc) && (parent === undefined || sc.spanId !== parent.spanIdHex())) {
      span = s;
      raw = idsFromHex(sc.traceId, sc.spanId);
      flags = sc.traceFlags;
    }
  }
  if (!span || !raw) {
    raw = randomIds(parent?.trace);
    flags = parent ? parent.flags : TraceFlags.SAMPLED;
    span = new ToolSpan(raw, flags, parent?.traceState, spanName, parent?.traceIdHex);
    own = true;
  }

  let gen = NOT_SENT;
  if (client.acceptsStart()) {
    const msg: SpanStartMessage = {
      t: 'start',
      tid: threadId(),
      trace: raw.subarray(0, 16),
      span: raw.subarray(16, 24),
      name: spanName,
      kind,
      start,
      attrs,
      flags,
      export: own && (flags & TraceFlags.SAMPLED) !== 0,
    };
    if (parent) msg.parent = parent.span;
    if (slotRegistered()) msg.slot = true;
    gen = client.sendStart(msg);
  } else {
    client.countDropped();
  }
  const tool = toolKey(toolName);
  const call: ToolCall = { raw, flags, span, gen, toolName, tool, toolVersion: toolKeyVersion(), ctx: parentCtx, ended: false, ...(contextFrames ? { record: newCallRecord(raw, flags, tool) } : {}) };
  call.ctx = trace.setSpan(parentCtx, span).setValue(TOOL_CALL_KEY, call);
  if (call.record) remember(call);
  trackingStarted();
  return call;
}

/**
 * A call whose start and end are seen apart (an MCP request and its
 * response), traced as traceTool traces a function: its span is in the
 * thread slot while code runs in its context (runInCall, and every
 * continuation of that), and announced to the sidecar. Undefined when no
 * span could be started. Never throws.
 */
export function beginCall(spanName: string, kind: SpanKind, attrs: Attrs, toolName: string, parentCtx: Context = context.active()): ToolCall | undefined {
  try {
    return openCall(spanName, kind, attrs, toolName, parentCtx);
  } catch {
    return undefined;
  }
}

/** Runs fn in the call's context (and, for fn's synchronous part, its span in this thread's slot where needed). */
export function runInCall<T>(call: ToolCall, fn: () => T): T {
  return inCall(call, fn);
}

/**
 * Ends a call begun with beginCall: with `error` (even undefined), as a
 * failed traceTool call (the exception, error.type, ERROR status); with
 * `failed` alone, ERROR with no exception; `attrs` are added either way
 * (error.type among them overrides). Once; never throws.
 */
export function finishCall(call: ToolCall, outcome: { error?: unknown; failed?: boolean; attrs?: Attrs; message?: string } = {}): void {
  const thrown = 'error' in outcome;
  endCall(undefined, call, outcome.failed === true || thrown, outcome.error, outcome.attrs, outcome.message, !thrown);
}

/**
 * Runs fn as no call's work: the slot empty and the root context, so what it
 * starts (a process it forks, the callbacks it leaves) belongs to no call,
 * even when it runs inside one (a long-lived server started lazily by the
 * first tool call that needs it).
 */
export function outsideCalls<T>(fn: () => T): T {
  const prev = slot.clear();
  try {
    return runWithRecord(undefined, () => context.with(ROOT_CONTEXT, fn));
  } finally {
    slot.restore(prev);
  }
}

/** The traced call whose context `ctx` is (traceTool's, an integration's or beginCall's), if any. */
export function activeCall(ctx: Context = context.active()): ToolCall | undefined {
  return ctx.getValue(TOOL_CALL_KEY) as ToolCall | undefined;
}

/** `noError`: a call failed with nothing thrown (a JSON-RPC error, a tool result flagged isError), no exception to record. */
function endCall(tool: ToolDef | undefined, call: ToolCall, failed: boolean, value: unknown, extra?: Attrs, statusMessage?: string, noError = false): void {
  if (call.ended) return;
  call.ended = true;
  if (call.recordedAs) recorded.delete(call.recordedAs);
  trackingEnded();
  try {
    const end: WireTime = now();
    const span = call.span;
    const added: Attrs = {};
    let status: SpanStatus = { code: SpanStatusCode.UNSET };
    if (failed) {
      const message = statusMessage ?? (noError ? undefined : errorMessage(value));
      added[ATTR_ERROR_TYPE] = noError ? '_OTHER' : errorType(value);
      status = message === undefined ? { code: SpanStatusCode.ERROR } : { code: SpanStatusCode.ERROR, message };
      if (!noError) {
        try {
          span.recordException(toException(value));
        } catch {
          // an app span processor's problem is not the agent's
        }
      }
    } else if (tool?.options.captureResult) {
      const json = capture(tool.options, value, 'result');
      if (json !== undefined) added[ATTR_RESULT] = json;
    }
    if (extra) Object.assign(added, extra);
    span.setAttributes(added);
    if (failed) span.setStatus(status);
    span.end(end);

    let attrs = added;
    if (span instanceof ToolSpan) {
      attrs = span.lateAttrs;
      status = span.status;
    }
    sidecar().sendEnd({ t: 'end', span: call.raw.subarray(16, 24), end, status, attrs }, call.gen);
  } catch {
    // never into the agent
  }
}

function callIdOf(option: NonNullable<TraceToolOptions['callId']>, args: unknown[]): string | undefined {
  if (typeof option === 'string') return option;
  try {
    const id = (option as (...a: unknown[]) => unknown)(...args);
    return id === undefined || id === null ? undefined : String(id);
  } catch {
    return undefined;
  }
}

function capture(opts: TraceToolOptions, value: unknown, kind: CaptureKind): string | undefined {
  let masked: unknown;
  try {
    masked = opts.mask ? opts.mask(value, kind) : value;
  } catch {
    return undefined;
  }
  return toBoundedJson(masked);
}

/** error.type: the error's code when it has a string one (ENOENT, ...), else its class name, else "_OTHER". */
export function errorType(err: unknown): string {
  if (isObjectLike(err)) {
    try {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && code !== '') return code;
      const ctor = (err as { constructor?: { name?: unknown } }).constructor?.name;
      if (typeof ctor === 'string' && ctor !== '' && ctor !== 'Object') return ctor;
      const name = (err as { name?: unknown }).name;
      if (typeof name === 'string' && name !== '') return name;
    } catch {
      // a hostile getter: fall through
    }
  }
  return '_OTHER';
}

function errorMessage(err: unknown): string | undefined {
  try {
    if (isObjectLike(err)) {
      const m = (err as { message?: unknown }).message;
      return typeof m === 'string' ? m : undefined;
    }
    return String(err);
  } catch {
    return undefined;
  }
}

function toException(err: unknown): Exception {
  if (isObjectLike(err)) return err as Exception;
  return String(err);
}
