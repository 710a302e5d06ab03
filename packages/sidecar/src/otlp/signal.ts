// What the span and log exporters need to know of their signal: how a batch
// is encoded, how a collector's partial rejection is read, whose item it is
// (for the fair share), and what an item is called in messages.
import { encodeLogs, logOwner, rejectedLogRecords, type ExportLogRecord } from './log-record.js';
import { spanOwner, type ExportSpan } from './span.js';
import { encodeTraces, rejectedSpans, type OtlpEncoding } from './trace-serializer.js';

export interface SignalCodec<T> {
  /** Items in messages: "spans", "log records". */
  readonly items: string;
  encode(batch: readonly T[], encoding: OtlpEncoding): { body: Uint8Array | undefined; count: number; invalid: { reason: string }[] };
  rejected(responseBody: Uint8Array, encoding: OtlpEncoding): { rejected: number; message?: string };
  ownerOf(item: T): unknown;
}

export const TRACES: SignalCodec<ExportSpan> = {
  items: 'spans',
  encode: encodeTraces,
  rejected: rejectedSpans,
  ownerOf: spanOwner,
};

export const LOGS: SignalCodec<ExportLogRecord> = {
  items: 'log records',
  encode: encodeLogs,
  rejected: rejectedLogRecords,
  ownerOf: logOwner,
};
