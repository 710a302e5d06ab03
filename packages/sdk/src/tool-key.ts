// The tool word a call's thread slot carries (docs/POLICY.md): the hash of
// the first of the sidecar's policy patterns that matches the call's tool
// name, or of the name when none does, which is what the kernel keys that
// pattern's rules by. The patterns come with the welcome, and with a
// `policy` frame after a reload; a call keyed before them is keyed again at
// its next switch (the slot compares one version number per switch).
import { ToolPatterns } from '@agentrace/protocol';

let patterns = new ToolPatterns();
let version = 0;
/** Names keyed under the current patterns (bounded: past it, keyed every time). */
const keys = new Map<string, number>();
const listeners: Array<() => void> = [];

/** Runs `fn` after every change of the patterns (the call records in flight are keyed again). */
export function onToolPatterns(fn: () => void): void {
  listeners.push(fn);
}

/** The patterns of the sidecar's policy, in its order (none: every name is its own key). */
export function setToolPatterns(list: readonly string[]): void {
  const now = patterns.patterns;
  if (list.length === now.length && list.every((p, i) => p === now[i])) return;
  patterns = new ToolPatterns([...list]);
  keys.clear();
  version++;
  for (const fn of listeners) fn();
}

/** The version of the patterns; a key made under another is stale. */
export function toolKeyVersion(): number {
  return version;
}

/** The tool word of a call of `name` under the current patterns. */
export function toolKey(name: string): number {
  let k = keys.get(name);
  if (k === undefined) {
    k = patterns.key(name);
    if (keys.size < 4096) keys.set(name, k);
  }
  return k;
}
