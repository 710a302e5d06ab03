// @agentrace/sdk/openai-agents end to end on the real kernel: a real
// OpenAI Agents SDK run (driven by its own ScriptedModel, plain and
// streamed) makes three parallel tool calls under the real sidecar; each
// call's file open, connect and child process is exported under its own
// execute_tool span, which sits under the agent's invoke_agent span (via
// the run's turn span) and carries the scripted tool-call id.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { requireBpf } from './support/bpf.js';
import { ancestry } from './support/otlp.js';
import { Rig, assertCallsAttributed, assertTreeComplete, requireBothNodes, runtimes } from './support/framework-agent.js';

// The same agent as an ES module and as CommonJS (the agents SDK's other build).
const scripts = {
  ESM: fileURLToPath(new URL('./fixtures/openai-agents-agent.mjs', import.meta.url)),
  CommonJS: fileURLToPath(new URL('./fixtures/openai-agents-agent.cjs', import.meta.url)),
};
const rig = Rig.create('openai-agents');
after(() => rig.close());

test('the OpenAI Agents SDK agent runs on Node 20 and Node 24 (in CI)', (t) => requireBothNodes(t));

for (const [runtime, node] of runtimes) {
  for (const [stream, format] of [[false, 'ESM'], [true, 'ESM'], [false, 'CommonJS']] as const) {
    const mode = stream ? 'streamed' : 'plain';
    test(`OpenAI Agents ${mode} run: three parallel tool calls' opens, connects and child processes land under their own execute_tool spans, under invoke_agent (${format} agent on ${runtime})`, async (t) => {
      if (!requireBpf(t)) return;
      const calls = await rig.plan(`call-${mode}-${format}`, 3);
      const { code, stdout, spans } = await rig.run(`${mode}-${format}-${runtime.replace(/\W+/g, '')}`, scripts[format], { stream, calls }, node);
      assert.equal(code, 0, 'the agent ran');

      const out = JSON.parse(stdout) as { text: string; results: Record<string, string>; maxInFlight: number };
      assert.equal(out.text, 'surveyed', 'the run went on to the final answer');
      for (const c of calls) assert.equal(out.results[c.id], `${c.word} ${c.word}`, `${c.id}'s result reached the model`);
      assert.equal(out.maxInFlight, calls.length, 'the agents SDK ran the calls in parallel');

      const agents = spans.filter((s) => s.name === 'invoke_agent Surveyor');
      assert.equal(agents.length, 1, `one invoke_agent span; spans: ${spans.map((s) => s.name).join(', ')}`);
      const agent = agents[0]!;
      assert.equal(agent.attributes['gen_ai.operation.name'], 'invoke_agent');
      assert.equal(agent.attributes['gen_ai.agent.name'], 'Surveyor');
      const workflow = spans.find((s) => s.name === 'Agent workflow' && !s.parentSpanId);
      assert.ok(workflow, 'the agents trace is the root span');
      assert.ok(ancestry(agent, spans).includes(workflow), 'the agent span is under its trace');

      const tools = assertCallsAttributed(spans, calls, 'survey');
      for (const tool of tools) {
        const chain = ancestry(tool, spans);
        assert.ok(chain.includes(agent), `${tool.attributes['gen_ai.tool.call.id']} sits under invoke_agent Surveyor`);
        const parent = spans.find((s) => s.spanId === tool.parentSpanId);
        assert.equal(parent?.name, 'turn 1', 'the tool span hangs under the turn that asked for it');
        assert.equal(parent?.parentSpanId, agent.spanId);
        assert.equal(tool.attributes['gen_ai.tool.description'], 'Read a file, connect to a port and run echo');
        assert.equal(tool.attributes['gen_ai.tool.call.arguments'], undefined, 'arguments are not captured unless asked');
      }
      assert.equal(spans.filter((s) => s.attributes['openai.agents.span.type'] === 'function').length, 0, 'no second span per tool call');
      assertTreeComplete(spans);
    });
  }
}

test('examples/openai-agents under `agentrace run`: the tree shows each tool call under the agent with what it did', (t) => {
  if (!requireBpf(t)) return;
  const r = rig.runExample('examples/openai-agents/agent.mjs');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /answer: Sunny in Lisbon/);
  assert.match(r.stderr, /invoke_agent Trip planner/);
  for (const tool of ['fetch_url', 'read_file', 'run_shell']) assert.match(r.stderr, new RegExp(`execute_tool ${tool}`));
  assert.match(r.stderr, /connect 127\.0\.0\.1:\d+/);
  assert.match(r.stderr, /process sh .*\[\/bin\/sh -c df -h \/ \| tail -n 1\]\s+exit 0/);
  const agent = r.spans.find((s) => s.name === 'invoke_agent Trip planner');
  assert.ok(agent, 'the agent span is exported');
  for (const [tool, id] of [['fetch_url', 'call_weather'], ['read_file', 'call_notes'], ['run_shell', 'call_disk']] as const) {
    const span = r.spans.find((s) => s.name === `execute_tool ${tool}`);
    assert.equal(span?.attributes['gen_ai.tool.call.id'], id);
    assert.ok(ancestry(span!, r.spans).includes(agent), `${tool} sits under the agent`);
  }
});
