// `agentrace sidecar` in a PID namespace of its own (unshare --pid --fork
// --mount-proc): a pod sidecar without an image. Agents join its namespaces
// with `enter` (a pod with shareProcessNamespace), or get one below it.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { readOtlpFile, type FlatSpan } from './otlp.js';

const cli = fileURLToPath(new URL('../../packages/sidecar/dist/cli.js', import.meta.url));

export class NamespacedSidecar {
  private stderr = '';

  private constructor(
    private readonly unshare: ChildProcess,
    /** The sidecar's pid as the host names it (pid 1 of its namespace). */
    readonly pid: number,
    readonly socketPath: string,
    readonly file: string,
  ) {}

  static async start(dir: string, name: string): Promise<NamespacedSidecar> {
    const socketPath = path.join(dir, `${name}.sock`);
    const file = path.join(dir, `${name}.jsonl`);
    const unshare = spawn(
      'unshare',
      ['--pid', '--fork', '--mount-proc', '--kill-child', process.execPath, cli, 'sidecar', '--socket', socketPath, '--otlp-file', file],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    unshare.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const deadline = Date.now() + 20_000;
    let pid: number | undefined;
    while (Date.now() < deadline && unshare.exitCode === null) {
      pid ??= Number(fs.readFileSync(`/proc/${unshare.pid}/task/${unshare.pid}/children`, 'utf8').trim().split(' ')[0]) || undefined;
      if (pid && fs.existsSync(socketPath) && /probes attached; listening on/.test(stderr)) {
        const s = new NamespacedSidecar(unshare, pid, socketPath, file);
        unshare.stderr!.on('data', (d: string) => (s.stderr += d));
        s.stderr = stderr;
        return s;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    unshare.kill('SIGKILL');
    throw new Error(`the namespaced sidecar did not start: ${stderr}`);
  }

  /** A prefix that runs a command in the sidecar's PID and mount namespaces (as a container of its pod). */
  get enter(): string[] {
    return ['nsenter', '--target', String(this.pid), '--pid', '--mount', '--'];
  }

  get log(): string {
    return this.stderr;
  }

  /** Stops the sidecar by its pid (it flushes) and returns what it exported. */
  async stop(): Promise<FlatSpan[]> {
    if (this.unshare.exitCode === null) {
      const exited = once(this.unshare, 'exit');
      process.kill(this.pid, 'SIGTERM');
      const limit = setTimeout(() => this.unshare.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(limit);
    }
    return readOtlpFile(this.file);
  }

  kill(): void {
    if (this.unshare.exitCode === null) this.unshare.kill('SIGKILL');
  }
}
