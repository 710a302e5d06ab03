// OTLP JSON lines file, the OpenTelemetry Collector file exporter format: one
// ExportTraceServiceRequest in OTLP/JSON per line, appended through the file's
// shared appender (metrics lines go to the same file).
import path from 'node:path';
import { asError } from '@agentrace/protocol';
import type { BatchOutcome } from './batch-queue.js';
import type { ExportHealth } from './exporter.js';
import type { ExportSpan } from './span.js';
import { QueuedExporter, type QueuedExporterOptions } from './queued-exporter.js';
import { acquireLineFile, LineFileError, type LineFileRef } from './line-file.js';

export interface FileExporterOptions<T = ExportSpan> extends QueuedExporterOptions<T> {
  /** File to append to; relative paths resolve against the working directory. */
  path: string;
}

/** Partial batches are written after this many ms by default (a file write is cheap). */
export const DEFAULT_FILE_SCHEDULE_DELAY_MS = 200;

export class OtlpFileExporter<T = ExportSpan> extends QueuedExporter<T> {
  readonly description: string;
  readonly path: string;
  private readonly file: LineFileRef;

  constructor(options: FileExporterOptions<T>) {
    super(options, DEFAULT_FILE_SCHEDULE_DELAY_MS);
    this.path = path.resolve(options.path);
    this.description = `OTLP file ${this.path}`;
    this.file = acquireLineFile(this.path);
  }

  health(): ExportHealth {
    return this.file.health();
  }

  protected async close(): Promise<void> {
    await this.file.release();
  }

  protected async exportBatch(batch: T[]): Promise<BatchOutcome> {
    const encoded = this.codec.encode(batch, 'json');
    this.reportInvalid(encoded.invalid);
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
