// The context manager the SDK registers when the app has none behaves as
// @opentelemetry/context-async-hooks' does: each check runs against both,
// so a difference fails here rather than in a user's instrumentation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { createContextKey, ROOT_CONTEXT, type ContextManager } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager as Library } from '@opentelemetry/context-async-hooks';
import { AsyncLocalStorageContextManager as Ours } from '@agentrace/sdk/internal';

const KEY = createContextKey('test key');
const A = ROOT_CONTEXT.setValue(KEY, 'a');
const B = ROOT_CONTEXT.setValue(KEY, 'b');

// @opentelemetry/api 1.10 ships ESM and CommonJS builds: the library (CommonJS)
// gets the CommonJS instance's ROOT_CONTEXT, the SDK (ESM) this file's.
const cjsApi = createRequire(import.meta.url)('@opentelemetry/api') as { ROOT_CONTEXT: unknown };

const managers: Array<[string, () => ContextManager, unknown]> = [
  ['library', () => new Library().enable(), cjsApi.ROOT_CONTEXT],
  ['sdk', () => new Ours().enable(), ROOT_CONTEXT],
];

for (const [name, make, root] of managers) {
  test(`${name}: with() makes a context active through awaits, timers and nesting`, async () => {
    const m = make();
    assert.equal(m.active(), root);
    const seen: unknown[] = [];
    await m.with(A, async () => {
      seen.push(m.active().getValue(KEY));
      await new Promise((r) => setTimeout(r, 1));
      seen.push(m.active().getValue(KEY));
      m.with(B, () => seen.push(m.active().getValue(KEY)));
      seen.push(m.active().getValue(KEY));
    });
    seen.push(m.active().getValue(KEY));
    // thisArg and arguments are passed through
    const self = { n: 2 };
    seen.push(m.with(A, function (this: typeof self, x: number) { return this.n * x; }, self, 21));
    assert.deepEqual(seen, ['a', 'a', 'b', 'a', undefined, 42]);
    m.disable();
  });

  test(`${name}: bind() of a function keeps its context, this, arguments and length`, () => {
    const m = make();
    function f(this: { tag: string }, x: number, y: number): string {
      return `${this.tag}:${String(m.active().getValue(KEY))}:${x + y}`;
    }
    const bound = m.bind(A, f);
    assert.equal(bound.length, 2);
    assert.equal(m.with(B, () => bound.call({ tag: 't' }, 1, 2)), 't:a:3');
    assert.equal(m.bind(A, 42), 42, 'neither a function nor an emitter: returned as is');
    m.disable();
  });

  test(`${name}: bind() of an emitter runs later listeners in its context; off, once and removeAllListeners still work`, () => {
    const m = make();
    const ee = m.bind(A, new EventEmitter());
    assert.equal(m.bind(B, ee), ee, 'binding twice keeps the first context');
    const seen: unknown[] = [];
    const onX = (): void => void seen.push(['x', m.active().getValue(KEY)]);
    m.with(B, () => {
      ee.on('x', onX);
      ee.once('y', () => seen.push(['y', m.active().getValue(KEY)]));
      ee.prependListener('z', () => seen.push(['z', m.active().getValue(KEY)]));
    });
    ee.emit('x');
    ee.emit('y');
    ee.emit('y');
    ee.emit('z');
    assert.deepEqual(seen, [['x', 'a'], ['y', 'a'], ['z', 'a']]);
    assert.equal(ee.listenerCount('x'), 1);
    ee.off('x', onX);
    assert.equal(ee.listenerCount('x'), 0, 'off() with the original listener removes the bound one');
    ee.on('x', onX);
    ee.removeListener('x', onX);
    assert.equal(ee.listenerCount('x'), 0, 'removeListener() too');
    ee.on('x', onX);
    ee.removeAllListeners('x');
    ee.removeAllListeners();
    assert.deepEqual(ee.eventNames(), []);
    ee.on('x', onX);
    ee.emit('x');
    assert.deepEqual(seen.at(-1), ['x', 'a'], 'listeners added after removeAllListeners are still bound');
    m.disable();
  });
}
