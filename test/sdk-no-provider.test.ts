// traceTool when the app registered no TracerProvider: the SDK makes its own
// valid spans (random ids, parented under the active span context), puts
// them in the OpenTelemetry context, and asks the sidecar to export them
// (export = true) unless the parent was not sampled.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  context,
  defaultTextMapSetter,
  isSpanContextValid,
  ROOT_CONTEXT,
  SpanStatusCode,
  trace,
  TraceFlags,
  type SpanContext,
} from '@opentelemetry/api';
import { configure, flush, shutdown, traceTool } from '@agentrace/sdk';
import { slotBytes, whenReady } from '@agentrace/sdk/internal';
import type { SpanEndMessage, SpanStartMessage } from '@agentrace/protocol';
import { FakeSidecar, hex, osThreadId } from './support/sdk-fake-sidecar.js';

let sidecar: FakeSidecar;

/** FNV-1a, 32 bits, over a name's UTF-8 bytes (checked against the published test vectors below). */
function fnv1a(name: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(name, 'utf8')) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

test('the FNV-1a the slot uses for tool names gives the published test vectors', () => {
  assert.equal(fnv1a(''), 0x811c9dc5);
  assert.equal(fnv1a('a'), 0xe40c292c);
  assert.equal(fnv1a('foobar'), 0xbf9cf968);
});

before(async () => {
  sidecar = await FakeSidecar.start();
  configure({ socketPath: sidecar.path });
  assert.equal(await whenReady(2000), true);
});

after(async () => {
  await shutdown();
  await sidecar.close();
});

async function frames(spanId: string): Promise<{ start: SpanStartMessage; end: SpanEndMessage }> {
  await flush();
  await sidecar.waitFor(() => sidecar.of('end').some((m) => hex(m.span) === spanId), 2000, `end of ${spanId}`);
  return {
    start: sidecar.of('start').find((m) => hex(m.span) === spanId)!,
    end: sidecar.of('end').find((m) => hex(m.span) === spanId)!,
  };
}

function active(): SpanContext {
  const sc = trace.getActiveSpan()?.spanContext();
  assert.ok(sc && isSpanContextValid(sc), 'a valid active span inside the tool');
  return sc;
}

test('no provider: getActiveSpan() inside the tool has valid ids; the frames ask the sidecar to export', { timeout: 30_000 }, async () => {
  let sc: SpanContext | undefined;
  const f = traceTool('solo', (x: number) => {
    sc = active();
    return x + 1;
  });
  assert.equal(f(1), 2);
  assert.ok(sc);
  assert.equal(sc.traceFlags, TraceFlags.SAMPLED);
  const { start, end } = await frames(sc.spanId);
  assert.equal(hex(start.trace), sc.traceId);
  assert.equal(start.parent, undefined);
  assert.equal(start.export, true);
  assert.equal(start.flags, TraceFlags.SAMPLED);
  assert.equal(start.tid, osThreadId());
  assert.deepEqual(start.attrs, {
    'gen_ai.operation.name': 'execute_tool',
    'gen_ai.tool.name': 'solo',
    'gen_ai.tool.type': 'function',
  });
  const ns = (t: [number, number]): bigint => BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);
  assert.ok(ns(end.end) >= ns(start.start));
  const wall = BigInt(Date.now()) * 1_000_000n;
  assert.ok(wall - ns(start.start) < 5_000_000_000n && ns(start.start) - wall < 5_000_000_000n, 'times are wall-clock');
  assert.equal(end.status.code, SpanStatusCode.UNSET);
});

test('nested tools share the trace and point at their parent, across awaits', { timeout: 30_000 }, async () => {
  const seen: Record<string, SpanContext> = {};
  const leaf = traceTool('leaf', async () => {
    await new Promise((r) => setTimeout(r, 2));
    seen['leaf'] = active();
  });
  const root = traceTool('root', async () => {
    seen['root'] = active();
    await leaf();
    assert.equal(active().spanId, seen['root']!.spanId, 'back in the parent after the child settled');
  });
  await root();
  assert.equal(seen['leaf']!.traceId, seen['root']!.traceId);
  assert.notEqual(seen['leaf']!.spanId, seen['root']!.spanId);
  const { start } = await frames(seen['leaf']!.spanId);
  assert.equal(hex(start.parent), seen['root']!.spanId);
  assert.equal(hex(start.trace), seen['root']!.traceId);
});

test('concurrent calls keep their own spans', { timeout: 30_000 }, async () => {
  const ids: string[] = [];
  const f = traceTool('conc', async (i: number) => {
    const mine = active().spanId;
    await new Promise((r) => setTimeout(r, 5 - i));
    assert.equal(active().spanId, mine);
    ids.push(mine);
  });
  await Promise.all([0, 1, 2, 3].map((i) => f(i)));
  assert.equal(new Set(ids).size, 4);
});

test('a propagator sees the tool span (W3C traceparent from the active context)', { timeout: 30_000 }, () => {
  // What W3CTraceContextPropagator.inject does, written out: read the active
  // span context and format it.
  const f = traceTool('outgoing', () => {
    const carrier: Record<string, string> = {};
    const sc = trace.getSpanContext(context.active());
    assert.ok(sc && isSpanContextValid(sc));
    defaultTextMapSetter.set(carrier, 'traceparent', `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags.toString(16)}`);
    return carrier;
  });
  assert.match(f()['traceparent']!, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
});

test('under a remote parent: same trace id, parent set, flags inherited; unsampled parent means no export', { timeout: 30_000 }, async () => {
  const remote: SpanContext = {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: TraceFlags.NONE,
    isRemote: true,
  };
  let sc: SpanContext | undefined;
  const f = traceTool('remote_child', () => {
    sc = active();
  });
  context.with(trace.setSpanContext(ROOT_CONTEXT, remote), () => f());
  assert.ok(sc);
  assert.equal(sc.traceId, remote.traceId);
  assert.equal(sc.traceFlags, TraceFlags.NONE);
  const { start } = await frames(sc.spanId);
  assert.equal(hex(start.parent), remote.spanId);
  assert.equal(start.flags, 0);
  assert.equal(start.export, false);
});

test('errors: same object rethrown, error.type and status in the end frame', { timeout: 30_000 }, async () => {
  const err = new RangeError('too far');
  let sc: SpanContext | undefined;
  const f = traceTool('far', async () => {
    sc = active();
    throw err;
  });
  await assert.rejects(f(), (e) => e === err);
  const { end } = await frames(sc!.spanId);
  assert.equal(end.status.code, SpanStatusCode.ERROR);
  assert.equal(end.status.message, 'too far');
  assert.equal(end.attrs?.['error.type'], 'RangeError');
});

test('attributes the tool sets on its span travel in the end frame; result captured', { timeout: 30_000 }, async () => {
  let sc: SpanContext | undefined;
  const f = traceTool(
    'annotated',
    () => {
      sc = active();
      trace.getActiveSpan()?.setAttribute('app.rows', 3).setAttribute('app.tags', ['a', 'b']);
      return 'done';
    },
    { captureResult: true },
  );
  f();
  const { end } = await frames(sc!.spanId);
  assert.deepEqual(end.attrs, { 'app.rows': 3, 'app.tags': ['a', 'b'], 'gen_ai.tool.call.result': '"done"' });
});

test('the slot holds the innermost tool span during the sync part and is restored after', { timeout: 30_000 }, () => {
  const outerSlot: Buffer[] = [];
  const inner = traceTool('inner_sync', () => slotBytes());
  const outer = traceTool('outer_sync', () => {
    outerSlot.push(slotBytes());
    const innerSlot = inner();
    outerSlot.push(slotBytes());
    return { sc: active(), innerSlot };
  });
  const { sc, innerSlot } = outer();
  assert.equal(outerSlot[0]!.toString('hex', 16, 24), sc.spanId);
  assert.equal(outerSlot[0]![24], 1);
  assert.notEqual(innerSlot.toString('hex', 16, 24), sc.spanId);
  assert.equal(innerSlot.toString('hex', 0, 16), sc.traceId);
  assert.deepEqual(outerSlot[1], outerSlot[0], 'outer state restored after the inner call');
  assert.equal(slotBytes()[24], 0, 'nothing published after the outer call');
  assert.deepEqual(slotBytes().subarray(26, 28), Buffer.alloc(2), 'attrs_size stays 0');
  // The tool word: FNV-1a (32 bits) of the tool's name, each call its own.
  assert.equal(outerSlot[0]!.readUInt32LE(28), fnv1a('outer_sync'));
  assert.equal(innerSlot.readUInt32LE(28), fnv1a('inner_sync'));
  assert.equal(outerSlot[1]!.readUInt32LE(28), fnv1a('outer_sync'), "the outer call's tool restored with its span");
});

test('async fn: the slot is restored as soon as fn returns its promise', { timeout: 30_000 }, async () => {
  let resolve: () => void = () => {};
  const f = traceTool('pending', () => new Promise<void>((r) => (resolve = r)));
  const p = f();
  assert.equal(slotBytes()[24], 0);
  resolve();
  await p;
});
