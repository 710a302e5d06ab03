// @agentrace/sdk/langchain end to end on the real kernel: a LangGraph agent
// (StateGraph + ToolNode, scripted by @langchain/core's fakeModel) runs under
// the real sidecar and makes parallel tool calls; each call's file open,
// connect and child process come out of the OTLP file under its own
// execute_tool span, which sits under the graph's invoke_agent span and
// carries the model's tool-call id.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Sidecar, createExporters, resolveOtlpConfig } from '@agentrace/sidecar';
import { requireBpf } from './support/bpf.js';
import { requireBothNodes, runtimes } from './support/runtimes.js';
import { ancestry, readOtlpFile, type FlatSpan } from './support/otlp.js';

// The same agent as an ES module and as CommonJS (@langchain/core's other build).
const agentScripts: Array<[string, string]> = [
  ['ESM', fileURLToPath(new URL('./fixtures/langchain-agent.mjs', import.meta.url))],
  ['CommonJS', fileURLToPath(new URL('./fixtures/langchain-agent.cjs', import.meta.url))],
];
const PARALLEL_CALLS = 3;

let dir: string;
const servers: net.Server[] = [];
const ports: number[] = [];
const children: Array<{ kill: () => void }> = [];

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-langchain-'));
  // One server per call, so each connect names its call by its port.
  for (let i = 0; i < PARALLEL_CALLS; i++) {
    const server = net.createServer((s) => s.destroy()).listen(0, '127.0.0.1');
    await once(server, 'listening');
    servers.push(server);
    ports.push((server.address() as net.AddressInfo).port);
  }
});

after(() => {
  for (const c of children) c.kill();
  for (const s of servers) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});


test('the LangGraph agent runs on Node 20 and Node 24 (in CI)', (t) => requireBothNodes(t));

interface AgentOutput {
  toolMessages: Array<{ id: string; status: string; content: string }>;
  answer: string;
  openRuns: number;
  trackedCalls: number;
}

async function runAgent(node: string, script: string, socketPath: string, plan: object): Promise<{ code: number | null; out: AgentOutput | undefined; stdout: string; stderr: string }> {
  const child = spawn(node, [script, JSON.stringify(plan)], {
    env: { ...process.env, AGENTRACE_SOCKET: socketPath },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    process.stderr.write(d);
  });
  children.push({ kill: () => child.exitCode === null && child.kill('SIGKILL') });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const [code] = (await once(child, 'exit')) as [number | null];
  const line = stdout.trim().split('\n').at(-1);
  let out: AgentOutput | undefined;
  try {
    out = line ? (JSON.parse(line) as AgentOutput) : undefined;
  } catch {
    out = undefined;
  }
  return { code, out, stdout, stderr };
}

function assertUnderOnly(span: FlatSpan | undefined, tool: FlatSpan, tools: FlatSpan[], spans: FlatSpan[], what: string): void {
  assert.ok(span, `${what}: no such span`);
  assert.equal(span.traceId, tool.traceId, `${what}: same trace as its tool`);
  const chain = ancestry(span, spans).map((s) => s.spanId);
  assert.ok(chain.includes(tool.spanId), `${what}: ${span.name} is not under its tool ${tool.attributes['gen_ai.tool.call.id']}`);
  for (const other of tools.filter((s) => s !== tool)) {
    assert.ok(!chain.includes(other.spanId), `${what}: also under ${other.attributes['gen_ai.tool.call.id']}`);
  }
}

for (const [runtime, node] of runtimes) for (const [format, script] of agentScripts) {
  test(`a LangGraph agent's parallel tool calls: each call's open, connect and child process land under its own execute_tool span (${format} agent on ${runtime})`, async (t) => {
    if (!requireBpf(t)) return;
    const tag = `${runtime}${format}`.replace(/\W+/g, '');
    const socketPath = path.join(dir, `${tag}.sock`);
    const file = path.join(dir, `${tag}.jsonl`);
    const sidecar = await Sidecar.start({ socketPath, exporters: createExporters(resolveOtlpConfig({ file }, {})), log: () => {} });
    const calls = ports.map((port, i) => {
      const p = path.join(dir, `target-${i}-${randomBytes(4).toString('hex')}.txt`);
      fs.writeFileSync(p, `target ${i}\n`);
      return { id: `call_${randomBytes(6).toString('hex')}`, path: p, port };
    });
    const invalidId = `call_invalid_${randomBytes(4).toString('hex')}`;
    let run: Awaited<ReturnType<typeof runAgent>>;
    try {
      run = await runAgent(node, script, socketPath, { calls, invalidId });
      await sidecar.settle(2000);
    } finally {
      await sidecar.stop();
    }
    assert.equal(run.code, 0, `the agent ran; it printed: ${run.stdout}`);
    assert.doesNotMatch(run.stderr, /AGENTRACE_FRAMEWORK_UNREACHED/, 'the integration reached the agent\'s copy of @langchain/core');
    const out = run.out;
    assert.ok(out, 'the agent reported');

    // The agent loop itself went through: every call answered, the bad one
    // as a validation error, and nothing is left open in the SDK.
    assert.deepEqual(
      out.toolMessages.map((m) => [m.id, m.status]),
      [...calls.map((c) => [c.id, 'success']), [invalidId, 'error']],
    );
    assert.match(out.toolMessages.at(-1)!.content, /did not match expected schema/);
    assert.equal(out.answer, 'All targets inspected.');
    assert.equal(out.openRuns, 0, 'the handler tracks no run after the agent finished');
    assert.equal(out.trackedCalls, 0, 'no tool call is still tracked');

    const spans = readOtlpFile(file);
    const agent = spans.find((s) => s.name === 'invoke_agent inspector');
    assert.ok(agent, `no invoke_agent span among ${[...new Set(spans.map((s) => s.name))].join(', ')}`);
    assert.equal(agent.attributes['gen_ai.operation.name'], 'invoke_agent');
    assert.equal(agent.attributes['gen_ai.agent.name'], 'inspector');
    assert.equal(agent.parentSpanId, '', 'the agent run is the root');

    const toolsNode = spans.find((s) => s.name === 'chain tools');
    assert.ok(toolsNode, 'the ToolNode run has a span');
    assert.equal(toolsNode.parentSpanId, agent.spanId);

    const chats = spans.filter((s) => s.name === 'chat FakeBuiltModel');
    assert.equal(chats.length, 2, 'two model calls');
    for (const c of chats) {
      assert.equal(c.kind, 3, 'CLIENT');
      assert.equal(c.attributes['gen_ai.operation.name'], 'chat');
      assert.ok(ancestry(c, spans).includes(agent), 'model calls sit under the agent');
    }
    const answered = chats.find((c) => c.attributes['gen_ai.usage.input_tokens'] !== undefined);
    assert.equal(answered?.attributes['gen_ai.usage.input_tokens'], 57);
    assert.equal(answered?.attributes['gen_ai.usage.output_tokens'], 6);

    const tools = spans.filter((s) => s.name === 'execute_tool inspect_target');
    assert.equal(tools.length, PARALLEL_CALLS + 1, 'one span per tool call, the invalid one included');
    for (const tool of tools) {
      assert.equal(tool.parentSpanId, toolsNode.spanId, 'a tool span sits under the ToolNode run');
      assert.ok(ancestry(tool, spans).includes(agent), 'and so under the agent');
      assert.equal(tool.traceId, agent.traceId);
      assert.equal(tool.attributes['gen_ai.operation.name'], 'execute_tool');
      assert.equal(tool.attributes['gen_ai.tool.name'], 'inspect_target');
      assert.equal(tool.attributes['agentrace.tool.unpatched'], undefined, 'made by the patched call, active in the body');
    }
    for (const call of calls) {
      const tool = tools.find((s) => s.attributes['gen_ai.tool.call.id'] === call.id);
      assert.ok(tool, `no execute_tool span with gen_ai.tool.call.id ${call.id}`);
      assert.equal(tool.status.code ?? 0, 0, 'the call succeeded');

      const opens = spans.filter((s) => s.attributes['file.path'] === call.path);
      assert.equal(opens.length, 2, `the tool's own open and its cat's open of ${call.path}`);
      for (const open of opens) assertUnderOnly(open, tool, tools, spans, `open of ${call.path}`);
      assert.ok(opens.some((o) => o.parentSpanId === tool.spanId), 'the tool body opened the file itself');

      const connect = spans.find((s) => s.attributes['network.peer.port'] === call.port);
      assertUnderOnly(connect, tool, tools, spans, `connect to ${call.port}`);
      assert.equal(connect!.kind, 3, 'CLIENT');
      assert.equal(connect!.attributes['network.peer.address'], '127.0.0.1');

      const sh = spans.find(
        (s) => s.attributes['process.executable.path'] === '/bin/sh' && JSON.stringify(s.attributes['process.command_args']).includes(call.path),
      );
      assertUnderOnly(sh, tool, tools, spans, `the shell of ${call.id}`);
      assert.deepEqual(sh!.attributes['process.command_args'], ['/bin/sh', '-c', `cat ${call.path}`]);
      assert.equal(sh!.attributes['process.exit.code'], 0);
    }

    // Arguments that fail validation never reach the tool body nor
    // handleToolStart: the call is still a span, ended with the error.
    const invalid = tools.find((s) => s.attributes['gen_ai.tool.call.id'] === invalidId);
    assert.ok(invalid, 'the invalid call has its span');
    assert.equal(invalid.attributes['error.type'], 'ToolInputParsingException');
    assert.equal(invalid.status.code, 2, 'ERROR');
    assert.deepEqual(
      spans.filter((s) => s.parentSpanId === invalid.spanId),
      [],
      'nothing ran under the invalid call',
    );

    assert.deepEqual(
      spans.filter((s) => s.attributes['agentrace.span.incomplete'] !== undefined || s.attributes['agentrace.langchain.unfinished'] !== undefined).map((s) => s.name),
      [],
      'every span ended on its own',
    );
    for (const s of spans.filter((x) => x !== agent)) {
      const parent = spans.find((p) => p.spanId === s.parentSpanId);
      assert.ok(parent, `${s.name} has its parent in the export`);
      assert.equal(s.traceId, parent.traceId, `${s.name} is in its parent's trace`);
    }
  });
}

test('examples/langchain runs under `agentrace run` and prints its tree, each tool with its kernel activity', (t) => {
  if (!requireBpf(t)) return;
  const root = fileURLToPath(new URL('..', import.meta.url));
  const file = path.join(dir, 'example.jsonl');
  const r = spawnSync(path.join(root, 'bin', 'agentrace'), ['run', '--otlp-file', file, '--', process.execPath, path.join(root, 'examples/langchain/agent.mjs')], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(r.status, 0, `agentrace run exited ${r.status}: ${r.stderr}`);
  assert.match(r.stdout, /^answer: Sunny in Lisbon/m);
  for (const line of ['invoke_agent trip-planner', 'chain tools', 'execute_tool fetch_url', 'execute_tool read_file', 'execute_tool run_shell']) {
    assert.ok(r.stderr.includes(line), `the tree shows ${line}:\n${r.stderr}`);
  }
  const spans = readOtlpFile(file);
  const agent = spans.find((s) => s.name === 'invoke_agent trip-planner');
  assert.ok(agent);
  const tool = (id: string): FlatSpan => {
    const s = spans.find((x) => x.attributes['gen_ai.tool.call.id'] === id);
    assert.ok(s, `no tool span for ${id}`);
    assert.ok(ancestry(s, spans).includes(agent), `${id} sits under the agent`);
    return s;
  };
  const tools = spans.filter((s) => s.name.startsWith('execute_tool'));
  const fetchUrl = tool('call_forecast');
  assertUnderOnly(spans.find((s) => s.name.startsWith('connect 127.0.0.1')), fetchUrl, tools, spans, 'the forecast connect');
  const readFile = tool('call_notes');
  assertUnderOnly(spans.find((s) => String(s.attributes['file.path']).includes('agentrace-example-notes-')), readFile, tools, spans, 'the notes open');
  const runShell = tool('call_disk');
  assertUnderOnly(spans.find((s) => s.attributes['process.executable.path'] === '/bin/sh'), runShell, tools, spans, 'the shell');
});
