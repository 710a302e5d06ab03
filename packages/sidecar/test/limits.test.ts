// The sidecar's limits by name (--limit, AGENTRACE_LIMITS): parsed strictly,
// shares follow a smaller total unless given, and the memory they bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LIMITS, heldBytes, LimitError, resolveLimits } from '../src/limits.js';

test('defaults, then AGENTRACE_LIMITS, then --limit in order; Ki/Mi/Gi suffixes', () => {
  assert.deepEqual(resolveLimits([], {}), DEFAULT_LIMITS);
  const l = resolveLimits(['unfinished-bytes=8Mi', 'spans-in-flight=2000'], { AGENTRACE_LIMITS: 'spans-in-flight=1000, ended-spans=1Ki' });
  assert.equal(l.socket.maxPendingBytes, 8 * 1024 * 1024);
  assert.equal(l.spans.maxInFlight, 2000, 'the flag comes last');
  assert.equal(l.spans.maxEnded, 1024);
});

test('a share left at its default follows a smaller total; one given explicitly must fit', () => {
  const l = resolveLimits(['spans-in-flight=100'], {});
  assert.equal(l.spans.maxInFlightPerUser, 100);
  assert.equal(l.spans.maxInFlightPerProcess, 100);
  assert.throws(() => resolveLimits(['connections=10', 'connections-per-user=11'], {}), /connections-per-user \(11\) is more than connections \(10\)/);
});

test('bad limits are errors that name what is wrong', () => {
  for (const [args, re] of [
    [['connections'], /connections needs a value/],
    [['connections=0'], /must be at least 1/],
    [['connections=-1'], /not a whole number/],
    [['connections=1.5'], /not a whole number/],
    [['connections=4KB'], /not a whole number/],
    [['nope=1'], /unknown limit "nope"; the limits are connections/],
  ] as const) {
    assert.throws(() => resolveLimits(args, {}), (e: unknown) => e instanceof LimitError && re.test(e.message), args.join(' '));
  }
  assert.throws(() => resolveLimits([], { AGENTRACE_LIMITS: 'connections=x' }), /AGENTRACE_LIMITS connections: "x"/);
});

test('the memory the limits bound grows with each of them', () => {
  const base = heldBytes(DEFAULT_LIMITS).total;
  assert.ok(heldBytes(resolveLimits(['connections=8Ki'], {})).total > base);
  assert.ok(heldBytes(resolveLimits(['span-attribute-chars=64Ki'], {})).total > base);
  assert.ok(heldBytes(DEFAULT_LIMITS, 2).total > base, 'a second exporter has its own queue');
  assert.ok(heldBytes(resolveLimits(['attribute-chars-in-flight=1Mi'], {})).total < base);
});
