// Failures that speak without flooding: an export destination says when it
// starts failing (with what the collector said), when the reason changes
// (refused, then HTTP 500, then 401, then timeouts), and when it works
// again; not every failed batch in between (the counts say how many).
import type { ExportHealth } from './exporter.js';

/** The kind of a failure, for telling a change of reason from more of the same: "HTTP 500", "gRPC 14", "ECONNREFUSED", "timeout". */
export function failureKind(reason: string): string {
  return reason.match(/\b(?:HTTP|gRPC) \d+\b/)?.[0] ?? reason.match(/\bE[A-Z]{3,}\b/)?.[0] ?? (/timed? ?out|no answer/i.test(reason) ? 'timeout' : reason);
}

export class FailureState {
  /** Failed exports since the last one that worked. */
  private failing = 0;
  private kind: string | undefined;
  private lastReason = '';

  /** `what`: the destination, e.g. "spans to http://collector:4318/v1/traces". */
  constructor(
    private readonly what: string,
    private readonly say: (error: Error) => void,
  ) {}

  failed(reason: string): void {
    this.lastReason = reason;
    const kind = failureKind(reason);
    const first = this.failing++ === 0;
    if (!first && kind === this.kind) return;
    this.kind = kind;
    this.say(new Error(first ? `${this.what}: export failed: ${reason}` : `${this.what}: export still failing, now: ${reason}`));
  }

  health(): ExportHealth {
    return this.failing === 0 ? { ok: true } : { ok: false, reason: `${this.what}: ${this.failing} export(s) failed in a row, the last: ${this.lastReason}` };
  }

  worked(): void {
    if (this.failing === 0) return;
    this.say(new Error(`${this.what}: export works again, after ${this.failing} failed export(s)`));
    this.failing = 0;
    this.kind = undefined;
  }
}
