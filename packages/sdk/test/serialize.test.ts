// The bounded JSON used for captured arguments and results: JSON.stringify's
// answers where it has one, never a throw, never more than the limit, and
// no more work than the limit for huge values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_CAPTURE_CHARS, toBoundedJson } from '@agentrace/sdk/internal';

test('same text as JSON.stringify for plain values', { timeout: 30_000 }, () => {
  const values: unknown[] = [
    null,
    0,
    -1.5,
    'tab\tquote"',
    true,
    [1, 'a', null, undefined, () => 1],
    { a: 1, b: undefined, c: () => 1, d: { e: [true] }, when: new Date(0) },
    { toJSON: () => ({ replaced: true }) },
    NaN,
  ];
  for (const v of values) assert.equal(toBoundedJson(v), JSON.stringify(v), String(JSON.stringify(v)));
  assert.equal(toBoundedJson(undefined), 'null');
  assert.equal(toBoundedJson(() => 1), 'null');
});

test('what JSON.stringify throws on or loses', { timeout: 30_000 }, () => {
  assert.equal(toBoundedJson(10n), '"10"');
  const a: Record<string, unknown> = { x: 1 };
  a['self'] = a;
  a['list'] = [a];
  assert.equal(toBoundedJson(a), '{"x":1,"self":"[Circular]","list":["[Circular]"]}');
  const shared = { s: 1 };
  assert.equal(toBoundedJson([shared, shared]), '[{"s":1},{"s":1}]', 'repeated is not circular');
  const err = Object.assign(new TypeError('bad'), { code: 'E_BAD' });
  assert.deepEqual(JSON.parse(toBoundedJson(err)), { name: 'TypeError', message: 'bad', code: 'E_BAD' });
  const hostile = {
    ok: 1,
    get boom(): never {
      throw new Error('getter');
    },
  };
  assert.equal(toBoundedJson(hostile), '{"ok":1,"boom":"[Unserializable]"}');
  assert.equal(
    toBoundedJson({
      toJSON() {
        throw new Error('x');
      },
    }),
    '"[Unserializable]"',
  );
  const proxy = new Proxy(
    {},
    {
      ownKeys() {
        throw new Error('trap');
      },
    },
  );
  assert.equal(toBoundedJson(proxy), '"[Unserializable]"');
  let deep: unknown = 'bottom';
  for (let i = 0; i < 1000; i++) deep = { d: deep };
  assert.ok(toBoundedJson(deep).includes('[Too deep]'));
});

test('bounded: cut at the limit with an ellipsis, never half a surrogate pair, fast on huge values', { timeout: 30_000 }, () => {
  assert.equal(MAX_CAPTURE_CHARS, 8192);
  const long = toBoundedJson('x'.repeat(100_000));
  assert.equal(long.length, MAX_CAPTURE_CHARS);
  assert.ok(long.endsWith('…'));
  const emoji = toBoundedJson('😀'.repeat(10_000), 101);
  assert.ok(emoji.length <= 101);
  const last = emoji.charCodeAt(emoji.length - 2);
  assert.ok(!(last >= 0xd800 && last <= 0xdbff), 'no lone high surrogate before the ellipsis');

  const huge = Array.from({ length: 1_000_000 }, (_, i) => ({ i, name: `item-${i}` }));
  const t0 = process.hrtime.bigint();
  const out = toBoundedJson(huge);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.ok(out.length <= MAX_CAPTURE_CHARS);
  assert.ok(ms < 50, `took ${ms} ms`);
});
