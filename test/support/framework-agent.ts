// What the framework integration tests share (test/ai.test.ts,
// test/openai-agents.test.ts): loopback TCP servers and files for the
// planned tool calls, an agent fixture run under the real sidecar, and the
// check that each call's kernel activity lands under its own tool span.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Sidecar, createExporters, resolveOtlpConfig, type SidecarOptions } from '@agentrace/sidecar';
import { ancestry, readOtlpFile, type FlatSpan } from './otlp.js';

/** One planned tool call: what survey-tool.mjs opens, connects to and echoes. */
export interface PlannedCall {
  id: string;
  file: string;
  port: number;
  word: string;
}

export { runtimes, node20, node24, requireNode24, requireBothNodes } from './runtimes.js';

/** An agent to run: `[...prefix, node, script, JSON(arg)]`. */
export interface AgentSpec {
  script: string;
  arg: object;
  node: string;
  prefix?: string[];
}

export interface AgentResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A temp dir, and one loopback TCP server per planned call (each accepts and closes). */
export class Rig {
  private readonly servers: net.Server[] = [];
  private readonly children = new Set<number>();

  private constructor(readonly dir: string) {}

  static create(tag: string): Rig {
    return new Rig(fs.mkdtempSync(path.join(os.tmpdir(), `agentrace-${tag}-`)));
  }

  /** n calls with their own file, server port and word, ids `${prefix}-1`.. */
  async plan(prefix: string, n: number): Promise<PlannedCall[]> {
    const calls: PlannedCall[] = [];
    for (let i = 1; i <= n; i++) {
      const server = net.createServer((s) => s.destroy()).listen(0, '127.0.0.1');
      this.servers.push(server);
      await once(server, 'listening');
      const word = `w${i}-${randomBytes(4).toString('hex')}`;
      const file = path.join(this.dir, `${word}.txt`);
      fs.writeFileSync(file, `${word}\n`);
      calls.push({ id: `${prefix}-${i}`, file, port: (server.address() as net.AddressInfo).port, word });
    }
    return calls;
  }

  /**
   * Runs `script` with `arg` under a real sidecar exporting to an OTLP file;
   * returns its exit code, stdout and the exported spans.
   */
  async run(name: string, script: string, arg: object, node: string, sidecarOptions: Partial<SidecarOptions> = {}): Promise<AgentResult & { spans: FlatSpan[] }> {
    const { agents, spans } = await this.runAll(name, [{ script, arg, node }], sidecarOptions);
    return { ...agents[0]!, spans };
  }

  /**
   * Runs several agents at once under one real sidecar, each as
   * `[...prefix, node, script, arg]` (a prefix such as `unshare --pid --fork`
   * puts it in namespaces of its own).
   */
  async runAll(
    name: string,
    agents: AgentSpec[],
    sidecarOptions: Partial<SidecarOptions> = {},
  ): Promise<{ agents: AgentResult[]; spans: FlatSpan[] }> {
    const socketPath = path.join(this.dir, `${name}.sock`);
    const file = path.join(this.dir, `${name}.jsonl`);
    const sidecar = await Sidecar.start({ ...sidecarOptions, socketPath, exporters: createExporters(resolveOtlpConfig({ file }, {})), log: () => {} });
    let results: AgentResult[];
    try {
      results = await this.runAgents(socketPath, agents);
      await sidecar.settle(2000);
    } finally {
      await sidecar.stop();
    }
    return { agents: results, spans: readOtlpFile(file) };
  }

  /** Runs agents at once against the sidecar on `socketPath` (one the caller runs). */
  runAgents(socketPath: string, agents: AgentSpec[]): Promise<AgentResult[]> {
    return Promise.all(agents.map((a) => this.spawnAgent(a, socketPath)));
  }

  private async spawnAgent(a: AgentSpec, socketPath: string): Promise<AgentResult> {
    const argv = [...(a.prefix ?? []), a.node, a.script, JSON.stringify(a.arg)];
    const child = spawn(argv[0]!, argv.slice(1), {
      env: { ...process.env, AGENTRACE_SOCKET: socketPath },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (child.pid !== undefined) this.children.add(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      process.stderr.write(d);
    });
    // A hung agent fails its test instead of hanging the run.
    const limit = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(limit);
    if (child.pid !== undefined) this.children.delete(child.pid);
    return { code, stdout, stderr };
  }

  /** Runs `bin/agentrace run -- node <example>` (repo-relative) as a user would. */
  runExample(example: string): { status: number | null; stdout: string; stderr: string; spans: FlatSpan[] } {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const file = path.join(this.dir, `${path.basename(path.dirname(example))}-example.jsonl`);
    const r = spawnSync(path.join(root, 'bin', 'agentrace'), ['run', '--otlp-file', file, '--', process.execPath, path.join(root, example)], {
      cwd: this.dir,
      encoding: 'utf8',
      timeout: 120_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, spans: readOtlpFile(file) };
  }

  close(): void {
    for (const pid of this.children) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const s of this.servers) s.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The execute_tool span of the call with this gen_ai.tool.call.id. */
export function toolSpanOf(spans: FlatSpan[], callId: string): FlatSpan {
  const found = spans.filter((s) => s.name.startsWith('execute_tool ') && s.attributes['gen_ai.tool.call.id'] === callId);
  assert.equal(found.length, 1, `one execute_tool span with gen_ai.tool.call.id ${callId}; spans: ${spans.map((s) => s.name).join(', ')}`);
  return found[0]!;
}

function assertUnderOnly(span: FlatSpan | undefined, tool: FlatSpan, spans: FlatSpan[], what: string): void {
  assert.ok(span, `${what}: no such span`);
  assert.equal(span.traceId, tool.traceId, `${what}: same trace as its tool`);
  const chain = ancestry(span, spans).map((s) => s.spanId);
  assert.ok(chain.includes(tool.spanId), `${what}: ${span.name} is not under ${tool.name} (${tool.attributes['gen_ai.tool.call.id']})`);
  for (const other of spans.filter((s) => s.name.startsWith('execute_tool ') && s !== tool)) {
    assert.ok(!chain.includes(other.spanId), `${what}: also under ${other.name} (${other.attributes['gen_ai.tool.call.id']})`);
  }
}

/**
 * Each call's open, connect and child process are exported under its own
 * execute_tool span (and no other), and that span is a GenAI tool span.
 * Returns the tool spans in plan order.
 */
export function assertCallsAttributed(spans: FlatSpan[], calls: PlannedCall[], toolName: string): FlatSpan[] {
  return calls.map((call) => {
    const tool = toolSpanOf(spans, call.id);
    assert.equal(tool.name, `execute_tool ${toolName}`);
    assert.equal(tool.kind, 1, 'INTERNAL');
    assert.equal(tool.attributes['gen_ai.operation.name'], 'execute_tool');
    assert.equal(tool.attributes['gen_ai.tool.name'], toolName);
    assert.equal(tool.status.code ?? 0, 0, `${call.id} did not fail`);

    const open = spans.find((s) => s.attributes['file.path'] === call.file);
    assertUnderOnly(open, tool, spans, `${call.id}'s open`);
    assert.equal(open!.parentSpanId, tool.spanId, `${call.id}'s open hangs directly under its tool span`);

    const connect = spans.find((s) => s.attributes['network.peer.port'] === call.port);
    assertUnderOnly(connect, tool, spans, `${call.id}'s connect`);
    assert.equal(connect!.attributes['network.peer.address'], '127.0.0.1');

    const echo = spans.find((s) => {
      const args = s.attributes['process.command_args'];
      return Array.isArray(args) && args.includes(call.word);
    });
    assertUnderOnly(echo, tool, spans, `${call.id}'s child process`);
    assert.equal(echo!.attributes['process.executable.path'], '/bin/echo');
    return tool;
  });
}

/** Every exported span's parent is exported too, in the same trace. */
export function assertTreeComplete(spans: FlatSpan[]): void {
  for (const s of spans) {
    if (!s.parentSpanId) continue;
    const parent = spans.find((p) => p.spanId === s.parentSpanId);
    assert.ok(parent, `${s.name} has its parent in the export`);
    assert.equal(s.traceId, parent.traceId, `${s.name} is in its parent's trace`);
  }
}
