// @agentrace/sdk/mcp's spans, with the real @modelcontextprotocol/sdk client
// and server over its in-memory transport pair, an app TracerProvider
// recording what is exported, and no sidecar (the kernel side is
// test/mcp.test.ts's). Runs on Node 20 and 24 (scripts/test.sh).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { z } from 'zod';
import { configure, shutdown, traceTool } from '@agentrace/sdk';
import { traceMcp, type McpTransport } from '@agentrace/sdk/mcp';

const exporter = new InMemorySpanExporter();

before(() => {
  configure({ socketPath: '/nonexistent/agentrace-mcp-test.sock' });
  process.on('warning', () => {}); // the missing sidecar's warning is not these tests' business
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
});
after(() => shutdown());

interface Seen {
  traceparent?: unknown;
  activeSpanId?: string;
}

/** A connected client and server, both transports traced; the server's tools record what their handler saw. */
async function pair(hang?: Promise<void>): Promise<{ client: Client; seen: Seen[]; close: () => Promise<void> }> {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const seen: Seen[] = [];
  const server = new McpServer({ name: 'test-server', version: '1.0.0' });
  server.registerTool('echo', { inputSchema: { word: z.string() } }, async ({ word }, extra) => {
    await new Promise((r) => setTimeout(r, 1));
    seen.push({ traceparent: extra._meta?.traceparent, activeSpanId: trace.getActiveSpan()?.spanContext().spanId });
    return { content: [{ type: 'text', text: word }] };
  });
  server.registerTool('broken', { inputSchema: {} }, async () => ({ content: [{ type: 'text', text: 'no' }], isError: true }));
  server.registerTool('hang', { inputSchema: {} }, async () => {
    await hang;
    return { content: [] };
  });
  await server.connect(traceMcp(serverSide));
  const client = new Client({ name: 'test-client', version: '1.0.0' });
  await client.connect(traceMcp(clientSide, { captureArguments: true }));
  return { client, seen, close: async () => void (await Promise.all([client.close(), server.close()])) };
}

function spansNamed(name: string): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((s) => s.name === name);
}

function parentId(s: ReadableSpan): string | undefined {
  return s.parentSpanContext?.spanId;
}

test('a tools/call is an execute_tool CLIENT span; the server runs it as a tools/call SERVER span under it, its context from params._meta', async () => {
  exporter.reset();
  const { client, seen, close } = await pair();
  try {
    const r = (await client.callTool({ name: 'echo', arguments: { word: 'hi' } })) as { content: Array<{ text: string }> };
    assert.equal(r.content[0]!.text, 'hi');
  } finally {
    await close();
  }
  const [call] = spansNamed('execute_tool echo');
  const [handler] = spansNamed('tools/call echo');
  assert.ok(call && handler, `spans: ${exporter.getFinishedSpans().map((s) => s.name).join(', ')}`);
  assert.equal(call.kind, SpanKind.CLIENT);
  assert.deepEqual(
    {
      op: call.attributes['gen_ai.operation.name'],
      tool: call.attributes['gen_ai.tool.name'],
      method: call.attributes['mcp.method.name'],
      args: call.attributes['gen_ai.tool.call.arguments'],
      version: typeof call.attributes['mcp.protocol.version'],
      id: typeof call.attributes['jsonrpc.request.id'],
      transport: call.attributes['network.transport'],
    },
    { op: 'execute_tool', tool: 'echo', method: 'tools/call', args: '{"word":"hi"}', version: 'string', id: 'string', transport: undefined },
  );
  assert.equal(handler.kind, SpanKind.SERVER);
  assert.equal(handler.spanContext().traceId, call.spanContext().traceId, 'one trace');
  assert.equal(parentId(handler), call.spanContext().spanId, "the server's span is the client's child");
  assert.equal(handler.attributes['gen_ai.tool.call.arguments'], undefined, 'the server captures nothing');
  const sc = call.spanContext();
  assert.equal(seen[0]!.traceparent, `00-${sc.traceId}-${sc.spanId}-01`, 'W3C traceparent in params._meta, unprefixed');
  assert.equal(seen[0]!.activeSpanId, handler.spanContext().spanId, "the handler's continuation runs in the server's span");
});

test("a tool a framework traced already (traceTool of the same name) is one span: the MCP request adds to it, the server's span hangs under it", async () => {
  exporter.reset();
  const { client, close } = await pair();
  try {
    const echo = traceTool('echo', (word: string) => client.callTool({ name: 'echo', arguments: { word } }));
    await echo('one');
    // A second request under the same outer span is not that span's own tool call: a span of its own.
    const twice = traceTool('echo', async (word: string) => {
      await client.callTool({ name: 'echo', arguments: { word } });
      await client.callTool({ name: 'echo', arguments: { word } });
    });
    await twice('two');
  } finally {
    await close();
  }
  const tools = spansNamed('execute_tool echo');
  const outer = tools.filter((s) => s.kind === SpanKind.INTERNAL);
  const clients = tools.filter((s) => s.kind === SpanKind.CLIENT);
  assert.equal(outer.length, 2, 'the two traceTool spans');
  assert.equal(clients.length, 1, 'only the second request under one outer span made its own');
  const [first, second] = outer.sort((a, b) => (a.startTime[0] - b.startTime[0]) * 1e9 + (a.startTime[1] - b.startTime[1]));
  assert.equal(first!.attributes['mcp.method.name'], 'tools/call', 'the outer span carries the MCP attributes');
  const handlers = spansNamed('tools/call echo');
  assert.equal(handlers.length, 3);
  assert.equal(handlers.filter((h) => parentId(h) === first!.spanContext().spanId).length, 1);
  assert.equal(handlers.filter((h) => parentId(h) === second!.spanContext().spanId).length, 1);
  assert.equal(handlers.filter((h) => parentId(h) === clients[0]!.spanContext().spanId).length, 1);
  assert.equal(parentId(clients[0]!), second!.spanContext().spanId);
});

test('a tool result flagged isError is a tool_error; a JSON-RPC error carries its code', async () => {
  exporter.reset();
  const { client, close } = await pair();
  try {
    const r = (await client.callTool({ name: 'broken', arguments: {} })) as { isError?: boolean };
    assert.equal(r.isError, true);
    await assert.rejects(client.readResource({ uri: 'file:///nowhere' }));
  } finally {
    await close();
  }
  const [broken] = spansNamed('execute_tool broken');
  assert.equal(broken!.status.code, SpanStatusCode.ERROR);
  assert.equal(broken!.attributes['error.type'], 'tool_error');
  const read = spansNamed('resources/read').find((s) => s.kind === SpanKind.CLIENT);
  assert.ok(read, 'resources/read is traced too');
  const served = spansNamed('resources/read').find((s) => s.kind === SpanKind.SERVER);
  assert.equal(served?.status.code, SpanStatusCode.ERROR, 'and so is its failure on the server');
  assert.equal(read.attributes['mcp.resource.uri'], 'file:///nowhere');
  assert.equal(read.attributes['gen_ai.operation.name'], undefined, 'not a tool call');
  assert.equal(read.status.code, SpanStatusCode.ERROR);
  assert.match(String(read.attributes['error.type']), /^-32\d{3}$/, 'the JSON-RPC error code');
  assert.equal(read.attributes['rpc.response.status_code'], read.attributes['error.type']);
});

test('a request outstanding when the connection closes ends, failed, on both sides', async () => {
  exporter.reset();
  let release!: () => void;
  const hang = new Promise<void>((r) => (release = r));
  const { client, close } = await pair(hang);
  const pending = client.callTool({ name: 'hang', arguments: {} });
  await new Promise((r) => setTimeout(r, 20));
  await close();
  await assert.rejects(pending);
  release();
  const [call] = spansNamed('execute_tool hang');
  assert.ok(call, 'the client span ended');
  assert.equal(call.status.code, SpanStatusCode.ERROR);
  assert.equal(call.attributes['error.type'], 'connection_closed');
  const [handler] = spansNamed('tools/call hang');
  assert.ok(handler, "the server's span ended");
  assert.equal(handler.attributes['error.type'], 'connection_closed');
});

test("a request its client cancels (an abort signal, the request timeout) ends on both sides, `cancelled`: the server never answers it", async () => {
  exporter.reset();
  let release!: () => void;
  const hang = new Promise<void>((r) => (release = r));
  const { client, close } = await pair(hang);
  try {
    const ac = new AbortController();
    const aborted = client.callTool({ name: 'hang', arguments: {} }, undefined, { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 20));
    ac.abort('the user gave up');
    await assert.rejects(aborted);
    await assert.rejects(client.callTool({ name: 'hang', arguments: {} }, undefined, { timeout: 20 }));
    await new Promise((r) => setTimeout(r, 20));
    const calls = spansNamed('execute_tool hang');
    assert.equal(calls.length, 2, 'both client spans ended before the connection closed');
    for (const call of calls) {
      assert.equal(call.status.code, SpanStatusCode.ERROR);
      assert.equal(call.attributes['error.type'], 'cancelled');
    }
    assert.match(calls.map((c) => c.status.message).join(' | '), /the user gave up/, "the cancellation's reason is the status message");
    const handlers = spansNamed('tools/call hang');
    assert.equal(handlers.length, 2, "the server's spans ended when it was told");
    for (const h of handlers) assert.equal(h.attributes['error.type'], 'cancelled');
  } finally {
    release();
    await close();
  }
});

test('a request the transport refuses to send ends its span with the send error', async () => {
  exporter.reset();
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const server = new McpServer({ name: 'test-server', version: '1.0.0' });
  server.registerTool('echo', { inputSchema: {} }, async () => ({ content: [] }));
  await server.connect(serverSide);
  const client = new Client({ name: 'test-client', version: '1.0.0' });
  await client.connect(traceMcp(clientSide));
  const send = clientSide.send.bind(clientSide);
  clientSide.send = async (message, options) => {
    if ((message as { method?: string }).method === 'tools/call') throw new TypeError('the pipe is gone');
    return send(message, options);
  };
  try {
    await assert.rejects(client.callTool({ name: 'echo', arguments: {} }), /the pipe is gone/);
  } finally {
    await Promise.all([client.close(), server.close()]);
  }
  const [call] = spansNamed('execute_tool echo');
  assert.ok(call, 'the span ended');
  assert.equal(call.status.code, SpanStatusCode.ERROR);
  assert.equal(call.attributes['error.type'], 'TypeError');
  assert.equal(call.status.message, 'the pipe is gone');
});

test('the traced transport is the same transport to its users, and tracing it twice traces once', () => {
  const [a] = InMemoryTransport.createLinkedPair();
  (a as unknown as { custom: number }).custom = 42;
  const traced = traceMcp(a as unknown as McpTransport & { custom: number });
  assert.equal(traced.custom, 42, 'other members pass through');
  assert.equal(traced.sessionId, a.sessionId);
  assert.equal(traceMcp(traced), traced);
  const handler = (): void => {};
  traced.onclose = handler;
  assert.equal(traced.onclose, handler, 'handlers set on it read back');
  assert.notEqual(a.onclose, handler, 'and are called through the tracer once started');
});
