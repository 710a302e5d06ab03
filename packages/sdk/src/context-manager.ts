// The context manager the SDK registers when the app has none: the same
// AsyncLocalStorage semantics as @opentelemetry/context-async-hooks, which
// it cannot depend on. That package's majors are tied to API minors and
// Node versions (2.x wants @opentelemetry/api <1.10; 3.x wants Node >=22.15),
// so no one range installs cleanly in an OTel 2 app, an OTel 3 app and on
// Node 20, which users run the SDK in. The SDK shares the app's API copy
// (a peer dependency), and this is what it needs of the rest.
import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import { ROOT_CONTEXT, type Context, type ContextManager } from '@opentelemetry/api';

const ADD_LISTENER = ['addListener', 'on', 'once', 'prependListener', 'prependOnceListener'] as const;

type Listener = (...args: unknown[]) => unknown;
/** Per event, the caller's listener → the bound one we registered (to remove the right one). */
type PatchMap = Record<string | symbol, WeakMap<Listener, Listener>>;
type Patchable = EventEmitter & Record<symbol, PatchMap | undefined>;

export class AsyncLocalStorageContextManager implements ContextManager {
  private readonly storage = new AsyncLocalStorage<Context>();
  private readonly patches = Symbol('agentrace listeners');
  // Set while a patched add-listener method runs, so that an emitter whose
  // `on` calls its own `addListener` binds the listener once, not twice.
  private adding = false;

  active(): Context {
    return this.storage.getStore() ?? ROOT_CONTEXT;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    const cb = thisArg == null ? fn : (fn.bind(thisArg) as F);
    return this.storage.run(ctx, cb, ...args);
  }

  bind<T>(ctx: Context, target: T): T {
    if (target instanceof EventEmitter) return this.bindEmitter(ctx, target) as T;
    if (typeof target === 'function') return this.bindFunction(ctx, target as unknown as Listener) as T;
    return target;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.storage.disable();
    return this;
  }

  private bindFunction(ctx: Context, target: Listener): Listener {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const manager = this;
    const bound = function (this: unknown, ...args: unknown[]): unknown {
      return manager.with(ctx, () => target.apply(this, args));
    };
    Object.defineProperty(bound, 'length', { value: target.length, configurable: true });
    return bound;
  }

  /** Listeners added to `ee` from now on run in `ctx`; removing them still works. */
  private bindEmitter(ctx: Context, ee: EventEmitter): EventEmitter {
    const e = ee as Patchable;
    if (e[this.patches] !== undefined) return ee;
    e[this.patches] = Object.create(null) as PatchMap;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const manager = this;
    for (const name of ADD_LISTENER) {
      const original = ee[name] as (event: string | symbol, listener: Listener) => EventEmitter;
      ee[name] = function (this: EventEmitter, event: string | symbol, listener: Listener): EventEmitter {
        if (manager.adding) return original.call(this, event, listener);
        const map = (e[manager.patches] ??= Object.create(null) as PatchMap);
        const bound = manager.bindFunction(ctx, listener);
        (map[event] ??= new WeakMap()).set(listener, bound);
        manager.adding = true;
        try {
          return original.call(this, event, bound);
        } finally {
          manager.adding = false;
        }
      };
    }
    for (const name of ['removeListener', 'off'] as const) {
      const original = ee[name] as (event: string | symbol, listener: Listener) => EventEmitter;
      ee[name] = function (this: EventEmitter, event: string | symbol, listener: Listener): EventEmitter {
        const bound = e[manager.patches]?.[event]?.get(listener);
        return original.call(this, event, bound ?? listener);
      };
    }
    const removeAll = ee.removeAllListeners;
    ee.removeAllListeners = function (this: EventEmitter, ...args: [event?: string | symbol]): EventEmitter {
      const map = e[manager.patches];
      if (map !== undefined) {
        if (args.length === 0) e[manager.patches] = Object.create(null) as PatchMap;
        else delete map[args[0] as string | symbol];
      }
      return removeAll.apply(this, args);
    };
    return ee;
  }
}
