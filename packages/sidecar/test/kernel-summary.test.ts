// The aggregate lifecycle, which KernelSummaries owns: held from the drain
// until the span is reported (a little after its end), reported once, late
// I/O reported again while watched, aggregates no span claims dropped after
// ten minutes and counted. The kernel is a scripted stand-in here (the
// kernel's own side is covered by test/bpf-probes.test.ts and, end to end,
// test/sidecar.test.ts); what is tested is the bookkeeping, with a clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyAggregate, type SpanAggregates, type SpanEventCounts, type SpanKernelSummary } from '@agentrace/bpf';
import { KernelSummaries, KERNEL_SUMMARY_SPAN, type UserSpaceCounts } from '../src/kernel-summary.js';
import type { ToolSpan } from '../src/tool-spans.js';
import type { ExportSpan } from '../src/otlp/span.js';

class Kernel {
  /** What the next drain returns. */
  next = new Map<string, SpanAggregates>();
  counts = new Map<string, SpanEventCounts>();
  drains = 0;
  drainSpanAggregates(): Map<string, SpanAggregates> {
    this.drains++;
    const out = this.next;
    this.next = new Map();
    return out;
  }
  takeSpanEventCounts(spanId: string): SpanEventCounts | undefined {
    const c = this.counts.get(spanId);
    this.counts.delete(spanId);
    return c;
  }
  opens(spanId: string, calls: number): void {
    const a = emptyAggregate();
    a.calls = calls;
    this.next.set(spanId, { open: a });
  }
}

function rig() {
  const kernel = new Kernel();
  const emitted: ExportSpan[] = [];
  const recorded: Array<{ tool: string; summary: SpanKernelSummary }> = [];
  const forgotten: string[] = [];
  const summaries = new KernelSummaries({
    kernel,
    sink: { emit: (spans) => void emitted.push(...spans) },
    userCounts: {
      takeUserCounts: (): UserSpaceCounts => ({ repeatedOpens: 0 }),
      spansWithUserCounts: () => [],
      forgetSpan: (id) => void forgotten.push(id),
    },
    listener: { recordSummary: (tool, summary) => void recorded.push({ tool: tool.spanId, summary }) },
  });
  return { kernel, summaries, emitted, recorded, forgotten };
}

function tool(spanId: string): ToolSpan {
  return {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId,
    pid: 1,
    uid: 0,
    conn: 1,
    tid: 1,
    onThread: true,
    name: 'execute_tool t',
    kind: 0,
    startNs: 1n,
    endNs: 2n,
    attrs: {},
    attrChars: 0,
    sampled: true,
    exportSelf: false,
    threadAlive: true,
    resource: {},
  };
}

const A = 'aaaaaaaaaaaaaaaa';
const B = 'bbbbbbbbbbbbbbbb';

test('aggregates drained before the end are held, merged, and reported once, after the settle time', () => {
  const { kernel, summaries, emitted, recorded } = rig();
  summaries.toolEnded(tool(A), 0);
  kernel.opens(A, 2);
  kernel.opens(B, 5); // another span, still running: held for it
  kernel.counts.set(A, { emitted: 2, capped: 0, ringbufDrops: 0, mapFull: 0, ambiguous: 0 });
  summaries.collect(100); // before the settle time: nothing yet
  assert.equal(emitted.length, 0);
  assert.equal(kernel.drains, 0, 'nothing settled or watched: no drain (an idle sidecar makes no syscall)');
  summaries.collect(300);
  assert.equal(kernel.drains, 1);
  assert.equal(emitted.length, 1);
  assert.equal(emitted[0]!.name, KERNEL_SUMMARY_SPAN);
  assert.equal(emitted[0]!.parentSpanId, A);
  assert.equal(emitted[0]!.attributes['agentrace.syscall.open.calls'], 2);
  assert.equal(emitted[0]!.attributes['agentrace.events.emitted'], 2);
  assert.deepEqual(recorded.map((r) => r.tool), [A]);
  assert.equal(summaries.heldCount, 1, "B's aggregates wait for B");

  // B ends later, with more opens drained meanwhile: merged with what was held.
  summaries.toolEnded(tool(B), 1000);
  kernel.opens(B, 3);
  summaries.collect(1300);
  const b = emitted.find((s) => s.parentSpanId === B);
  assert.equal(b?.attributes['agentrace.syscall.open.calls'], 8, 'held 5 + drained 3');
  assert.equal(summaries.heldCount, 0);
});

test('late I/O of a watched span is reported again, marked after_end; after 30 s the span is let go', () => {
  const { kernel, summaries, emitted, forgotten } = rig();
  summaries.toolEnded(tool(A), 0);
  kernel.opens(A, 1);
  summaries.collect(300);
  kernel.opens(A, 4); // a keep-alive socket used after the call
  summaries.collect(600);
  assert.equal(emitted.length, 2);
  assert.equal(emitted[1]!.attributes['agentrace.syscall.open.calls'], 4, 'only what came after the first report');
  assert.equal(emitted[1]!.attributes['agentrace.summary.after_end'], true);
  summaries.collect(31_000);
  assert.deepEqual(forgotten, [A]);
  kernel.opens(A, 1);
  summaries.collect(31_300);
  assert.equal(emitted.length, 2, 'no longer watched: its late I/O is not reported');
  assert.equal(kernel.next.size, 1, 'nor drained, with nothing settling or watched');
});

test('aggregates no span claims are dropped after 10 minutes, and counted', () => {
  const { kernel, summaries } = rig();
  summaries.toolEnded(tool(A), 0);
  kernel.opens(B, 1); // never announced
  summaries.collect(300);
  assert.equal(summaries.heldCount, 1);
  // Something must be watched for the drain (and its sweep) to run.
  for (let t = 60_000; t <= 11 * 60_000; t += 60_000) {
    summaries.toolEnded(tool(`${t.toString(16).padStart(16, '0')}`), t);
    summaries.collect(t + 300);
  }
  assert.equal(summaries.heldCount, 0);
  assert.equal(summaries.unclaimed, 1);
});
