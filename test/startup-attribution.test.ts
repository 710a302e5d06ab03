// Agents as users write them (issue 10): tools called the moment the agent
// starts, no ready(), then shutdown() and exit; the SDK imported lazily;
// the SDK only in a worker thread that calls one tool and ends. Under
// `agentrace run` and against a running daemon, on this Node and on Node
// 24: every tool span arrives, complete, with its open, connect and child
// process under it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { requireBpf } from './support/bpf.js';
import { readOtlpFile, type FlatSpan } from './support/otlp.js';
import { requireBothNodes, runtimes } from './support/framework-agent.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'bin', 'agentrace');
const agent = path.join(root, 'test', 'fixtures', 'startup-agent.mjs');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-startup-'));
const RUNS = 20;

type Mode = 'plain' | 'lazy' | 'worker';
const toolsOf: Record<Mode, Record<string, Array<'open' | 'connect' | 'process'>>> = {
  plain: { open_file: ['open'], connect_tcp: ['connect'], run_shell: ['process'] },
  lazy: { open_file: ['open'], connect_tcp: ['connect'], run_shell: ['process'] },
  worker: { worker_tool: ['open', 'connect', 'process'] },
};

const children = new Set<ChildProcess>();
let server: net.Server;
let port = 0;
let files = 0;

before(async () => {
  server = net.createServer((s) => s.destroy()).listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as net.AddressInfo).port;
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await daemon?.stop();
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function track(child: ChildProcess, timeoutMs = 60_000): Promise<[number | null, string]> {
  children.add(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve([code, stderr]);
    });
  });
}

interface Run {
  mode: Mode;
  file: string;
  pid: number;
}

function newFile(): string {
  const file = path.join(dir, `input-${++files}.txt`);
  fs.writeFileSync(file, `run ${files}\n`);
  return file;
}

function agentEnv(mode: Mode, file: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, ...extra, STARTUP_MODE: mode, STARTUP_FILE: file, STARTUP_PORT: String(port) };
}

/** What is wrong with one agent run's export (empty: nothing). */
function problems(run: Run, spans: FlatSpan[]): string[] {
  const out: string[] = [];
  const children = (s: FlatSpan): FlatSpan[] => spans.filter((c) => c.parentSpanId === s.spanId);
  for (const [tool, effects] of Object.entries(toolsOf[run.mode])) {
    const mine = spans.filter((s) => s.name === `execute_tool ${tool}`);
    if (mine.length !== 1) {
      out.push(`${tool}: ${mine.length} spans`);
      continue;
    }
    const span = mine[0]!;
    if (span.attributes['agentrace.span.incomplete'] === true) out.push(`${tool}: incomplete (${span.status.message})`);
    const under = children(span);
    for (const effect of effects) {
      const found =
        effect === 'open'
          ? under.some((c) => c.name === 'open' && c.attributes['file.path'] === run.file)
          : effect === 'connect'
            ? under.some((c) => c.name.startsWith('connect ') && c.attributes['network.peer.port'] === port)
            : under.some((c) => c.name === 'process sh' && c.attributes['process.executable.path'] === '/bin/sh');
      if (!found) out.push(`${tool}: no ${effect} under it (children: ${under.map((c) => c.name).join(', ') || 'none'})`);
    }
  }
  return out;
}

async function underRun(node: string, mode: Mode): Promise<string[]> {
  const file = newFile();
  const otlp = path.join(dir, `run-${files}.jsonl`);
  const child = spawn(bin, ['run', '--quiet', '--otlp-file', otlp, '--', node, agent], {
    env: agentEnv(mode, file),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const [code, stderr] = await track(child);
  if (code !== 0) return [`run exited ${code}: ${stderr}`];
  const spans = readOtlpFile(otlp);
  // Under run the agent is the only traced process: its pid is in the resource.
  return problems({ mode, file, pid: 0 }, spans);
}

/** One daemon for every daemon run of this file, as an SRE would run it. */
class Daemon {
  readonly socket = path.join(dir, 'daemon.sock');
  readonly otlp = path.join(dir, 'daemon.jsonl');
  private proc?: ChildProcess;
  private exited?: Promise<[number | null, string]>;
  stderr = '';

  async start(): Promise<void> {
    this.proc = spawn(bin, ['sidecar', '--socket', this.socket, '--control', path.join(dir, 'control.sock'), '--otlp-file', this.otlp], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = track(this.proc, 30 * 60_000);
    const deadline = Date.now() + 20_000;
    while (!/probes attached; listening/.test(this.stderr) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.match(this.stderr, /probes attached; listening/, 'the daemon started');
  }

  async run(node: string, mode: Mode): Promise<Run> {
    const file = newFile();
    const child = spawn(node, [agent], { env: agentEnv(mode, file, { AGENTRACE_SOCKET: this.socket }), stdio: ['ignore', 'ignore', 'pipe'] });
    const pid = child.pid!;
    const [code, stderr] = await track(child);
    assert.equal(code, 0, stderr);
    return { mode, file, pid };
  }

  /** Waits until every run's spans are exported (or the deadline), then says what is wrong. */
  async check(runs: Run[], timeoutMs = 20_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const spans = fs.existsSync(this.otlp) ? readOtlpFile(this.otlp) : [];
      const out = runs.flatMap((run) => {
        const byPid = spans.filter((s) => s.resource['process.pid'] === run.pid);
        return problems(run, byPid).map((p) => `pid ${run.pid}: ${p}`);
      });
      if (out.length === 0 || Date.now() > deadline) return out;
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async stop(): Promise<void> {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill('SIGTERM');
    await this.exited;
  }
}

let daemon: Daemon | undefined;

async function theDaemon(): Promise<Daemon> {
  if (!daemon) {
    daemon = new Daemon();
    await daemon.start();
  }
  return daemon;
}

for (const [label, node] of runtimes) {
  for (const mode of ['plain', 'lazy', 'worker'] as const) {
    const runs = RUNS;
    test(`${label}, ${mode}: ${runs} agents under \`run\`, tools called at start-up with no ready(): every span arrives with its activity`, { timeout: 10 * 60_000 }, async (t) => {
      if (!requireBpf(t)) return;
      const failed: string[] = [];
      for (let i = 0; i < runs; i++) failed.push(...(await underRun(node, mode)).map((p) => `run ${i + 1}: ${p}`));
      assert.deepEqual(failed, [], `${failed.length} problems in ${runs} runs`);
    });

    test(`${label}, ${mode}: ${RUNS} agents against a daemon, no ready(): every span arrives with its activity`, { timeout: 10 * 60_000 }, async (t) => {
      if (!requireBpf(t)) return;
      const d = await theDaemon();
      const done: Run[] = [];
      for (let i = 0; i < RUNS; i++) done.push(await d.run(node, mode));
      assert.deepEqual(await d.check(done), [], `daemon stderr:\n${d.stderr}`);
    });
  }
}

test('Node 20 and Node 24 are among the runtimes (in CI)', (t) => {
  requireBothNodes(t);
  assert.ok(runtimes.length >= 2, runtimes.join('; '));
});

for (const [label, node] of runtimes) {
  test(`${label}: a worker that calls a tool and exits leaves the main thread's 4 s call alone; a tool that blocks the loop 10 s keeps every event`, { timeout: 120_000 }, async (t) => {
    if (!requireBpf(t)) return;
    const d = await theDaemon();
    const files = fs.mkdtempSync(path.join(dir, 'long-'));
    for (const name of ['main-a', 'main-b', 'worker', 'sync-a', 'sync-b']) fs.writeFileSync(path.join(files, name), `${name}\n`);
    const child = spawn(node, [path.join(root, 'test', 'fixtures', 'long-call-agent.mjs')], {
      env: { ...process.env, AGENTRACE_SOCKET: d.socket, LONG_DIR: files },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const pid = child.pid!;
    const [code, stderr] = await track(child);
    assert.equal(code, 0, stderr);
    const expected: Record<string, string[]> = { long_call: ['main-b'], inner_tool: ['main-a'], worker_tool: ['worker'], blocking_call: ['sync-a', 'sync-b'] };
    const deadline = Date.now() + 20_000;
    let problems: string[] = [];
    do {
      const spans = (fs.existsSync(d.otlp) ? readOtlpFile(d.otlp) : []).filter((s) => s.resource['process.pid'] === pid);
      problems = [];
      for (const [tool, opened] of Object.entries(expected)) {
        const span = spans.find((s) => s.name === `execute_tool ${tool}`);
        if (!span) {
          problems.push(`${tool}: no span`);
          continue;
        }
        if (span.attributes['agentrace.span.incomplete'] === true) problems.push(`${tool}: ended as incomplete: ${span.status.message}`);
        const under = spans.filter((s) => s.parentSpanId === span.spanId && s.name === 'open').map((s) => path.basename(String(s.attributes['file.path'])));
        for (const f of opened) if (!under.includes(f)) problems.push(`${tool}: no open of ${f} under it (${under.join(', ')})`);
        // None of them writes: the SDK's own frames to the sidecar (the inner call's, sent from the outer's context) are nobody's.
        const summaries = spans.filter((s) => s.parentSpanId === span.spanId && s.name === 'kernel summary');
        if (summaries.length === 0) problems.push(`${tool}: no kernel summary yet`);
        const writes = summaries.reduce((n, s) => n + Number(s.attributes['agentrace.syscall.write.calls'] ?? 0), 0);
        if (writes) problems.push(`${tool}: ${writes} writes counted under it`);
      }
      if (problems.length) await new Promise((r) => setTimeout(r, 250));
    } while (problems.length && Date.now() < deadline);
    assert.deepEqual(problems, []);
  });
}
