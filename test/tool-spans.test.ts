// Which span starts the sidecar believes: a thread must be its process's own,
// but frames read after the process exited still count (their thread can no
// longer run, so nothing is published for it), even when its pid has been
// given to another process since. A connection's close abandons its own
// spans, not those of the process's other connections.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { SpanStartMessage } from '@agentrace/sdk/protocol';
import { ToolSpanRegistry, Refusal, type Announcer } from '../packages/sidecar/src/tool-spans.js';
import { pinProcess, stillRunning, type ProcessIdentity } from '../packages/sidecar/src/process-identity.js';

function start(tid: number): SpanStartMessage {
  return { t: 'start', tid, trace: randomBytes(16), span: randomBytes(8), name: 'execute_tool t', kind: 0, start: [1, 0], attrs: {}, flags: 1, export: true };
}

let ids = 0;
function announcer(identity: ProcessIdentity): Announcer {
  return { id: ++ids, pid: identity.pid, alive: () => stillRunning(identity) };
}

test('a span announced by a process that has exited since is kept, with no live thread', async () => {
  const child = spawn('true');
  const pinned = pinProcess(child.pid!);
  await once(child, 'exit');
  assert.equal(stillRunning(pinned), false);
  const registry = new ToolSpanRegistry();
  const span = registry.start(announcer(pinned), {}, start(child.pid! + 1));
  assert.equal(span.threadAlive, false);
  assert.equal(registry.get(span.spanId), span);
});

test('a pid now run by a newcomer is not taken for the process that announced: its frames still count', async (t) => {
  // What a reused pid looks like: the pid runs, but not the process that
  // connected (another start time).
  const newcomer = spawn('sleep', ['30']);
  const bystander = spawn('sleep', ['30']);
  t.after(() => {
    newcomer.kill('SIGKILL');
    bystander.kill('SIGKILL');
  });
  const real = pinProcess(newcomer.pid!);
  assert.ok(real.startTime !== undefined && stillRunning(real));
  const gone: ProcessIdentity = { pid: newcomer.pid!, startTime: `${Number(real.startTime) - 1}` };
  const registry = new ToolSpanRegistry();
  // The old process's thread id is now some other live process's pid: not refused, just not live.
  const span = registry.start(announcer(gone), {}, start(bystander.pid!));
  assert.equal(span.threadAlive, false);
  // The same start from the live newcomer would name another process's thread: refused.
  assert.throws(() => registry.start(announcer(real), {}, start(bystander.pid!)), (e: unknown) => e instanceof Refusal && e.code === 'EPERM');
});

test("a live process may not name another process's thread, nor a tid that is no tid", async (t) => {
  const other = spawn('sleep', ['30']);
  t.after(() => other.kill('SIGKILL'));
  const registry = new ToolSpanRegistry();
  const self = announcer(pinProcess(process.pid));
  assert.throws(() => registry.start(self, {}, start(other.pid!)), (e: unknown) => e instanceof Refusal && e.code === 'EPERM');
  assert.throws(() => registry.start(self, {}, start(0)), (e: unknown) => e instanceof Refusal && e.code === 'EPERM');
  const own = registry.start(self, {}, start(process.pid));
  assert.equal(own.threadAlive, true);
  assert.equal(registry.refused, 2);
});

test("a connection's close abandons its own spans only (a worker's exit leaves the main thread's calls)", () => {
  const registry = new ToolSpanRegistry();
  const pinned = pinProcess(process.pid);
  const main = announcer(pinned);
  const worker = announcer(pinned);
  const mainCall = registry.start(main, {}, start(process.pid));
  const workerCall = registry.start(worker, {}, start(process.pid));
  const abandoned = registry.abandon(worker.id, 5n);
  assert.deepEqual(abandoned.map((s) => s.spanId), [workerCall.spanId]);
  assert.equal(workerCall.attrs['agentrace.span.incomplete'], true);
  assert.equal(mainCall.endNs, undefined, 'the main thread’s call is still open');
  assert.deepEqual(registry.open().map((s) => s.spanId), [mainCall.spanId]);
});
