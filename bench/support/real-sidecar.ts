// The real sidecar (`agentrace sidecar`: packages/sidecar/dist/cli.js, what
// bin/agentrace runs; probes attached) in its own process, for benchmarks
// that measure agents against it. Needs root.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../packages/sidecar/dist/cli.js', import.meta.url));

export interface RealSidecarOptions {
  /** Where the sidecar writes OTLP JSON lines; default /dev/null. */
  otlpFile?: string;
  /**
   * Write a V8 CPU profile of the sidecar here (.cpuprofile), from
   * startCpuProfile() to stopCpuProfile() (bench/support/profiled-sidecar.mjs).
   */
  cpuProfile?: string;
  /** More `agentrace sidecar` flags, e.g. --otlp-endpoint. */
  args?: string[];
}

const profiled = fileURLToPath(new URL('./profiled-sidecar.mjs', import.meta.url));

export interface RealSidecar {
  /** Its Unix socket. */
  path: string;
  pid: number;
  /** What it wrote to stderr so far. */
  stderr: () => string;
  /** SIGTERM (SIGKILL after 10 s), waits for it to exit, removes its directory. */
  close: () => Promise<void>;
  /** With `cpuProfile`: starts the profiler now. */
  startCpuProfile: () => void;
  /** With `cpuProfile`: stops the profiler; resolves once the profile is written. */
  stopCpuProfile: () => Promise<void>;
}

/** Starts the real sidecar; resolves once its socket exists (its probes are attached by then). */
export async function realSidecar(opts: RealSidecarOptions = {}): Promise<RealSidecar> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-bench-'));
  const sockPath = path.join(dir, 'agentrace.sock');
  const command = [cli, 'sidecar', '--socket', sockPath, '--otlp-file', opts.otlpFile ?? '/dev/null', ...(opts.args ?? [])];
  const child: ChildProcess = spawn(process.execPath, opts.cpuProfile ? [profiled, opts.cpuProfile, ...command] : command, {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit');
  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  while (!fs.existsSync(sockPath)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await close();
      throw new Error(`the sidecar did not start (${child.exitCode !== null ? `exit ${child.exitCode}` : 'no socket after 15 s'}): ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const startCpuProfile = (): void => {
    if (!opts.cpuProfile) throw new Error('startCpuProfile() needs realSidecar({ cpuProfile })');
    child.kill('SIGUSR2');
  };
  const stopCpuProfile = async (): Promise<void> => {
    const file = opts.cpuProfile;
    if (!file) throw new Error('stopCpuProfile() needs realSidecar({ cpuProfile })');
    child.kill('SIGUSR2');
    const until = Date.now() + 30_000;
    while (!fs.existsSync(file)) {
      if (Date.now() > until || child.exitCode !== null) throw new Error(`the sidecar wrote no CPU profile to ${file}: ${stderr.trim()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { path: sockPath, pid: child.pid!, stderr: () => stderr, close, startCpuProfile, stopCpuProfile };
}
