// traceTool keeps fn's type: parameters, return type, `this`. Checked by the
// root typecheck (tsc -p tsconfig.json); the runtime part only calls them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configure, shutdown, traceTool, type TraceToolOptions } from '@agentrace/sdk';

interface Weather {
  city: string;
  celsius: number;
}

test('wrapped functions keep their types', { timeout: 30_000 }, async () => {
  configure({ socketPath: '/nonexistent/agentrace-types.sock' });
  process.on('warning', () => {});
  const getWeather = traceTool(
    'get_weather',
    async (city: string, units?: 'C' | 'F'): Promise<Weather> => ({ city, celsius: units === 'F' ? 0 : 20 }),
    { callId: (city, units) => `${city}-${units ?? 'C'}`, captureResult: true },
  );
  const w: Weather = await getWeather('Paris');
  assert.equal(w.celsius, 20);
  // @ts-expect-error: a number is not a city
  await getWeather(42).catch(() => {});

  const counter = {
    n: 1,
    bump: traceTool('bump', function (this: { n: number }, by: number): number {
      this.n += by;
      return this.n;
    }),
  };
  const n: number = counter.bump(2);
  assert.equal(n, 3);

  const opts: TraceToolOptions = { type: 'datastore', description: 'reads rows', captureArguments: true };
  const rows = traceTool('rows', (): string[] => ['a'], opts);
  const r: string[] = rows();
  assert.deepEqual(r, ['a']);
  await shutdown();
});
