// A filesystem-like MCP server on stdio (@modelcontextprotocol/sdk), traced
// with @agentrace/sdk/mcp: each request runs as a span under the agent's
// tool call (its context comes in the request's _meta), so what the server
// opens, lists and writes for it is attributed to that call. Started by
// agent.mjs; confined to the directory it is given.
//   node server.mjs DIR
import fs from 'node:fs/promises';
import path from 'node:path';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { traceMcp } from '@agentrace/sdk/mcp';
import { z } from 'zod';

const root = path.resolve(process.argv[2] ?? '.');
const inside = (p) => {
  const full = path.resolve(root, p);
  if (full !== root && !full.startsWith(root + path.sep)) throw new Error(`${p} is outside ${root}`);
  return full;
};
const text = (t) => ({ content: [{ type: 'text', text: t }] });

const server = new McpServer({ name: 'files', version: '1.0.0' });
server.registerTool('list_dir', { description: 'List a directory', inputSchema: { path: z.string() } }, async (a) =>
  text((await fs.readdir(inside(a.path))).join('\n')),
);
server.registerTool('read_file', { description: 'Read a text file', inputSchema: { path: z.string() } }, async (a) =>
  text(await fs.readFile(inside(a.path), 'utf8')),
);
server.registerTool('write_file', { description: 'Write a text file', inputSchema: { path: z.string(), content: z.string() } }, async (a) => {
  await fs.writeFile(inside(a.path), a.content);
  return text(`wrote ${a.content.length} characters to ${a.path}`);
});
await server.connect(traceMcp(new StdioServerTransport()));
