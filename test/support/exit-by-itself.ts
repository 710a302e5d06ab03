// Runs a TypeScript script in a child node and waits for it to exit by
// itself (killed after 15 s): for "nothing keeps the process alive" checks.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export interface ExitedChild {
  code: number | null;
  /** What it printed on stdout. */
  out: string;
  /** How long it ran on after it first printed, in ms. */
  lingeredMs: number;
}

export async function runUntilExit(script: string): Promise<ExitedChild> {
  const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let printedAt = 0;
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    printedAt ||= Date.now();
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  try {
    const [code] = (await once(child, 'exit')) as [number | null];
    return { code, out, lingeredMs: Date.now() - (printedAt || Date.now()) };
  } finally {
    clearTimeout(killer);
  }
}
