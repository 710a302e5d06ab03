// The real sidecar (`bin/agentrace sidecar`, probes attached) in its own
// process, for benchmarks that measure agents against it. Needs root.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../packages/sidecar/dist/cli.js', import.meta.url));

export /** The real sidecar in its own process; resolves once its socket exists. */
async function realSidecar(): Promise<{ path: string; close: () => Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-bench-'));
  const sockPath = path.join(dir, 'agentrace.sock');
  const child: ChildProcess = spawn(process.execPath, [cli, 'sidecar', '--socket', sockPath, '--otlp-file', '/dev/null'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const deadline = Date.now() + 10_000;
  while (!fs.existsSync(sockPath)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('the sidecar did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    path: sockPath,
    close: async () => {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
