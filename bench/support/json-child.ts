// A benchmark's child process (an agent) that prints one JSON line last:
// run it to its exit and parse that line; a failure says what it printed.
import { spawn } from 'node:child_process';
import { once } from 'node:events';

export async function runJsonChild<T>(what: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<T> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${what} failed (exit ${code ?? signal}): ${err.trim()}`);
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}
