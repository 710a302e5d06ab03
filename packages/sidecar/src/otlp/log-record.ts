// The log model the sidecar hands to the exporters, and its OTLP encoding
// with the official @opentelemetry/otlp-transformer serializers
// (ExportLogsServiceRequest, protobuf or OTLP/JSON).
import { TraceFlags, isValidSpanId, isValidTraceId, type Attributes } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { JsonLogsSerializer, ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import { INSTRUMENTATION_SCOPE, nsToHrTime, resourceFor } from './readable-span.js';
import type { OtlpEncoding } from './trace-serializer.js';
import { messageOf } from '@agentrace/protocol';

export { SeverityNumber };

export interface ExportLogRecord {
  /** When it happened, ns since the epoch. */
  timeNs: bigint;
  /** When the sidecar saw it, ns since the epoch. */
  observedTimeNs: bigint;
  /** `event.name`, e.g. agentrace.network.connect. */
  eventName: string;
  severityNumber: SeverityNumber;
  body: string;
  attributes: Attributes;
  /** The trace and span it belongs to (32 and 16 lowercase hex digits); both empty: none (a fact outside any tool call). */
  traceId: string;
  spanId: string;
  /** Resource of the process it belongs to; records sharing one object are grouped. */
  resource: Attributes;
}

/** Whose record it is, for the exporters' fair share: the agent process. */
export function logOwner(record: ExportLogRecord): unknown {
  return record.resource['process.pid'] ?? record.resource;
}

export function invalidLogReason(record: ExportLogRecord): string | undefined {
  if (record.traceId === '' && record.spanId === '') return undefined;
  if (!isValidTraceId(record.traceId)) return `invalid traceId ${JSON.stringify(record.traceId)}`;
  if (!isValidSpanId(record.spanId)) return `invalid spanId ${JSON.stringify(record.spanId)}`;
  return undefined;
}

function toReadable(record: ExportLogRecord): ReadableLogRecord {
  const attributes: Attributes = {};
  for (const [key, value] of Object.entries(record.attributes)) if (value !== undefined && value !== null) attributes[key] = value;
  return {
    hrTime: nsToHrTime(record.timeNs),
    hrTimeObserved: nsToHrTime(record.observedTimeNs),
    ...(record.traceId === '' ? {} : { spanContext: { traceId: record.traceId, spanId: record.spanId, traceFlags: TraceFlags.SAMPLED } }),
    severityNumber: record.severityNumber,
    severityText: SeverityNumber[record.severityNumber],
    body: record.body,
    eventName: record.eventName,
    resource: resourceFor(record.resource),
    instrumentationScope: INSTRUMENTATION_SCOPE,
    attributes,
    droppedAttributesCount: 0,
  };
}

export interface EncodedLogs {
  body: Uint8Array | undefined;
  count: number;
  invalid: { reason: string }[];
}

/** Validates, converts and serializes a batch; a record the serializer cannot take costs only itself. */
/** Validates and converts a batch to the SDK's model; each record left out comes with the reason. */
export function readableLogs(records: readonly ExportLogRecord[]): { readable: ReadableLogRecord[]; invalid: { reason: string }[] } {
  const invalid: { reason: string }[] = [];
  const readable: ReadableLogRecord[] = [];
  for (const record of records) {
    const reason = invalidLogReason(record);
    if (reason === undefined) readable.push(toReadable(record));
    else invalid.push({ reason });
  }
  return { readable, invalid };
}

export function encodeLogs(records: readonly ExportLogRecord[], encoding: OtlpEncoding): EncodedLogs {
  const { readable, invalid } = readableLogs(records);
  if (readable.length === 0) return { body: undefined, count: 0, invalid };
  const serializer = encoding === 'json' ? JsonLogsSerializer : ProtobufLogsSerializer;
  try {
    const body = serializer.serializeRequest(readable);
    if (body === undefined) throw new Error('the serializer returned nothing');
    return { body, count: readable.length, invalid };
  } catch {
    const good = readable.filter((r) => {
      try {
        serializer.serializeRequest([r]);
        return true;
      } catch (err) {
        invalid.push({ reason: `the OTLP ${encoding} serializer failed on a ${r.eventName} record: ${messageOf(err)}` });
        return false;
      }
    });
    const body = good.length ? serializer.serializeRequest(good) : undefined;
    return { body, count: body ? good.length : 0, invalid };
  }
}
