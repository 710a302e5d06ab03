// traceTool with an app-registered TracerProvider (BasicTracerProvider +
// InMemorySpanExporter): the spans go through the app's pipeline, follow the
// GenAI conventions, and the frames the sidecar gets carry the same ids with
// export = false. No context manager is registered by the app here, so the
// SDK registers AsyncLocalStorage.
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { context, SpanKind, SpanStatusCode, trace, TraceFlags } from '@opentelemetry/api';
import {
  AlwaysOffSampler,
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { configure, flush, shutdown, traceTool } from '@agentrace/sdk';
import { slotBytes, state, whenReady } from '@agentrace/sdk/internal';
import { FakeSidecar, hex, osThreadId } from './support/sdk-fake-sidecar.js';

const exporter = new InMemorySpanExporter();
let provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let sidecar: FakeSidecar;

before(async () => {
  trace.setGlobalTracerProvider(provider);
  sidecar = await FakeSidecar.start();
  configure({ socketPath: sidecar.path, serviceName: 'provider-test' });
  assert.equal(await whenReady(2000), true, 'fake sidecar welcome');
});

after(async () => {
  await shutdown();
  await sidecar.close();
  await provider.shutdown();
});

beforeEach(() => exporter.reset());

function only(name: string): ReadableSpan {
  const spans = exporter.getFinishedSpans().filter((s) => s.name === name);
  assert.equal(spans.length, 1, `exactly one span named ${name}`);
  return spans[0]!;
}

async function framesOf(spanIdHex: string): Promise<{ start: ReturnType<FakeSidecar['of']>[number]; end: ReturnType<FakeSidecar['of']>[number] }> {
  await flush();
  await sidecar.waitFor(
    () => sidecar.of('end').some((m) => hex(m.span) === spanIdHex),
    2000,
    `end frame of ${spanIdHex}`,
  );
  const start = sidecar.of('start').find((m) => hex(m.span) === spanIdHex);
  const end = sidecar.of('end').find((m) => hex(m.span) === spanIdHex);
  assert.ok(start && end);
  return { start, end };
}

test('span name, kind and GenAI attributes; the sync result and this pass through', { timeout: 30_000 }, () => {
  const obj = {
    base: 40,
    add: traceTool(
      'add',
      function (this: { base: number }, a: number, b: number): number {
        return this.base + a + b;
      },
      { description: 'adds numbers', callId: (a: number) => `call-${a}`, type: 'function' },
    ),
  };
  assert.equal(obj.add(1, 1), 42);
  const span = only('execute_tool add');
  assert.equal(span.kind, SpanKind.INTERNAL);
  assert.deepEqual(span.attributes, {
    'gen_ai.operation.name': 'execute_tool',
    'gen_ai.tool.name': 'add',
    'gen_ai.tool.type': 'function',
    'gen_ai.tool.description': 'adds numbers',
    'gen_ai.tool.call.id': 'call-1',
  });
  assert.equal(span.status.code, SpanStatusCode.UNSET);
  assert.equal(span.instrumentationScope.name, '@agentrace/sdk');
});

test('the wrapper keeps the name and arity of fn', { timeout: 30_000 }, () => {
  function lookup(_a: string, _b: number): void {}
  const w = traceTool('lookup', lookup);
  assert.equal(w.name, 'lookup');
  assert.equal(w.length, 2);
});

test('async fn: the span is active across awaits and ends when the promise settles', { timeout: 30_000 }, async () => {
  let inside: string | undefined;
  const fetchIt = traceTool('fetch_it', async (url: string) => {
    await new Promise((r) => setTimeout(r, 20));
    inside = trace.getActiveSpan()?.spanContext().spanId;
    return { url, ok: true };
  });
  const p = fetchIt('http://x');
  assert.ok(p instanceof Promise);
  assert.equal(exporter.getFinishedSpans().length, 0, 'not ended before it settles');
  assert.deepEqual(await p, { url: 'http://x', ok: true });
  const span = only('execute_tool fetch_it');
  assert.equal(inside, span.spanContext().spanId);
  const ms = (span.endTime[0] - span.startTime[0]) * 1e3 + (span.endTime[1] - span.startTime[1]) / 1e6;
  assert.ok(ms >= 15, `span lasted ${ms} ms`);
});

test('sync throw: same error object rethrown synchronously, error.type and status ERROR recorded', { timeout: 30_000 }, () => {
  class QuotaError extends Error {}
  const boom = new QuotaError('over quota');
  const f = traceTool('boom', () => {
    throw boom;
  });
  let caught: unknown;
  try {
    f();
  } catch (err) {
    caught = err;
  }
  assert.equal(caught, boom);
  const span = only('execute_tool boom');
  assert.equal(span.attributes['error.type'], 'QuotaError');
  assert.equal(span.status.code, SpanStatusCode.ERROR);
  assert.equal(span.status.message, 'over quota');
  assert.equal(span.events.filter((e) => e.name === 'exception').length, 1);
});

test('rejection: same error object, error.type from the error code', { timeout: 30_000 }, async () => {
  const err = Object.assign(new Error('no such file'), { code: 'ENOENT' });
  const f = traceTool('read', async () => {
    await Promise.resolve();
    throw err;
  });
  await assert.rejects(f(), (e) => e === err);
  const span = only('execute_tool read');
  assert.equal(span.attributes['error.type'], 'ENOENT');
  assert.equal(span.status.code, SpanStatusCode.ERROR);
  const { end } = await framesOf(span.spanContext().spanId);
  assert.equal((end as { attrs?: Record<string, unknown> }).attrs?.['error.type'], 'ENOENT');
  assert.equal((end as { status: { code: number } }).status.code, SpanStatusCode.ERROR);
});

test('throwing a non-Error value: rethrown as is, error.type _OTHER', { timeout: 30_000 }, () => {
  const f = traceTool('odd', () => {
    throw 'just a string';
  });
  assert.throws(f, (e) => e === 'just a string');
  assert.equal(only('execute_tool odd').attributes['error.type'], '_OTHER');
});

test('nested tools: the inner span is a child of the outer, in the same trace', { timeout: 30_000 }, async () => {
  const inner = traceTool('inner', async (x: number) => x * 2);
  const outer = traceTool('outer', async (x: number) => (await inner(x)) + (await inner(x + 1)));
  assert.equal(await outer(1), 6);
  const o = only('execute_tool outer');
  const inners = exporter.getFinishedSpans().filter((s) => s.name === 'execute_tool inner');
  assert.equal(inners.length, 2);
  for (const i of inners) {
    assert.equal(i.spanContext().traceId, o.spanContext().traceId);
    assert.equal(i.parentSpanContext?.spanId, o.spanContext().spanId);
  }
});

test('tool under an app span: parented to it; frames carry ids, parent, times, export=false', { timeout: 30_000 }, async () => {
  const tracer = trace.getTracer('app');
  const f = traceTool('child', () => {
    const sc = trace.getActiveSpan()?.spanContext();
    assert.ok(sc && trace.isSpanContextValid(sc));
    return slotBytes();
  });
  let slotInside: Buffer | undefined;
  tracer.startActiveSpan('agent turn', (turn) => {
    slotInside = f();
    turn.end();
  });
  const turn = only('agent turn');
  const span = only('execute_tool child');
  assert.equal(span.parentSpanContext?.spanId, turn.spanContext().spanId);

  const { start, end } = await framesOf(span.spanContext().spanId);
  const s = start as Extract<typeof start, { t: 'start' }>;
  const e = end as Extract<typeof end, { t: 'end' }>;
  assert.equal(hex(s.trace), span.spanContext().traceId);
  assert.equal(hex(s.parent), turn.spanContext().spanId);
  assert.equal(s.tid, osThreadId());
  assert.equal(s.name, 'execute_tool child');
  assert.equal(s.kind, SpanKind.INTERNAL);
  assert.equal(s.flags, TraceFlags.SAMPLED);
  assert.equal(s.export, false, 'the app exports it');
  assert.deepEqual(s.start, span.startTime);
  assert.deepEqual(e.end, span.endTime);
  assert.equal(s.attrs['gen_ai.tool.name'], 'child');

  // The slot held the tool span while fn ran, and nothing after.
  assert.ok(slotInside);
  assert.equal(slotInside.toString('hex', 0, 16), span.spanContext().traceId);
  assert.equal(slotInside.toString('hex', 16, 24), span.spanContext().spanId);
  assert.equal(slotInside[24], 1);
  assert.equal(slotInside[25], TraceFlags.SAMPLED);
  assert.equal(slotBytes()[24], 0);
});

test('captured arguments and result go through mask, as bounded JSON; circular values do not throw', { timeout: 30_000 }, async () => {
  const masked: string[] = [];
  const f = traceTool(
    'login',
    async (args: { user: string; password: string }) => ({ token: 'secret-token', user: args.user }),
    {
      captureArguments: true,
      captureResult: true,
      mask: (value, kind) => {
        masked.push(kind);
        const v = { ...(value as Record<string, unknown>) };
        if (kind === 'arguments') v['password'] = '***';
        else v['token'] = '***';
        return v;
      },
    },
  );
  await f({ user: 'ann', password: 'hunter2' });
  const span = only('execute_tool login');
  assert.deepEqual(masked, ['arguments', 'result']);
  assert.equal(span.attributes['gen_ai.tool.call.arguments'], '{"user":"ann","password":"***"}');
  assert.equal(span.attributes['gen_ai.tool.call.result'], '{"token":"***","user":"ann"}');

  const circular: Record<string, unknown> = { name: 'loop', big: 'x'.repeat(20000) };
  circular['self'] = circular;
  const g = traceTool('echo', (a: unknown, b: number) => [a, b], { captureArguments: true, captureResult: true });
  g(circular, 7);
  const e = only('execute_tool echo');
  const args = e.attributes['gen_ai.tool.call.arguments'] as string;
  assert.ok(args.startsWith('[{"name":"loop","big":"xxx'));
  assert.ok(args.length <= 8192, `arguments attribute is ${args.length} chars`);
  assert.ok((e.attributes['gen_ai.tool.call.result'] as string).length <= 8192);

  const small: Record<string, unknown> = { a: 1 };
  small['me'] = small;
  const h = traceTool('small', (v: unknown) => v, { captureArguments: true });
  h(small);
  assert.equal(only('execute_tool small').attributes['gen_ai.tool.call.arguments'], '{"a":1,"me":"[Circular]"}');
});

test('nothing is captured unless asked', { timeout: 30_000 }, () => {
  const f = traceTool('quiet', (password: string) => password.length);
  f('hunter2');
  const span = only('execute_tool quiet');
  assert.equal(span.attributes['gen_ai.tool.call.arguments'], undefined);
  assert.equal(span.attributes['gen_ai.tool.call.result'], undefined);
});

test('a throwing mask or callId never reaches the agent', { timeout: 30_000 }, () => {
  const f = traceTool('m', (x: number) => x + 1, {
    captureArguments: true,
    mask: () => {
      throw new Error('mask bug');
    },
    callId: () => {
      throw new Error('id bug');
    },
  });
  assert.equal(f(1), 2);
  const span = only('execute_tool m');
  assert.equal(span.attributes['gen_ai.tool.call.arguments'], undefined);
  assert.equal(span.attributes['gen_ai.tool.call.id'], undefined);
});

test('a non-promise thenable is returned as is and ends the span when it settles', { timeout: 30_000 }, async () => {
  let resolveIt: (v: number) => void = () => {};
  const thenable = {
    then(onOk: (v: number) => void): void {
      resolveIt = onOk;
    },
  };
  const f = traceTool('thenable', () => thenable);
  assert.equal(f(), thenable);
  assert.equal(exporter.getFinishedSpans().length, 0);
  resolveIt(5);
  assert.equal(only('execute_tool thenable').status.code, SpanStatusCode.UNSET);
  resolveIt(6); // a broken thenable that settles twice still ends the span once
  assert.equal(exporter.getFinishedSpans().length, 1);
});

test('the SDK registered a context manager because the app had none', { timeout: 30_000 }, async () => {
  const key = Symbol('k');
  const ctx = context.active().setValue(key, 'v');
  const seen = await context.with(ctx, async () => {
    await new Promise((r) => setTimeout(r, 1));
    return context.active().getValue(key);
  });
  assert.equal(seen, 'v');
});

test('sampler drops the span: nothing exported, the frame says flags 0 and export false', { timeout: 30_000 }, async () => {
  trace.disable();
  const dropped = new InMemorySpanExporter();
  const off = new BasicTracerProvider({ sampler: new AlwaysOffSampler(), spanProcessors: [new SimpleSpanProcessor(dropped)] });
  trace.setGlobalTracerProvider(off);
  try {
    let sc: ReturnType<NonNullable<ReturnType<typeof trace.getActiveSpan>>['spanContext']> | undefined;
    const f = traceTool('unsampled', () => {
      sc = trace.getActiveSpan()?.spanContext();
      return 1;
    });
    assert.equal(f(), 1);
    assert.ok(sc && trace.isSpanContextValid(sc), 'the span context is still valid');
    assert.equal(sc.traceFlags & TraceFlags.SAMPLED, 0);
    assert.equal(dropped.getFinishedSpans().length, 0);
    const { start } = await framesOf(sc.spanId);
    const s = start as Extract<typeof start, { t: 'start' }>;
    assert.equal(s.export, false);
    assert.equal(s.flags, 0);
  } finally {
    trace.disable();
    await off.shutdown();
    provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    trace.setGlobalTracerProvider(provider);
  }
});

test('hello first on the connection, with the resource, then spans', { timeout: 30_000 }, async () => {
  await flush();
  const first = sidecar.received[0]!;
  assert.equal(first.msg.t, 'hello');
  const hello = first.msg as Extract<typeof first.msg, { t: 'hello' }>;
  assert.equal(hello.resource['service.name'], 'provider-test');
  assert.equal(hello.resource['process.pid'], process.pid);
  assert.equal(hello.resource['process.runtime.name'], 'nodejs');
  assert.equal(hello.resource['process.runtime.version'], process.versions.node);
  assert.match(hello.sdk, /^@agentrace\/sdk \d+\.\d+\.\d+/);
  assert.equal(sidecar.of('hello').length, 1);
  assert.equal(state().framesDropped, 0);
});
