// @agentrace/sdk/mastra on the real kernel: a Mastra agent (createTool, new
// Agent, generate and stream; a scripted model asking for three calls at once), as an
// ES module and as CommonJS, under the real sidecar. Each call's open,
// connect and child process is exported under its own execute_tool span
// with the model's tool-call id, under the agent's invoke_agent span.
// Mastra needs Node 22.13 or later: the agents run on Node 24.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { requireBpf } from './support/bpf.js';
import { Rig, assertCallsAttributed, assertTreeComplete, node24, requireNode24 } from './support/framework-agent.js';

const rig = Rig.create('mastra');
after(() => rig.close());

for (const [mode, format, file] of [['generate', 'ESM', 'mastra-agent.mjs'], ['stream', 'ESM', 'mastra-agent.mjs'], ['generate', 'CommonJS', 'mastra-agent.cjs']] as const) {
  test(`Mastra agent.${mode} (${format}, no ready()): three parallel calls' opens, connects and child processes land under their own execute_tool spans, under invoke_agent`, async (t) => {
    requireNode24(t);
    if (!node24 || !requireBpf(t)) return;
    const script = fileURLToPath(new URL(`./fixtures/${file}`, import.meta.url));
    const calls = await rig.plan(`mastra-${mode}-${format}`, 3);
    const { code, stdout, spans } = await rig.run(`mastra-${mode}-${format}`, script, { mode, calls }, node24);
    assert.equal(code, 0, 'the agent ran');
    const out = JSON.parse(stdout) as { text: string; results: Record<string, string>; maxInFlight: number };
    assert.equal(out.text, 'surveyed', 'the loop went on to the final answer');
    for (const c of calls) assert.equal(out.results[c.id], `${c.word} ${c.word}`, `${c.id}'s result reached the model`);
    assert.equal(out.maxInFlight, calls.length, 'Mastra ran the calls in parallel');

    const agents = spans.filter((s) => s.name === 'invoke_agent surveyor');
    assert.equal(agents.length, 1, `one invoke_agent span; spans: ${[...new Set(spans.map((s) => s.name))].join(', ')}`);
    const tools = assertCallsAttributed(spans, calls, 'survey');
    for (const tool of tools) assert.equal(tool.parentSpanId, agents[0]!.spanId, `${tool.attributes['gen_ai.tool.call.id']} sits under invoke_agent`);
    assertTreeComplete(spans);
  });
}

test('a Mastra agent with a tool traceTools() did not wrap: the SDK warns once, naming it', (t) => {
  requireNode24(t);
  if (!node24) return;
  const script = `
    import { Agent } from '@mastra/core/agent';
    import { createTool } from '@mastra/core/tools';
    import { MockLanguageModelV3 } from 'ai/test';
    import { z } from 'zod';
    import { traceAgent, traceTools } from '@agentrace/sdk/mastra';
    const usage = { inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 1, text: 1, reasoning: 0 } };
    const model = new MockLanguageModelV3({ doGenerate: { content: [{ type: 'text', text: 'ok' }], finishReason: { unified: 'stop', raw: undefined }, usage, warnings: [] } });
    const mk = (id) => createTool({ id, description: id, inputSchema: z.object({}), execute: async () => id });
    const agent = traceAgent(new Agent({ id: 'a', name: 'helper', instructions: 'x', model, tools: { ...traceTools({ traced: mk('traced') }), plain: mk('plain') } }));
    await agent.generate('hi');
    await agent.generate('again');
    await new Promise((r) => setTimeout(r, 50));`;
  const r = spawnSync(node24, ['--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    encoding: 'utf8',
    env: { ...process.env, AGENTRACE_SOCKET: '/nonexistent/agentrace-mastra.sock' },
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const unreached = r.stderr.match(/\[AGENTRACE_FRAMEWORK_UNREACHED\][^\n]*/g) ?? [];
  assert.equal(unreached.length, 1, r.stderr);
  assert.match(unreached[0]!, /the Mastra agent "helper" has tools traceTools\(\) did not wrap \(plain\)/);
});
