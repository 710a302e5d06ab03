// @agentrace/sdk/langchain in process, with the real @langchain/core and
// @langchain/langgraph and an app TracerProvider (InMemorySpanExporter): the
// run tree, tool spans active inside parallel tool bodies, tool-call ids,
// validation failures, capture with the mask, and nothing left open. The
// sidecar is the SDK tests' fake one (a real socket), so the frames can be
// checked too. Kernel attribution is test/langchain.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { z } from 'zod';
import { tool, type StructuredToolInterface } from '@langchain/core/tools';
import { AIMessage, HumanMessage, type BaseMessage, type ToolMessage } from '@langchain/core/messages';
import { fakeModel } from '@langchain/core/testing';
import { MessagesAnnotation, START, StateGraph } from '@langchain/langgraph';
import { ToolNode, toolsCondition } from '@langchain/langgraph/prebuilt';
import { flush } from '@agentrace/sdk';
import { trackedCalls } from '@agentrace/sdk/internal';
import { AgentraceCallbackHandler, instrumentLangChain, openRuns, toolsInstrumented } from '@agentrace/sdk/langchain';
import { hex } from './support/sdk-fake-sidecar.js';
import { useAppProvider } from './support/app-provider.js';

const app = useAppProvider('langchain-test');
const { exporter, provider } = app;

interface ScriptedCall {
  name: string;
  args: Record<string, unknown>;
  id: string;
}

/** A ReAct loop as LangGraph builds one: the model node, then ToolNode, until the model answers. */
function agentGraph(name: string, tools: StructuredToolInterface[], calls: ScriptedCall[]) {
  const model = fakeModel()
    .respondWithTools(calls)
    .respond(new AIMessage({ content: 'done', usage_metadata: { input_tokens: 21, output_tokens: 4, total_tokens: 25 } }));
  const withTools = model.bindTools(tools);
  return new StateGraph(MessagesAnnotation)
    .addNode('agent', async (state: typeof MessagesAnnotation.State) => ({ messages: [await withTools.invoke(state.messages)] }))
    .addNode('tools', new ToolNode(tools))
    .addEdge(START, 'agent')
    .addConditionalEdges('agent', toolsCondition)
    .addEdge('tools', 'agent')
    .compile({ name });
}

function toolMessages(messages: BaseMessage[]): ToolMessage[] {
  return messages.filter((m): m is ToolMessage => m.getType() === 'tool');
}

function named(name: string): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((s) => s.name === name);
}

function one(name: string): ReadableSpan {
  const spans = named(name);
  assert.equal(spans.length, 1, `exactly one span named ${name}, among ${exporter.getFinishedSpans().map((s) => s.name).join(', ')}`);
  return spans[0]!;
}

function parentOf(s: ReadableSpan): string | undefined {
  return s.parentSpanContext?.spanId;
}

function byCallId(spans: ReadableSpan[], id: string): ReadableSpan {
  const s = spans.find((x) => x.attributes['gen_ai.tool.call.id'] === id);
  assert.ok(s, `no span with gen_ai.tool.call.id ${id}`);
  return s;
}

const addSchema = z.object({ a: z.number(), b: z.number() });

// Runs before anything patches the tools: what a handler can do alone.
test('the handler alone: tool spans with their call ids under the ToolNode run, but not active in the tool body', async () => {
  assert.equal(toolsInstrumented(), false);
  const activeInBody: Array<string | undefined> = [];
  const add = tool(
    async ({ a, b }) => {
      activeInBody.push(trace.getActiveSpan()?.spanContext().spanId);
      return a + b;
    },
    { name: 'add', description: 'Add two numbers', schema: addSchema },
  );
  const graph = agentGraph('handler-only', [add], [
    { name: 'add', args: { a: 1, b: 2 }, id: 'h-1' },
    { name: 'add', args: { a: 3, b: 4 }, id: 'h-2' },
  ]);
  const warnings: Array<{ code?: string; message: string }> = [];
  const onWarning = (w: Error & { code?: string }): void => void warnings.push({ code: w.code, message: w.message });
  process.on('warning', onWarning);
  try {
    await graph.invoke({ messages: [new HumanMessage('add')] }, { callbacks: [new AgentraceCallbackHandler()] });
    await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
  } finally {
    process.off('warning', onWarning);
  }

  const toolsRun = one('chain tools');
  const tools = named('execute_tool add');
  assert.equal(tools.length, 2);
  // Never silently wrong: the spans say they are not the tool's own, and the user is told once.
  for (const t of tools) assert.equal((t as unknown as { attributes: Record<string, unknown> }).attributes['agentrace.tool.unpatched'], true);
  const unreached = warnings.filter((w) => w.code === 'AGENTRACE_FRAMEWORK_UNREACHED');
  assert.equal(unreached.length, 1, JSON.stringify(warnings));
  assert.match(unreached[0]!.message, /"add" ran outside its execute_tool span: instrumentTools\(\) \(or instrumentLangChain\(\)\) was not called/);
  for (const id of ['h-1', 'h-2']) assert.equal(parentOf(byCallId(tools, id)), toolsRun.spanContext().spanId);
  const toolIds = new Set(tools.map((s) => s.spanContext().spanId));
  assert.ok(activeInBody.every((id) => !toolIds.has(id as string)), 'a handler cannot make its span active for the tool body');
  assert.equal(openRuns(), 0);
});

test('instrumentLangChain: the run tree, parallel tool calls each active in their own body, and nothing left open', async () => {
  const handler = instrumentLangChain();
  assert.equal(toolsInstrumented(), true);
  const activeInBody = new Map<string, string | undefined>();
  const add = tool(
    async ({ a, b }, config) => {
      // Yield so the parallel calls interleave before each reads its span.
      await new Promise((r) => setTimeout(r, 5 * (3 - a)));
      activeInBody.set(String(config.toolCall?.id), trace.getActiveSpan()?.spanContext().spanId);
      return a + b;
    },
    { name: 'add', description: 'Add two numbers', schema: addSchema },
  );
  const fail = tool(
    async () => {
      throw new Error('the disk is on fire');
    },
    { name: 'fail', description: 'Always fails', schema: z.object({}) },
  );
  const graph = agentGraph('calculator', [add, fail], [
    { name: 'add', args: { a: 0, b: 1 }, id: 'call-a' },
    { name: 'add', args: { a: 1, b: 1 }, id: 'call-b' },
    { name: 'add', args: { a: 2, b: 1 }, id: 'call-c' },
    { name: 'add', args: { a: 'two' }, id: 'call-invalid' },
    { name: 'fail', args: {}, id: 'call-fail' },
  ]);
  const result = await graph.invoke({ messages: [new HumanMessage('add')] }, { callbacks: [handler] });
  assert.deepEqual(
    toolMessages(result.messages).map((m) => [m.tool_call_id, m.status]),
    [['call-a', 'success'], ['call-b', 'success'], ['call-c', 'success'], ['call-invalid', 'error'], ['call-fail', 'error']],
  );

  const agent = one('invoke_agent calculator');
  assert.equal(agent.attributes['gen_ai.operation.name'], 'invoke_agent');
  assert.equal(agent.attributes['gen_ai.agent.name'], 'calculator');
  assert.equal(parentOf(agent), undefined);
  const toolsRun = one('chain tools');
  assert.equal(parentOf(toolsRun), agent.spanContext().spanId);
  assert.equal(toolsRun.attributes['langgraph.node'], 'tools');

  const chats = named('chat FakeBuiltModel');
  assert.equal(chats.length, 2);
  for (const c of chats) {
    assert.equal(c.kind, SpanKind.CLIENT);
    assert.equal(c.attributes['gen_ai.request.model'], 'FakeBuiltModel');
    assert.equal(c.spanContext().traceId, agent.spanContext().traceId);
  }
  const answered = chats.find((c) => c.attributes['gen_ai.usage.input_tokens'] !== undefined);
  assert.equal(answered?.attributes['gen_ai.usage.input_tokens'], 21);
  assert.equal(answered?.attributes['gen_ai.usage.output_tokens'], 4);

  const adds = named('execute_tool add');
  assert.equal(adds.length, 4, 'three calls and the invalid one');
  for (const id of ['call-a', 'call-b', 'call-c']) {
    const s = byCallId(adds, id);
    assert.equal(parentOf(s), toolsRun.spanContext().spanId, `${id} under the ToolNode run`);
    assert.equal(activeInBody.get(id), s.spanContext().spanId, `${id}'s own span is active in its body`);
    assert.equal(s.attributes['gen_ai.tool.description'], 'Add two numbers');
    assert.equal(s.status.code, SpanStatusCode.UNSET);
    assert.equal(s.attributes['gen_ai.tool.call.arguments'], undefined, 'arguments are not captured unless asked');
    assert.equal(s.attributes['gen_ai.tool.call.result'], undefined, 'results are not captured unless asked');
  }
  const invalid = byCallId(adds, 'call-invalid');
  assert.equal(invalid.attributes['error.type'], 'ToolInputParsingException');
  assert.equal(invalid.status.code, SpanStatusCode.ERROR);
  assert.equal(parentOf(invalid), toolsRun.spanContext().spanId);
  const failed = one('execute_tool fail');
  assert.equal(failed.attributes['gen_ai.tool.call.id'], 'call-fail');
  assert.equal(failed.attributes['error.type'], 'Error');
  assert.equal(failed.status.message, 'the disk is on fire');

  assert.equal(openRuns(), 0, 'the handler tracks no run');
  assert.equal(trackedCalls(), 0, 'no tool call in flight');

  // The sidecar heard of each tool span with its parent, for attribution.
  const callB = byCallId(adds, 'call-b').spanContext().spanId;
  await flush();
  await app.sidecar.waitFor(() => app.sidecar.of('end').some((m) => hex(m.span) === callB), 2000, 'the end frame of call-b');
  const start = app.sidecar.of('start').find((m) => hex(m.span) === callB);
  assert.ok(start, 'start frame of call-b');
  assert.equal(hex(start.parent!), toolsRun.spanContext().spanId);
  assert.equal(start.export, false, 'the app exports it');
});

test('capture on request, through the mask: the model arguments and the tool output', async () => {
  const seen: Array<[unknown, string]> = [];
  const handler = instrumentLangChain({
    captureArguments: true,
    captureResult: true,
    mask: (value, kind) => {
      seen.push([value, kind]);
      return kind === 'arguments' ? { ...(value as object), secret: '***' } : value;
    },
  });
  const lookup = tool(async ({ user }) => `user ${user} found`, {
    name: 'lookup',
    description: 'Find a user',
    schema: z.object({ user: z.string(), secret: z.string() }),
  });
  const graph = agentGraph('capture', [lookup], [{ name: 'lookup', args: { user: 'ada', secret: 'hunter2' }, id: 'cap-1' }]);
  await graph.invoke({ messages: [new HumanMessage('find ada')] }, { callbacks: [handler] });
  const s = one('execute_tool lookup');
  assert.equal(s.attributes['gen_ai.tool.call.arguments'], '{"user":"ada","secret":"***"}');
  assert.equal(s.attributes['gen_ai.tool.call.result'], '"user ada found"');
  assert.deepEqual(seen, [
    [{ user: 'ada', secret: 'hunter2' }, 'arguments'],
    ['user ada found', 'result'],
  ]);
  instrumentLangChain(); // back to capturing nothing
});

test("a graph run inside the app's span, and a tool called from a tool's body, nest", async () => {
  const handler = instrumentLangChain();
  const inner = tool(async ({ q }) => `inner ${q}`, { name: 'inner', description: 'Inner', schema: z.object({ q: z.string() }) });
  const outer = tool(
    async ({ q }, config) => {
      // As a tool that delegates would: with its own config, so the inner run is its child.
      const r = await inner.invoke({ q }, config);
      return `outer ${r}`;
    },
    { name: 'outer', description: 'Outer', schema: z.object({ q: z.string() }) },
  );
  const graph = agentGraph('nesting', [outer], [{ name: 'outer', args: { q: 'x' }, id: 'nest-1' }]);
  const tracer = provider.getTracer('app');
  await tracer.startActiveSpan('app request', async (span) => {
    try {
      await graph.invoke({ messages: [new HumanMessage('go')] }, { callbacks: [handler] });
    } finally {
      span.end();
    }
  });
  const app = one('app request');
  const agent = one('invoke_agent nesting');
  assert.equal(parentOf(agent), app.spanContext().spanId, 'the agent run starts under the active app span');
  const outerSpan = one('execute_tool outer');
  const innerSpan = one('execute_tool inner');
  assert.equal(parentOf(innerSpan), outerSpan.spanContext().spanId);
  assert.equal(innerSpan.spanContext().traceId, app.spanContext().traceId);
  assert.equal(openRuns(), 0);
  assert.equal(trace.getSpan(context.active()), undefined, 'no span leaked into the caller');
});

test('a tool invoked on its own with a ToolCall, no handler: its span has the call id and starts under the active span', async () => {
  instrumentLangChain();
  let active: string | undefined;
  const add = tool(
    async ({ a, b }) => {
      active = trace.getActiveSpan()?.spanContext().spanId;
      return a + b;
    },
    { name: 'add', description: 'Add two numbers', schema: addSchema },
  );
  const app = provider.getTracer('app');
  const out = await app.startActiveSpan('app step', async (span) => {
    try {
      return (await add.invoke({ name: 'add', args: { a: 2, b: 3 }, id: 'direct-1', type: 'tool_call' })) as ToolMessage;
    } finally {
      span.end();
    }
  });
  assert.equal(out.tool_call_id, 'direct-1');
  assert.equal(out.content, '5');
  const s = one('execute_tool add');
  assert.equal(s.attributes['gen_ai.tool.call.id'], 'direct-1');
  assert.equal(parentOf(s), one('app step').spanContext().spanId);
  assert.equal(active, s.spanContext().spanId);
  assert.equal(openRuns(), 0);
});

test("the SDK's main entry never loads @langchain/core (an optional peer)", () => {
  // Every module the main entry reaches through static imports, from the built package.
  const entry = fileURLToPath(new URL('../packages/sdk/dist/index.js', import.meta.url));
  const seen = new Set<string>();
  const bare = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec));
      else bare.add(spec);
    }
  };
  visit(entry);
  // and what the protocol package it depends on brings
  visit(fileURLToPath(new URL('../packages/protocol/dist/index.js', import.meta.url)));
  assert.ok(seen.size > 5, `walked the entry's modules (${seen.size})`);
  const outside = [...bare].filter((s) => !s.startsWith('node:'));
  assert.deepEqual(outside.sort(), ['@agentrace/protocol', '@opentelemetry/api', 'msgpackr/pack'], "msgpackr's plain entry: not its node one, which loads a native addon");
});
