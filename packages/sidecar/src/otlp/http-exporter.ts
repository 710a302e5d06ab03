// OTLP/HTTP trace exporter over undici: http/protobuf or http/json, batched,
// bounded queue, retries with exponential backoff + jitter on 429/502/503/504
// and network errors (honoring Retry-After), per-request timeout. Never throws
// into the caller; idle, it keeps nothing alive (unref'd timers, idle sockets
// are unref'd by undici).
import { Pool, type Dispatcher } from 'undici';
import { BatchQueue, asError, sleep, type BatchOutcome } from './batch-queue.js';
import {
  DEFAULT_FLUSH_TIMEOUT_MS,
  DEFAULT_MAX_BATCH_SIZE,
  DEFAULT_MAX_QUEUE_SIZE,
  DEFAULT_SCHEDULE_DELAY_MS,
  safeReporter,
  type BatchingOptions,
  type ExporterStats,
  type SpanExporter,
} from './exporter.js';
import { backoffMs, isRetryableStatus, parseRetryAfter, resolveRetryPolicy, type RetryPolicy } from './retry.js';
import type { ExportSpan } from './span.js';
import { CONTENT_TYPES, encodeTraces, rejectedSpans, type OtlpEncoding } from './trace-serializer.js';
import { SCOPE_VERSION } from './version.js';

export type OtlpHttpProtocol = 'http/protobuf' | 'http/json';

export interface HttpExporterOptions extends BatchingOptions {
  /** Full URL of the traces endpoint, e.g. http://127.0.0.1:4318/v1/traces (used as-is). */
  url: string;
  /** Default http/protobuf. */
  protocol?: OtlpHttpProtocol;
  /** Extra request headers (e.g. authorization). */
  headers?: Record<string, string>;
  /** Per-request timeout in ms. Default 10000. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
}

export const DEFAULT_HTTP_TIMEOUT_MS = 10_000;

type Attempt =
  | { kind: 'ok'; body: Uint8Array }
  | { kind: 'retry'; reason: string; retryAfterMs?: number }
  | { kind: 'fatal'; reason: string };

export class OtlpHttpExporter implements SpanExporter {
  readonly description: string;
  readonly url: string;
  readonly protocol: OtlpHttpProtocol;
  private readonly encoding: OtlpEncoding;
  private readonly path: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly pool: Pool;
  private readonly queue: BatchQueue<ExportSpan>;
  private readonly report: (error: Error) => void;
  private retries = 0;

  constructor(options: HttpExporterOptions) {
    const url = new URL(options.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new Error(`OTLP endpoint ${options.url} must be an http:// or https:// URL`);
    }
    this.url = url.href;
    this.protocol = options.protocol ?? 'http/protobuf';
    this.encoding = this.protocol === 'http/json' ? 'json' : 'protobuf';
    this.description = `OTLP ${this.protocol} ${this.url}`;
    this.path = `${url.pathname}${url.search}`;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
    this.retry = resolveRetryPolicy(options.retry);
    this.report = safeReporter(options.onError);
    this.headers = {
      'user-agent': `agentrace/${SCOPE_VERSION}`,
      ...lowerCaseKeys(options.headers ?? {}),
      'content-type': CONTENT_TYPES[this.encoding],
    };
    this.pool = new Pool(url.origin, {
      connections: 2,
      keepAliveTimeout: 4_000,
      connect: { timeout: this.timeoutMs },
    });
    this.queue = new BatchQueue<ExportSpan>(
      {
        maxQueueSize: options.maxQueueSize ?? DEFAULT_MAX_QUEUE_SIZE,
        maxBatchSize: options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE,
        scheduleDelayMs: options.scheduleDelayMs ?? DEFAULT_SCHEDULE_DELAY_MS,
      },
      (batch, signal) => this.send(batch, signal),
      this.report,
    );
  }

  export(spans: ExportSpan[]): void {
    try {
      this.queue.push(spans);
    } catch (error) {
      this.report(asError(error));
    }
  }

  flush(timeoutMs: number = DEFAULT_FLUSH_TIMEOUT_MS): Promise<void> {
    return this.queue.flush(timeoutMs);
  }

  async shutdown(timeoutMs: number = DEFAULT_FLUSH_TIMEOUT_MS): Promise<void> {
    await this.queue.shutdown(timeoutMs);
    try {
      await this.pool.destroy();
    } catch {
      // already closed
    }
  }

  stats(): ExporterStats {
    return { ...this.queue.stats(), retries: this.retries };
  }

  private async send(batch: ExportSpan[], signal: AbortSignal): Promise<BatchOutcome> {
    const encoded = encodeTraces(batch, this.encoding);
    for (const { reason } of encoded.invalid) this.report(new Error(`span not exported: ${reason}`));
    const body = encoded.body;
    if (body === undefined) return { exported: 0, failed: batch.length };
    const count = encoded.count;
    const gaveUp = (reason: string): BatchOutcome => {
      this.report(new Error(`${count} span(s) not exported to ${this.url}: ${reason}`));
      return { exported: 0, failed: batch.length };
    };

    for (let attempt = 1; ; attempt++) {
      const result = await this.attempt(body, signal);
      if (result.kind === 'ok') {
        const partial = rejectedSpans(result.body, this.encoding);
        if (partial.rejected > 0) {
          const rejected = Math.min(partial.rejected, count);
          this.report(new Error(`${this.url} rejected ${rejected} span(s)${partial.message ? `: ${partial.message}` : ''}`));
          return { exported: count - rejected, failed: batch.length - count + rejected };
        }
        return { exported: count, failed: batch.length - count };
      }
      if (result.kind === 'fatal') return gaveUp(result.reason);
      if (signal.aborted) return gaveUp(`${result.reason}; exporter shut down`);
      if (attempt >= this.retry.maxAttempts) return gaveUp(`${result.reason}; gave up after ${attempt} attempts`);
      let wait: number;
      if (result.retryAfterMs !== undefined) {
        if (result.retryAfterMs > this.retry.maxRetryAfterMs) {
          return gaveUp(`${result.reason}; Retry-After ${result.retryAfterMs} ms is above the ${this.retry.maxRetryAfterMs} ms limit`);
        }
        wait = result.retryAfterMs;
      } else {
        wait = backoffMs(this.retry, attempt);
      }
      if (!(await sleep(wait, signal))) return gaveUp(`${result.reason}; exporter shut down`);
      this.retries++;
    }
  }

  private async attempt(body: Uint8Array, shutdown: AbortSignal): Promise<Attempt> {
    // One controller per attempt, aborted by the timeout or by shutdown. (Not
    // AbortSignal.any: on a long-lived shutdown signal it can accumulate dependents.)
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error(`no answer within ${this.timeoutMs} ms`));
    }, this.timeoutMs);
    timer.unref();
    const onShutdown = (): void => controller.abort(new Error('exporter shut down'));
    if (shutdown.aborted) onShutdown();
    else shutdown.addEventListener('abort', onShutdown, { once: true });
    try {
      let response: Dispatcher.ResponseData;
      try {
        response = await this.pool.request({
          method: 'POST',
          path: this.path,
          headers: this.headers,
          body,
          signal: controller.signal,
          headersTimeout: this.timeoutMs,
          bodyTimeout: this.timeoutMs,
        });
      } catch (error) {
        return { kind: 'retry', reason: describeNetworkError(error, timedOut, this.timeoutMs) };
      }
      // Read the answer whole (that also frees the connection); losing it only loses
      // the optional partial-success detail.
      let responseBody = new Uint8Array(0);
      try {
        responseBody = new Uint8Array(await response.body.arrayBuffer());
      } catch {
        // keep the empty body
      }
      const status = response.statusCode;
      if (status >= 200 && status < 300) return { kind: 'ok', body: responseBody };
      const reason = `HTTP ${status}${summarize(responseBody)}`;
      if (isRetryableStatus(status)) {
        const retryAfterMs = parseRetryAfter(response.headers['retry-after']);
        return retryAfterMs === undefined ? { kind: 'retry', reason } : { kind: 'retry', reason, retryAfterMs };
      }
      return { kind: 'fatal', reason };
    } finally {
      clearTimeout(timer);
      shutdown.removeEventListener('abort', onShutdown);
    }
  }
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) out[key.toLowerCase()] = value;
  return out;
}

function describeNetworkError(error: unknown, timedOut: boolean, timeoutMs: number): string {
  if (timedOut) return `no answer within ${timeoutMs} ms`;
  const err = asError(error);
  const code = (err as Error & { code?: unknown }).code;
  return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
}

/** A short, printable excerpt of an error body. */
function summarize(body: Uint8Array): string {
  if (body.length === 0) return '';
  const text = Buffer.from(body.subarray(0, 200)).toString('utf8').replace(/[^\x20-\x7e]+/g, ' ').trim();
  return text === '' ? '' : `: ${text}`;
}
