// An agent that calls an MCP server's tools (server.mjs, a small filesystem
// server it starts on stdio), its MCP transport traced with
// @agentrace/sdk/mcp: each tools/call is an `execute_tool {tool}` span, and
// the server's work for it (it is traced too) hangs under it in the kernel.
//
//   bin/agentrace run -- node examples/mcp/agent.mjs
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { traceMcp } from '@agentrace/sdk/mcp';
import { shutdown } from '@agentrace/sdk';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-mcp-example-'));
fs.writeFileSync(path.join(dir, 'todo.txt'), 'buy milk\nwrite the report\n');

const transport = new StdioClientTransport({
  command: process.execPath,
  args: [fileURLToPath(new URL('./server.mjs', import.meta.url)), dir],
  // A stdio server gets only a few variables unless told: pass it the
  // sidecar's socket, so its own spans reach the sidecar too.
  env: { ...getDefaultEnvironment(), ...(process.env.AGENTRACE_SOCKET ? { AGENTRACE_SOCKET: process.env.AGENTRACE_SOCKET } : {}) },
});
const client = new Client({ name: 'example-agent', version: '1.0.0' });
await client.connect(traceMcp(transport));

// What a model would have asked for: a listing, then a read and a write at once.
const call = async (name, args) => (await client.callTool({ name, arguments: args })).content[0].text;
console.log(await call('list_dir', { path: '.' }));
const [todo, wrote] = await Promise.all([
  call('read_file', { path: 'todo.txt' }),
  call('write_file', { path: 'done.txt', content: 'nothing yet\n' }),
]);
console.log(todo.trim().split('\n').length, 'things to do;', wrote);

await client.close();
await shutdown();
fs.rmSync(dir, { recursive: true, force: true });
