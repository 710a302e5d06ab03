// LangChain 1's documented agent, createAgent from `langchain` (with a
// middleware that wraps every tool call), on the real kernel, as an ES
// module and as CommonJS, on this Node and on Node 24: the scripted model
// asks for three calls at once; each call's open, connect and child process
// is exported under its own execute_tool span with the model's tool-call
// id, under the agent's invoke_agent span.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { requireBpf } from './support/bpf.js';
import { ancestry } from './support/otlp.js';
import { Rig, assertCallsAttributed, assertTreeComplete, requireBothNodes, runtimes } from './support/framework-agent.js';

const rig = Rig.create('lc-agent');
after(() => rig.close());

test('the createAgent agent runs on Node 20 and Node 24 (in CI)', (t) => requireBothNodes(t));

for (const [runtime, node] of runtimes) {
  for (const [format, file] of [['ESM', 'langchain-create-agent.mjs'], ['CommonJS', 'langchain-create-agent.cjs']] as const) {
    test(`LangChain createAgent with middleware (${format} agent on ${runtime}, no ready()): three parallel calls' opens, connects and child processes land under their own execute_tool spans, under invoke_agent`, async (t) => {
      if (!requireBpf(t)) return;
      const script = fileURLToPath(new URL(`./fixtures/${file}`, import.meta.url));
      const tag = `${format}-${runtime}`.replace(/\W+/g, '');
      const calls = await rig.plan(`lc-${tag}`, 3);
      const { code, stdout, spans } = await rig.run(tag, script, { calls }, node);
      assert.equal(code, 0, 'the agent ran');
      const out = JSON.parse(stdout) as { text: string; results: Record<string, string>; maxInFlight: number; wrapped: string[] };
      assert.equal(out.text, 'surveyed', 'the loop went on to the final answer');
      for (const c of calls) assert.equal(out.results[c.id], `${c.word} ${c.word}`, `${c.id}'s result reached the model`);
      assert.equal(out.maxInFlight, calls.length, 'the agent ran the calls in parallel');
      assert.deepEqual([...out.wrapped].sort(), calls.map((c) => c.id).sort(), 'every call went through the middleware');

      const agents = spans.filter((s) => s.name === 'invoke_agent surveyor');
      assert.equal(agents.length, 1, `one invoke_agent span; spans: ${[...new Set(spans.map((s) => s.name))].join(', ')}`);
      const agent = agents[0]!;
      const tools = assertCallsAttributed(spans, calls, 'survey');
      for (const tool of tools) {
        assert.ok(ancestry(tool, spans).includes(agent), `${tool.attributes['gen_ai.tool.call.id']} sits under ${agent.name}`);
        assert.equal(tool.attributes['agentrace.tool.unpatched'], undefined);
      }
      assertTreeComplete(spans);
    });
  }
}
