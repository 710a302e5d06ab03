// Drives bench/syscall_loop.c: one syscall pattern N times in a fresh
// process, ns per operation. Shared by host-tax and tracked-syscall.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { benchDir, buildIfStale, outDir } from './build.js';

export type Op = 'getppid' | 'open' | 'read' | 'write' | 'connect' | 'jsonrpc' | 'connect4' | 'sendto4';

export interface OpSpec {
  label: string;
  /** Iterations of a full run: ~0.3 s on the development VM (a syscall costs ~1 µs there). */
  iterations: number;
}

export const OPS: Record<Op, OpSpec> = {
  getppid: { label: 'getppid', iterations: 300_000 },
  open: { label: 'open+close /dev/null', iterations: 100_000 },
  read: { label: 'read 1 byte (/dev/zero)', iterations: 300_000 },
  write: { label: 'write 1 byte (/dev/null)', iterations: 300_000 },
  connect: { label: 'connect AF_UNIX (ENOENT)', iterations: 150_000 },
  // A stdio MCP exchange: request written into a pipe, read on stdin, answer on stdout (3 syscalls).
  jsonrpc: { label: 'JSON-RPC over stdio pipes (write, read, write)', iterations: 100_000 },
  // bench/policy.ts only: the cgroup connect hooks run on inet connects.
  connect4: { label: 'TCP connect to a closed loopback port (socket, connect, close)', iterations: 20_000 },
  // bench/policy.ts only: the cgroup sendmsg hooks run on UDP sends to an address.
  sendto4: { label: 'UDP sendto of 1 byte to a closed loopback port (unconnected socket)', iterations: 100_000 },
};

/** The ops host-tax and tracked-syscall measure. */
export const ALL_OPS: Op[] = ['getppid', 'open', 'read', 'write', 'connect', 'jsonrpc'];

/** Builds the loop (cc -O2) if it is missing or older than its source. */
export function buildLoop(): string {
  const src = path.join(benchDir, 'syscall_loop.c');
  const bin = path.join(outDir, 'syscall_loop');
  return buildIfStale(bin, [src], 'cc', ['-O2', '-Wall', '-o', bin, src]);
}

/**
 * Runs one loop. `beforeStart` gets the child's pid before the loop opens
 * anything or starts its clock (to track it, set its span).
 */
export async function runLoop(bin: string, op: Op, iterations: number, beforeStart?: (pid: number) => void, env?: NodeJS.ProcessEnv): Promise<number> {
  const child = spawn(bin, [op, String(iterations)], { stdio: ['pipe', 'pipe', 'inherit'], ...(env ? { env: { ...process.env, ...env } } : {}) });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  try {
    if (child.pid === undefined) throw new Error(`cannot start ${bin}`);
    beforeStart?.(child.pid);
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    throw err;
  }
  child.stdin.end('go\n');
  const [code, signal] = await exited;
  const ns = Number(out.trim());
  if (code !== 0 || !Number.isFinite(ns)) throw new Error(`syscall_loop ${op} failed (exit ${code ?? signal}, output ${JSON.stringify(out)})`);
  return ns;
}

export function iterationsFor(op: Op, quick: boolean): number {
  return quick ? OPS[op].iterations / 4 : OPS[op].iterations;
}
