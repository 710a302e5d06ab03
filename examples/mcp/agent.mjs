// A LangGraph agent whose tools come from an MCP server (server.mjs, a small
// filesystem server it starts on stdio), through LangChain's MCP adapters.
// The MCP client's transport is traced with @agentrace/sdk/mcp and the
// agent's tool calls with @agentrace/sdk/langchain: each call is one
// `execute_tool {tool}` span (LangChain's, with the MCP attributes added),
// and the server's work for it (the server is traced too) hangs under it.
// The "model" is @langchain/core's scripted fakeModel (no network).
//
//   bin/agentrace run -- node examples/mcp/agent.mjs
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { loadMcpTools } from '@langchain/mcp-adapters';
import { AIMessage, HumanMessage } from '@langchain/core/messages';
import { fakeModel } from '@langchain/core/testing';
import { MessagesAnnotation, START, StateGraph } from '@langchain/langgraph';
import { ToolNode, toolsCondition } from '@langchain/langgraph/prebuilt';
import { shutdown } from '@agentrace/sdk';
import { instrumentLangChain } from '@agentrace/sdk/langchain';
import { traceMcp } from '@agentrace/sdk/mcp';

const handler = instrumentLangChain();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-mcp-example-'));
fs.writeFileSync(path.join(dir, 'todo.txt'), 'buy milk\nwrite the report\n');

const client = new Client({ name: 'example-agent', version: '1.0.0' });
await client.connect(
  traceMcp(
    new StdioClientTransport({
      command: process.execPath,
      args: [fileURLToPath(new URL('./server.mjs', import.meta.url)), dir],
      // A stdio server gets only a few variables unless told: pass it the
      // sidecar's socket, so its own spans reach the sidecar too.
      env: { ...getDefaultEnvironment(), ...(process.env.AGENTRACE_SOCKET ? { AGENTRACE_SOCKET: process.env.AGENTRACE_SOCKET } : {}) },
    }),
  ),
);
const tools = await loadMcpTools('files', client);

const model = fakeModel()
  .respondWithTools([{ name: 'list_dir', args: { path: '.' }, id: 'call_list' }])
  .respondWithTools([
    { name: 'read_file', args: { path: 'todo.txt' }, id: 'call_read' },
    { name: 'write_file', args: { path: 'done.txt', content: 'nothing yet\n' }, id: 'call_write' },
  ])
  .respond(new AIMessage('Two things to do; nothing done yet.'));
const modelWithTools = model.bindTools(tools);

const agent = new StateGraph(MessagesAnnotation)
  .addNode('agent', async (state) => ({ messages: [await modelWithTools.invoke(state.messages)] }))
  .addNode('tools', new ToolNode(tools))
  .addEdge(START, 'agent')
  .addConditionalEdges('agent', toolsCondition)
  .addEdge('tools', 'agent')
  .compile({ name: 'file-clerk' });

const result = await agent.invoke({ messages: [new HumanMessage('What is on my list?')] }, { callbacks: [handler] });
for (const m of result.messages.filter((m) => m.getType() === 'tool')) {
  console.log(`${m.name} (${m.tool_call_id}): ${String(m.content).trim().replace(/\n/g, ' | ')}`);
}
console.log(`answer: ${result.messages.at(-1).content}`);

await client.close();
await shutdown();
fs.rmSync(dir, { recursive: true, force: true });
