// A stdio MCP server without agentrace for bench/mcp.ts: one tool, `echo`,
// that answers its word at once, so a round trip is the protocol and the
// pipes, nothing else.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

const server = new McpServer({ name: 'echo-server', version: '1.0.0' });
server.registerTool('echo', { description: 'Answers its word', inputSchema: { word: z.string() } }, async ({ word }) => ({
  content: [{ type: 'text', text: word }],
}));
await server.connect(new StdioServerTransport());
