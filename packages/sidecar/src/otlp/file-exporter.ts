// OTLP JSON lines file, the OpenTelemetry Collector file exporter format: one
// ExportTraceServiceRequest in OTLP/JSON per line, appended. Parent directories
// are created on the first write.
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { BatchQueue, type BatchOutcome } from './batch-queue.js';
import {
  DEFAULT_FLUSH_TIMEOUT_MS,
  DEFAULT_MAX_BATCH_SIZE,
  DEFAULT_MAX_QUEUE_SIZE,
  safeReporter,
  type BatchingOptions,
  type ExporterStats,
  type SpanExporter,
} from './exporter.js';
import type { ExportSpan } from './span.js';
import { encodeTraces } from './trace-serializer.js';

export interface FileExporterOptions extends BatchingOptions {
  /** File to append to; relative paths resolve against the working directory. */
  path: string;
}

/** Partial batches are written after this many ms by default (a file write is cheap). */
export const DEFAULT_FILE_SCHEDULE_DELAY_MS = 200;

const NEWLINE = new Uint8Array([0x0a]);

export class OtlpFileExporter implements SpanExporter {
  readonly description: string;
  readonly path: string;
  private readonly queue: BatchQueue<ExportSpan>;
  private readonly report: (error: Error) => void;
  private handle: FileHandle | undefined;

  constructor(options: FileExporterOptions) {
    this.path = path.resolve(options.path);
    this.description = `OTLP file ${this.path}`;
    this.report = safeReporter(options.onError);
    this.queue = new BatchQueue<ExportSpan>(
      {
        maxQueueSize: options.maxQueueSize ?? DEFAULT_MAX_QUEUE_SIZE,
        maxBatchSize: options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE,
        scheduleDelayMs: options.scheduleDelayMs ?? DEFAULT_FILE_SCHEDULE_DELAY_MS,
      },
      (batch) => this.write(batch),
      this.report,
    );
  }

  export(spans: ExportSpan[]): void {
    try {
      this.queue.push(spans);
    } catch (error) {
      this.report(error instanceof Error ? error : new Error(String(error)));
    }
  }

  flush(timeoutMs: number = DEFAULT_FLUSH_TIMEOUT_MS): Promise<void> {
    return this.queue.flush(timeoutMs);
  }

  async shutdown(timeoutMs: number = DEFAULT_FLUSH_TIMEOUT_MS): Promise<void> {
    await this.queue.shutdown(timeoutMs);
    await this.closeHandle();
  }

  stats(): ExporterStats {
    return { ...this.queue.stats(), retries: 0 };
  }

  private async write(batch: ExportSpan[]): Promise<BatchOutcome> {
    const encoded = encodeTraces(batch, 'json');
    for (const { reason } of encoded.invalid) this.report(new Error(`span not exported: ${reason}`));
    if (encoded.body === undefined) return { exported: 0, failed: batch.length };
    try {
      const handle = await this.open();
      await handle.appendFile(concat(encoded.body, NEWLINE));
      return { exported: encoded.count, failed: batch.length - encoded.count };
    } catch (error) {
      this.report(new Error(`cannot append to ${this.path}: ${error instanceof Error ? error.message : String(error)}`));
      await this.closeHandle(); // reopen on the next batch
      return { exported: 0, failed: batch.length };
    }
  }

  private async open(): Promise<FileHandle> {
    if (this.handle === undefined) {
      await mkdir(path.dirname(this.path), { recursive: true });
      this.handle = await open(this.path, 'a');
    }
    return this.handle;
  }

  private async closeHandle(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    if (handle !== undefined) {
      try {
        await handle.close();
      } catch {
        // nothing left to do with a handle that will not close
      }
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
