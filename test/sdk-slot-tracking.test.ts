// The thread slot follows the running async context: tool calls interleaved
// in one thread each see their own span in the slot after every await, and
// nothing is left in it once no call is in flight. (The kernel reading the
// slot is tested in sidecar.test.ts and bpf-probes.test.ts.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { trace } from '@opentelemetry/api';
import { configure, traceTool } from '@agentrace/sdk';
import { slotBytes, trackedCalls, trackingEnabled, whenReady } from '@agentrace/sdk/internal';
import { FakeSidecar } from './support/sdk-fake-sidecar.js';

process.on('warning', () => {}); // the missing sidecar's one warning

let sidecar: FakeSidecar | undefined;

// Switch tracking runs only when a sidecar reads the slot: a fake one that
// welcomes us is enough (the slot registration goes to /dev/null).
before(async () => {
  sidecar = await FakeSidecar.start({ welcome: 'auto' });
  configure({ socketPath: sidecar.path });
  if (!(await whenReady(3000))) throw new Error('no welcome from the fake sidecar');
});

after(async () => {
  await sidecar?.close();
});

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

test('without a sidecar the hook stays off: only the synchronous part publishes the span', async () => {
  configure({ socketPath: '/nonexistent/agentrace-slot-tracking.sock' });
  await tick(); // the old connection's welcome state is gone; the hook of earlier calls goes off
  await tick();
  const seen: Array<string | null> = [];
  const tool = traceTool('lonely', async () => {
    seen.push(slotSpanId());
    await tick();
    seen.push(slotSpanId());
    return trace.getActiveSpan()!.spanContext().spanId;
  });
  const own = await tool();
  assert.equal(trackingEnabled(), false);
  assert.deepEqual(seen, [own, null], 'set for the synchronous part, not followed across the await');
});
