// ExportSpan -> ReadableSpan (the input of @opentelemetry/otlp-transformer).
// One Resource object is cached per resource-attributes object, so spans that
// share a resource are grouped under one ResourceSpans by the transformer.
import {
  TraceFlags,
  isValidSpanId,
  isValidTraceId,
  type Attributes,
  type HrTime,
  type SpanContext,
} from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace';
import type { ExportSpan } from './span.js';
import { SCOPE_NAME, SCOPE_VERSION } from './version.js';

const NS_PER_S = 1_000_000_000n;

export const INSTRUMENTATION_SCOPE: InstrumentationScope = Object.freeze({
  name: SCOPE_NAME,
  version: SCOPE_VERSION,
});

const resources = new WeakMap<Attributes, Resource>();

/** The Resource for a resource-attributes object, created once per object. */
export function resourceFor(attributes: Attributes): Resource {
  let resource = resources.get(attributes);
  if (resource === undefined) {
    resource = resourceFromAttributes(cleanAttributes(attributes));
    resources.set(attributes, resource);
  }
  return resource;
}

/** Nanoseconds since the epoch -> [seconds, nanoseconds]. Negative input clamps to 0. */
export function nsToHrTime(ns: bigint): HrTime {
  const n = ns < 0n ? 0n : ns;
  return [Number(n / NS_PER_S), Number(n % NS_PER_S)];
}

/** Drops attributes whose value is undefined or null (the SDK never exports those). */
function cleanAttributes(attributes: Attributes): Attributes {
  const out: Attributes = {};
  for (const [key, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) out[key] = value;
  }
  return out;
}

/** Why a span cannot be exported, or undefined when it can. */
export function invalidReason(span: ExportSpan): string | undefined {
  if (!isValidTraceId(span.traceId)) return `invalid traceId ${JSON.stringify(span.traceId)}`;
  if (!isValidSpanId(span.spanId)) return `invalid spanId ${JSON.stringify(span.spanId)}`;
  if (span.parentSpanId !== undefined && span.parentSpanId !== '' && !isValidSpanId(span.parentSpanId)) {
    return `invalid parentSpanId ${JSON.stringify(span.parentSpanId)}`;
  }
  if (span.endTimeNs < span.startTimeNs) return 'endTimeNs before startTimeNs';
  return undefined;
}

/** Converts one valid span (check it with invalidReason first). */
export function toReadableSpan(span: ExportSpan): ReadableSpan {
  const traceId = span.traceId.toLowerCase();
  const traceFlags = span.traceFlags ?? TraceFlags.SAMPLED;
  const context: SpanContext = { traceId, spanId: span.spanId.toLowerCase(), traceFlags, isRemote: false };
  const parentSpanContext: SpanContext | undefined =
    span.parentSpanId !== undefined && span.parentSpanId !== ''
      ? { traceId, spanId: span.parentSpanId.toLowerCase(), traceFlags, isRemote: false }
      : undefined;
  const events: TimedEvent[] = (span.events ?? []).map((event) => ({
    name: event.name,
    time: nsToHrTime(event.timeNs),
    attributes: event.attributes === undefined ? {} : cleanAttributes(event.attributes),
    droppedAttributesCount: 0,
  }));
  const readable: ReadableSpan = {
    name: span.name,
    kind: span.kind,
    spanContext: () => context,
    startTime: nsToHrTime(span.startTimeNs),
    endTime: nsToHrTime(span.endTimeNs),
    duration: nsToHrTime(span.endTimeNs - span.startTimeNs),
    ended: true,
    status: span.status.message === undefined
      ? { code: span.status.code }
      : { code: span.status.code, message: span.status.message },
    attributes: cleanAttributes(span.attributes),
    links: [],
    events,
    resource: resourceFor(span.resource),
    instrumentationScope: INSTRUMENTATION_SCOPE,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
  return parentSpanContext === undefined ? readable : { ...readable, parentSpanContext };
}
