// Encodes one collection (sdk-metrics ResourceMetrics) as an OTLP
// ExportMetricsServiceRequest with the official @opentelemetry/otlp-transformer
// serializers, in OTLP/JSON (64-bit integers and timestamps as strings) for the
// file export. The metrics sibling of trace-serializer.ts.
import { JsonMetricsSerializer, ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { OtlpEncoding } from './trace-serializer.js';

/** Throws only if the serializer does. */
export function encodeMetrics(metrics: ResourceMetrics, encoding: OtlpEncoding): Uint8Array {
  const serializer = encoding === 'json' ? JsonMetricsSerializer : ProtobufMetricsSerializer;
  const body = serializer.serializeRequest(metrics);
  if (body === undefined) throw new Error(`the OTLP ${encoding} metrics serializer returned nothing`);
  return body;
}
