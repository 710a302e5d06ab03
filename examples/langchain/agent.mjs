// A LangGraph agent traced with @agentrace/sdk/langchain: a StateGraph with
// a model node and LangGraph's ToolNode. The "model" is @langchain/core's
// scripted fakeModel (no network): it asks for the forecast, then reads the
// notes and checks the disk in parallel, then answers. The outside world is
// a local HTTP server.
//
//   bin/agentrace run -- node examples/langchain/agent.mjs
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { z } from 'zod';
import { tool } from '@langchain/core/tools';
import { AIMessage, HumanMessage } from '@langchain/core/messages';
import { fakeModel } from '@langchain/core/testing';
import { MessagesAnnotation, START, StateGraph } from '@langchain/langgraph';
import { ToolNode, toolsCondition } from '@langchain/langgraph/prebuilt';
import { shutdown } from '@agentrace/sdk';
import { instrumentLangChain } from '@agentrace/sdk/langchain';
import { startWorld } from '../support/world.mjs';

// Once per app: patches LangChain's tools and gives the handler for the runs.
const handler = instrumentLangChain();

const world = await startWorld();
const { weatherUrl, notes } = world;

const tools = [
  tool(async ({ url }) => (await fetch(url)).text(), {
    name: 'fetch_url',
    description: 'GET a URL and return the body',
    schema: z.object({ url: z.string() }),
  }),
  tool(({ file }) => fs.promises.readFile(file, 'utf8'), {
    name: 'read_file',
    description: 'Read a text file from the local disk',
    schema: z.object({ file: z.string() }),
  }),
  tool(
    ({ command }) =>
      new Promise((resolve, reject) => {
        execFile('/bin/sh', ['-c', command], (err, stdout) => (err ? reject(err) : resolve(stdout)));
      }),
    { name: 'run_shell', description: 'Run a shell command and return its output', schema: z.object({ command: z.string() }) },
  ),
];

const model = fakeModel()
  .respondWithTools([{ name: 'fetch_url', args: { url: weatherUrl }, id: 'call_forecast' }])
  .respondWithTools([
    { name: 'read_file', args: { file: notes }, id: 'call_notes' },
    { name: 'run_shell', args: { command: 'df -h / | tail -n 1' }, id: 'call_disk' },
  ])
  .respond(new AIMessage({ content: 'Sunny in Lisbon: pack sunglasses.', usage_metadata: { input_tokens: 180, output_tokens: 9, total_tokens: 189 } }));
const modelWithTools = model.bindTools(tools);

const agent = new StateGraph(MessagesAnnotation)
  .addNode('agent', async (state) => ({ messages: [await modelWithTools.invoke(state.messages)] }))
  .addNode('tools', new ToolNode(tools))
  .addEdge(START, 'agent')
  .addConditionalEdges('agent', toolsCondition)
  .addEdge('tools', 'agent')
  .compile({ name: 'trip-planner' });

const result = await agent.invoke({ messages: [new HumanMessage('What should I pack for Lisbon?')] }, { callbacks: [handler] });
for (const m of result.messages.filter((m) => m.getType() === 'tool')) {
  console.log(`${m.name} (${m.tool_call_id}): ${String(m.content).trim()}`);
}
console.log(`answer: ${result.messages.at(-1).content}`);

world.close();
await shutdown();
