// @agentrace/sdk/ai with an app-registered TracerProvider (BasicTracerProvider
// + InMemorySpanExporter), in this process: a real ai SDK generateText loop
// (MockLanguageModelV3) with parallel tool calls. The tool spans go through
// the app's pipeline under the ai SDK's own spans, are active inside the
// tool bodies, record the tool's error as traceTool does, and capture
// arguments and results only on request, through the mask.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { generateText, stepCountIs, tool, type ToolSet } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { z } from 'zod';
import { flush } from '@agentrace/sdk';
import { telemetry, type TelemetryOptions } from '@agentrace/sdk/ai';
import { hex } from './support/sdk-fake-sidecar.js';
import { useAppProvider } from './support/app-provider.js';

const app = useAppProvider('ai-provider-test');
const { exporter } = app;

const usage = { inputTokens: { total: 4, noCache: 4, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 2, text: 2, reasoning: 0 } };

/** A model that asks for `calls` in one step, then answers "done". */
function scripted(calls: Array<{ id: string; tool: string; input: object }>): MockLanguageModelV3 {
  return new MockLanguageModelV3({
    doGenerate: [
      {
        content: calls.map((c) => ({ type: 'tool-call' as const, toolCallId: c.id, toolName: c.tool, input: JSON.stringify(c.input) })),
        finishReason: { unified: 'tool-calls', raw: undefined },
        usage,
        warnings: [],
      },
      { content: [{ type: 'text', text: 'done' }], finishReason: { unified: 'stop', raw: undefined }, usage, warnings: [] },
    ],
  });
}

async function run(tools: ToolSet, calls: Array<{ id: string; tool: string; input: object }>, options: TelemetryOptions = {}) {
  const result = await generateText({
    model: scripted(calls),
    tools,
    prompt: 'go',
    stopWhen: stepCountIs(3),
    experimental_telemetry: telemetry(options),
  });
  await flush();
  return result;
}

function spansNamed(name: string): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((s) => s.name === name);
}

function toolSpan(callId: string): ReadableSpan {
  const found = exporter.getFinishedSpans().filter((s) => s.attributes['gen_ai.tool.call.id'] === callId);
  assert.equal(found.length, 1, `one span with gen_ai.tool.call.id ${callId}`);
  return found[0]!;
}

test('parallel tool calls: each an execute_tool span of the app, active in its body, under ai.generateText', { timeout: 30_000 }, async () => {
  const seen = new Map<string, { active: string | undefined; nestedParent: string | undefined }>();
  let inFlight = 0;
  let maxInFlight = 0;
  const lookup = tool({
    inputSchema: z.object({ key: z.string() }),
    execute: async ({ key }, { toolCallId }) => {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      await new Promise((r) => setTimeout(r, 5));
      const active = trace.getActiveSpan()?.spanContext().spanId;
      const nested = trace.getTracer('app').startSpan('nested work');
      nested.end();
      seen.set(toolCallId, { active, nestedParent: (nested as unknown as ReadableSpan).parentSpanContext?.spanId });
      inFlight--;
      return `value of ${key}`;
    },
  });
  const result = await run({ lookup }, [
    { id: 'call-a', tool: 'lookup', input: { key: 'a' } },
    { id: 'call-b', tool: 'lookup', input: { key: 'b' } },
  ]);
  assert.equal(result.text, 'done');
  assert.equal(maxInFlight, 2, 'the ai SDK ran both calls at once');

  const [root] = spansNamed('ai.generateText');
  assert.ok(root, 'ai.generateText went through the app provider');
  assert.equal(root.instrumentationScope.name, 'ai');
  for (const id of ['call-a', 'call-b']) {
    const span = toolSpan(id);
    assert.equal(span.name, 'execute_tool lookup');
    assert.equal(span.instrumentationScope.name, '@agentrace/sdk');
    assert.equal(span.attributes['gen_ai.operation.name'], 'execute_tool');
    assert.equal(span.parentSpanContext?.spanId, root.spanContext().spanId, `${id} is a child of ai.generateText`);
    assert.equal(span.spanContext().traceId, root.spanContext().traceId);
    assert.equal(seen.get(id)?.active, span.spanContext().spanId, `${id}'s span is active in its body`);
    assert.equal(seen.get(id)?.nestedParent, span.spanContext().spanId, `a span the tool starts hangs under ${id}`);
    assert.equal(span.status.code, SpanStatusCode.UNSET);
    assert.equal(span.ended, true);
  }
  assert.equal(spansNamed('ai.toolCall').length, 0, "the tool span replaces ai's own");

  // The sidecar heard of the tool spans (for kernel attribution) but exports none: the app does.
  const ids = ['call-a', 'call-b'].map((id) => toolSpan(id).spanContext().spanId);
  await app.sidecar.waitFor(() => ids.every((s) => app.sidecar.of('start').some((m) => hex(m.span) === s)), 2000, 'the tool spans\' start frames');
  const starts = app.sidecar.of('start');
  for (const id of ['call-a', 'call-b']) {
    const frame = starts.find((m) => hex(m.span) === toolSpan(id).spanContext().spanId);
    assert.ok(frame, `start frame of ${id}`);
    assert.equal(frame.export, false);
    assert.equal(frame.attrs['gen_ai.tool.call.id'], id);
  }
  assert.ok(!starts.some((m) => m.name === 'ai.generateText'), 'framework spans of the app are not sent to the sidecar');
});

test("a tool's error: the span records it as traceTool does, and the ai SDK still hands it to the model", { timeout: 30_000 }, async () => {
  const fail = tool({
    inputSchema: z.object({}),
    execute: async (): Promise<string> => {
      throw Object.assign(new Error('no access to /secret'), { code: 'EACCES' });
    },
  });
  const result = await run({ fail }, [{ id: 'call-fail', tool: 'fail', input: {} }]);
  assert.equal(result.text, 'done', 'the loop went on');
  const toolError = result.steps[0]?.content.find((p) => p.type === 'tool-error');
  assert.ok(toolError, 'the model got a tool-error part');
  const span = toolSpan('call-fail');
  assert.equal(span.status.code, SpanStatusCode.ERROR);
  assert.equal(span.status.message, 'no access to /secret');
  assert.equal(span.attributes['error.type'], 'EACCES');
  assert.equal(span.events.filter((e) => e.name === 'exception').length, 1, 'the exception is recorded once');
});

test('arguments and results: left out by default, captured through the mask on request; ai never records them unmasked', { timeout: 30_000 }, async () => {
  const login = tool({
    inputSchema: z.object({ user: z.string(), password: z.string() }),
    execute: async ({ user }) => ({ user, token: 'tok-123' }),
  });
  const calls = [{ id: 'call-login', tool: 'login', input: { user: 'ada', password: 'hunter2' } }];

  await run({ login }, calls);
  let span = toolSpan('call-login');
  assert.equal(span.attributes['gen_ai.tool.call.arguments'], undefined);
  assert.equal(span.attributes['gen_ai.tool.call.result'], undefined);
  exporter.reset();

  await run({ login }, calls, {
    captureArguments: true,
    captureResult: true,
    recordInputs: true,
    recordOutputs: true,
    mask: (value, kind) => ({ ...(value as object), ...(kind === 'arguments' ? { password: '***' } : { token: '***' }) }),
  });
  span = toolSpan('call-login');
  assert.deepEqual(JSON.parse(String(span.attributes['gen_ai.tool.call.arguments'])), { user: 'ada', password: '***' });
  assert.deepEqual(JSON.parse(String(span.attributes['gen_ai.tool.call.result'])), { user: 'ada', token: '***' });
  assert.equal(span.attributes['ai.toolCall.args'], undefined, "ai's recordInputs does not bypass the mask");
  assert.equal(span.attributes['ai.toolCall.result'], undefined, "ai's recordOutputs does not bypass the mask");
  const [root] = spansNamed('ai.generateText');
  assert.ok(root?.attributes['ai.prompt'], 'recordInputs still records the prompt on the ai SDK spans');
});

test('framework packages stay optional: the core entry and @agentrace/sdk/ai load none of them', () => {
  // A resolve hook that refuses every framework package, so loading one fails.
  const hook = `export async function resolve(s, c, next) {
    if (/^(ai|@openai\\/agents|@langchain\\/[^/]+)(\\/|$)/.test(s)) throw new Error('framework import: ' + s);
    return next(s, c);
  }`;
  const setup = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});`;
  const probe = `
    await import('@agentrace/sdk');
    await import('@agentrace/sdk/ai');
    const blocked = await import('@agentrace/sdk/openai-agents').then(() => 'loaded', (e) => e.message);
    console.log(JSON.stringify({ blocked }));`;
  const r = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(setup)}`, '--input-type=module', '-e', probe], {
    encoding: 'utf8',
    env: { ...process.env, AGENTRACE_SOCKET: '/nonexistent/agentrace.sock' },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { blocked: 'framework import: @openai/agents' }, 'the hook works: the entry that needs a framework is refused');
});
