// Encodes spans as one OTLP ExportTraceServiceRequest with the official
// @opentelemetry/otlp-transformer serializers (binary protobuf, or OTLP/JSON with
// hex ids and string 64-bit timestamps). Metrics get a sibling module later.
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { invalidReason, toReadableSpan } from './readable-span.js';
import type { ExportSpan } from './span.js';

export type OtlpEncoding = 'protobuf' | 'json';

export const CONTENT_TYPES: Readonly<Record<OtlpEncoding, string>> = Object.freeze({
  protobuf: 'application/x-protobuf',
  json: 'application/json',
});

export interface EncodedTraces {
  /** The serialized request; undefined when no span was valid. */
  body: Uint8Array | undefined;
  /** Number of spans in body. */
  count: number;
  /** Spans left out, each with the reason. */
  invalid: { span: ExportSpan; reason: string }[];
}

/** Validates, converts and serializes a batch. Throws only if the serializer does. */
export function encodeTraces(spans: readonly ExportSpan[], encoding: OtlpEncoding): EncodedTraces {
  const readable: ReadableSpan[] = [];
  const invalid: { span: ExportSpan; reason: string }[] = [];
  for (const span of spans) {
    const reason = invalidReason(span);
    if (reason === undefined) readable.push(toReadableSpan(span));
    else invalid.push({ span, reason });
  }
  if (readable.length === 0) return { body: undefined, count: 0, invalid };
  const serializer = encoding === 'json' ? JsonTraceSerializer : ProtobufTraceSerializer;
  const body = serializer.serializeRequest(readable);
  if (body === undefined) throw new Error(`the OTLP ${encoding} serializer returned nothing`);
  return { body, count: readable.length, invalid };
}

/** Number of spans the collector rejected, from an OTLP response body (0 when unknown). */
export function rejectedSpans(body: Uint8Array, encoding: OtlpEncoding): { rejected: number; message?: string } {
  if (body.length === 0) return { rejected: 0 };
  try {
    const serializer = encoding === 'json' ? JsonTraceSerializer : ProtobufTraceSerializer;
    const response = serializer.deserializeResponse(body);
    const partial = response.partialSuccess;
    if (partial === undefined) return { rejected: 0 };
    const rejected = Number(partial.rejectedSpans ?? 0);
    const message = partial.errorMessage;
    return {
      rejected: Number.isFinite(rejected) && rejected > 0 ? rejected : 0,
      ...(message ? { message } : {}),
    };
  } catch {
    return { rejected: 0 };
  }
}
