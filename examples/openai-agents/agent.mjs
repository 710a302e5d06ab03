// An OpenAI Agents SDK agent whose tool calls are traced by
// @agentrace/sdk/openai-agents. The model is the agents SDK's ScriptedModel
// (@openai/agents/testing) playing a script (no network): it asks for three
// tool calls at once, which the agents SDK runs in parallel, then answers.
//
//   bin/agentrace run -- node examples/openai-agents/agent.mjs
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Agent, run, setTraceProcessors } from '@openai/agents';
import { ScriptedModel, assistantMessage, functionCall } from '@openai/agents/testing';
import { z } from 'zod';
import { shutdown } from '@agentrace/sdk';
import { AgentraceProcessor, tool } from '@agentrace/sdk/openai-agents';
import { startWorld } from '../support/world.mjs';

const world = await startWorld();
const { weatherUrl, notes } = world;

// Once per app: the agents SDK's runs, agents and turns become OpenTelemetry
// spans. setTraceProcessors replaces the default processor, which would
// send the traces to OpenAI; addTraceProcessor keeps it.
setTraceProcessors([new AgentraceProcessor()]);

// tool() from @agentrace/sdk/openai-agents instead of @openai/agents: the
// same tools, each call an execute_tool span active while it runs.
const tools = [
  tool({
    name: 'read_file',
    description: 'Read a text file from the local disk',
    parameters: z.object({ path: z.string() }),
    execute: ({ path: file }) => fs.promises.readFile(file, 'utf8'),
  }),
  tool({
    name: 'fetch_url',
    description: 'GET a URL and return the body',
    parameters: z.object({ url: z.string() }),
    execute: async ({ url }) => (await fetch(url)).text(),
  }),
  tool({
    name: 'run_shell',
    description: 'Run a shell command and return its output',
    parameters: z.object({ command: z.string() }),
    execute: async ({ command }) => (await promisify(execFile)('/bin/sh', ['-c', command])).stdout,
  }),
];

// The script a model would follow: three tool calls in one turn, then the answer.
const model = new ScriptedModel([
  [
    functionCall('fetch_url', { url: weatherUrl }, { callId: 'call_weather' }),
    functionCall('read_file', { path: notes }, { callId: 'call_notes' }),
    functionCall('run_shell', { command: 'df -h / | tail -n 1' }, { callId: 'call_disk' }),
  ],
  [assistantMessage('Sunny in Lisbon: pack sunglasses.')],
]);
const agent = new Agent({ name: 'Trip planner', instructions: 'Plan the day.', model, tools });

const result = await run(agent, 'Plan my day in Lisbon');
for (const item of result.newItems) {
  if (item.type === 'tool_call_output_item') console.log(`${item.rawItem.callId}: ${String(item.output).trim().slice(0, 60)}`);
}
console.log(`answer: ${result.finalOutput}`);

world.close();
await shutdown();
