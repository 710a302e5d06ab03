// An app that registered its own context manager keeps it: the SDK detects
// it (without side effects) and neither replaces nor shadows it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { context, trace, type Context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { configure, shutdown, traceTool } from '@agentrace/sdk';

class AppContextManager extends AsyncLocalStorageContextManager {
  withCalls = 0;
  override with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    this.withCalls++;
    return super.with(ctx, fn, thisArg, ...args);
  }
}

test("the app's context manager is used, not replaced", { timeout: 30_000 }, async () => {
  configure({ socketPath: '/nonexistent/agentrace-test.sock' });
  process.on('warning', () => {}); // the missing sidecar's warning is not this test's business
  const app = new AppContextManager().enable();
  assert.equal(context.setGlobalContextManager(app), true);

  let active: string | undefined;
  const f = traceTool('cm', async () => {
    await new Promise((r) => setTimeout(r, 1));
    active = trace.getActiveSpan()?.spanContext().spanId;
    return 1;
  });
  const before = app.withCalls;
  assert.equal(await f(), 1);
  assert.ok(app.withCalls > before, "traceTool ran fn through the app's manager");
  assert.ok(active && active !== '0000000000000000');

  // Still the app's: another registration is refused and with() still counts.
  const other = new AsyncLocalStorageContextManager().enable();
  assert.equal(context.setGlobalContextManager(other), false);
  other.disable();
  const n = app.withCalls;
  context.with(context.active(), () => {});
  assert.equal(app.withCalls, n + 1);
  await shutdown();
  context.disable();
});
