// How the SDK finds the app's OpenTelemetry setup: its TracerProvider (if
// any) and its context manager (registering AsyncLocalStorage only when the
// app registered none).
import { context, createContextKey, ROOT_CONTEXT, trace, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from './context-manager.js';
import { SDK_NAME, SDK_VERSION } from './config.js';

/** The shape of the API's ProxyTracerProvider (duck-typed: another copy of the API may have made it). */
interface DelegatingProvider extends TracerProvider {
  getDelegate(): TracerProvider;
  getDelegateTracer(name: string, version?: string): Tracer | undefined;
}

function isDelegating(p: TracerProvider): p is DelegatingProvider {
  const d = p as Partial<DelegatingProvider>;
  return typeof d.getDelegate === 'function' && typeof d.getDelegateTracer === 'function';
}

let seenProvider: TracerProvider | undefined;
let seenDelegate: TracerProvider | undefined;
let tracer: Tracer | undefined;

/**
 * The app's tracer for this SDK, or undefined when the app registered no
 * TracerProvider. Cheap per call: recomputed only when the global provider
 * or its delegate changes (an app may register one after loading us).
 */
export function appTracer(): Tracer | undefined {
  const provider = trace.getTracerProvider();
  if (isDelegating(provider)) {
    const delegate = provider.getDelegate();
    if (provider !== seenProvider || delegate !== seenDelegate) {
      seenProvider = provider;
      seenDelegate = delegate;
      tracer = provider.getDelegateTracer(SDK_NAME, SDK_VERSION);
    }
  } else if (provider !== seenProvider) {
    seenProvider = provider;
    seenDelegate = undefined;
    tracer = provider.getTracer(SDK_NAME, SDK_VERSION);
  }
  return tracer;
}

const PROBE = createContextKey('agentrace context manager probe');
let contextChecked = false;

/** True when a context manager is registered: a value set with context.with is visible inside. */
function hasContextManager(): boolean {
  const probe = ROOT_CONTEXT.setValue(PROBE, true);
  return context.with(probe, () => context.active().getValue(PROBE) === true);
}

/**
 * Registers an AsyncLocalStorageContextManager when the app has none.
 * Checked once, at the first tool call (by then an app has normally set up
 * its OpenTelemetry SDK); an app's own manager is never replaced.
 */
export function ensureContextManager(): void {
  if (contextChecked) return;
  contextChecked = true;
  if (hasContextManager()) return;
  const manager = new AsyncLocalStorageContextManager().enable();
  if (!context.setGlobalContextManager(manager)) manager.disable();
}
