// The thread slot follows the running async context: tool calls interleaved
// in one thread each see their own span in the slot after every await, and
// nothing is left in it once no call is in flight. (The kernel reading the
// slot is tested in sidecar.test.ts and bpf-probes.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { trace } from '@opentelemetry/api';
import { traceTool } from '@agentrace/sdk';
import { slotBytes, trackedCalls } from '@agentrace/sdk/internal';

process.env.AGENTRACE_SOCKET ??= '/nonexistent/agentrace-slot-tracking.sock';
process.on('warning', () => {}); // the missing sidecar's one warning

function slotSpanId(): string | null {
  const b = slotBytes();
  return b[24] === 1 ? b.toString('hex', 16, 24) : null;
}

test('parallel tool calls in one thread each find their own span in the slot after awaits', async () => {
  const seen: Array<{ tool: string; expected: string; actual: string | null }> = [];
  const worker = traceTool('worker', async (name: string, steps: number) => {
    const own = trace.getActiveSpan()!.spanContext().spanId;
    for (let i = 0; i < steps; i++) {
      await (i % 2 ? tick() : Promise.resolve());
      seen.push({ tool: name, expected: own, actual: slotSpanId() });
      await new Promise((r) => setTimeout(r, 1));
      seen.push({ tool: name, expected: own, actual: slotSpanId() });
    }
    return own;
  });
  const ids = await Promise.all(['a', 'b', 'c', 'd'].map((n, i) => worker(n, 5 + i)));
  assert.equal(new Set(ids).size, 4);
  assert.equal(seen.length, 2 * (5 + 6 + 7 + 8));
  const wrong = seen.filter((s) => s.actual !== s.expected);
  assert.deepEqual(wrong, [], 'every continuation ran with its own span in the slot');
  assert.equal(trackedCalls(), 0);
  assert.equal(slotSpanId(), null, 'the slot is empty when no call is in flight');
});

test('a nested tool call publishes itself, then its parent again', async () => {
  const inner = traceTool('inner', async () => {
    await tick();
    return slotSpanId();
  });
  const outer = traceTool('outer', async () => {
    const own = trace.getActiveSpan()!.spanContext().spanId;
    const innerSeen = await inner();
    await tick();
    return { own, innerSeen, after: slotSpanId() };
  });
  const r = await outer();
  assert.notEqual(r.innerSeen, r.own);
  assert.ok(r.innerSeen);
  assert.equal(r.after, r.own);
});
