// The sidecar dies mid-run and comes back: calls keep working during the
// outage with one warning, the SDK reconnects in the background, says hello
// again, re-registers its slot, and spans flow again. An end whose start
// went to the dead connection is not sent to the new one.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { trace } from '@opentelemetry/api';
import { configure, flush, shutdown, traceTool, WARNING_TYPE } from '@agentrace/sdk';
import { QUEUE_CAPACITY, state, whenReady } from '@agentrace/sdk/internal';
import { FakeSidecar, hex } from './support/sdk-fake-sidecar.js';

let sidecar: FakeSidecar | undefined;
after(async () => {
  await shutdown();
  await sidecar?.close();
});

test('sidecar dies mid-run and comes back', { timeout: 30_000 }, async () => {
  const warnings: Error[] = [];
  process.on('warning', (w) => {
    if (w.name === WARNING_TYPE) warnings.push(w);
  });
  sidecar = await FakeSidecar.start();
  configure({ socketPath: sidecar.path });
  assert.equal(await whenReady(2000), true);

  const spanId = (): string => trace.getActiveSpan()!.spanContext().spanId;
  const quick = traceTool('quick', () => spanId());
  let release: () => void = () => {};
  const slow = traceTool('slow', async () => {
    const id = spanId();
    await new Promise<void>((r) => (release = r));
    return id;
  });

  const before = quick();
  const slowCall = slow(); // starts on the first connection, ends after the reconnect
  await flush();
  await sidecar.waitFor(() => sidecar!.of('start').length === 2, 2000, 'starts on connection 0');

  // The sidecar dies.
  await sidecar.stop();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(state().connected, false);
  const during: string[] = [];
  for (let i = 0; i < 50; i++) during.push(quick());
  assert.equal(new Set(during).size, 50, 'plain spans during the outage');
  await new Promise((r) => setTimeout(r, 300)); // a few failed attempts
  assert.equal(warnings.length, 1, warnings.map((w) => w.message).join('\n'));
  assert.ok(warnings[0]!.message.includes(sidecar.path));
  assert.match(warnings[0]!.message, /without kernel attribution/);

  // It comes back on the same path.
  await sidecar.listen();
  assert.equal(await whenReady(6000), true, 'reconnected and welcomed');
  const s = state();
  assert.equal(s.slotRegistered, true);
  assert.equal(s.slotRegistrations, 3, 'slot registered at first use, on the first connection, and again on the new one');
  assert.equal(s.welcomes, 2);

  release();
  const slowId = await slowCall;
  const after = quick();
  await flush();
  await sidecar.waitFor(() => sidecar!.of('end', 1).some((m) => hex(m.span) === after), 2000, 'span after reconnect');

  assert.equal(sidecar.of('hello', 1).length, 1, 'hello again on the new connection');
  assert.equal(sidecar.received.filter((r) => r.conn === 1)[0]!.msg.t, 'hello', 'and first');
  // Spans of the outage were queued (bounded) and delivered after hello, each with its end.
  const starts1 = new Set(sidecar.of('start', 1).map((m) => hex(m.span)));
  const ends1 = new Set(sidecar.of('end', 1).map((m) => hex(m.span)));
  for (const id of during) {
    assert.ok(starts1.has(id) && ends1.has(id), `outage span ${id} delivered`);
  }
  // The slow span started on connection 0: its end is not an orphan on connection 1.
  assert.ok(!ends1.has(slowId), 'no orphan end');
  assert.ok(!starts1.has(slowId));
  assert.ok(sidecar.of('start', 0).some((m) => hex(m.span) === before));
  assert.ok(state().endsSuppressed >= 1);
  assert.equal(warnings.length, 1, 'still one warning');
});

test('queue policy while disconnected: at most QUEUE_CAPACITY frames, every queued start gets its end, no end without start', { timeout: 30_000 }, async () => {
  const s = await FakeSidecar.start();
  await s.stop(); // the path is known, nobody listens yet
  configure({ socketPath: s.path });
  try {
    const releases: Array<() => void> = [];
    const pending = traceTool('pending', () => new Promise<void>((r) => releases.push(r)));
    const calls = Array.from({ length: 800 }, () => pending());
    const st = state();
    assert.equal(st.connected, false);
    assert.ok(st.queueLength <= QUEUE_CAPACITY / 2, `queue ${st.queueLength}`);
    for (const r of releases) r();
    await Promise.all(calls);
    assert.ok(state().queueLength <= QUEUE_CAPACITY);

    await s.listen();
    // A reconnect attempt begun before the listen fails, and whenReady says
    // so at once: wait for the next one.
    const deadline = Date.now() + 6000;
    while (!(await whenReady(6000)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(state().welcomed, true);
    await flush();
    const starts = new Set(s.of('start').map((m) => hex(m.span)));
    await s.waitFor(() => s.of('end').length === starts.size, 2000, 'an end for every start');
    const ends = s.of('end').map((m) => hex(m.span));
    assert.equal(starts.size, QUEUE_CAPACITY / 2, 'starts admitted while room for their ends was left');
    for (const e of ends) assert.ok(starts.has(e), 'no end without its start');
    assert.ok(state().framesDropped >= 2 * (800 - QUEUE_CAPACITY / 2));
  } finally {
    await s.close();
  }
});
