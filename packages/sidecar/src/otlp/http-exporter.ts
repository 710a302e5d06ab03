// OTLP/HTTP trace exporter: http/protobuf or http/json, batched, bounded queue;
// each batch is sent by an OtlpHttpSender (retries, backoff, Retry-After,
// per-request timeout). Never throws into the caller; idle, it keeps nothing
// alive (unref'd timers, idle sockets are unref'd by undici).
import { BatchQueue, asError, type BatchOutcome } from './batch-queue.js';
import {
  DEFAULT_FLUSH_TIMEOUT_MS,
  DEFAULT_MAX_BATCH_SIZE,
  DEFAULT_MAX_QUEUE_SIZE,
  DEFAULT_SCHEDULE_DELAY_MS,
  safeReporter,
  type BatchingOptions,
  type ExporterStats,
  type ItemExporter,
} from './exporter.js';
import { OtlpHttpSender, type HttpSenderOptions, type OtlpHttpProtocol } from './http-sender.js';
import type { ExportSpan } from './span.js';
import { TRACES, type SignalCodec } from './signal.js';
import { FailureState } from './failure-state.js';

export { DEFAULT_HTTP_TIMEOUT_MS, type OtlpHttpProtocol } from './http-sender.js';

export interface HttpExporterOptions<T = ExportSpan> extends BatchingOptions, HttpSenderOptions {
  /** Full URL of the signal's endpoint, e.g. http://127.0.0.1:4318/v1/traces (used as-is). */
  url: string;
  /** The signal: TRACES (default) or LOGS. */
  codec?: SignalCodec<T>;
}

export class OtlpHttpExporter<T = ExportSpan> implements ItemExporter<T> {
  readonly description: string;
  readonly url: string;
  readonly protocol: OtlpHttpProtocol;
  private readonly sender: OtlpHttpSender;
  private readonly queue: BatchQueue<T>;
  private readonly report: (error: Error) => void;
  private readonly state: FailureState;
  private readonly codec: SignalCodec<T>;

  constructor(options: HttpExporterOptions<T>) {
    this.sender = new OtlpHttpSender(options);
    this.url = this.sender.url;
    this.protocol = this.sender.protocol;
    this.description = `OTLP ${this.protocol} ${this.url}`;
    this.report = safeReporter(options.onError);
    this.codec = options.codec ?? (TRACES as unknown as SignalCodec<T>);
    this.state = new FailureState(`${this.codec.items} to ${this.url}`, this.report);
    this.queue = new BatchQueue<T>(
      {
        maxQueueSize: options.maxQueueSize ?? DEFAULT_MAX_QUEUE_SIZE,
        maxBatchSize: options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE,
        ownerOf: this.codec.ownerOf,
        scheduleDelayMs: options.scheduleDelayMs ?? DEFAULT_SCHEDULE_DELAY_MS,
      },
      (batch, signal) => this.send(batch, signal),
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

  async shutdown(timeoutMs: number = DEFAULT_FLUSH_TIMEOUT_MS): Promise<void> {
    await this.queue.shutdown(timeoutMs);
    await this.sender.close();
  }

  stats(): ExporterStats {
    return { ...this.queue.stats(), retries: this.sender.retries() };
  }

  private async send(batch: T[], signal: AbortSignal): Promise<BatchOutcome> {
    const encoded = this.codec.encode(batch, this.sender.encoding);
    for (const { reason } of encoded.invalid) this.report(new Error(`one of the ${this.codec.items} not exported: ${reason}`));
    const body = encoded.body;
    if (body === undefined) return { exported: 0, failed: batch.length };
    const count = encoded.count;
    const outcome = await this.sender.send(body, signal);
    if (!outcome.ok) {
      this.state.failed(outcome.reason);
      return { exported: 0, failed: batch.length };
    }
    this.state.worked();
    const partial = this.codec.rejected(outcome.responseBody, this.sender.encoding);
    if (partial.rejected > 0) {
      const rejected = Math.min(partial.rejected, count);
      this.report(new Error(`${this.url} rejected ${rejected} of the ${this.codec.items}${partial.message ? `: ${partial.message}` : ''}`));
      return { exported: count - rejected, failed: batch.length - count + rejected };
    }
    return { exported: count, failed: batch.length - count };
  }
}
