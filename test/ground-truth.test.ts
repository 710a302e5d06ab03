// Ground truth for attribution, on the real kernel with the real sidecar:
// 64 tool calls run at once in one agent process (then split over two
// worker_threads), each opening, connecting, fetching, resolving and
// spawning things only it touches, with awaits in between. Every action must
// come out of the OTLP export under its own tool span: precision and recall
// per action kind (test/support/ground-truth.ts scores them;
// bench/ground-truth.ts prints the same tables for 8, 32 and 64 calls).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { requireBpf } from './support/bpf.js';
import { node24, requireBothNodes, requireNode24, runtimes } from './support/runtimes.js';
import { nodeWithConstant } from './support/patched-node.js';
import {
  FILE_IO_BYTES,
  GroundTruthLab,
  KINDS,
  pct,
  planned,
  reasonFor,
  score,
  table,
  untracedTable,
  type AgentPlan,
  type Kind,
  type RunResult,
} from './support/ground-truth.js';
import type { FlatSpan } from './support/otlp.js';

const CALLS = 64;

/**
 * Kinds attributed exactly, asserted at 100% precision and recall: sync
 * opens, connects (plain, undici, fetch) and forks through the thread slot
 * that follows async context switches; fs.promises opens and DNS lookups on
 * the libuv threadpool through the work-item rung; c-ares queries (sent from
 * the JS thread) through the slot; the child's own opens
 * through process inheritance; a call's file write and read-back bytes
 * through the descriptor it opened (per-span I/O counts).
 */
const EXACT: readonly Kind[] = KINDS.filter((k) => k !== 'file.open.in-scope' && k !== 'file.open.after-scope');

/**
 * Known bugs, each found by the known-bugs run below and kept as a `todo`
 * subtest until fixed (then set it to undefined, so the subtest counts).
 */
const BACKGROUND_BUG: string | undefined = undefined; // fixed: a registered slot overrules the thread map
/** Node < 24 (async_hooks ALS): the after hook reads the context before Node pops the inner scope. */
const NESTED_AFTER_BUG: string | undefined = undefined; // fixed: the after hook restores what before saved
/** Node >= 24 (AsyncContextFrame): runInAsyncScope emits before ahead of switching the frame. */
const NESTED_INSIDE_BUG: string | undefined = undefined; // fixed: runInAsyncScope's function takes the slot from its own context


function nodeMajor(node: string): number {
  return Number(spawnSync(node, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).stdout.trim());
}

let lab: GroundTruthLab | undefined;

before(async () => {
  lab = await GroundTruthLab.start(CALLS);
});

after(async () => {
  await lab?.close();
});

test('the agent runs on Node 20 and Node 24 (in CI)', (t) => requireBothNodes(t));

for (const [runtime, node] of runtimes) {
  for (const workers of [0, 2]) {
    const layout = workers ? `${workers} worker threads` : 'one thread';
    test(`${CALLS} concurrent tool calls (${layout}, agent on ${runtime}): every action is exported under its own tool call`, async (t) => {
      if (!requireBpf(t)) return;
      const r = await lab!.run({ node, calls: CALLS, workers, tag: `${runtime.replace(/\W+/g, '')}-${workers}w`, nodeArgs: ['--expose-internals'] });
      assertRan(r, workers);
      assertContextFollowed(r, nodeMajor(node));
      const { scored } = r;
      const rungs = JSON.stringify(scored.rungsSeen);
      t.diagnostic(`agent ${r.report!.node}, ${layout}, ${CALLS} calls; ${r.spans.length} spans exported; rungs: ${rungs}`);
      for (const line of table(scored).split('\n')) t.diagnostic(line);

      assert.equal(scored.toolSpans.size, CALLS, 'a tool span per call');
      for (const [callId, list] of scored.toolSpans) assert.equal(list.length, 1, `${callId} exported once`);
      for (const kind of KINDS.filter((k) => planned(r.plan, k))) {
        const s = scored.scores[kind];
        const why = reasonFor(kind, s, scored);
        if (EXACT.includes(kind)) {
          assert.equal(s.precision, 1, `${kind}: precision ${pct(s.precision)}: ${why}`);
          assert.equal(s.recall, 1, `${kind}: recall ${pct(s.recall)}: ${why}`);
        } else {
          // Not attributed yet: nothing of it may land under the wrong tool call.
          assert.deepEqual(s.falsePositives, [], `${kind}: nothing lands under the wrong tool call`);
          t.diagnostic(s.recall === 1 ? `${kind} is now exact: add it to EXACT` : `${kind}: recall ${pct(s.recall)}: ${why}`);
        }
      }
    });
  }
}

// Beside its tool calls an agent works on its own (talks to its model, logs,
// reloads config): none of that belongs to a call. And libraries run a
// callback in the async scope it was bound in (AsyncResource), synchronously,
// from whoever comes by: a pool hands a connection to a waiting call by
// calling its callback from the call that released it. One run per runtime
// checks both: every thread loops over every step outside any tool call
// while its calls run, and every call runs a callback in the scope of another
// call (it opens that call's file), then opens a file of its own.
for (const [runtime, node] of runtimes) {
  const workers = runtime === 'node 24' ? 2 : 0;
  const layout = workers ? `${workers} worker threads` : 'one thread';
  test(`beside ${CALLS} calls (${layout}, agent on ${runtime}): work outside any call, callbacks in another call's async scope`, async (t) => {
    if (!requireBpf(t)) return;
    const tag = `${runtime.replace(/\W+/g, '')}-${workers}w-bg`;
    const r = await lab!.run({ node, calls: CALLS, workers, tag, background: true, nestedScopes: true, nodeArgs: ['--expose-internals'] });
    assertRan(r, workers);
    assertContextFollowed(r, nodeMajor(node));
    const { scored } = r;
    const rounds = r.report!.threads.map((th) => th.backgroundRounds ?? 0);
    assert.ok(rounds.every((n) => n >= 1), `every thread ran the background steps while its calls ran: ${rounds.join(', ')}`);
    for (const line of untracedTable(scored).split('\n')) t.diagnostic(line);
    for (const line of table(scored).split('\n')) t.diagnostic(line);

    await t.test('nothing done outside a tool call is exported under one', { todo: BACKGROUND_BUG }, () => {
      // (Not the background's open after a call's scope: on Node < 24 the
      // nested-scope bug below takes it to that call first.)
      for (const u of scored.untraced.filter((x) => x.kind !== 'file.open.after-scope')) {
        const ex = u.underTool.slice(0, 3).map((m) => `under ${m.under} (rung ${m.rung})`).join('; ');
        const n = `${u.underTool.length} of ${u.actions}`;
        assert.equal(u.underTool.length, 0, `background ${u.kind}: ${n} exported under a tool call: ${ex}`);
      }
      for (const kind of EXACT) {
        const s = scored.scores[kind];
        const pr = `precision ${pct(s.precision)}, recall ${pct(s.recall)}`;
        assert.ok(s.precision === 1 && s.recall === 1, `${kind}: ${pr}: ${reasonFor(kind, s, scored)}`);
      }
    });
    const major = nodeMajor(node);
    for (const [kind, todo] of [
      ['file.open.in-scope', major >= 24 ? NESTED_INSIDE_BUG : undefined],
      ['file.open.after-scope', major < 24 ? NESTED_AFTER_BUG : undefined],
    ] as const) {
      const what =
        kind === 'file.open.in-scope'
          ? "a callback run in a call's async scope by another call works for that call"
          : "a call's open right after running another call's callback is its own";
      await t.test(what, { todo }, () => {
        const s = scored.scores[kind];
        const why = reasonFor(kind, s, scored);
        assert.equal(s.precision, 1, `${kind}: precision ${pct(s.precision)}: ${why}`);
        assert.equal(s.recall, 1, `${kind}: recall ${pct(s.recall)}: ${why}`);
      });
    }
  });
}

// The frame rung under a moving heap: with --stress-compaction every full
// collection moves what it keeps, and the calls' pauses collect fully every
// so often, so V8's frames, their tables, the SDK's AsyncLocalStorage and
// the records' typed arrays move under the kernel while the calls run. The
// kernel tells the SDK's store by the tag its object holds, never by an
// address: every action still lands under its own call. The calls also run
// inside six other libraries' AsyncLocalStorage scopes, so the SDK's store
// is past the first entries of every frame.
test(`the frame rung while the GC moves what it walks, behind six other stores (${CALLS} calls, one thread, Node 24, --stress-compaction)`, async (t) => {
  requireNode24(t);
  if (!requireBpf(t) || !node24) return;
  const r = await lab!.run({
    node: node24,
    calls: CALLS,
    workers: 0,
    tag: 'node24-compacting',
    nodeArgs: ['--expose-internals', '--expose-gc', '--stress-compaction'],
    env: { GROUND_TRUTH_STORES: '6' },
  });
  assertRan(r, 0);
  assertContextFollowed(r, 24);
  const { scored } = r;
  const collections = r.report!.threads[0]!.collections ?? 0;
  t.diagnostic(`${collections} full collections during the calls; rungs: ${JSON.stringify(scored.rungsSeen)}`);
  assert.ok(collections >= CALLS, `the calls collected fully, often: ${collections}`);
  assertExact(r);
  assert.equal(r.stats.probes.frameUnreadable, 0n, 'every frame walked could be read');
});

// More stores in every frame than the kernel searches (20, set before the
// SDK registers): the proof at registration cannot find the SDK's store, so
// the rung is refused, said once, and the hook keeps every call exact.
test(`behind more stores than the kernel searches (${CALLS} calls, one thread, Node 24): refused, said once, exact through the hook`, async (t) => {
  requireNode24(t);
  if (!requireBpf(t) || !node24) return;
  const r = await lab!.run({ node: node24, calls: CALLS, workers: 0, tag: 'node24-many-stores', nodeArgs: ['--expose-internals'], env: { GROUND_TRUTH_STORES: '20' } });
  assertRan(r, 0);
  const { scored } = r;
  t.diagnostic(`rungs: ${JSON.stringify(scored.rungsSeen)}`);
  assertExact(r);
  assert.equal(scored.rungsSeen.frame, undefined);
  assertHookWarnedOnce(r, /did not find the SDK's store/);
});

// A node whose V8 the frame reader gets wrong (here, a copy whose postmortem
// constant for a typed array's data lies): the kernel's proof at each
// thread's registration refuses it, the agent says so once, and its SDK
// follows the calls with its async hook, exact as on Node 20.
test(`a Node 24 whose V8 layout the kernel cannot prove (${CALLS} calls, 2 worker threads): said once, and every action still under its own call through the hook`, async (t) => {
  requireNode24(t);
  if (!requireBpf(t) || !node24) return;
  const node = nodeWithConstant(node24, lab!.dir, 'v8dbg_class_JSTypedArray__external_pointer__uintptr_t', (v) => v + 8);
  const r = await lab!.run({ node, calls: CALLS, workers: 2, tag: 'node24-mislaid', nodeArgs: ['--expose-internals'] });
  assertRan(r, 2);
  const { scored } = r;
  t.diagnostic(`rungs: ${JSON.stringify(scored.rungsSeen)}`);
  assertExact(r);
  assert.equal(scored.rungsSeen.frame, undefined, 'the kernel read no async context it could not prove');
  assert.ok((scored.rungsSeen.slot ?? 0) > 0, 'the slot, kept by the hook, told the calls apart');
  assert.ok(r.report!.threads.every((th) => (th.asyncHooks?.maxEnabled ?? 0) > 0), `every thread ran the hook: ${JSON.stringify(r.report!.threads.map((th) => th.asyncHooks))}`);
  assertHookWarnedOnce(r, /the kernel cannot read tool calls from this Node's async context \(the kernel did not find the SDK's store/);
  assert.ok(r.sidecarLog.some((l) => /cannot read tool calls from its async context/.test(l)), r.sidecarLog.join('\n'));
  fs.rmSync(node);
});

/** Every kind attributed exactly (EXACT) is, in this run: 100% precision and recall. */
function assertExact(r: RunResult): void {
  const { scored } = r;
  for (const kind of EXACT.filter((k) => planned(r.plan, k))) {
    const s = scored.scores[kind];
    assert.ok(s.precision === 1 && s.recall === 1, `${kind}: precision ${pct(s.precision)}, recall ${pct(s.recall)}: ${reasonFor(kind, s, scored)}`);
  }
}

/** The agent said once, for the process whatever its threads, why it keeps its hook. */
function assertHookWarnedOnce(r: RunResult, why: RegExp): void {
  const warnings = r.stderr.match(/\[AGENTRACE_CONTEXT_HOOK\][^\n]*/g) ?? [];
  assert.equal(warnings.length, 1, `one warning for the process, whatever its threads:\n${r.stderr}`);
  assert.match(warnings[0]!, why);
}

/**
 * On Node 24 the kernel reads the calls from V8's async context, and no
 * async hook ran while they did (Node's own count, sampled by the agent);
 * on Node 20 the SDK's hook did run (so the count is seen when there is one).
 */
function assertContextFollowed(r: RunResult, major: number): void {
  const hooks = r.report!.threads.map((th) => th.asyncHooks);
  assert.ok(hooks.every((h) => h !== undefined && h.samples > 0), `every thread sampled Node's async hooks: ${JSON.stringify(hooks)}`);
  if (major >= 24) {
    assert.ok((r.scored.rungsSeen.frame ?? 0) > 0, `the frame rung attributed: ${JSON.stringify(r.scored.rungsSeen)}`);
    assert.ok(hooks.every((h) => h!.maxEnabled === 0), `no async hook was enabled while the calls ran: ${JSON.stringify(hooks)}`);
    assert.doesNotMatch(r.stderr, /AGENTRACE_CONTEXT_HOOK/);
  } else {
    assert.ok(hooks.some((h) => h!.maxEnabled > 0), `Node ${major}: the SDK's hook ran: ${JSON.stringify(hooks)}`);
  }
}

function assertRan(r: RunResult, workers: number): void {
  const how = `exit ${r.exitCode}, ${r.signal ?? 'no signal'}`;
  assert.equal(r.exitCode, 0, `the agent ran every step of every call (${how}):\n${r.stderr}`);
  assert.equal(r.report?.threads.length, workers || 1);
  assert.ok(
    r.report.threads.every((th) => th.welcomed && th.calls === CALLS / (workers || 1)),
    JSON.stringify(r.report),
  );
  assert.equal(r.stats.probes.ringbufDrops, 0n, 'no kernel event was lost');
}

// The scorer itself, on a hand-made export: a span under the wrong tool is
// a false positive, a span under its own tool's descendant counts, an
// absent one is missed.
test('the scorer tells right, wrong and missing apart', () => {
  const call = (i: number) => ({
    index: i,
    callId: `call-${i}`,
    syncFile: `/s${i}`,
    asyncFile: `/a${i}`,
    writeFile: `/w${i}`,
    writeData: 'x'.repeat(70_000),
    shellFile: `/sh${i}`,
    scopeFile: `/sc${i}`,
    inScopeFile: `/in${i}`,
    scopeOwner: null,
    tcpPort: 1000 + i,
    undiciPort: 2000 + i,
    fetchPort: 3000 + i,
    dnsName: `n${i}.test`,
    resolveName: `r${i}.test`,
    dnsAddress: '127.0.0.1',
  });
  const plan: AgentPlan = { workers: 0, warmup: call(9), background: null, nestedScopes: false, calls: [call(0), call(1)] };
  const span = (spanId: string, parentSpanId: string, name: string, attributes: Record<string, unknown>, traceId = 't1'): FlatSpan => ({
    traceId,
    spanId,
    parentSpanId,
    name,
    kind: 1,
    attributes,
    status: {},
    resource: {},
  });
  const spans = [
    span('T0', '', 'execute_tool ground_truth', { 'gen_ai.tool.call.id': 'call-0' }),
    span('T1', '', 'execute_tool ground_truth', { 'gen_ai.tool.call.id': 'call-1' }, 't2'),
    // call-0's sync open under call-0; call-1's under call-0 (wrong).
    span('o0', 'T0', 'open', { 'file.path': '/s0', 'agentrace.file.flags': 0, 'agentrace.attribution': 'slot' }),
    span('o1', 'T0', 'open', { 'file.path': '/s1', 'agentrace.file.flags': 0, 'agentrace.attribution': 'thread' }),
    // call-1's child open hangs under its process span, under its tool.
    span('p1', 'T1', 'process sh', { 'process.command_args': ['/bin/sh', '-c', 'cat /sh1; exit 0'] }, 't2'),
    span('c1', 'p1', 'open', { 'file.path': '/sh1', 'agentrace.file.flags': 0, 'agentrace.attribution': 'process' }, 't2'),
    // call-0's write open, and its read-back open: told apart by flags.
    span('w0', 'T0', 'open', { 'file.path': '/w0', 'agentrace.file.flags': 0o1101 }),
    // I/O counts: call-0 wrote its own bytes (in two reports) and read them
    // back plus another call's 64 KiB; call-1 wrote less than its file.
    span('i0', 'T0', 'kernel summary', { 'agentrace.syscall.write.bytes': 60_000, 'agentrace.syscall.read.bytes': 70_000 + FILE_IO_BYTES }),
    span('i0b', 'T0', 'kernel summary', { 'agentrace.syscall.write.bytes': 10_000 }),
    span('i1', 'T1', 'kernel summary', { 'agentrace.syscall.write.bytes': 100 }, 't2'),
  ];
  const s = score(plan, spans).scores;
  assert.deepEqual([s['file.open.sync'].truePositives, s['file.open.sync'].falsePositives.length, s['file.open.sync'].precision], [1, 1, 0.5]);
  assert.deepEqual(s['file.open.sync'].missed, ['call-1']);
  assert.deepEqual(s['file.open.sync'].falsePositives[0], { callId: 'call-1', under: 'call-0', rung: 'thread', thread: undefined });
  assert.equal(s['process'].recall, 0.5);
  assert.equal(s['process.child.open'].recall, 0.5);
  assert.deepEqual(s['process.child.open'].rungs, { process: 1 });
  assert.deepEqual([s['file.write'].truePositives, s['file.read'].spansFound], [1, 0]);
  assert.ok(Number.isNaN(s['dns.lookup'].precision), 'nothing found: precision undefined');
  assert.equal(s['file.open.after-scope'].actions, 0, 'not in the plan: no actions');
  assert.equal(s['file.open.in-scope'].actions, 0);
  assert.equal(s['dns.lookup'].recall, 0);
  assert.deepEqual([s['file.io.write'].truePositives, s['file.io.write'].missed, s['file.io.write'].precision], [1, ['call-1'], 1]);
  assert.deepEqual([s['file.io.read'].truePositives, s['file.io.read'].falsePositives.length, s['file.io.read'].missed], [0, 1, ['call-1']]);
  assert.equal(s['file.io.read'].precision, 0);
});
