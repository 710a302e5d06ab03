// The SDK's side of the frame rung, against a fake sidecar (no BPF): on
// Node 24 it offers its async context at hello, asks for each thread once
// the welcome says the kernel has the layout, turns its async hook off only
// on a yes, and otherwise keeps the hook, printing the refusal once when the
// sidecar says it is the process's first. On Node 20 it offers nothing.
// Each case is an agent process of its own (the choice is the thread's for
// its life).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { FramesAnswer } from '@agentrace/protocol';
import { FakeSidecar } from './support/sdk-fake-sidecar.js';
import { node20, node24, requireBothNodes } from './support/runtimes.js';

const run = promisify(execFile);
const sidecars: FakeSidecar[] = [];
after(async () => {
  for (const s of sidecars) await s.close();
});

// Waits for the welcome and the answer about frames, then runs one call and
// reports whether the hook was on inside it.
const agent = `
  import { traceTool } from '@agentrace/sdk';
  import * as internal from '@agentrace/sdk/internal';
  const ok = await internal.whenReady(5000);
  await new Promise((r) => setTimeout(r, 200));
  const call = traceTool('probe', async () => { await null; return internal.trackingEnabled(); });
  const hookInCall = await call();
  console.log(JSON.stringify({ ok, hookInCall, framesRead: internal.kernelReadsFrames(), tid: internal.state().tid }));
  process.exit(0);
`;

interface Outcome {
  out: { ok: boolean; hookInCall: boolean; framesRead: boolean; tid: number };
  warnings: string[];
  sidecar: FakeSidecar;
}

async function agentAgainst(node: string, opts: { frames?: FramesAnswer; framesAnswer?: FramesAnswer }): Promise<Outcome> {
  const sidecar = await FakeSidecar.start(opts);
  sidecars.push(sidecar);
  const { stdout, stderr } = await run(node, ['--input-type=module', '-e', agent], {
    env: { ...process.env, AGENTRACE_SOCKET: sidecar.path },
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    timeout: 15_000,
  });
  return { out: JSON.parse(stdout), warnings: stderr.match(/\[AGENTRACE_CONTEXT_HOOK\][^\n]*/g) ?? [], sidecar };
}

test('the agents run on Node 20 and Node 24 (in CI)', (t) => requireBothNodes(t));

test('Node 24: offered at hello; asked for the thread once the welcome says the kernel has the layout; a yes turns the hook off', async (t) => {
  if (!node24) return t.skip('no Node 24');
  const r = await agentAgainst(node24, { frames: { ok: true }, framesAnswer: { ok: true } });
  assert.equal(r.out.ok, true);
  assert.equal(r.sidecar.of('hello')[0]!.frames, true);
  assert.deepEqual(r.sidecar.of('check-frames').map((m) => m.tid), [r.out.tid], 'asked once, for its own thread');
  assert.equal(r.out.framesRead, true);
  assert.equal(r.out.hookInCall, false, 'no async hook while the call ran');
  assert.deepEqual(r.warnings, []);
});

test('Node 24: a refusal the sidecar marks as the first is printed once, with its reason, and the hook stays; one not marked is not printed', async (t) => {
  if (!node24) return t.skip('no Node 24');
  const atWelcome = await agentAgainst(node24, { frames: { ok: false, reason: 'no layout for this binary', warn: true } });
  assert.equal(atWelcome.sidecar.of('check-frames').length, 0, 'nothing to ask once the welcome said no');
  assert.equal(atWelcome.out.hookInCall, true);
  assert.equal(atWelcome.warnings.length, 1);
  assert.match(atWelcome.warnings[0]!, /cannot read tool calls from this Node's async context \(no layout for this binary\)/);

  const atCheck = await agentAgainst(node24, { frames: { ok: true }, framesAnswer: { ok: false, reason: 'the walk was not proved', warn: true } });
  assert.equal(atCheck.sidecar.of('check-frames').length, 1);
  assert.equal(atCheck.out.framesRead, false);
  assert.equal(atCheck.out.hookInCall, true);
  assert.equal(atCheck.warnings.length, 1);
  assert.match(atCheck.warnings[0]!, /the walk was not proved/);

  const quiet = await agentAgainst(node24, { frames: { ok: true }, framesAnswer: { ok: false, reason: 'told before', warn: false } });
  assert.equal(quiet.out.hookInCall, true);
  assert.deepEqual(quiet.warnings, [], 'another thread of the process was told');
});

test('Node 24 and an older sidecar (a welcome that says nothing of frames): the hook, silently', async (t) => {
  if (!node24) return t.skip('no Node 24');
  const r = await agentAgainst(node24, {});
  assert.equal(r.sidecar.of('check-frames').length, 0);
  assert.equal(r.out.hookInCall, true);
  assert.deepEqual(r.warnings, []);
});

test('Node 20: nothing offered, nothing asked, the hook', async (t) => {
  if (!node20) return t.skip('no Node 20');
  const r = await agentAgainst(node20, { frames: { ok: true }, framesAnswer: { ok: true } });
  assert.equal(r.sidecar.of('hello')[0]!.frames, false);
  assert.equal(r.sidecar.of('check-frames').length, 0);
  assert.equal(r.out.framesRead, false);
  assert.equal(r.out.hookInCall, true);
  assert.deepEqual(r.warnings, []);
});
