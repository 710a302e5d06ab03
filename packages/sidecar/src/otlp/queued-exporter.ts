// What the span and log exporters share: the fair-share batch queue in front
// of a destination (export never blocks or throws, counts what it dropped),
// flush and shutdown bounded in time, the codec of the signal. A destination
// (file-exporter.ts, network-exporter.ts) says only how a batch is written,
// how it is closed and whether it works.
import { asError } from '@agentrace/protocol';
import { BatchQueue, type BatchOutcome } from './batch-queue.js';
import {
  DEFAULT_FLUSH_TIMEOUT_MS,
  DEFAULT_MAX_BATCH_SIZE,
  DEFAULT_MAX_QUEUE_SIZE,
  safeReporter,
  type BatchingOptions,
  type ExporterStats,
  type ExportHealth,
  type ItemExporter,
} from './exporter.js';
import type { ExportSpan } from './span.js';
import { TRACES, type SignalCodec } from './signal.js';

export interface QueuedExporterOptions<T> extends BatchingOptions {
  /** The signal: TRACES (default) or LOGS. */
  codec?: SignalCodec<T>;
}

export abstract class QueuedExporter<T = ExportSpan> implements ItemExporter<T> {
  abstract readonly description: string;
  protected readonly codec: SignalCodec<T>;
  protected readonly report: (error: Error) => void;
  private readonly queue: BatchQueue<T>;

  constructor(options: QueuedExporterOptions<T>, defaultScheduleDelayMs: number) {
    this.codec = options.codec ?? (TRACES as unknown as SignalCodec<T>);
    this.report = safeReporter(options.onError);
    this.queue = new BatchQueue<T>(
      {
        maxQueueSize: options.maxQueueSize ?? DEFAULT_MAX_QUEUE_SIZE,
        maxBatchSize: options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE,
        ownerOf: this.codec.ownerOf,
        scheduleDelayMs: options.scheduleDelayMs ?? defaultScheduleDelayMs,
      },
      (batch) => this.exportBatch(batch),
      this.report,
    );
  }

  export(items: T[]): void {
    try {
      this.queue.push(items);
    } catch (error) {
      this.report(asError(error));
    }
  }

  flush(timeoutMs: number = DEFAULT_FLUSH_TIMEOUT_MS): Promise<void> {
    return this.queue.flush(timeoutMs);
  }

  /** Flushes, then closes the destination, both within timeoutMs. */
  async shutdown(timeoutMs: number = DEFAULT_FLUSH_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.queue.shutdown(timeoutMs);
    await this.close(Math.max(0, deadline - Date.now()));
  }

  stats(): ExporterStats {
    return this.queue.stats();
  }

  abstract health(): ExportHealth;

  /** Writes or sends one batch; says how many items made it. Never throws. */
  protected abstract exportBatch(batch: T[]): Promise<BatchOutcome>;

  /** Lets go of the destination (after the last batch), within timeoutMs. */
  protected abstract close(timeoutMs: number): Promise<void>;

  /** Says which items the codec could not encode (each is counted failed by the caller). */
  protected reportInvalid(invalid: ReadonlyArray<{ reason: string }>): void {
    for (const { reason } of invalid) this.report(new Error(`one of the ${this.codec.items} not exported: ${reason}`));
  }
}
