// Encodes spans as one OTLP ExportTraceServiceRequest with the official
// @opentelemetry/otlp-transformer serializers (binary protobuf, or OTLP/JSON with
// hex ids and string 64-bit timestamps) for the file export, and the span
// model the network exporters take.
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { invalidReason, toReadableSpan } from './readable-span.js';
import type { ExportSpan } from './span.js';
import { messageOf } from '@agentrace/protocol';

export type OtlpEncoding = 'protobuf' | 'json';

export interface EncodedTraces {
  /** The serialized request; undefined when no span was valid. */
  body: Uint8Array | undefined;
  /** Number of spans in body. */
  count: number;
  /** Spans left out, each with the reason. */
  invalid: { span: ExportSpan; reason: string }[];
}

/**
 * Validates, converts and serializes a batch. A span the serializer cannot
 * encode costs only itself: the batch is encoded span by span to find it,
 * and the rest goes out (one client's bad data never fails another's).
 */
/** Validates and converts a batch to the SDK's model; each span left out comes with the reason. */
export function readableSpans(spans: readonly ExportSpan[]): { readable: ReadableSpan[]; sources: ExportSpan[]; invalid: { span: ExportSpan; reason: string }[] } {
  const readable: ReadableSpan[] = [];
  const sources: ExportSpan[] = [];
  const invalid: { span: ExportSpan; reason: string }[] = [];
  for (const span of spans) {
    const reason = invalidReason(span);
    if (reason !== undefined) {
      invalid.push({ span, reason });
      continue;
    }
    try {
      readable.push(toReadableSpan(span));
      sources.push(span);
    } catch (err) {
      invalid.push({ span, reason: `cannot convert it: ${messageOf(err)}` });
    }
  }
  return { readable, sources, invalid };
}

export function encodeTraces(spans: readonly ExportSpan[], encoding: OtlpEncoding): EncodedTraces {
  const { readable, sources, invalid } = readableSpans(spans);
  if (readable.length === 0) return { body: undefined, count: 0, invalid };
  const serializer = encoding === 'json' ? JsonTraceSerializer : ProtobufTraceSerializer;
  let body: Uint8Array | undefined;
  let good = readable;
  try {
    body = serializer.serializeRequest(readable);
  } catch {
    good = [];
    readable.forEach((r, i) => {
      try {
        serializer.serializeRequest([r]);
        good.push(r);
      } catch (err) {
        const span = sources[i]!;
        invalid.push({ span, reason: `the OTLP ${encoding} serializer failed on span ${span.spanId} (${span.name.slice(0, 80)}): ${messageOf(err)}` });
      }
    });
    if (good.length === 0) return { body: undefined, count: 0, invalid };
    body = serializer.serializeRequest(good);
  }
  if (body === undefined) throw new Error(`the OTLP ${encoding} serializer returned nothing`);
  return { body, count: good.length, invalid };
}
