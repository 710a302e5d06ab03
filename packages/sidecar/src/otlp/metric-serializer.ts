// Encodes one collection (sdk-metrics ResourceMetrics) as an OTLP
// ExportMetricsServiceRequest with the official @opentelemetry/otlp-transformer
// serializers: binary protobuf, or OTLP/JSON (64-bit integers and timestamps as
// strings). The metrics sibling of trace-serializer.ts.
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

/** Data points in a collection, as the OTLP partial-success answer counts them. */
export function countDataPoints(metrics: ResourceMetrics): number {
  let n = 0;
  for (const scope of metrics.scopeMetrics) for (const metric of scope.metrics) n += metric.dataPoints.length;
  return n;
}

/** Number of data points the collector rejected, from an OTLP response body (0 when unknown). */
export function rejectedDataPoints(body: Uint8Array, encoding: OtlpEncoding): { rejected: number; message?: string } {
  if (body.length === 0) return { rejected: 0 };
  try {
    const serializer = encoding === 'json' ? JsonMetricsSerializer : ProtobufMetricsSerializer;
    const partial = serializer.deserializeResponse(body).partialSuccess;
    if (partial === undefined) return { rejected: 0 };
    const rejected = Number(partial.rejectedDataPoints ?? 0);
    const message = partial.errorMessage;
    return {
      rejected: Number.isFinite(rejected) && rejected > 0 ? rejected : 0,
      ...(message ? { message } : {}),
    };
  } catch {
    return { rejected: 0 };
  }
}
