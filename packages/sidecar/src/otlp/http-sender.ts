// Sends one OTLP/HTTP request body with retries: exponential backoff + jitter on
// 429/502/503/504 and network errors (honoring Retry-After), a per-request
// timeout, aborted by a shutdown signal. Shared by the span and metric
// exporters; it never throws. Idle sockets are unref'd by undici and every
// timer is unref'd, so an idle sender keeps nothing alive.
import { Pool, type Dispatcher } from 'undici';
import { asError, sleep } from './batch-queue.js';
import { backoffMs, isRetryableStatus, parseRetryAfter, resolveRetryPolicy, type RetryPolicy } from './retry.js';
import { CONTENT_TYPES, type OtlpEncoding } from './trace-serializer.js';
import { SCOPE_VERSION } from './version.js';

export type OtlpHttpProtocol = 'http/protobuf' | 'http/json';

export const DEFAULT_HTTP_TIMEOUT_MS = 10_000;

export interface HttpSenderOptions {
  /** Full URL of the signal's endpoint (used as-is). */
  url: string;
  /** Default http/protobuf. */
  protocol?: OtlpHttpProtocol;
  /** Extra request headers (e.g. authorization). */
  headers?: Record<string, string>;
  /** Per-request timeout in ms. Default 10000. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
}

/** A 2xx answer with its body, or why the request was given up on. */
export type SendOutcome = { ok: true; responseBody: Uint8Array } | { ok: false; reason: string };

type Attempt =
  | { kind: 'ok'; body: Uint8Array }
  | { kind: 'retry'; reason: string; retryAfterMs?: number }
  | { kind: 'fatal'; reason: string };

export class OtlpHttpSender {
  readonly url: string;
  readonly protocol: OtlpHttpProtocol;
  readonly encoding: OtlpEncoding;
  private readonly path: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly pool: Pool;
  private retryCount = 0;

  /** Throws when the URL is not http(s). */
  constructor(options: HttpSenderOptions) {
    const url = new URL(options.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new Error(`OTLP endpoint ${options.url} must be an http:// or https:// URL`);
    }
    this.url = url.href;
    this.protocol = options.protocol ?? 'http/protobuf';
    this.encoding = this.protocol === 'http/json' ? 'json' : 'protobuf';
    this.path = `${url.pathname}${url.search}`;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
    this.retry = resolveRetryPolicy(options.retry);
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
  }

  /** Re-sends after a retryable failure, so far. */
  retries(): number {
    return this.retryCount;
  }

  /** POSTs body until it is accepted, refused, the attempts run out, or `signal` aborts. */
  async send(body: Uint8Array, signal: AbortSignal): Promise<SendOutcome> {
    for (let attempt = 1; ; attempt++) {
      const result = await this.attempt(body, signal);
      if (result.kind === 'ok') return { ok: true, responseBody: result.body };
      if (result.kind === 'fatal') return { ok: false, reason: result.reason };
      if (signal.aborted) return { ok: false, reason: `${result.reason}; exporter shut down` };
      if (attempt >= this.retry.maxAttempts) return { ok: false, reason: `${result.reason}; gave up after ${attempt} attempts` };
      let wait: number;
      if (result.retryAfterMs !== undefined) {
        if (result.retryAfterMs > this.retry.maxRetryAfterMs) {
          return {
            ok: false,
            reason: `${result.reason}; Retry-After ${result.retryAfterMs} ms is above the ${this.retry.maxRetryAfterMs} ms limit`,
          };
        }
        wait = result.retryAfterMs;
      } else {
        wait = backoffMs(this.retry, attempt);
      }
      if (!(await sleep(wait, signal))) return { ok: false, reason: `${result.reason}; exporter shut down` };
      this.retryCount++;
    }
  }

  async close(): Promise<void> {
    try {
      await this.pool.destroy();
    } catch {
      // already closed
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
