// Retry policy of the OTLP/HTTP exporter: which answers are retried, how long to
// wait (exponential backoff with jitter, or the server's Retry-After).

export interface RetryPolicy {
  /** Attempts per batch, the first included. Default 5. */
  maxAttempts: number;
  /** Backoff before the first retry, in ms. Default 1000. */
  initialBackoffMs: number;
  /** Backoff cap, in ms. Default 5000. */
  maxBackoffMs: number;
  /** Backoff growth per attempt. Default 1.5. */
  multiplier: number;
  /** Relative jitter: the wait is backoff * (1 ± jitter). Default 0.2. */
  jitter: number;
  /** A Retry-After longer than this makes the exporter give the batch up. Default 60000. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 5,
  initialBackoffMs: 1000,
  maxBackoffMs: 5000,
  multiplier: 1.5,
  jitter: 0.2,
  maxRetryAfterMs: 60_000,
});

/** The OTLP/HTTP spec's retryable status codes. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 502 || status === 503 || status === 504;
}

/** Wait before retry number `retry` (1 for the first retry), jittered. */
export function backoffMs(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const base = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * policy.multiplier ** Math.max(0, retry - 1));
  const factor = 1 - policy.jitter + 2 * policy.jitter * random();
  return Math.max(0, Math.round(base * factor));
}

/**
 * Retry-After (delay-seconds or HTTP-date) in ms from now; undefined when absent
 * or unparseable.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (text === '') return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

export function resolveRetryPolicy(partial: Partial<RetryPolicy> | undefined): RetryPolicy {
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...partial };
  if (!(policy.maxAttempts >= 1)) throw new RangeError('retry.maxAttempts must be >= 1');
  return policy;
}
