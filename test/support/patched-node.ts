// A copy of a node binary with one of V8's postmortem constants (v8dbg_*,
// 4-byte ints only debuggers and the frame reader read) changed: a binary
// whose V8 layout the frame reader gets wrong, as one it does not know
// would be. Node itself runs as before.
import fs from 'node:fs';
import path from 'node:path';
import { readElfSymbols } from '@agentrace/bpf';

/** Copies `node` into `dir` with the int32 constant `symbol` set to what `change` makes of it; returns the copy's path. */
export function nodeWithConstant(node: string, dir: string, symbol: string, change: (value: number) => number): string {
  const s = readElfSymbols(node, [symbol], 4).symbols[symbol];
  if (!s?.bytes || s.bytes.length !== 4 || s.offset < 0) throw new Error(`${node} has no 4-byte ${symbol} in the file`);
  const copy = path.join(dir, `node-${symbol}`);
  fs.copyFileSync(node, copy);
  fs.chmodSync(copy, 0o755);
  const b = Buffer.alloc(4);
  b.writeInt32LE(change(s.bytes.readInt32LE(0)));
  const fd = fs.openSync(copy, 'r+');
  try {
    fs.writeSync(fd, b, 0, 4, s.offset);
  } finally {
    fs.closeSync(fd);
  }
  return copy;
}
