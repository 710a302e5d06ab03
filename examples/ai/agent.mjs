// A Vercel AI SDK agent (ToolLoopAgent) whose tool calls are traced by
// @agentrace/sdk/ai. The model is the ai SDK's MockLanguageModelV3 playing
// a script (no network): it asks for three tool calls at once, which the
// ai SDK runs in parallel, then answers.
//
//   bin/agentrace run -- node examples/ai/agent.mjs
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ToolLoopAgent, tool, stepCountIs } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { z } from 'zod';
import { shutdown } from '@agentrace/sdk';
import { telemetry } from '@agentrace/sdk/ai';
import { startWorld } from '../support/world.mjs';

const world = await startWorld();
const { weatherUrl, notes } = world;

const tools = {
  read_file: tool({
    description: 'Read a text file from the local disk',
    inputSchema: z.object({ path: z.string() }),
    execute: ({ path: file }) => fs.promises.readFile(file, 'utf8'),
  }),
  fetch_url: tool({
    description: 'GET a URL and return the body',
    inputSchema: z.object({ url: z.string() }),
    execute: async ({ url }) => (await fetch(url)).text(),
  }),
  run_shell: tool({
    description: 'Run a shell command and return its output',
    inputSchema: z.object({ command: z.string() }),
    execute: async ({ command }) => (await promisify(execFile)('/bin/sh', ['-c', command])).stdout,
  }),
};

// The script a model would follow: three tool calls in one step, then the answer.
const usage = { inputTokens: { total: 20 }, outputTokens: { total: 8 } };
const call = (toolCallId, toolName, input) => ({ type: 'tool-call', toolCallId, toolName, input: JSON.stringify(input) });
const model = new MockLanguageModelV3({
  doGenerate: [
    {
      content: [
        call('call_weather', 'fetch_url', { url: weatherUrl }),
        call('call_notes', 'read_file', { path: notes }),
        call('call_disk', 'run_shell', { command: 'df -h / | tail -n 1' }),
      ],
      finishReason: { unified: 'tool-calls', raw: undefined },
      usage,
      warnings: [],
    },
    { content: [{ type: 'text', text: 'Sunny in Lisbon: pack sunglasses.' }], finishReason: { unified: 'stop', raw: undefined }, usage, warnings: [] },
  ],
});

// Once per agent: every tool call of every run becomes an execute_tool span.
const agent = new ToolLoopAgent({
  model,
  tools,
  stopWhen: stepCountIs(3),
  experimental_telemetry: telemetry({ functionId: 'trip-planner' }),
});

const result = await agent.generate({ prompt: 'Plan my day in Lisbon' });
for (const r of result.steps.flatMap((s) => s.toolResults)) console.log(`${r.toolName}: ${String(r.output).trim().slice(0, 60)}`);
console.log(`answer: ${result.text}`);

world.close();
await shutdown();
