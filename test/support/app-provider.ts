// The setup the in-process integration tests share: the app's own
// TracerProvider (BasicTracerProvider + InMemorySpanExporter) registered
// globally, and the SDK connected to a fake sidecar on a real socket.
import { after, before, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { configure, shutdown } from '@agentrace/sdk';
import { whenReady } from '@agentrace/sdk/internal';
import { FakeSidecar } from './sdk-fake-sidecar.js';

export interface AppHarness {
  readonly exporter: InMemorySpanExporter;
  readonly provider: BasicTracerProvider;
  /** The fake sidecar, once `before` has run. */
  readonly sidecar: FakeSidecar;
}

/** Registers the hooks (before, after, beforeEach resets the exporter) and returns the harness. */
export function useAppProvider(serviceName: string, beforeShutdown?: () => void): AppHarness {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let sidecar: FakeSidecar | undefined;
  before(async () => {
    trace.setGlobalTracerProvider(provider);
    sidecar = await FakeSidecar.start();
    configure({ socketPath: sidecar.path, serviceName });
    assert.equal(await whenReady(2000), true, 'fake sidecar welcome');
  });
  after(async () => {
    beforeShutdown?.();
    await shutdown();
    await sidecar?.close();
    await provider.shutdown();
  });
  beforeEach(() => exporter.reset());
  return {
    exporter,
    provider,
    get sidecar(): FakeSidecar {
      if (!sidecar) throw new Error('the fake sidecar starts in before()');
      return sidecar;
    },
  };
}
