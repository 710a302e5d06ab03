// W3C trace context in an MCP request's params._meta (the MCP semantic
// conventions: unprefixed `traceparent`, `tracestate`, `baggage`). Through the
// app's configured propagators when it has any; W3C trace context written
// and read here otherwise, so that a client and a server with no
// OpenTelemetry SDK of their own still share one trace.
import {
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  trace,
  TraceFlags,
  type Context,
  type SpanContext,
} from '@opentelemetry/api';

export type Meta = Record<string, unknown>;

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** Writes the context's span into `meta` (which it returns). */
export function injectInto(ctx: Context, meta: Meta): Meta {
  try {
    propagation.inject(ctx, meta, {
      set: (carrier, key, value) => {
        (carrier as Meta)[key] = value;
      },
    });
  } catch {
    // the app's propagator failed: ours below
  }
  if (typeof meta.traceparent === 'string') return meta;
  const sc = trace.getSpanContext(ctx);
  if (sc === undefined || !isSpanContextValid(sc)) return meta;
  meta.traceparent = `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
  const state = sc.traceState?.serialize();
  if (state) meta.tracestate = state;
  return meta;
}

/** The remote parent `meta` names (ROOT_CONTEXT's child), or undefined when it names none. */
export function extractFrom(meta: unknown): Context | undefined {
  if (typeof meta !== 'object' || meta === null) return undefined;
  const carrier = meta as Meta;
  try {
    const ctx = propagation.extract(ROOT_CONTEXT, carrier, {
      get: (c, key) => {
        const v = (c as Meta)[key];
        return typeof v === 'string' ? v : undefined;
      },
      keys: (c) => Object.keys(c as Meta),
    });
    const sc = trace.getSpanContext(ctx);
    if (sc !== undefined && isSpanContextValid(sc)) return ctx;
  } catch {
    // the app's propagator failed: ours below
  }
  const parent = parseTraceparent(carrier.traceparent);
  return parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : undefined;
}

function parseTraceparent(value: unknown): SpanContext | undefined {
  if (typeof value !== 'string') return undefined;
  const m = TRACEPARENT.exec(value.trim().toLowerCase());
  if (!m) return undefined;
  const sc: SpanContext = { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16) & TraceFlags.SAMPLED, isRemote: true };
  return isSpanContextValid(sc) ? sc : undefined;
}
