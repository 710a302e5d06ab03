// Frames per second by client: token buckets (a second's worth of burst)
// per key. A client over its rate is not cut off: the server stops reading
// its connection until the rate allows what it already took, so the agent's
// own SDK sheds what does not fit (and says so) while others are read as
// usual.
export class RateShare {
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();

  constructor(private readonly perSecond: number) {}

  /**
   * Takes `n` from `key`'s bucket; returns how long (ms) the key must wait
   * before its balance is back at zero, 0 when it is within its rate.
   */
  take(key: string, n: number, nowMs = Date.now()): number {
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.perSecond, atMs: nowMs };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.perSecond, b.tokens + ((nowMs - b.atMs) * this.perSecond) / 1000);
      b.atMs = nowMs;
    }
    // Debt is capped at a second's worth: no wait is longer than a second,
    // so a throttled connection never runs into the partial-frame timeout.
    b.tokens = Math.max(b.tokens - n, -this.perSecond);
    return b.tokens >= 0 ? 0 : Math.ceil((-b.tokens * 1000) / this.perSecond);
  }

  /** Forgets buckets that have refilled (idle keys cost nothing). */
  sweep(nowMs = Date.now()): void {
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((nowMs - b.atMs) * this.perSecond) / 1000 >= this.perSecond) this.buckets.delete(key);
    }
  }
}
