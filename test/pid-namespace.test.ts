// Agents in PID namespaces of their own (unshare --pid --fork --mount-proc:
// what a container does, without an image), the sidecar in the host's. The
// SDK names threads as its own /proc does; the sidecar translates them to
// the kernel's ids. Two agents at once, each pid 1 in its namespace with
// the same thread numbers, so a translation that mixed namespaces up shows.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { requireBpf } from './support/bpf.js';
import { Rig, assertCallsAttributed, assertTreeComplete, runtimes } from './support/framework-agent.js';

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
