// PID namespaces without images (unshare --pid --fork --mount-proc: what a
// container does). First the node daemon's case: the sidecar in the host's
// namespace, agents in their own; the SDK names threads as its own /proc
// does and the sidecar translates them to its ids. Two agents at once, each
// pid 1 in its namespace with the same thread numbers, so a translation that
// mixed namespaces up shows. Then the pod sidecar's: the sidecar in a
// namespace of its own, where the probes name processes as it does.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireBpf } from './support/bpf.js';
import { Rig, assertCallsAttributed, assertTreeComplete, runtimes } from './support/framework-agent.js';
import { NamespacedSidecar } from './support/ns-sidecar.js';

const rig = Rig.create('pidns');
after(() => rig.close());
const script = fileURLToPath(new URL('./fixtures/ns-agent.mjs', import.meta.url));
const unshare = ['unshare', '--pid', '--fork', '--mount-proc'];

for (const [label, node] of runtimes) {
  test(`${label}: two agents in PID namespaces of their own (both pid 1): main-thread, worker-thread and threadpool calls are attributed to their own spans`, async (t) => {
    if (!requireBpf(t)) return;
    const tag = label.replace(/\W+/g, '');
    const plans = [await rig.plan(`${tag}-a`, 4), await rig.plan(`${tag}-b`, 4)];
    const { agents, spans } = await rig.runAll(`pidns-${tag}`, plans.map((calls) => ({ script, arg: { calls }, node, prefix: unshare })));
    for (const [i, a] of agents.entries()) {
      assert.equal(a.code, 0, `agent ${i} ran`);
      const out = JSON.parse(a.stdout) as { pid: number; tid: number; results: Record<string, string> };
      assert.equal(out.pid, 1, 'the agent is pid 1 of its own namespace');
      for (const c of plans[i]!) assert.equal(out.results[c.id], `${c.word} ${c.word}`, `${c.id} ran`);
    }
    const tools = plans.flatMap((calls) => assertCallsAttributed(spans, calls, 'survey'));
    // The kernel's pid of each agent, not its namespace's 1.
    const pids = new Set(tools.map((s) => s.resource['process.pid']));
    assert.equal(pids.size, 2, `two agents' pids: ${[...pids].join(', ')}`);
    assert.ok(!pids.has(1), 'process.pid is the pid the sidecar sees');
    assertTreeComplete(spans);
  });
}

// Gives the next process of the namespace pid $1 + 1: a process that is no
// agent takes it first (and opens $2), then the agent ("$@").
const REUSE_PID = 'echo "$1" > /proc/sys/kernel/ns_last_pid && cat "$2" > /dev/null && echo "$1" > /proc/sys/kernel/ns_last_pid && shift 2 && "$@"; exit $?';

for (const [label, node] of runtimes) {
  test(`${label}: the sidecar in a PID namespace of its own (a pod sidecar): agents in it and below it are attributed, a pid reused is a new process, a process it cannot see is refused`, async (t) => {
    if (!requireBpf(t)) return;
    const tag = label.replace(/\W+/g, '');
    const sidecar = await NamespacedSidecar.start(rig.dir, `pod-${tag}`);
    t.after(() => sidecar.kill());
    const [shared, nested, reuser, outsider] = [
      await rig.plan(`${tag}-shared`, 4),
      await rig.plan(`${tag}-nested`, 4),
      await rig.plan(`${tag}-reuser`, 4),
      await rig.plan(`${tag}-outsider`, 4),
    ];
    // One agent as another container of the pod, one in a namespace below.
    const [first, below] = await rig.runAgents(sidecar.socketPath, [
      { script, arg: { calls: shared }, node, prefix: sidecar.enter },
      { script, arg: { calls: nested }, node, prefix: [...sidecar.enter, ...unshare] },
    ]);
    assert.equal(first!.code, 0, 'the agent in the sidecar\'s namespace ran');
    assert.equal(below!.code, 0, 'the agent below it ran');
    const firstPid = (JSON.parse(first!.stdout) as { pid: number }).pid;
    assert.equal((JSON.parse(below!.stdout) as { pid: number }).pid, 1, 'the nested agent is pid 1 of its own namespace');

    // The first agent has gone; its pid goes to a process that is no agent, then to a new agent.
    const marker = path.join(rig.dir, `not-an-agent-${tag}.txt`);
    fs.writeFileSync(marker, 'nobody\n');
    const [again] = await rig.runAgents(sidecar.socketPath, [
      { script, arg: { calls: reuser }, node, prefix: [...sidecar.enter, 'sh', '-c', REUSE_PID, 'sh', String(firstPid - 1), marker] },
    ]);
    assert.equal(again!.code, 0, 'the agent with the reused pid ran');
    assert.equal((JSON.parse(again!.stdout) as { pid: number }).pid, firstPid, 'the new agent got the first one\'s pid');

    // A process on the host: the sidecar cannot see its syscalls, and says so to it.
    const [outside] = await rig.runAgents(sidecar.socketPath, [{ script, arg: { calls: outsider }, node }]);
    assert.equal(outside!.code, 0, 'an agent the sidecar refuses runs on');
    assert.match(outside!.stderr, /refused a request \(ESRCH\).*not in the sidecar's PID namespace/);

    const spans = await sidecar.stop();
    const tools = [shared, nested, reuser].map((calls) => assertCallsAttributed(spans, calls, 'survey'));
    const pidOf = (list: typeof tools[number]): unknown => {
      const pids = new Set(list.map((s) => s.resource['process.pid']));
      assert.equal(pids.size, 1, `one process: ${[...pids].join(', ')}`);
      return [...pids][0];
    };
    assert.equal(pidOf(tools[0]!), firstPid, 'process.pid is the pid in the sidecar\'s namespace');
    assert.equal(pidOf(tools[2]!), firstPid, 'the new agent with the same pid');
    assert.notEqual(pidOf(tools[1]!), 1, 'the nested agent is named as the sidecar sees it');
    assert.notEqual(tools[0]![0]!.traceId, tools[2]![0]!.traceId, 'the two agents with one pid have their own traces');
    assert.ok(!spans.some((s) => s.attributes['file.path'] === marker), 'the process that reused the pid is not traced');
    for (const c of outsider) {
      assert.ok(!spans.some((s) => s.attributes['gen_ai.tool.call.id'] === c.id || s.attributes['file.path'] === c.file), `nothing of the refused agent (${c.id})`);
    }
    assert.match(sidecar.log, /[1-9]\d* connections refused from processes outside the sidecar's PID namespace/);
    assertTreeComplete(spans);
  });
}
