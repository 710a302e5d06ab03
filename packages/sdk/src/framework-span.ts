// Spans for an agent framework's own runs (ai.generateText, invoke_agent,
// ...), made by the framework integrations so that the tool spans traceTool
// makes under them have their parents in the same export. With an app
// TracerProvider they go through it, under the framework's own scope name;
// without one they are made like traceTool's own spans (valid random ids,
// set in the OpenTelemetry context) and the sidecar exports them from the
// socket frames. Unlike tool spans they never go into the thread slot: the
// kernel's activity is attributed to tool calls only.
import {
  context,
  isSpanContextValid,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type Exception,
  type Span,
  type TimeInput,
  type Tracer,
} from '@opentelemetry/api';
import { putAttr } from './attributes.js';
import { now } from './clock.js';
import { randomIds } from './ids.js';
import { appTracer, ensureContextManager } from './otel.js';
import type { Attrs, SpanStartMessage, WireTime } from '@agentrace/protocol';
import { sidecar, threadId } from './runtime.js';
import { NOT_SENT } from './sidecar-client.js';
import { ToolSpan } from './tool-span.js';
import { errorType } from './trace-tool.js';

export interface FrameworkSpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  startTime?: TimeInput;
}

/** A span the SDK made itself; its end goes to the sidecar, which exports it. */
class SidecarSpan extends ToolSpan {
  private done = false;

  constructor(
    raw: Buffer,
    flags: number,
    parent: Span | undefined,
    name: string,
    private readonly gen: number,
  ) {
    const sc = parent?.spanContext();
    super(raw, flags, sc?.traceState, name, sc?.traceId);
  }

  override end(endTime?: TimeInput): void {
    if (this.done) return;
    this.done = true;
    // The end frame carries what was set after start; read it before super.end freezes the span.
    const attrs = this.lateAttrs;
    const status = this.status;
    super.end(endTime);
    try {
      const end = endTime === undefined ? now() : toWireTime(endTime);
      sidecar().sendEnd({ t: 'end', span: this.raw.subarray(16, 24), end, status, attrs }, this.gen);
    } catch {
      // never into the agent
    }
  }
}

const scopes = new Map<string, { from: Tracer; tracer: Tracer }>();

/** The app's tracer for `scope`, or undefined when the app registered no TracerProvider. */
function scopeTracer(scope: string): Tracer | undefined {
  // appTracer() notices a provider registered late (and is cached per provider).
  const own = appTracer();
  if (own === undefined) return undefined;
  const hit = scopes.get(scope);
  if (hit && hit.from === own) return hit.tracer;
  const tracer = trace.getTracer(scope);
  scopes.set(scope, { from: own, tracer });
  return tracer;
}

/**
 * Starts a span `name` under the span in `parentCtx` (or a new trace). It
 * is not made active: callers run their code in
 * `trace.setSpan(parentCtx, span)` when it should be. Never throws.
 */
export function startFrameworkSpan(scope: string, name: string, options: FrameworkSpanOptions, parentCtx: Context): Span {
  ensureContextManager();
  const parent = trace.getSpan(parentCtx);
  const parentSc = parent?.spanContext();
  const validParent = parentSc !== undefined && isSpanContextValid(parentSc) ? parent : undefined;
  const kind = options.kind ?? SpanKind.INTERNAL;
  try {
    const tracer = scopeTracer(scope);
    if (tracer) {
      const s = tracer.startSpan(name, { kind, attributes: options.attributes, startTime: options.startTime }, parentCtx);
      const sc = s.spanContext();
      // A no-op tracer hands back the parent's (or an invalid) context: then we make our own.
      if (isSpanContextValid(sc) && sc.spanId !== parentSc?.spanId) return s;
    }
  } catch {
    // the app's tracer failed: make our own
  }
  return ownSpan(name, kind, options, validParent);
}

function ownSpan(name: string, kind: SpanKind, options: FrameworkSpanOptions, parent: Span | undefined): Span {
  const psc = parent?.spanContext();
  const raw = randomIds(psc ? Buffer.from(psc.traceId, 'hex') : undefined);
  const flags = psc ? psc.traceFlags : TraceFlags.SAMPLED;
  let gen = NOT_SENT;
  try {
    const client = sidecar();
    if (client.acceptsStart()) {
      const attrs: Attrs = {};
      const count = { n: 0 };
      for (const [k, v] of Object.entries(options.attributes ?? {})) putAttr(attrs, k, v, count);
      const msg: SpanStartMessage = {
        t: 'start',
        tid: threadId(),
        thread: false,
        trace: raw.subarray(0, 16),
        span: raw.subarray(16, 24),
        name,
        kind,
        start: options.startTime === undefined ? now() : toWireTime(options.startTime),
        attrs,
        flags,
        export: (flags & TraceFlags.SAMPLED) !== 0,
      };
      if (psc) msg.parent = Buffer.from(psc.spanId, 'hex');
      gen = client.sendStart(msg);
    } else {
      client.countDropped();
    }
  } catch {
    gen = NOT_SENT;
  }
  return new SidecarSpan(raw, flags, parent, name, gen);
}

/**
 * Ends a framework span with `attrs`, and with its failure when it failed
 * (the exception, error.type as traceTool sets it, ERROR status). Never
 * throws: an app span processor's problem is not the agent's.
 */
export function endFrameworkSpan(span: Span, attrs: Attrs = {}, failure?: { error: unknown }): void {
  try {
    span.setAttributes(attrs);
    if (failure) {
      const err = failure.error;
      span.recordException(typeof err === 'object' && err !== null ? (err as Exception) : String(err));
      const message = (err as { message?: unknown } | null)?.message;
      span.setAttribute('error.type', errorType(err));
      span.setStatus(typeof message === 'string' ? { code: SpanStatusCode.ERROR, message } : { code: SpanStatusCode.ERROR });
    }
  } catch {
    // an app span processor's problem is not the agent's
  }
  try {
    span.end();
  } catch {
    // same
  }
}

/** Runs fn with `span` active in a context derived from parentCtx. */
export function withSpan<T>(parentCtx: Context, span: Span, fn: () => T): T {
  return context.with(trace.setSpan(parentCtx, span), fn);
}

/** OpenTelemetry's TimeInput as [seconds, nanoseconds] since the epoch. */
export function toWireTime(t: TimeInput): WireTime {
  if (Array.isArray(t)) return [t[0], t[1]];
  let ms = t instanceof Date ? t.getTime() : t;
  // As in the OTel SDK: a number below timeOrigin is a performance.now() reading.
  if (ms < performance.timeOrigin) ms += performance.timeOrigin;
  const s = Math.trunc(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}
