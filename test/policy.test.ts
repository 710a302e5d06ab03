// Per-tool policy (issue 18), network connects, on the real kernel: the
// sidecar loads a policy file's rules into the kernel, and the cgroup
// connect hooks decide for the exact tool call: 16 calls at once in one
// thread, half of a tool allowed a port and half of a tool denied it, each
// get their own answer, and each decision is on its own call's connect span.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { compilePolicy, parsePolicy } from '@agentrace/sidecar';
import { requireBpf } from './support/bpf.js';
import { ancestry, type FlatSpan } from './support/otlp.js';
import { Rig, requireBothNodes, runtimes } from './support/framework-agent.js';

const agent = fileURLToPath(new URL('./fixtures/policy-agent.mjs', import.meta.url));
const bystander = fileURLToPath(new URL('./fixtures/bystander.mjs', import.meta.url));
const rig = Rig.create('policy');
after(() => rig.close());

test('the policy agent runs on Node 20 and Node 24 (in CI)', (t) => requireBothNodes(t));

function policyFor(port: number, deniedMode: 'enforce' | 'audit') {
  return compilePolicy(
    parsePolicy(
      `version: 1
tools:
  reach_allowed:
    network: { mode: enforce, allow: [{ cidr: 127.0.0.1, ports: [${port}], protocol: tcp }] }
  reach_denied:
    network: { mode: ${deniedMode}, allow: [{ cidr: 127.0.0.1, ports: [${port + 1 > 65535 ? port - 1 : port + 1}] }] }
`,
      'policy.yaml',
    ),
  );
}

/** The connect span of each call, by call id: the one under that call's own execute_tool span. */
function connectsByCall(spans: FlatSpan[], port: number): Map<string, FlatSpan[]> {
  const out = new Map<string, FlatSpan[]>();
  for (const s of spans.filter((x) => x.attributes['network.peer.port'] === port)) {
    const tools = ancestry(s, spans).filter((a) => a.name.startsWith('execute_tool '));
    assert.equal(tools.length, 1, `connect span ${s.spanId} is under exactly one tool call`);
    const key = tools[0]!.spanId;
    out.set(key, [...(out.get(key) ?? []), s]);
  }
  return out;
}

for (const [runtime, node] of runtimes) {
  test(`16 calls at once in one thread: every reach_allowed connect succeeds, every reach_denied one fails with EPERM inside its own call, each decision on its own call's connect span; an untracked process is unaffected (${runtime})`, async (t) => {
    if (!requireBpf(t)) return;
    const [target] = await rig.plan(`policy-${runtime.replace(/\W+/g, '')}`, 1);
    const port = target!.port;
    const calls = Array.from({ length: 16 }, (_, i) => ({ id: `c${i}`, tool: i % 2 ? 'reach_denied' : 'reach_allowed' }));
    const policy = policyFor(port, 'enforce');
    const { agents, spans } = await rig.runAll(
      `enforce-${runtime.replace(/\W+/g, '')}`,
      [
        { script: agent, arg: { port, calls }, node },
        { script: bystander, arg: { port }, node },
      ],
      { policy },
    );
    const [a, b] = agents;
    assert.equal(a!.code, 0, `the agent ran: ${a!.stderr}`);
    const { results } = JSON.parse(a!.stdout) as { results: Record<string, string> };
    for (const c of calls) assert.equal(results[c.id], c.tool === 'reach_allowed' ? 'ok' : 'EPERM', `${c.id} (${c.tool})`);
    assert.deepEqual(JSON.parse(b!.stdout), { result: 'ok' }, 'the untracked bystander connected');

    const tools = spans.filter((s) => s.name.startsWith('execute_tool reach_'));
    assert.equal(tools.length, 16, 'one span per call');
    const byCall = connectsByCall(spans, port);
    for (const tool of tools) {
      const mine = byCall.get(tool.spanId) ?? [];
      assert.equal(mine.length, 1, `${tool.name} ${tool.spanId}: its own connect span`);
      const c = mine[0]!;
      const denied = tool.name === 'execute_tool reach_denied';
      assert.equal(c.attributes['agentrace.policy.decision'], denied ? 'denied' : 'allowed');
      assert.match(String(c.attributes['agentrace.policy.rule']), denied ? /^tools\.reach_denied\.network \(policy\.yaml:\d+\)$/ : /^tools\.reach_allowed\.network/);
      if (denied) {
        assert.equal(c.attributes['agentrace.connect.result'], 'EPERM');
        assert.deepEqual(
          c.events?.map((e) => [e.name, e.attributes?.['agentrace.policy.decision'], e.attributes?.['network.peer.port']]),
          [['agentrace.policy.decision', 'denied', port]],
          'the denial is a span event with the destination',
        );
      } else {
        assert.match(String(c.attributes['agentrace.connect.result']), /^(ok|in_progress)$/, "Node's non-blocking connect: under way, not refused");
        assert.equal(c.events?.length ?? 0, 0, 'an allowed connect records no decision event');
      }
    }
  });
}

test('audit mode changes nothing but records: every connect succeeds, the breaches are recorded on their own calls', async (t) => {
  if (!requireBpf(t)) return;
  const node = runtimes.at(-1)![1];
  const [target] = await rig.plan('policy-audit', 1);
  const port = target!.port;
  const calls = Array.from({ length: 8 }, (_, i) => ({ id: `a${i}`, tool: i % 2 ? 'reach_denied' : 'reach_allowed' }));
  const { code, stdout, spans } = await rig.run('audit', agent, { port, calls }, node, { policy: policyFor(port, 'audit') });
  assert.equal(code, 0);
  const { results } = JSON.parse(stdout) as { results: Record<string, string> };
  for (const c of calls) assert.equal(results[c.id], 'ok', `${c.id} (${c.tool}) connected`);
  const byCall = connectsByCall(spans, port);
  for (const tool of spans.filter((s) => s.name.startsWith('execute_tool reach_'))) {
    const [c] = byCall.get(tool.spanId) ?? [];
    assert.ok(c, `${tool.name}: its connect span`);
    assert.equal(c.attributes['agentrace.policy.decision'], tool.name.endsWith('reach_denied') ? 'audited' : 'allowed');
  }
});
