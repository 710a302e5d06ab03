// The benchmarks' own small build steps (the C syscall loop, the floor BPF
// program): run when the output is missing or older than an input, into
// bench/out/ (git-ignored).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const outDir = path.join(benchDir, 'out');
export const repoRoot = path.resolve(benchDir, '..');

function mtime(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return -1;
  }
}

/** Runs `command args` unless `output` is newer than every input. Returns `output`. */
export function buildIfStale(output: string, inputs: readonly string[], command: string, args: readonly string[]): string {
  for (const input of inputs) {
    if (mtime(input) < 0) throw new Error(`cannot build ${path.relative(repoRoot, output)}: ${input} is missing`);
  }
  const built = mtime(output);
  if (built >= 0 && inputs.every((i) => mtime(i) <= built)) return output;
  fs.mkdirSync(path.dirname(output), { recursive: true });
  try {
    execFileSync(command, [...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  } catch (err) {
    throw new Error(
      `building ${path.relative(repoRoot, output)} with \`${command} ${args.join(' ')}\` failed: ${(err as Error).message}; ` +
        `is ${command} installed (scripts/setup.sh installs the tool chain)?`,
      { cause: err },
    );
  }
  return output;
}
