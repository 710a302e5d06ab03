// OTLP JSON lines file, the OpenTelemetry Collector file exporter format: one
// ExportTraceServiceRequest in OTLP/JSON per line, appended through the file's
// shared appender (metrics lines go to the same file).
import path from 'node:path';
import { BatchQueue, asError, type BatchOutcome } from './batch-queue.js';
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
import { acquireLineFile, LineFileError, type LineFileRef } from './line-file.js';

export interface FileExporterOptions<T = ExportSpan> extends BatchingOptions {
  /** File to append to; relative paths resolve against the working directory. */
  path: string;
  /** The signal: TRACES (default) or LOGS. */
  codec?: SignalCodec<T>;
}

/** Partial batches are written after this many ms by default (a file write is cheap). */
export const DEFAULT_FILE_SCHEDULE_DELAY_MS = 200;

export class OtlpFileExporter<T = ExportSpan> implements ItemExporter<T> {
  readonly description: string;
  readonly path: string;
  private readonly queue: BatchQueue<T>;
  private readonly report: (error: Error) => void;
  private readonly file: LineFileRef;
  private readonly codec: SignalCodec<T>;

  constructor(options: FileExporterOptions<T>) {
    this.path = path.resolve(options.path);
    this.description = `OTLP file ${this.path}`;
    this.report = safeReporter(options.onError);
    this.codec = options.codec ?? (TRACES as unknown as SignalCodec<T>);
    this.file = acquireLineFile(this.path);
    this.queue = new BatchQueue<T>(
      {
        maxQueueSize: options.maxQueueSize ?? DEFAULT_MAX_QUEUE_SIZE,
        maxBatchSize: options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE,
        ownerOf: this.codec.ownerOf,
        scheduleDelayMs: options.scheduleDelayMs ?? DEFAULT_FILE_SCHEDULE_DELAY_MS,
      },
      (batch) => this.write(batch),
      this.report,
    );
  }

  export(items: T[]): void {
    try {
      this.queue.push(items);
    } catch (error) {
      this.report(error instanceof Error ? error : new Error(String(error)));
    }
  }

  flush(timeoutMs: number = DEFAULT_FLUSH_TIMEOUT_MS): Promise<void> {
    return this.queue.flush(timeoutMs);
  }

  async shutdown(timeoutMs: number = DEFAULT_FLUSH_TIMEOUT_MS): Promise<void> {
    await this.queue.shutdown(timeoutMs);
    await this.file.release();
  }

  stats(): ExporterStats {
    return this.queue.stats();
  }

  health(): ExportHealth {
    return this.file.health();
  }

  private async write(batch: T[]): Promise<BatchOutcome> {
    const encoded = this.codec.encode(batch, 'json');
    for (const { reason } of encoded.invalid) this.report(new Error(`one of the ${this.codec.items} not exported: ${reason}`));
    if (encoded.body === undefined) return { exported: 0, failed: batch.length };
    try {
      const { recoveredAfter } = await this.file.appendLine(encoded.body);
      if (recoveredAfter) this.report(new Error(`writing to ${this.path} again, after ${recoveredAfter} line(s) that could not be written`));
      return { exported: encoded.count, failed: batch.length - encoded.count };
    } catch (error) {
      // Said when writing starts failing, not for every batch while it does (the counts say how many).
      if (!(error instanceof LineFileError) || error.first) this.report(new Error(`${this.codec.items} not written: ${asError(error).message}`));
      return { exported: 0, failed: batch.length };
    }
  }
}
