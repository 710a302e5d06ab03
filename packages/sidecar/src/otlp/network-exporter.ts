// An OTLP exporter to a collector (http/protobuf, http/json or grpc): the
// sidecar's fair-share batch queue in front of OpenTelemetry JS's own OTLP
// exporter (see otel-transport.ts). Never throws into the caller; counts what
// it exported, dropped and failed; says when exports start failing, change
// reason, and work again.
import { BatchQueue, asError, raceTimeout, type BatchOutcome } from './batch-queue.js';
import {
  DEFAULT_FLUSH_TIMEOUT_MS,
  DEFAULT_MAX_BATCH_SIZE,
  DEFAULT_MAX_QUEUE_SIZE,
  DEFAULT_SCHEDULE_DELAY_MS,
  safeReporter,
  type BatchingOptions,
  type ExporterStats,
  type ExportHealth,
  type ItemExporter,
} from './exporter.js';
import type { ExportSpan } from './span.js';
import { TRACES, type SignalCodec } from './signal.js';
import { FailureState } from './failure-state.js';
import { OtlpTransport, type TransportOptions } from './otel-transport.js';
import type { OtlpProtocol } from './protocol.js';

export { DEFAULT_EXPORT_TIMEOUT_MS } from './otel-transport.js';

export interface NetworkExporterOptions<T = ExportSpan> extends BatchingOptions, TransportOptions {
  /** The signal: TRACES (default) or LOGS. */
  codec?: SignalCodec<T>;
}

export class OtlpNetworkExporter<T = ExportSpan> implements ItemExporter<T> {
  readonly description: string;
  readonly url: string;
  readonly protocol: OtlpProtocol;
  private readonly transport: OtlpTransport<unknown[]>;
  private readonly queue: BatchQueue<T>;
  private readonly report: (error: Error) => void;
  private readonly state: FailureState;
  private readonly codec: SignalCodec<T>;

  /** Throws when the URL is not http(s). */
  constructor(options: NetworkExporterOptions<T>) {
    this.codec = options.codec ?? (TRACES as unknown as SignalCodec<T>);
    this.transport = new OtlpTransport(this.codec.signal, options);
    this.url = this.transport.url;
    this.protocol = this.transport.protocol;
    this.description = this.transport.description;
    this.report = safeReporter(options.onError);
    this.state = new FailureState(`${this.codec.items} to ${this.url}`, this.report);
    this.queue = new BatchQueue<T>(
      {
        maxQueueSize: options.maxQueueSize ?? DEFAULT_MAX_QUEUE_SIZE,
        maxBatchSize: options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE,
        ownerOf: this.codec.ownerOf,
        scheduleDelayMs: options.scheduleDelayMs ?? DEFAULT_SCHEDULE_DELAY_MS,
      },
      (batch) => this.send(batch),
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

  /** Bounded by timeoutMs: an export still in flight then is left to its own timeout, unwaited. */
  async shutdown(timeoutMs: number = DEFAULT_FLUSH_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.queue.shutdown(timeoutMs);
    await raceTimeout(this.transport.shutdown(), Math.max(0, deadline - Date.now()));
  }

  stats(): ExporterStats {
    return this.queue.stats();
  }

  health(): ExportHealth {
    return this.state.health();
  }

  private async send(batch: T[]): Promise<BatchOutcome> {
    const { sdk, invalid } = this.codec.toSdk(batch);
    for (const { reason } of invalid) this.report(new Error(`one of the ${this.codec.items} not exported: ${reason}`));
    if (sdk.length === 0) return { exported: 0, failed: batch.length };
    const outcome = await this.transport.send(sdk);
    if (!outcome.ok) {
      this.state.failed(outcome.reason);
      return { exported: 0, failed: batch.length };
    }
    this.state.worked();
    return { exported: sdk.length, failed: batch.length - sdk.length };
  }
}
