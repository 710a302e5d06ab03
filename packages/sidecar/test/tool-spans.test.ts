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
import type { SpanStartMessage } from '@agentrace/protocol';
import { ToolSpanRegistry, Refusal, type Announcer } from '../src/tool-spans.js';
import { pinProcess, stillRunning, type ProcessIdentity } from '../src/process-identity.js';
import { ThreadIds } from '../src/thread-ids.js';

function start(tid: number): SpanStartMessage {
  return { t: 'start', tid, trace: randomBytes(16), span: randomBytes(8), name: 'execute_tool t', kind: 0, start: [1, 0], attrs: {}, flags: 1, export: true };
}

let ids = 0;
function announcer(identity: ProcessIdentity): Announcer {
  return { id: ++ids, pid: identity.pid, uid: 0, alive: () => stillRunning(identity), threads: new ThreadIds(identity.pid) };
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
  assert.throws(() => registry.start(announcer(real), {}, start(bystander.pid!)), (e: unknown) => e instanceof Refusal && e.wireCode === 'EPERM');
});

test("a live process may not name another process's thread, nor a tid that is no tid", async (t) => {
  const other = spawn('sleep', ['30']);
  t.after(() => other.kill('SIGKILL'));
  const registry = new ToolSpanRegistry();
  const self = announcer(pinProcess(process.pid));
  assert.throws(() => registry.start(self, {}, start(other.pid!)), (e: unknown) => e instanceof Refusal && e.wireCode === 'EPERM');
  assert.throws(() => registry.start(self, {}, start(0)), (e: unknown) => e instanceof Refusal && e.wireCode === 'EPERM');
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

test('fair share: one user, or one process, cannot take the room others need; refusals are counted by reason', () => {
  const registry = new ToolSpanRegistry({ maxInFlight: 10, maxInFlightPerUser: 4, maxInFlightPerProcess: 3 });
  const self = pinProcess(process.pid);
  const as = (uid: number, pid = process.pid): Announcer => ({ id: ++ids, pid, uid, alive: () => stillRunning(self), threads: new ThreadIds(pid) });
  const flood = as(65534);
  for (let i = 0; i < 3; i++) registry.start(flood, {}, start(process.pid));
  // The process's share is used up...
  assert.throws(() => registry.start(flood, {}, start(process.pid)), (e: unknown) => e instanceof Refusal && e.wireCode === 'ENOSPC');
  // ...and its user's, with another process of the same user (a pid that is not ours: its thread check passes as a gone process).
  registry.start({ id: ++ids, pid: 4_000_000, uid: 65534, alive: () => false, threads: new ThreadIds(4_000_000) }, {}, start(4_000_001));
  assert.throws(() => registry.start({ id: ++ids, pid: 4_000_002, uid: 65534, alive: () => false, threads: new ThreadIds(4_000_002) }, {}, start(4_000_003)), (e: unknown) => e instanceof Refusal && e.wireCode === 'ENOSPC');
  // Another user's process still has room.
  const ok = registry.start({ id: ++ids, pid: 4_000_010, uid: 0, alive: () => false, threads: new ThreadIds(4_000_010) }, {}, start(4_000_011));
  assert.equal(registry.inFlightCount, 5);
  assert.deepEqual(registry.refusedBy, { invalid: 0, not_own: 0, in_flight_total: 0, in_flight_user: 1, in_flight_process: 1 });
  // Ending frees the share.
  registry.end(4_000_010, { t: 'end', span: Buffer.from(ok.spanId, 'hex'), end: [2, 0], status: { code: 0 } });
  assert.equal(registry.inFlightCount, 4);
});

test('what an agent sends is checked before it is kept: times, kind, status; names and attributes within the limits, cuts counted', () => {
  const registry = new ToolSpanRegistry({ attributes: { valueLength: 10, count: 3 }, nameLength: 20 });
  const self: Announcer = { id: ++ids, pid: process.pid, uid: 0, alive: () => true, threads: new ThreadIds(process.pid) };
  const bad = (patch: Partial<SpanStartMessage>): void =>
    assert.throws(() => registry.start(self, {}, { ...start(process.pid), ...patch }), (e: unknown) => e instanceof Refusal && e.wireCode === 'EINVAL', JSON.stringify(patch));
  bad({ start: [1e20, 0] });
  bad({ start: [1, 2e9] });
  bad({ start: ['1', 0] as unknown as [number, number] });
  bad({ kind: 9 });
  bad({ flags: -1 });
  bad({ name: 42 as unknown as string });
  assert.equal(registry.refusedBy.invalid, 6);

  const span = registry.start(self, {}, { ...start(process.pid), name: 'n'.repeat(100), attrs: { a: 'x'.repeat(1_000_000), b: ['y'.repeat(50), 'ok'], c: 1, d: 2, e: { nested: true } as unknown as string } });
  assert.equal(span.name.length, 20);
  assert.equal(span.attrs.a, 'x'.repeat(10));
  assert.deepEqual(span.attrs.b, ['y'.repeat(10), 'ok']);
  assert.equal(span.attrs['agentrace.attributes.truncated'], 2, 'two values cut');
  assert.equal(span.attrs['agentrace.attributes.dropped'], 2, 'one over the count, one not OTLP');
  assert.equal(registry.attributesTruncated, 3, 'and the name');
  // An end with a status code that is none is refused; the span stays open.
  assert.throws(() => registry.end(process.pid, { t: 'end', span: Buffer.from(span.spanId, 'hex'), end: [2, 0], status: { code: 'ok' as unknown as number } }), (e: unknown) => e instanceof Refusal && e.wireCode === 'EINVAL');
  assert.equal(span.endNs, undefined);
  registry.end(process.pid, { t: 'end', span: Buffer.from(span.spanId, 'hex'), end: [2, 0], status: { code: 2, message: 'm'.repeat(50) } });
  assert.deepEqual(span.status, { code: 2, message: 'm'.repeat(10) });
});

test('attribute characters are budgeted per span and per user while in flight; what does not fit is dropped, counted, and given back at the end', () => {
  const registry = new ToolSpanRegistry({ spanAttributeChars: 100, attributeCharsInFlightPerUser: 150, attributeCharsInFlight: 1000 });
  const as = (uid: number): Announcer => ({ id: ++ids, pid: process.pid, uid, alive: () => true, threads: new ThreadIds(process.pid) });
  const big = { a: 'x'.repeat(59), b: 'y'.repeat(59) }; // 60 characters each with its key
  const first = registry.start(as(65534), {}, { ...start(process.pid), attrs: big });
  assert.deepEqual(Object.keys(first.attrs), ['a', 'agentrace.attributes.dropped'], 'the second attribute passes the span budget (100)');
  assert.equal(first.attrs['agentrace.attributes.dropped'], 1);
  const second = registry.start(as(65534), {}, { ...start(process.pid), attrs: big });
  assert.deepEqual(Object.keys(second.attrs), ['a', 'agentrace.attributes.dropped'], 'the user has 150 in all: 60 + 60, then no room');
  const third = registry.start(as(65534), {}, { ...start(process.pid), attrs: big });
  assert.equal(third.attrs['agentrace.attributes.dropped'], 2, 'nothing fits: the span is kept, its attributes are not');
  const other = registry.start(as(0), {}, { ...start(process.pid), attrs: { a: 'x'.repeat(59) } });
  assert.equal(other.attrs.a, 'x'.repeat(59), 'another user has its own room');
  assert.equal(registry.attributeCharsInFlight, 180);
  registry.end(process.pid, { t: 'end', span: Buffer.from(first.spanId, 'hex'), end: [2, 0], status: { code: 0 } });
  assert.equal(registry.attributeCharsInFlight, 120, 'an ended span gives its room back');
  assert.equal(registry.start(as(65534), {}, { ...start(process.pid), attrs: { a: 'x'.repeat(59) } }).attrs.a, 'x'.repeat(59));
});

test('ended spans are kept for late events, bounded in count, with only what attribution needs', () => {
  const registry = new ToolSpanRegistry({ maxEnded: 3 });
  const self: Announcer = { id: ++ids, pid: process.pid, uid: 0, alive: () => true, threads: new ThreadIds(process.pid) };
  const ended = [];
  for (let i = 0; i < 5; i++) {
    const s = registry.start(self, {}, { ...start(process.pid), attrs: { 'gen_ai.tool.name': 't', 'gen_ai.tool.call.arguments': 'z'.repeat(1000) } });
    registry.end(process.pid, { t: 'end', span: Buffer.from(s.spanId, 'hex'), end: [2, 0], status: { code: 2, message: 'failed' } });
    registry.retire(s);
    ended.push(s);
  }
  assert.deepEqual(ended[4]!.attrs, { 'gen_ai.tool.name': 't' }, 'retired: the tool name stays, for its metrics');
  assert.equal(ended[4]!.status, undefined);
  registry.prune();
  assert.equal(registry.endedCount, 3);
  assert.equal(registry.endedEvicted, 2);
  assert.equal(registry.get(ended[0]!.spanId), undefined, 'the oldest went first');
  assert.equal(registry.get(ended[4]!.spanId), ended[4]);
  // Past their retention, all go.
  registry.prune(Date.now() + 31_000);
  assert.equal(registry.endedCount, 0);
  assert.equal(registry.get(ended[4]!.spanId), undefined);
});
