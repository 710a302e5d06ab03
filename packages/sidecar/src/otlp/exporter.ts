// The interface every span exporter of the sidecar implements, and the batching
// options they share.
import { diag } from '@opentelemetry/api';
import type { ExportSpan } from './span.js';
import type { ExportLogRecord } from './log-record.js';

export interface ExporterStats {
  /** Spans written or accepted by the receiver. */
  exported: number;
  /** Spans never attempted: queue full, exporter shut down, or still queued at shutdown. */
  dropped: number;
  /** Spans attempted and given up on: invalid, non-retryable answer, retries exhausted, I/O error. */
  failed: number;
}

/** Whether an export destination works: failing since its last export failed, until one works again. */
export type ExportHealth = { ok: true } | { ok: false; reason: string };

/** The first failing one, or ok. */
export function combinedHealth(healths: readonly ExportHealth[]): ExportHealth {
  return healths.find((h) => !h.ok) ?? { ok: true };
}

/** An exporter of one signal's items (spans, log records). */
export interface ItemExporter<T> {
  /** Enqueue; never throws, never blocks. Drops (counted) when the queue is full. */
  export(items: T[]): void;
  /** Resolves when everything queued so far is written/sent or given up on (bounded by timeoutMs). */
  flush(timeoutMs?: number): Promise<void>;
  /** Flushes (bounded by timeoutMs), then stops; later exports are dropped. */
  shutdown(timeoutMs?: number): Promise<void>;
  stats(): ExporterStats;
  health(): ExportHealth;
  /** e.g. "OTLP file /path" or "OTLP http/protobuf http://..." */
  readonly description: string;
}

export type SpanExporter = ItemExporter<ExportSpan>;
export type LogExporter = ItemExporter<ExportLogRecord>;

export interface BatchingOptions {
  /** Spans waiting at most; more are dropped (counted). Default 2048. */
  maxQueueSize?: number;
  /** Spans per request / line at most. Default 512. */
  maxBatchSize?: number;
  /** How long a partial batch waits, in ms. Default 1000. */
  scheduleDelayMs?: number;
  /** Told about every failure; default: the OpenTelemetry diag logger (warn). */
  onError?: (error: Error) => void;
}

export const DEFAULT_MAX_QUEUE_SIZE = 2048;
export const DEFAULT_MAX_BATCH_SIZE = 512;
export const DEFAULT_SCHEDULE_DELAY_MS = 1000;
export const DEFAULT_FLUSH_TIMEOUT_MS = 30_000;

export function defaultOnError(error: Error): void {
  diag.warn(`agentrace OTLP export: ${error.message}`);
}

/** Calls onError, swallowing anything it throws: exporters never throw into their caller. */
export function safeReporter(onError: ((error: Error) => void) | undefined): (error: Error) => void {
  const report = onError ?? defaultOnError;
  return (error: Error): void => {
    try {
      report(error);
    } catch {
      // a failing logger must not break the exporter
    }
  };
}
