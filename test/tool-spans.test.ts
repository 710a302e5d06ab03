// Which span starts the sidecar believes: a thread must be its process's own,
// but frames read after the process exited still count (their thread can no
// longer run, so nothing is published for it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { SpanStartMessage } from '@agentrace/sdk/protocol';
import { ToolSpanRegistry, Refusal } from '../packages/sidecar/src/tool-spans.js';

function start(tid: number): SpanStartMessage {
  return { t: 'start', tid, trace: randomBytes(16), span: randomBytes(8), name: 'execute_tool t', kind: 0, start: [1, 0], attrs: {}, flags: 1, export: true };
}

test('a span announced by a process that has exited since is kept, with no live thread', async () => {
  const child = spawn('true');
  await once(child, 'exit');
  const registry = new ToolSpanRegistry();
  const span = registry.start(child.pid!, {}, start(child.pid! + 1));
  assert.equal(span.threadAlive, false);
  assert.equal(registry.get(span.spanId), span);
});

test("a live process may not name another process's thread, nor a tid that is no tid", async (t) => {
  const other = spawn('sleep', ['30']);
  t.after(() => other.kill('SIGKILL'));
  const registry = new ToolSpanRegistry();
  assert.throws(() => registry.start(process.pid, {}, start(other.pid!)), (e: unknown) => e instanceof Refusal && e.code === 'EPERM');
  assert.throws(() => registry.start(process.pid, {}, start(0)), (e: unknown) => e instanceof Refusal && e.code === 'EPERM');
  const own = registry.start(process.pid, {}, start(process.pid));
  assert.equal(own.threadAlive, true);
  assert.equal(registry.refused, 2);
});
