// @agentrace/sdk/mcp end to end on the real kernel, with the real
// @modelcontextprotocol/sdk: an agent (Client + StdioClientTransport, its
// transport traced) calls an SDK-instrumented stdio server (McpServer, its
// transport traced) 8 times at once. Each call is an `execute_tool survey`
// CLIENT span; the server runs it as a `tools/call survey` SERVER span under
// it, in the same trace (params._meta); the server's open, connect and child
// process for that call land under that call and no other. What the server
// does outside any request (start-up, a timer) is under no tool call.
import { test, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireBpf } from './support/bpf.js';
import { python, requirePythonMcp } from './support/python-mcp.js';
import { ancestry, type FlatSpan } from './support/otlp.js';
import { Rig, assertTreeComplete, node24, requireBothNodes, requireNode24, runtimes, type PlannedCall } from './support/framework-agent.js';

const agent = fileURLToPath(new URL('./fixtures/mcp/agent.mjs', import.meta.url));
const server = fileURLToPath(new URL('./fixtures/mcp/server.mjs', import.meta.url));
const pythonServer = fileURLToPath(new URL('./fixtures/mcp/server.py', import.meta.url));
const aiAgent = fileURLToPath(new URL('./fixtures/mcp/ai-agent.mjs', import.meta.url));
const rig = Rig.create('mcp');
after(() => rig.close());

const SPAN_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3 };
const STATUS_ERROR = 2;

test('the MCP agent runs on Node 20 and Node 24 (in CI)', (t) => requireBothNodes(t));

/** Every span of `spans` named execute_tool … above `span`. */
function toolsAbove(span: FlatSpan, spans: FlatSpan[]): FlatSpan[] {
  return ancestry(span, spans).filter((s) => s.name.startsWith('execute_tool '));
}

function assertUnder(span: FlatSpan | undefined, tool: FlatSpan, spans: FlatSpan[], what: string): void {
  assert.ok(span, `${what}: no such span`);
  assert.equal(span.traceId, tool.traceId, `${what}: in its call's trace`);
  const tools = toolsAbove(span, spans);
  assert.deepEqual(
    tools.map((s) => s.spanId),
    [tool.spanId],
    `${what}: ${span.name} is under ${tools.map((s) => `${s.name} ${String(s.attributes['gen_ai.tool.call.arguments'])}`).join(' < ') || 'no tool call'}, not only its own`,
  );
}

for (const [runtime, node] of runtimes) {
  test(`an SDK-instrumented stdio MCP server: 8 parallel tools/call, each one's open, connect and child process under its own execute_tool span, through the server's span from _meta (${runtime})`, async (t) => {
    if (!requireBpf(t)) return;
    const calls: PlannedCall[] = await rig.plan(`mcp-${runtime.replace(/\W+/g, '')}`, 8);
    const startupFile = path.join(rig.dir, `startup-${runtime.replace(/\W+/g, '')}.txt`);
    const tickFile = path.join(rig.dir, `tick-${runtime.replace(/\W+/g, '')}.txt`);
    fs.writeFileSync(startupFile, 'start\n');
    fs.writeFileSync(tickFile, 'tick\n');
    const { code, stdout, spans } = await rig.run(
      `instrumented-${runtime.replace(/\W+/g, '')}`,
      agent,
      { server, serverConfig: { instrumented: true, startupFile, tickFile }, calls },
      node,
    );
    assert.equal(code, 0, 'the agent ran');
    const out = JSON.parse(stdout) as { results: Record<string, string>; failed: boolean };
    for (const c of calls) assert.equal(out.results[c.id], `${c.word} ${c.word}`, `${c.id}'s result came back`);
    assert.equal(out.failed, true, 'the failing tool answered isError');

    const clients = spans.filter((s) => s.name === 'execute_tool survey');
    assert.equal(clients.length, calls.length, `one client span per call; spans: ${spans.map((s) => s.name).join(', ')}`);
    const requestIds = new Set<unknown>();
    for (const c of calls) {
      const mine = clients.filter((s) => String(s.attributes['gen_ai.tool.call.arguments']).includes(c.word));
      assert.equal(mine.length, 1, `${c.id}: one client span with its arguments`);
      const tool = mine[0]!;
      assert.equal(tool.kind, SPAN_KIND.CLIENT);
      assert.equal(tool.attributes['gen_ai.operation.name'], 'execute_tool');
      assert.equal(tool.attributes['gen_ai.tool.name'], 'survey');
      assert.equal(tool.attributes['mcp.method.name'], 'tools/call');
      assert.equal(tool.attributes['network.transport'], 'pipe');
      assert.equal(typeof tool.attributes['mcp.protocol.version'], 'string', 'the session protocol version');
      requestIds.add(tool.attributes['jsonrpc.request.id']);
      assert.equal(tool.status.code ?? 0, 0, `${c.id} did not fail`);

      const handlers = spans.filter((s) => s.name === 'tools/call survey' && s.parentSpanId === tool.spanId);
      assert.equal(handlers.length, 1, `${c.id}: the server's span is the client span's child (its context came in _meta)`);
      const handler = handlers[0]!;
      assert.equal(handler.kind, SPAN_KIND.SERVER);
      assert.equal(handler.traceId, tool.traceId);
      assert.equal(handler.attributes['mcp.method.name'], 'tools/call');

      assertUnder(spans.find((s) => s.attributes['file.path'] === c.file), tool, spans, `${c.id}'s open in the server`);
      assertUnder(spans.find((s) => s.attributes['network.peer.port'] === c.port), tool, spans, `${c.id}'s connect in the server`);
      const echo = spans.find((s) => {
        const args = s.attributes['process.command_args'];
        return Array.isArray(args) && args.includes(c.word);
      });
      assertUnder(echo, tool, spans, `${c.id}'s child process in the server`);
      assert.ok(ancestry(echo!, spans).includes(handler), `${c.id}'s child process is under the server's span`);
    }
    assert.equal(requestIds.size, calls.length, 'each client span names its own JSON-RPC request id');

    const failed = spans.filter((s) => s.name === 'execute_tool fail');
    assert.equal(failed.length, 1, 'the failing call has its span');
    assert.equal(failed[0]!.status.code, STATUS_ERROR);
    assert.equal(failed[0]!.attributes['error.type'], 'tool_error', 'a tool result flagged isError is a tool_error (MCP conventions)');

    // The server read these outside any request: under no tool call.
    for (const file of [startupFile, tickFile]) {
      for (const s of spans.filter((x) => x.attributes['file.path'] === file)) {
        assert.deepEqual(toolsAbove(s, spans), [], `${path.basename(file)} was read outside any request, yet it is under a tool call`);
      }
    }
    assertTreeComplete(spans);
  });
}

test('examples/mcp under `agentrace run` (LangGraph over the MCP adapters): each tool call is one span, LangChain\'s, with the server\'s span and the file it opened under it', (t) => {
  if (!requireBpf(t)) return;
  const r = rig.runExample('examples/mcp/agent.mjs');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /read_file \(call_read\): buy milk \| write the report/);
  assert.match(r.stdout, /write_file \(call_write\): wrote 12 characters to done\.txt/);
  for (const [tool, id, file] of [['read_file', 'call_read', 'todo.txt'], ['write_file', 'call_write', 'done.txt']] as const) {
    const calls = r.spans.filter((s) => s.name === `execute_tool ${tool}`);
    assert.equal(calls.length, 1, `${tool}: one span, not LangChain's and the MCP client's; spans: ${r.spans.map((s) => s.name).join(', ')}`);
    const call = calls[0]!;
    assert.equal(call.attributes['gen_ai.tool.call.id'], id, "the model's call id");
    assert.equal(call.attributes['mcp.method.name'], 'tools/call');
    const handler = r.spans.find((s) => s.name === `tools/call ${tool}` && s.parentSpanId === call.spanId);
    assert.ok(handler, `${tool}: the server's span under it`);
    const open = r.spans.find((s) => String(s.attributes['file.path']).endsWith(`/${file}`));
    assert.ok(open, `${tool}: the open of ${file}`);
    assert.deepEqual(toolsAbove(open, r.spans).map((s) => s.spanId), [call.spanId], `${file}'s open is under ${tool} only`);
    assert.match(r.stderr, new RegExp(`execute_tool ${tool}[^]*tools/call ${tool}`), `the printed tree shows ${tool}`);
  }
});

test("through the AI SDK's MCP client (ai 7, @ai-sdk/mcp): each call is one execute_tool span, the ai integration's with the model's call id and the MCP attributes, the server's work under it", async (t) => {
  requireNode24(t);
  if (!node24 || !requireBpf(t)) return;
  const calls = await rig.plan('mcp-ai', 4);
  const { code, stdout, spans } = await rig.run('ai-mcp', aiAgent, { server, serverConfig: { instrumented: true }, calls }, node24);
  assert.equal(code, 0, 'the agent ran');
  const out = JSON.parse(stdout) as { text: string; results: Record<string, string> };
  assert.equal(out.text, 'surveyed');
  for (const c of calls) assert.equal(out.results[c.id], `${c.word} ${c.word}`, `${c.id}'s result reached the model`);

  const tools = spans.filter((s) => s.name === 'execute_tool survey');
  assert.equal(tools.length, calls.length, `one span per call, not two; spans: ${spans.map((s) => `${s.name}/${s.kind}`).join(', ')}`);
  for (const c of calls) {
    const tool = tools.find((s) => s.attributes['gen_ai.tool.call.id'] === c.id);
    assert.ok(tool, `${c.id}: the span with the model's call id`);
    assert.equal(tool.attributes['mcp.method.name'], 'tools/call', `${c.id}: the MCP request added its attributes to the framework's span`);
    assert.equal(tool.attributes['network.transport'], 'pipe');
    const handler = spans.find((s) => s.name === 'tools/call survey' && s.parentSpanId === tool.spanId);
    assert.ok(handler, `${c.id}: the server's span under it`);
    assertUnder(spans.find((s) => s.attributes['file.path'] === c.file), tool, spans, `${c.id}'s open in the server`);
    assertUnder(spans.find((s) => s.attributes['network.peer.port'] === c.port), tool, spans, `${c.id}'s connect in the server`);
  }
  assertTreeComplete(spans);
});

test('a stdio server started inside a tool call (connected lazily) is no call\'s: nothing it does later lands under that call', async (t) => {
  if (!requireBpf(t)) return;
  const calls = await rig.plan('mcp-lazy', 3);
  const startupFile = path.join(rig.dir, 'startup-lazy.txt');
  fs.writeFileSync(startupFile, 'start\n');
  // An uninstrumented server: without the fix, the process rung would give
  // it the setup call for life. (No timer here: one that fired while the
  // server answered setup's initialize request would rightly count for setup.)
  const { code, stdout, spans } = await rig.run('lazy', agent, { server, serverConfig: { startupFile }, calls, connectInside: true }, node24 ?? process.execPath);
  assert.equal(code, 0, 'the agent ran');
  const out = JSON.parse(stdout) as { results: Record<string, string> };
  for (const c of calls) assert.equal(out.results[c.id], `${c.word} ${c.word}`);
  const setup = spans.filter((s) => s.name === 'execute_tool setup');
  assert.equal(setup.length, 1, 'the setup call has its span');
  const under = spans.filter((s) => s !== setup[0] && ancestry(s, spans).includes(setup[0]!));
  assert.deepEqual(
    under.map((s) => `${s.name} ${String(s.attributes['file.path'] ?? s.attributes['process.command_args'] ?? '')}`),
    [],
    "nothing the server did is under the call that happened to start it",
  );
});

/** Where one call's kernel activity landed: under its own span, flagged or not, or under another call's, unflagged (silently wrong). */
function verdicts(spans: FlatSpan[], calls: PlannedCall[]): { right: number; flagged: number; wrong: string[]; missing: string[]; rungs: Set<unknown> } {
  const out = { right: 0, flagged: 0, wrong: [] as string[], missing: [] as string[], rungs: new Set<unknown>() };
  const clients = spans.filter((s) => s.name === 'execute_tool survey');
  for (const c of calls) {
    const tool = clients.find((s) => String(s.attributes['gen_ai.tool.call.arguments']).includes(c.word));
    const found = [
      ['open', spans.find((s) => s.attributes['file.path'] === c.file)],
      ['connect', spans.find((s) => s.attributes['network.peer.port'] === c.port)],
      ['child process', spans.find((s) => Array.isArray(s.attributes['process.command_args']) && (s.attributes['process.command_args'] as unknown[]).includes(c.word))],
    ] as const;
    for (const [what, span] of found) {
      if (!span || !tool) {
        out.missing.push(`${c.id}'s ${what}`);
        continue;
      }
      out.rungs.add(span.attributes['agentrace.attribution']);
      const above = toolsAbove(span, spans);
      const flagged = span.attributes['agentrace.attribution.ambiguous'] === true;
      if (above.length === 1 && above[0] === tool) out.right++;
      else if (flagged) out.flagged++;
      else out.wrong.push(`${c.id}'s ${what} under ${above.map((s) => String(s.attributes['gen_ai.tool.call.arguments'])).join(' < ') || 'no call'}`);
    }
  }
  return out;
}

/**
 * An agent on `node` calls a server without agentrace (`server`: how the agent
 * starts it) 8 times one after the other (after a call it cancels), then 8
 * times at once: each call's
 * open, connect and child process in the server must be under that call, or
 * (at once) flagged ambiguous; never under another call unflagged. What the
 * server read at start-up is under no call.
 */
async function bareServer(t: TestContext, tag: string, node: string, server: { server: string } | { serverCommand: string[] }): Promise<void> {
  for (const oneByOne of [true, false]) {
    const run = `${tag}-${oneByOne ? 'seq' : 'par'}`;
    const calls = await rig.plan(`mcp-bare-${run}`, 8);
    const startupFile = path.join(rig.dir, `startup-bare-${run}.txt`);
    fs.writeFileSync(startupFile, 'start\n');
    // One at a time, after a call that timed out: the server was told to
    // cancel it and will not answer it, so it serves it no longer.
    const cancelFirst = oneByOne;
    const { code, stdout, spans } = await rig.run(`bare-${run}`, agent, { ...server, serverConfig: { startupFile }, calls, oneByOne, cancelFirst }, node);
    assert.equal(code, 0, 'the agent ran');
    const out = JSON.parse(stdout) as { results: Record<string, string>; failed: boolean; cancelled: boolean };
    for (const c of calls) assert.equal(out.results[c.id], `${c.word} ${c.word}`);
    assert.equal(out.failed, true, 'the failing tool answered isError');
    if (cancelFirst) {
      assert.equal(out.cancelled, true, 'the hanging call timed out');
      const hang = spans.filter((s) => s.name === 'execute_tool hang');
      assert.equal(hang.length, 1, 'the timed-out call has its span');
      assert.equal(hang[0]!.attributes['error.type'], 'cancelled', 'ended when the client cancelled it');
    }
    assert.equal(spans.filter((s) => s.name.startsWith('tools/call')).length, 0, 'the server has no SDK: no server spans');
    const v = verdicts(spans, calls);
    t.diagnostic(`${oneByOne ? 'one at a time' : '8 at once'}: ${v.right} right, ${v.flagged} flagged ambiguous, ${v.wrong.length} wrong, of ${calls.length * 3}`);
    assert.deepEqual(v.missing, [], 'every open, connect and child process of the server is exported under a call');
    assert.deepEqual(v.wrong, [], 'nothing silently under another call');
    assert.ok(v.rungs.has('pipe'), `the pipe rung found them (rungs: ${[...v.rungs].join(', ')})`);
    if (oneByOne) assert.equal(v.right, calls.length * 3, 'calls one at a time (after one cancelled): every one exact, none flagged');
    for (const s of spans.filter((x) => x.attributes['file.path'] === startupFile)) {
      assert.deepEqual(toolsAbove(s, spans), [], 'the server read its start-up file outside any request, yet it is under a tool call');
    }
    const failed = spans.filter((s) => s.name === 'execute_tool fail');
    assert.equal(failed.length, 1, 'the failing call has its span');
    assert.equal(failed[0]!.attributes['error.type'], 'tool_error');
    assertTreeComplete(spans);
  }
}

for (const [runtime, node] of runtimes) {
  test(`an MCP server without agentrace (McpServer, stdio): the pipe rung ties its work to the call it serves; calls made one at a time are exact, 8 at once are right or flagged ambiguous, never silently wrong (${runtime})`, async (t) => {
    if (!requireBpf(t)) return;
    await bareServer(t, runtime.replace(/\W+/g, ''), node, { server });
  });
}

for (const [runtime, node] of runtimes) {
  test(`a Python MCP server (the mcp package from PyPI, MCPServer, stdio): one at a time exact, 8 at once right or flagged ambiguous, never silently wrong (agent on ${runtime})`, async (t) => {
    if (!requireBpf(t) || !requirePythonMcp(t)) return;
    await bareServer(t, `py-${runtime.replace(/\W+/g, '')}`, node, { serverCommand: [python, pythonServer] });
  });
}
