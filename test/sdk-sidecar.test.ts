// The SDK against a fake sidecar on a real Unix socket: hello before
// everything, the slot registered at first use (which declares the process
// to a sidecar's kernel) and again after welcome (and how), worker
// threads with their own connection and tid, the sidecar's `error`
// message, garbage from the sidecar, shutdown.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { trace } from '@opentelemetry/api';
import { configure, flush, shutdown, traceTool, WARNING_TYPE } from '@agentrace/sdk';
import { setSlotSink, slotBytes, state, whenReady } from '@agentrace/sdk/internal';
import { SLOT_MAGIC } from '@agentrace/protocol';
import { FakeSidecar, hex, osThreadId } from './support/sdk-fake-sidecar.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-sdk-'));
const sink = path.join(dir, 'slot-writes.bin');
const sidecars: FakeSidecar[] = [];
const warnings: Error[] = [];
process.on('warning', (w) => {
  if (w.name === WARNING_TYPE) warnings.push(w);
});

async function sidecarFor(welcome: 'auto' | 'manual' = 'auto'): Promise<FakeSidecar> {
  const s = await FakeSidecar.start({ welcome });
  sidecars.push(s);
  return s;
}

after(async () => {
  await shutdown();
  setSlotSink(undefined);
  for (const s of sidecars) await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('hello comes first; the slot is registered at first use, before any round trip, and again after welcome', { timeout: 30_000 }, async () => {
  setSlotSink(sink);
  const sidecar = await sidecarFor('manual');
  configure({ socketPath: sidecar.path });
  const f = traceTool('early', () => trace.getActiveSpan()?.spanContext().spanId);
  const early = f(); // before welcome: queued or sent, never lost
  await sidecar.waitFor(() => sidecar.of('hello').length === 1, 2000, 'hello');
  assert.equal(sidecar.received[0]!.msg.t, 'hello', 'hello is the first frame');

  await new Promise((r) => setTimeout(r, 50));
  let s = state();
  assert.equal(s.connected, true);
  assert.equal(s.welcomed, false);
  assert.equal(s.slotRegistered, false, 'not registered on a welcomed connection yet');
  assert.equal(s.slotRegistrations, 1, 'registered once at first use: that write declares the process');
  assert.equal(fs.statSync(sink).size, 32);

  sidecar.sendWelcome();
  assert.equal(await whenReady(2000), true);
  s = state();
  assert.equal(s.welcomed, true);
  assert.equal(s.slotRegistered, true);
  assert.equal(s.slotRegistrations, 2, 'and again on the welcomed connection');
  const written = fs.readFileSync(sink);
  assert.equal(written.length, 64, 'two 32-byte writes');
  for (const w of [written.subarray(0, 32), written.subarray(32)]) {
    assert.equal(w.toString('latin1', 0, 16), SLOT_MAGIC);
    assert.deepEqual(w.subarray(16), Buffer.alloc(16));
  }
  assert.equal(SLOT_MAGIC.length, 16);
  assert.deepEqual(slotBytes(), Buffer.alloc(32), 'back to "no span" right after the write');

  await flush();
  await sidecar.waitFor(() => sidecar.of('end').length === 1, 2000, 'the early span');
  assert.equal(hex(sidecar.of('start')[0]!.span), early);
});

test('worker threads: own connection, own hello, own tid, own slot', { timeout: 30_000 }, async () => {
  const sidecar = await sidecarFor();
  configure({ socketPath: sidecar.path });
  assert.equal(await whenReady(2000), true);
  const worker = new Worker(new URL('./fixtures/sdk-worker.mjs', import.meta.url), {
    workerData: { socketPath: sidecar.path },
  });
  const exited = new Promise((r) => worker.once('exit', r));
  const result = await new Promise<{ ready: boolean; spanId: string; slot: string; state: { tid: number } }>(
    (resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no message from the worker in 10 s')), 10_000);
      worker.once('message', (m) => {
        clearTimeout(t);
        resolve(m);
      });
      worker.once('error', reject);
    },
  ).catch(async (err: unknown) => {
    await worker.terminate();
    throw err;
  });
  const t = setTimeout(() => void worker.terminate(), 10_000);
  const code = await exited;
  clearTimeout(t);
  assert.equal(code, 0, 'the worker exited by itself');
  assert.equal(result.ready, true);
  const mainTid = osThreadId();
  assert.notEqual(result.state.tid, mainTid);
  assert.ok(result.state.tid > 0);
  assert.equal(result.slot.slice(32, 48), result.spanId, "the worker's slot held its span");

  const main = traceTool('main_tool', () => trace.getActiveSpan()?.spanContext().spanId);
  const mainSpan = main();
  await flush();
  await sidecar.waitFor(() => sidecar.of('end').length === 2, 2000, 'both ends');
  assert.equal(sidecar.of('hello').length, 2, 'one hello per thread');
  const starts = sidecar.received.filter((r) => r.msg.t === 'start');
  const w = starts.find((r) => hex((r.msg as { span: Uint8Array }).span) === result.spanId)!;
  const m = starts.find((r) => hex((r.msg as { span: Uint8Array }).span) === mainSpan)!;
  assert.notEqual(w.conn, m.conn, 'different connections');
  assert.equal((w.msg as { tid: number }).tid, result.state.tid);
  assert.equal((m.msg as { tid: number }).tid, mainTid);
});

test("the sidecar's error message: one warning per code, the connection stays", { timeout: 30_000 }, async () => {
  const sidecar = await sidecarFor();
  configure({ socketPath: sidecar.path });
  assert.equal(await whenReady(2000), true);
  const before = warnings.length;
  sidecar.send(0, { t: 'error', code: 'EPERM', message: 'span refused' });
  sidecar.send(0, { t: 'error', code: 'EPERM', message: 'span refused again' });
  await new Promise((r) => setTimeout(r, 50));
  const f = traceTool('after_error', () => 1);
  f();
  await flush();
  await sidecar.waitFor(() => sidecar.of('end').length === 1, 2000, 'span after error');
  assert.equal(warnings.length, before + 1);
  assert.match(warnings.at(-1)!.message, /EPERM.*span refused/);
  assert.equal((warnings.at(-1) as Error & { code?: string }).code, 'AGENTRACE_SIDECAR_ERROR');
  assert.equal(state().connected, true);
  assert.equal(sidecar.connections.length, 1, 'no reconnect');
});

test('garbage from the sidecar: no crash, one warning per broken connection, a fresh connection with hello again', { timeout: 30_000 }, async () => {
  const sidecar = await sidecarFor();
  configure({ socketPath: sidecar.path });
  assert.equal(await whenReady(2000), true);
  const before = warnings.length;
  const registrations = state().slotRegistrations;
  // A length prefix far beyond MAX_FRAME_BYTES, then a wrong protocol version.
  sidecar.sendRaw(0, Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
  await sidecar.waitFor(() => sidecar.of('hello').length === 2, 3000, 'second hello');
  assert.equal(await whenReady(2000), true);
  sidecar.sendRaw(1, Buffer.from([0, 0, 0, 2, 9, 0xc0]));
  await sidecar.waitFor(() => sidecar.of('hello').length === 3, 3000, 'third hello');
  assert.equal(await whenReady(2000), true);
  assert.equal(state().slotRegistrations, registrations + 2, 're-registered on each new connection');

  const f = traceTool('after_garbage', async () => 'fine');
  assert.equal(await f(), 'fine');
  await flush();
  await sidecar.waitFor(() => sidecar.of('end', 2).length === 1, 2000, 'span on the third connection');
  const mine = warnings.slice(before);
  assert.equal(mine.length, 2, mine.map((w) => w.message).join('\n'));
  assert.match(mine[0]!.message, /EMSGSIZE/);
  assert.match(mine[1]!.message, /EPROTO/);
});

test('shutdown closes the connection; tool calls keep working', { timeout: 30_000 }, async () => {
  const sidecar = await sidecarFor();
  configure({ socketPath: sidecar.path });
  assert.equal(await whenReady(2000), true);
  const f = traceTool('before_shutdown', () => 1);
  f();
  await shutdown();
  await sidecar.waitFor(() => sidecar.of('end').length === 1, 2000, 'flushed before close');
  await new Promise<void>((resolve) => {
    const c = sidecar.connections[0]!;
    if (c.destroyed || c.readableEnded) resolve();
    else c.once('close', () => resolve());
  });
  const g = traceTool('after_shutdown', () => trace.getActiveSpan()?.spanContext().spanId);
  assert.match(g() ?? '', /^[0-9a-f]{16}$/);
  assert.equal(state().connected, false);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(sidecar.connections.length, 1, 'no reconnect after shutdown');
});
