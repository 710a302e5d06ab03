// @agentrace/sdk/ai with ai 7 on the real kernel: an agent as ai 7's docs
// write one (registerTelemetry, a ToolLoopAgent, a scripted model asking
// for three tool calls at once), as an ES module and as CommonJS, under the
// real sidecar. Each call's open, connect and child process is exported
// under its own execute_tool span with the model's tool-call id, under the
// operation's invoke_agent span. ai 7 needs Node 22 or later: the agents
// run on Node 24 (scripts/test.sh fetches it).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { requireBpf } from './support/bpf.js';
import { Rig, assertCallsAttributed, assertTreeComplete, node24, requireNode24 } from './support/framework-agent.js';

const rig = Rig.create('ai7');
after(() => rig.close());

for (const [format, file] of [['ESM', 'ai7-agent.mjs'], ['CommonJS', 'ai7-agent.cjs']] as const) {
  test(`ai 7 ToolLoopAgent (${format}, registerTelemetry, no ready()): three parallel calls' opens, connects and child processes land under their own execute_tool spans, under invoke_agent`, async (t) => {
    requireNode24(t);
    if (!node24 || !requireBpf(t)) return;
    const script = fileURLToPath(new URL(`./fixtures/${file}`, import.meta.url));
    const calls = await rig.plan(`ai7-${format}`, 3);
    const { code, stdout, spans } = await rig.run(`ai7-${format}`, script, { calls }, node24);
    assert.equal(code, 0, 'the agent ran');
    const out = JSON.parse(stdout) as { text: string; results: Record<string, string>; maxInFlight: number };
    assert.equal(out.text, 'surveyed', 'the loop went on to the final answer');
    for (const c of calls) assert.equal(out.results[c.id], `${c.word} ${c.word}`, `${c.id}'s result reached the model`);
    assert.equal(out.maxInFlight, calls.length, 'the ai SDK ran the calls in parallel');

    const agents = spans.filter((s) => s.name === 'invoke_agent surveyor');
    assert.equal(agents.length, 1, `one invoke_agent span; spans: ${[...new Set(spans.map((s) => s.name))].join(', ')}`);
    const agent = agents[0]!;
    assert.equal(agent.attributes['gen_ai.operation.name'], 'invoke_agent');
    const tools = assertCallsAttributed(spans, calls, 'survey');
    for (const tool of tools) assert.equal(tool.parentSpanId, agent.spanId, `${tool.attributes['gen_ai.tool.call.id']} sits under invoke_agent`);
    const chats = spans.filter((s) => s.name.startsWith('chat ') && s.parentSpanId === agent.spanId);
    assert.equal(chats.length, 2, 'two model calls under the agent');
    assert.ok(chats.every((c) => c.attributes['gen_ai.usage.input_tokens'] === 10), 'with their token usage');
    assertTreeComplete(spans);
  });
}
