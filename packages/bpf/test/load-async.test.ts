// Probes.loadAsync(): the verifier runs on the libuv threadpool (the entry
// point overlaps it with importing the commands' modules), and the object is
// the verifier's alone until it settles. Needs root and BPF.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { bpfUnavailableReason } from '../src/availability.js';
import { isBpfError } from '../src/errors.js';
import { defaultObjectPath, native } from '../src/native.js';
import { Probes } from '../src/probes.js';

// As test/support/bpf.ts: in CI an unusable BPF fails the test; elsewhere it is skipped.
function requireBpf(t: TestContext): boolean {
  const reason = bpfUnavailableReason();
  if (reason === null) return true;
  if (process.env.CI === 'true') assert.fail(`BPF is required in CI but unusable: ${reason}`);
  t.skip(`BPF unusable here: ${reason}`);
  return false;
}

test('loadAsync verifies the programs off the event loop, then the probes attach as with load()', async (t) => {
  if (!requireBpf(t)) return;
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 1);
  const started = performance.now();
  const probes = await Probes.loadAsync();
  const ms = performance.now() - started;
  clearInterval(ticker);
  try {
    // A synchronous load would have let no timer run before it returned.
    assert.ok(ticks >= 5, `the event loop ran ${ticks} times during a ${ms.toFixed(0)} ms load`);
    probes.attach('context');
    assert.equal(probes.isAttached('context'), true);
    assert.ok(probes.programs('file').length > 0);
  } finally {
    probes.close();
  }
});

test('while loadAsync runs, other calls are refused (EBUSY) and close() waits for it', async (t) => {
  if (!requireBpf(t)) return;
  const obj = new (native().BpfObject)(defaultObjectPath);
  const loading = obj.loadAsync();
  for (const call of [() => obj.attach('context_slot_register'), () => obj.programs(), () => obj.mapLookup('ar_config', Buffer.alloc(4))]) {
    assert.throws(call, (err: unknown) => {
      assert.ok(isBpfError(err), `not a BpfError: ${String(err)}`);
      assert.equal(err.errnoName, 'EBUSY');
      assert.match(err.message, /loadAsync\(\) has not settled yet; await it first/);
      return true;
    });
  }
  obj.close(); // deferred: the verifier still holds the object
  await loading;
  assert.throws(() => obj.programs(), /closed/);
  assert.deepEqual(obj.linkFds(), []);
});

test('a load that fails on the threadpool rejects with a BpfError carrying what libbpf said', async (t) => {
  if (!requireBpf(t)) return;
  // No map may have zero entries: the kernel refuses it at load time.
  await assert.rejects(Probes.loadAsync({ maxSpanAggregates: 0 }), (err: unknown) => {
    assert.ok(isBpfError(err), `not a BpfError: ${String(err)}`);
    assert.match(err.message, /^load\(agentrace\) failed: EINVAL .*the kernel refused to create a map/);
    assert.notEqual(err.libbpfLog, '', 'libbpf said why');
    return true;
  });
});
