// No sidecar: tool calls still work, fast and synchronous where fn is, with
// exactly one warning, a bounded queue, and nothing that keeps the process
// alive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { trace } from '@opentelemetry/api';
import { configure, flush, shutdown, traceTool, WARNING_TYPE } from '@agentrace/sdk';
import { QUEUE_CAPACITY, state, whenReady } from '@agentrace/sdk/internal';
import { FakeSidecar } from './support/sdk-fake-sidecar.js';

const run = promisify(execFile);
const agent = fileURLToPath(new URL('./fixtures/sdk-agent.mjs', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-sdk-'));
const missing = path.join(dir, 'no-sidecar.sock');

test('no sidecar: 10k calls succeed quickly, one warning, bounded queue', { timeout: 30_000 }, async () => {
  const warnings: Error[] = [];
  process.on('warning', (w) => {
    if (w.name === WARNING_TYPE) warnings.push(w);
  });
  configure({ socketPath: missing });
  const add = traceTool('add', (a: number, b: number) => a + b);
  let valid = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 10_000; i++) {
    if (add(i, 1) !== i + 1) assert.fail('wrong result');
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const probe = traceTool('probe', () => trace.getActiveSpan()?.spanContext());
  const sc = probe();
  if (sc && trace.isSpanContextValid(sc)) valid++;
  assert.equal(valid, 1, 'spans are still real without a sidecar');
  assert.ok(ms < 2000, `10k calls took ${ms.toFixed(1)} ms`);
  console.log(`10k calls without a sidecar: ${ms.toFixed(1)} ms (${((ms * 1e6) / 10_000).toFixed(0)} ns/call)`);

  // Several reconnect attempts happen in this time; still one warning.
  assert.equal(await whenReady(700), false);
  await flush(); // returns at once: nothing can be delivered
  const s = state();
  assert.equal(s.connected, false);
  assert.ok(s.queueLength <= QUEUE_CAPACITY, `queue holds ${s.queueLength}`);
  assert.ok(s.framesDropped >= 20_000 - QUEUE_CAPACITY, `dropped ${s.framesDropped}`);
  assert.equal(warnings.length, 1, warnings.map((w) => w.message).join('\n'));
  const w = warnings[0]!;
  assert.ok(w.message.includes(missing), w.message);
  assert.ok(w.message.includes('ENOENT'), w.message);
  assert.match(w.message, /without kernel attribution/);
  assert.equal((w as Error & { code?: string }).code, 'AGENTRACE_SIDECAR_UNAVAILABLE');
  assert.equal(s.warnings, 1);
});

test('ready() with no sidecar listening returns false at once, at start-up and later', { timeout: 30_000 }, async () => {
  const script = `import('@agentrace/sdk').then(async ({ ready }) => {
    const t0 = Date.now();
    const first = await ready(5000);
    const t1 = Date.now();
    const again = await ready(5000); // while backing off after the failure
    console.log(JSON.stringify({ first, again, firstMs: t1 - t0, againMs: Date.now() - t1 }));
  })`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, AGENTRACE_SOCKET: missing },
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    timeout: 10_000,
  });
  const out = JSON.parse(stdout) as { first: boolean; again: boolean; firstMs: number; againMs: number };
  assert.equal(out.first, false);
  assert.equal(out.again, false);
  assert.ok(out.firstMs < 500, `the first ready() took ${out.firstMs} ms of its 5000`);
  assert.ok(out.againMs < 500, `a later ready() took ${out.againMs} ms of its 5000`);
});

test('a socket path nobody listens on (ECONNREFUSED) is no worse', { timeout: 30_000 }, async () => {
  const sidecar = await FakeSidecar.start();
  const p = sidecar.path;
  await sidecar.stop();
  fs.writeFileSync(p, ''); // exists, but not a socket
  configure({ socketPath: p });
  const f = traceTool('x', async () => 'ok');
  assert.equal(await f(), 'ok');
  assert.equal(await whenReady(300), false);
  await sidecar.close();
});

test('the SDK never keeps a process alive: without a sidecar', { timeout: 30_000 }, async () => {
  const t0 = Date.now();
  const { stdout, stderr } = await run(process.execPath, [agent, '100'], {
    env: { ...process.env, AGENTRACE_SOCKET: missing },
    timeout: 10_000,
  });
  const out = JSON.parse(stdout) as { sum: number; connected: boolean };
  assert.equal(out.sum, 9900);
  assert.equal(out.connected, false);
  assert.ok(Date.now() - t0 < 5000, 'exited by itself');
  assert.equal(stderr.match(/AgentraceWarning/g)?.length ?? 0, 1, stderr);
});

test('the SDK never keeps a process alive: with a connected sidecar', { timeout: 30_000 }, async () => {
  const sidecar = await FakeSidecar.start();
  try {
    const { stdout } = await run(process.execPath, [agent, '100'], {
      env: { ...process.env, AGENTRACE_SOCKET: sidecar.path, AGENT_WAIT_READY: '1' },
      timeout: 10_000,
    });
    const out = JSON.parse(stdout) as { sum: number; connected: boolean; slotRegistered: boolean };
    assert.equal(out.connected, true);
    assert.equal(out.slotRegistered, true);
    assert.equal(sidecar.of('hello').length, 1);
  } finally {
    await sidecar.close();
  }
});

test('a sidecar that does not keep up: frames are dropped with one warning, the stalled connection is given up, the count is printed at exit', { timeout: 30_000 }, async () => {
  const sidecar = await FakeSidecar.start({ stallAfterWelcome: true, record: false });
  try {
    const script = `import('@agentrace/sdk').then(async ({ ready, traceTool }) => {
      if (!(await ready(3000))) throw new Error('no welcome');
      const t = traceTool('busy', (x) => x.length, { captureArguments: true });
      for (let i = 0; i < 20000; i++) t('z'.repeat(300));
    })`;
    const { stderr } = await run(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, AGENTRACE_SOCKET: sidecar.path },
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      timeout: 20_000,
    });
    assert.equal(stderr.match(/AGENTRACE_FRAMES_DROPPED/g)?.length, 1, `one warning: ${stderr}`);
    // The stalled connection is given up (pending writes would keep the agent alive), and the agent exits.
    assert.match(stderr, /ESTALLED/);
    const count = /agentrace: (\d+) frames for the sidecar were dropped/.exec(stderr);
    assert.ok(count && Number(count[1]) > 1000, stderr);
  } finally {
    await sidecar.close();
  }
});

test('an agent that calls tools without ever yielding before its socket connects: the frames it lost are warned about once and counted at exit', { timeout: 30_000 }, async () => {
  const sidecar = await FakeSidecar.start({ record: false });
  try {
    // No ready(), no await between calls: the queue fills before the connection is up.
    const script = `import('@agentrace/sdk').then(async ({ traceTool, shutdown }) => {
      const t = traceTool('tight', (x) => x + 1);
      for (let i = 0; i < 5000; i++) t(i);
      await shutdown();
    })`;
    const { stderr } = await run(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, AGENTRACE_SOCKET: sidecar.path },
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      timeout: 20_000,
    });
    assert.equal(stderr.match(/AGENTRACE_FRAMES_DROPPED/g)?.length, 1, `one warning: ${stderr}`);
    const count = /agentrace: (\d+) frames for the sidecar were dropped/.exec(stderr);
    // 10,000 frames, 1,000 queued at most before the connection.
    assert.ok(count && Number(count[1]) >= 9000, stderr);
  } finally {
    await sidecar.close();
  }
});

test('cleanup', { timeout: 30_000 }, async () => {
  await shutdown();
  fs.rmSync(dir, { recursive: true, force: true });
});
