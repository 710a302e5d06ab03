// Kernel tests must run for real: in CI (CI=true) an unusable BPF fails the
// test with the reason; elsewhere the test is skipped with the reason.
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { bpfUnavailableReason, noEvents, Probes, type KernelEvent, type SpanKernelSummary } from '@agentrace/bpf';

let reason: string | null | undefined;

/** Returns true when the test may go on; otherwise skips it (or fails it in CI). */
export function requireBpf(t: TestContext): boolean {
  reason ??= bpfUnavailableReason();
  if (reason === null) return true;
  if (process.env.CI === 'true') assert.fail(`BPF is required in CI but unusable: ${reason}`);
  t.skip(`BPF unusable here: ${reason}`);
  return false;
}

/** Collects every event the probes deliver, and waits for particular ones. */
export class EventLog {
  readonly events: KernelEvent[] = [];
  private waiters: Array<() => void> = [];

  constructor(private readonly probes: Probes) {
    probes.onEvents(
      (batch) => {
        this.events.push(...batch);
        for (const w of this.waiters) w();
      },
      (err) => assert.fail(`undecodable event: ${err.message}`),
    );
  }

  /** Resolves with the first event matching `pred`, failing after `timeoutMs`. */
  async waitFor<T extends KernelEvent>(
    pred: (e: KernelEvent) => e is T,
    what: string,
    timeoutMs?: number,
  ): Promise<T>;
  async waitFor(pred: (e: KernelEvent) => boolean, what: string, timeoutMs?: number): Promise<KernelEvent>;
  async waitFor(pred: (e: KernelEvent) => boolean, what: string, timeoutMs = 5000): Promise<KernelEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.probes.drain();
      const hit = this.events.find(pred);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = this.events.map((e) => `${e.kind}@${e.pid}`).join(', ');
        assert.fail(`timed out waiting for ${what}; saw ${this.events.length} events: ${seen}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, 100));
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.waiters.push(done);
      });
      this.waiters = [];
    }
  }

  of(pid: number): KernelEvent[] {
    return this.events.filter((e) => e.pid === pid);
  }
}

/**
 * What the kernel kept for `spanIds` (their drained aggregates and their
 * event accounting), taken out of the kernel; spans with nothing are left
 * out. The sidecar's KernelSummaries does the same, holding other spans'.
 */
export function takeSummaries(probes: Probes, spanIds: readonly string[]): Map<string, SpanKernelSummary> {
  const drained = probes.drainSpanAggregates();
  const out = new Map<string, SpanKernelSummary>();
  for (const id of spanIds) {
    const aggregates = drained.get(id);
    const events = probes.takeSpanEventCounts(id);
    if (!aggregates && !events) continue;
    out.set(id, { aggregates: aggregates ?? {}, events: events ?? noEvents() });
  }
  return out;
}
