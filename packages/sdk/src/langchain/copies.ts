// Copies of @langchain/core's tools module that the agent loads through
// require: its CommonJS build (a CommonJS agent, or a TypeScript build that
// emits require) or another version in the tree. Each one has its own
// StructuredTool class, which the ES-module import in tools.ts never sees.
// Those already loaded are found in the require cache; those loaded later
// are caught as require returns them. ES-module copies other than ours
// cannot be reached this way: the callback handler warns when a tool runs
// through one (handler.ts).
import Module, { createRequire } from 'node:module';

type Patch = (cls: { prototype: object }) => void;

const HOOKED = Symbol.for('@agentrace/sdk langchain: require hook');

/** A module's exports, if they are @langchain/core/tools' (they export StructuredTool with a call method). */
function structuredToolOf(exports: unknown): { prototype: object } | undefined {
  if ((typeof exports !== 'object' && typeof exports !== 'function') || exports === null) return undefined;
  let cls: unknown;
  try {
    cls = (exports as { StructuredTool?: unknown }).StructuredTool;
  } catch {
    return undefined;
  }
  if (typeof cls !== 'function') return undefined;
  const proto = (cls as { prototype?: { call?: unknown } }).prototype;
  return proto && typeof proto.call === 'function' ? (cls as { prototype: object }) : undefined;
}

const patchers: Patch[] = [];

export function patchRequiredCopies(patch: Patch): void {
  if (!patchers.includes(patch)) patchers.push(patch);
  const visit = (exports: unknown): void => {
    const cls = structuredToolOf(exports);
    if (cls) for (const p of patchers) p(cls);
  };
  try {
    for (const m of Object.values(createRequire(import.meta.url).cache)) visit(m?.exports);
  } catch {
    // no require cache here: nothing loaded through it
  }
  const proto = Module.prototype as unknown as { require: ((id: string) => unknown) & { [HOOKED]?: true } };
  if (proto.require[HOOKED]) return;
  const original = proto.require;
  const hooked = function require(this: unknown, id: string): unknown {
    const exports = original.call(this, id);
    // Only the tools module has StructuredTool among its exports; one property read per require.
    if (id.includes('tools')) {
      try {
        visit(exports);
      } catch {
        // never break the agent's require
      }
    }
    return exports;
  } as typeof proto.require;
  Object.defineProperty(hooked, HOOKED, { value: true });
  proto.require = hooked;
}
