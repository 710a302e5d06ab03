// @agentrace/sdk/openai-agents with an app-registered TracerProvider
// (BasicTracerProvider + InMemorySpanExporter), in this process: real
// OpenAI Agents SDK runs (its ScriptedModel) with parallel tool calls. The
// mirrored agent spans and the tool spans go through the app's pipeline,
// the tool spans are active in their bodies and parented under the run's
// turn and agent spans even when our processor runs behind another one (the
// agents SDK awaits each processor before calling the next), tool errors
// are recorded as traceTool does, and arguments and results are captured
// only on request, through the mask.
import { beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Agent, BatchTraceProcessor, run, setTraceProcessors, type Tool } from '@openai/agents';
import { ScriptedModel, assistantMessage, functionCall } from '@openai/agents/testing';
import { z } from 'zod';
import { flush } from '@agentrace/sdk';
import { AgentraceProcessor, createTool, tool } from '@agentrace/sdk/openai-agents';
import { hex } from './support/sdk-fake-sidecar.js';
import { useAppProvider } from './support/app-provider.js';

const app = useAppProvider('openai-agents-provider-test', () => setTraceProcessors([]));
const { exporter } = app;

beforeEach(() => setTraceProcessors([new AgentraceProcessor()]));

async function runAgent(tools: Tool[], calls: Array<{ id: string; tool: string; input: Record<string, unknown> }>): Promise<unknown> {
  const model = new ScriptedModel([calls.map((c) => functionCall(c.tool, c.input, { callId: c.id })), [assistantMessage('done')]]);
  const agent = new Agent({ name: 'Helper', instructions: 'help', model, tools });
  const result = await run(agent, 'go');
  model.assertComplete();
  await flush();
  return result.finalOutput;
}

function only(name: string): ReadableSpan {
  const found = exporter.getFinishedSpans().filter((s) => s.name === name);
  assert.equal(found.length, 1, `one span ${name}; spans: ${exporter.getFinishedSpans().map((s) => s.name).join(', ')}`);
  return found[0]!;
}

function toolSpan(callId: string): ReadableSpan {
  const found = exporter.getFinishedSpans().filter((s) => s.attributes['gen_ai.tool.call.id'] === callId);
  assert.equal(found.length, 1, `one span with gen_ai.tool.call.id ${callId}`);
  return found[0]!;
}

const parentOf = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;
const idOf = (s: ReadableSpan): string => s.spanContext().spanId;

function lookupTool(seen: Map<string, string | undefined>, flight: { now: number; max: number }) {
  return tool({
    name: 'lookup',
    description: 'Look a key up',
    parameters: z.object({ key: z.string() }),
    execute: async ({ key }, _ctx, details) => {
      flight.max = Math.max(flight.max, ++flight.now);
      await new Promise((r) => setTimeout(r, 5));
      seen.set(details?.toolCall?.callId ?? '?', trace.getActiveSpan()?.spanContext().spanId);
      flight.now--;
      return `value of ${key}`;
    },
  });
}

for (const behind of [false, true]) {
  test(`parallel tool calls: execute_tool spans of the app, active in their bodies, under turn and invoke_agent${behind ? ' (our processor behind the default batch processor)' : ''}`, { timeout: 30_000 }, async () => {
    if (behind) {
      // As after addTraceProcessor(): the agents SDK's default processor comes first, and ours is called only once its promise settled.
      setTraceProcessors([new BatchTraceProcessor({ export: async () => {} }), new AgentraceProcessor()]);
    }
    const seen = new Map<string, string | undefined>();
    const flight = { now: 0, max: 0 };
    const out = await runAgent([lookupTool(seen, flight)], [
      { id: 'call-a', tool: 'lookup', input: { key: 'a' } },
      { id: 'call-b', tool: 'lookup', input: { key: 'b' } },
    ]);
    assert.equal(out, 'done');
    assert.equal(flight.max, 2, 'the agents SDK ran both calls at once');

    const workflow = only('Agent workflow');
    const agent = only('invoke_agent Helper');
    const turn = only('turn 1');
    assert.equal(agent.instrumentationScope.name, '@openai/agents');
    assert.equal(agent.attributes['gen_ai.operation.name'], 'invoke_agent');
    assert.deepEqual(agent.attributes['openai.agents.agent.tools'], ['lookup']);
    assert.equal(parentOf(only('task Agent workflow')), idOf(workflow));
    assert.equal(parentOf(agent), idOf(only('task Agent workflow')));
    assert.equal(parentOf(turn), idOf(agent));
    for (const id of ['call-a', 'call-b']) {
      const span = toolSpan(id);
      assert.equal(span.name, 'execute_tool lookup');
      assert.equal(span.attributes['gen_ai.tool.description'], 'Look a key up');
      assert.equal(parentOf(span), idOf(turn), `${id} is a child of the turn that asked for it`);
      assert.equal(span.spanContext().traceId, workflow.spanContext().traceId);
      assert.equal(seen.get(id), idOf(span), `${id}'s span is active in its body`);
      assert.equal(span.status.code, SpanStatusCode.UNSET);
    }
    assert.equal(exporter.getFinishedSpans().filter((s) => s.attributes['openai.agents.span.type'] === 'function').length, 0, 'one span per tool call');
    const startOf = () => app.sidecar.of('start').find((m) => hex(m.span) === idOf(toolSpan('call-a')));
    await app.sidecar.waitFor(() => startOf() !== undefined, 2000, 'the start frame of call-a');
    assert.equal(startOf()?.export, false, 'the sidecar heard of the tool span, the app exports it');
  });
}

test("a tool's error: the span records it as traceTool does, and the run goes on", { timeout: 30_000 }, async () => {
  const fail = tool({
    name: 'fail',
    description: 'Always fails',
    parameters: z.object({}),
    execute: async () => {
      throw Object.assign(new Error('no access to /secret'), { code: 'EACCES' });
    },
  });
  assert.equal(await runAgent([fail], [{ id: 'call-fail', tool: 'fail', input: {} }]), 'done');
  const span = toolSpan('call-fail');
  assert.equal(span.status.code, SpanStatusCode.ERROR);
  assert.equal(span.status.message, 'no access to /secret');
  assert.equal(span.attributes['error.type'], 'EACCES');
});

test('a traced tool whose input fails validation never runs, and still gets a failed execute_tool span', { timeout: 30_000 }, async () => {
  let ran = false;
  const strict = tool({
    name: 'strict',
    description: 'Takes a number',
    parameters: z.object({ n: z.number() }),
    execute: async () => {
      ran = true;
      return 'ran';
    },
  });
  assert.equal(await runAgent([strict], [{ id: 'call-bad', tool: 'strict', input: { n: 'not a number' } }]), 'done');
  assert.equal(ran, false, 'the body never ran');
  const span = only('execute_tool strict');
  assert.equal(span.status.code, SpanStatusCode.ERROR);
  assert.equal(span.attributes['error.type'], '_OTHER');
  assert.equal(parentOf(span), idOf(only('turn 1')));
});

test('arguments and results: left out by default, captured through the mask on request', { timeout: 30_000 }, async () => {
  const execute = async ({ user }: { user: string; password: string }) => JSON.stringify({ user, token: 'tok-123' });
  const parameters = z.object({ user: z.string(), password: z.string() });
  const calls = [{ id: 'call-login', tool: 'login', input: { user: 'ada', password: 'hunter2' } }];

  await runAgent([tool({ name: 'login', description: 'Log in', parameters, execute })], calls);
  let span = toolSpan('call-login');
  assert.equal(span.attributes['gen_ai.tool.call.arguments'], undefined);
  assert.equal(span.attributes['gen_ai.tool.call.result'], undefined);
  exporter.reset();

  const masked = createTool({
    captureArguments: true,
    captureResult: true,
    mask: (value, kind) => (kind === 'arguments' ? { ...(value as object), password: '***' } : String(value).replace(/tok-\w+/, '***')),
  });
  await runAgent([masked({ name: 'login', description: 'Log in', parameters, execute })], calls);
  span = toolSpan('call-login');
  assert.deepEqual(JSON.parse(String(span.attributes['gen_ai.tool.call.arguments'])), { user: 'ada', password: '***' });
  assert.equal(JSON.parse(String(span.attributes['gen_ai.tool.call.result'])), '{"user":"ada","token":"***"}');
});

test("a tool made with the agents SDK's own tool() still gets a span, from the processor", { timeout: 30_000 }, async () => {
  const { tool: plainTool } = await import('@openai/agents');
  const plain = plainTool({ name: 'plain', description: 'Not traced', parameters: z.object({}), execute: async () => 'ok' });
  assert.equal(await runAgent([plain], [{ id: 'call-plain', tool: 'plain', input: {} }]), 'done');
  const span = only('execute_tool plain');
  assert.equal(span.attributes['gen_ai.tool.name'], 'plain');
  assert.equal(parentOf(span), idOf(only('turn 1')));
});
