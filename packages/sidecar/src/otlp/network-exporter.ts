// An OTLP exporter to a collector (http/protobuf, http/json or grpc): the
// sidecar's fair-share batch queue in front of OpenTelemetry JS's own OTLP
// exporter (see otel-transport.ts). Never throws into the caller; counts what
// it exported, dropped and failed; says when exports start failing, change
// reason, and work again.
import { raceTimeout, type BatchOutcome } from './batch-queue.js';
import { DEFAULT_SCHEDULE_DELAY_MS, type ExportHealth } from './exporter.js';
import type { ExportSpan } from './span.js';
import { QueuedExporter, type QueuedExporterOptions } from './queued-exporter.js';
import { FailureState } from './failure-state.js';
import { OtlpTransport, type TransportOptions } from './otel-transport.js';
import type { OtlpProtocol } from './protocol.js';

export { DEFAULT_EXPORT_TIMEOUT_MS } from './otel-transport.js';

export interface NetworkExporterOptions<T = ExportSpan> extends QueuedExporterOptions<T>, TransportOptions {}

export class OtlpNetworkExporter<T = ExportSpan> extends QueuedExporter<T> {
  readonly description: string;
  readonly url: string;
  readonly protocol: OtlpProtocol;
  private readonly transport: OtlpTransport<unknown[]>;
  private readonly state: FailureState;

  /** Throws when the URL is not http(s). */
  constructor(options: NetworkExporterOptions<T>) {
    super(options, DEFAULT_SCHEDULE_DELAY_MS);
    this.transport = new OtlpTransport(this.codec.signal, options);
    this.url = this.transport.url;
    this.protocol = this.transport.protocol;
    this.description = this.transport.description;
    this.state = new FailureState(`${this.codec.items} to ${this.url}`, this.report);
  }

  health(): ExportHealth {
    return this.state.health();
  }

  /** An export still in flight at the deadline is left to its own timeout, unwaited. */
  protected async close(timeoutMs: number): Promise<void> {
    await raceTimeout(this.transport.shutdown(), timeoutMs);
  }

  protected async exportBatch(batch: T[]): Promise<BatchOutcome> {
    const { sdk, invalid } = this.codec.toSdk(batch);
    this.reportInvalid(invalid);
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
