// @agentrace/sdk/ai end to end on the real kernel: a real ai SDK loop
// (generateText and streamText, driven by the ai SDK's MockLanguageModelV3)
// makes three parallel tool calls under the real sidecar; each call's file
// open, connect and child process is exported under its own execute_tool
// span, which sits under the ai SDK's own ai.generateText / ai.streamText
// span and carries the scripted tool-call id.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { requireBpf } from './support/bpf.js';
import { Rig, assertCallsAttributed, assertTreeComplete, requireBothNodes, runtimes } from './support/framework-agent.js';

// The same agent as an ES module and as CommonJS (the ai SDK's other build).
const scripts = {
  ESM: fileURLToPath(new URL('./fixtures/ai-agent.mjs', import.meta.url)),
  CommonJS: fileURLToPath(new URL('./fixtures/ai-agent.cjs', import.meta.url)),
};
const rig = Rig.create('ai');
after(() => rig.close());

test('the ai SDK agent runs on Node 20 and Node 24 (in CI)', (t) => requireBothNodes(t));

for (const [runtime, node] of runtimes) {
  for (const [mode, format] of [['generate', 'ESM'], ['stream', 'ESM'], ['generate', 'CommonJS']] as const) {
    test(`ai ${mode}Text: three parallel tool calls' opens, connects and child processes land under their own execute_tool spans, under ai.${mode}Text (${format} agent on ${runtime})`, async (t) => {
      if (!requireBpf(t)) return;
      const calls = await rig.plan(`call-${mode}-${format}`, 3);
      const { code, stdout, spans } = await rig.run(`${mode}-${format}-${runtime.replace(/\W+/g, '')}`, scripts[format], { mode, calls }, node);
      assert.equal(code, 0, 'the agent ran');

      const out = JSON.parse(stdout) as { text: string; results: Record<string, string>; maxInFlight: number };
      assert.equal(out.text, 'surveyed', 'the loop went on to the final answer');
      for (const c of calls) assert.equal(out.results[c.id], `${c.word} ${c.word}`, `${c.id}'s result reached the model`);
      assert.equal(out.maxInFlight, calls.length, 'the ai SDK ran the calls in parallel');

      const roots = spans.filter((s) => s.name === `ai.${mode}Text`);
      assert.equal(roots.length, 1, `one ai.${mode}Text span; spans: ${spans.map((s) => s.name).join(', ')}`);
      const root = roots[0]!;
      assert.equal(root.attributes['ai.telemetry.functionId'], 'framework-test');
      const tools = assertCallsAttributed(spans, calls, 'survey');
      for (const tool of tools) {
        assert.equal(tool.parentSpanId, root.spanId, `${tool.attributes['gen_ai.tool.call.id']} sits under ai.${mode}Text`);
        assert.equal(tool.attributes['ai.toolCall.id'], tool.attributes['gen_ai.tool.call.id']);
        assert.equal(tool.attributes['gen_ai.tool.call.arguments'], undefined, 'arguments are not captured unless asked');
        assert.equal(tool.attributes['ai.toolCall.args'], undefined, "ai's own unmasked arguments are dropped");
      }
      assert.ok(
        spans.some((s) => s.name === `ai.${mode}Text.do${mode === 'generate' ? 'Generate' : 'Stream'}` && s.parentSpanId === root.spanId),
        'the model steps are exported too',
      );
      assertTreeComplete(spans);
    });
  }
}

test('examples/ai under `agentrace run`: the tree shows each tool call under ai.generateText with what it did', (t) => {
  if (!requireBpf(t)) return;
  const r = rig.runExample('examples/ai/agent.mjs');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /answer: Sunny in Lisbon/);
  assert.match(r.stderr, /ai\.generateText/);
  for (const tool of ['fetch_url', 'read_file', 'run_shell']) assert.match(r.stderr, new RegExp(`execute_tool ${tool}`));
  assert.match(r.stderr, /connect 127\.0\.0\.1:\d+/);
  assert.match(r.stderr, /process sh .*\[\/bin\/sh -c df -h \/ \| tail -n 1\]\s+exit 0/);
  const root = r.spans.find((s) => s.name === 'ai.generateText');
  for (const [tool, id] of [['fetch_url', 'call_weather'], ['read_file', 'call_notes'], ['run_shell', 'call_disk']] as const) {
    const span = r.spans.find((s) => s.name === `execute_tool ${tool}`);
    assert.equal(span?.attributes['gen_ai.tool.call.id'], id);
    assert.equal(span?.parentSpanId, root?.spanId, `${tool} sits under ai.generateText`);
  }
});
