// The periodic reader: every intervalMs it takes one cumulative collection from
// the producer and hands it to each exporter. At most one export per exporter is
// in flight; a collection that arrives meanwhile waits, and a newer one replaces
// it (counted as dropped: cumulative data loses nothing by skipping a
// collection). Each export is bounded by timeoutMs. flush() and shutdown()
// export a final collection. Nothing here throws into the caller, and the timer
// is unref'd, so the reader never keeps the process alive.
//
// Why not PeriodicExportingMetricReader with a MetricProducer: a reader's
// collection has the MeterProvider's one resource (a MetricProducer's own is
// ignored), and each agent's tool metrics must carry that agent's resource.
// Here a collection is the sidecar's ResourceMetrics plus one per agent, each
// handed to OpenTelemetry's OTLP metric exporter.
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { MetricsCollection } from '../tool-metrics.js';
import { asError } from '@agentrace/protocol';
import { raceTimeout } from './batch-queue.js';
import { DEFAULT_FLUSH_TIMEOUT_MS, combinedHealth, safeReporter, type ExportHealth, type ExporterStats } from './exporter.js';
import { DEFAULT_METRIC_EXPORT_INTERVAL_MS, DEFAULT_METRIC_EXPORT_TIMEOUT_MS, type OtlpMetricsConfig } from './metric-config.js';
import type { MetricExporter } from './metric-exporter.js';
import { OtlpFileMetricExporter } from './metric-file-exporter.js';
import { OtlpNetworkMetricExporter } from './metric-network-exporter.js';

/** Anything that can take a collection; ToolMetrics is one. */
export interface MetricProducer {
  collect(): MetricsCollection;
}

export interface MetricsReaderOptions {
  /** Time between two periodic exports, in ms. Default 60000. */
  intervalMs?: number;
  /** Bound on one export (all its retries), in ms. Default 30000. */
  timeoutMs?: number;
  /** Told about every failure; default: the OpenTelemetry diag logger (warn). */
  onError?: (error: Error) => void;
}

/**
 * Counted in collections: exported (written or accepted), failed (given up on),
 * dropped (replaced by a newer collection before it was sent, or unsent at
 * shutdown).
 */
export type MetricsReaderStats = ExporterStats;

export class MetricsReader {
  readonly description: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  private readonly slots: ExportSlot[];
  private readonly report: (error: Error) => void;
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly producer: MetricProducer,
    private readonly exporters: readonly MetricExporter[],
    options: MetricsReaderOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? DEFAULT_METRIC_EXPORT_INTERVAL_MS;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_METRIC_EXPORT_TIMEOUT_MS;
    for (const [name, value] of [['intervalMs', this.intervalMs], ['timeoutMs', this.timeoutMs]] as const) {
      if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`MetricsReader: ${name} must be a positive integer, got ${value}`);
    }
    this.report = safeReporter(options.onError);
    this.slots = exporters.map((e) => new ExportSlot(e, this.timeoutMs, this.abort.signal));
    this.description = exporters.length === 0 ? 'no OTLP metrics exporter' : exporters.map((e) => e.description).join(' + ');
  }

  /** Starts the periodic exports (idempotent; not after shutdown). */
  start(): void {
    if (this.timer !== undefined || this.stopping !== undefined || this.slots.length === 0) return;
    this.timer = setInterval(() => void this.collectAndExport(), this.intervalMs);
    this.timer.unref();
  }

  /** Collects now and exports; resolves when every exporter has settled this collection (or a newer one). */
  collectAndExport(): Promise<void> {
    if (this.closed || this.slots.length === 0) return Promise.resolve();
    let metrics: ResourceMetrics[];
    try {
      const collection = this.producer.collect();
      for (const error of collection.errors) this.report(error);
      // the sidecar's own, then one per agent: each under its resource
      metrics = [collection.resourceMetrics, ...(collection.agents ?? [])];
    } catch (error) {
      this.report(new Error(`metrics collection failed: ${asError(error).message}`));
      return Promise.resolve();
    }
    return Promise.all(this.slots.map((slot) => slot.submit(metrics))).then(() => undefined);
  }

  /** Exports a fresh collection; resolves when done or after timeoutMs. */
  flush(timeoutMs: number = DEFAULT_FLUSH_TIMEOUT_MS): Promise<void> {
    return raceTimeout(this.collectAndExport(), timeoutMs);
  }

  /** Stops the timer, exports a final collection within timeoutMs, then aborts what is left and closes the exporters. */
  shutdown(timeoutMs: number = DEFAULT_FLUSH_TIMEOUT_MS): Promise<void> {
    this.stopping ??= this.stop(timeoutMs);
    return this.stopping;
  }

  health(): ExportHealth {
    return combinedHealth(this.exporters.map((e) => e.health()));
  }

  stats(): MetricsReaderStats {
    const total: MetricsReaderStats = { exported: 0, dropped: 0, failed: 0 };
    for (const slot of this.slots) {
      total.exported += slot.counts.exported;
      total.failed += slot.counts.failed;
      total.dropped += slot.counts.dropped;
    }
    return total;
  }

  private async stop(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + Math.max(0, timeoutMs);
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await raceTimeout(this.collectAndExport(), timeoutMs);
    this.closed = true;
    this.abort.abort();
    for (const slot of this.slots) slot.dropPending();
    await raceTimeout(Promise.all(this.slots.map((slot) => slot.idle())), deadline - Date.now());
    for (const slot of this.slots) slot.abandon();
    // an export still unanswered is left to its own timeout, unwaited
    await raceTimeout(Promise.allSettled(this.exporters.map((e) => e.shutdown())), Math.max(0, deadline - Date.now()));
  }
}

/** Builds the configured metric exporters (file first, then the collector). Throws only on a non-http(s) URL. */
export function createMetricExporters(
  config: OtlpMetricsConfig,
  options: { onError?: (error: Error) => void } = {},
): MetricExporter[] {
  const exporters: MetricExporter[] = [];
  const onError = options.onError;
  if (config.file !== undefined) {
    exporters.push(new OtlpFileMetricExporter({ path: config.file.path, onError }));
  }
  if (config.network !== undefined) exporters.push(new OtlpNetworkMetricExporter({ ...config.network, onError }));
  return exporters;
}

/** The reader for a resolved configuration (see resolveOtlpMetricsConfig); call start() to begin the periodic exports. */
export function createMetricsReader(
  producer: MetricProducer,
  config: OtlpMetricsConfig,
  options: { onError?: (error: Error) => void } = {},
): MetricsReader {
  return new MetricsReader(producer, createMetricExporters(config, options), {
    intervalMs: config.intervalMs,
    timeoutMs: config.timeoutMs,
    onError: options.onError,
  });
}

interface Pending {
  metrics: ResourceMetrics[];
  waiters: (() => void)[];
}

/** One exporter's export in flight and the collection waiting behind it. */
class ExportSlot {
  readonly counts = { exported: 0, failed: 0, dropped: 0 };
  private pending: Pending | undefined;
  private running: Promise<void> | undefined;
  private abandoned = false;

  constructor(
    readonly exporter: MetricExporter,
    private readonly timeoutMs: number,
    private readonly shutdown: AbortSignal,
  ) {}

  submit(metrics: ResourceMetrics[]): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.pending === undefined) {
        this.pending = { metrics, waiters: [resolve] };
      } else {
        this.counts.dropped++;
        this.pending.metrics = metrics;
        this.pending.waiters.push(resolve);
      }
      this.pump();
    });
  }

  dropPending(): void {
    const pending = this.pending;
    this.pending = undefined;
    if (pending === undefined) return;
    this.counts.dropped++;
    for (const resolve of pending.waiters) resolve();
  }

  /** At shutdown's deadline: an export still unanswered counts as failed now, its late answer not at all. */
  abandon(): void {
    if (this.running === undefined || this.abandoned) return;
    this.abandoned = true;
    this.counts.failed++;
  }

  /** Resolves when no export is in flight. */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  private pump(): void {
    if (this.running !== undefined || this.pending === undefined) return;
    const job = this.pending;
    this.pending = undefined;
    this.running = this.send(job.metrics).finally(() => {
      for (const resolve of job.waiters) resolve();
      this.running = undefined;
      this.pump();
    });
  }

  /** A collection is exported when every resource in it was; else it failed. */
  private async send(metrics: ResourceMetrics[]): Promise<void> {
    // One controller per export, aborted by its timeout or by shutdown.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    timer.unref();
    const onShutdown = (): void => controller.abort();
    if (this.shutdown.aborted) onShutdown();
    else this.shutdown.addEventListener('abort', onShutdown, { once: true });
    try {
      let exported = true;
      for (const resourceMetrics of metrics) {
        if (controller.signal.aborted || (await this.exporter.export(resourceMetrics, controller.signal)) !== 'exported') exported = false;
      }
      if (!this.abandoned) this.counts[exported ? 'exported' : 'failed']++;
    } catch {
      // exporters do not reject; this guards against one that does
      if (!this.abandoned) this.counts.failed++;
    } finally {
      clearTimeout(timer);
      this.shutdown.removeEventListener('abort', onShutdown);
    }
  }
}
