// What the span and log exporters need to know of their signal: its OTLP
// name, how a batch becomes the SDK's model (for the official network
// exporters) or an OTLP/JSON line (for the file), whose item it is (for the
// fair share), and what an item is called in messages.
import { encodeLogs, logOwner, readableLogs, type ExportLogRecord } from './log-record.js';
import { spanOwner, type ExportSpan } from './span.js';
import { encodeTraces, readableSpans, type OtlpEncoding } from './trace-serializer.js';
import type { OtlpSignal } from './protocol.js';

export interface SignalCodec<T> {
  readonly signal: Exclude<OtlpSignal, 'metrics'>;
  /** Items in messages: "spans", "log records". */
  readonly items: string;
  encode(batch: readonly T[], encoding: OtlpEncoding): { body: Uint8Array | undefined; count: number; invalid: { reason: string }[] };
  /** The batch in the SDK's model (ReadableSpan[], ReadableLogRecord[]), and what was left out. */
  toSdk(batch: readonly T[]): { sdk: unknown[]; invalid: { reason: string }[] };
  ownerOf(item: T): unknown;
}

export const TRACES: SignalCodec<ExportSpan> = {
  signal: 'traces',
  items: 'spans',
  encode: encodeTraces,
  toSdk: (batch) => {
    const { readable, invalid } = readableSpans(batch);
    return { sdk: readable, invalid };
  },
  ownerOf: spanOwner,
};

export const LOGS: SignalCodec<ExportLogRecord> = {
  signal: 'logs',
  items: 'log records',
  encode: encodeLogs,
  toSdk: (batch) => {
    const { readable, invalid } = readableLogs(batch);
    return { sdk: readable, invalid };
  },
  ownerOf: logOwner,
};
