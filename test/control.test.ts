// Probe groups attached and detached at run time through the control socket,
// with the real CLI (bin/agentrace probes), a real sidecar and a tracked
// process that keeps running throughout: the kernel's own list of attached
// tracepoints (bpftool) and the spans exported both show the change.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { once } from 'node:events';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Sidecar, createExporters, resolveOtlpConfig, type ExportSpan } from '@agentrace/sidecar';
import { requireBpf } from './support/bpf.js';
import { Actor } from './support/actor.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'bin', 'agentrace');
const NOBODY = 65534;

let dir: string;
let tcp: net.Server;
let tcpPort: number;
const children: ChildProcess[] = [];
const actors: Actor[] = [];

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-control-'));
  tcp = net.createServer((s) => s.destroy()).listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  tcpPort = (tcp.address() as net.AddressInfo).port;
});

after(() => {
  for (const a of actors) a.kill();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  tcp.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs bin/agentrace as a child without blocking this process's event loop:
 * the sidecar under test runs in this process and must answer meanwhile.
 */
async function agentrace(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  const child = spawn(bin, args, {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [status] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { status, stdout, stderr };
}

/**
 * Sends one control request as uid 65534 with the CLI's own client
 * (control-client.js, which needs nothing but node:net), copied into the
 * test's directory: the repository may sit where that user cannot read it.
 */
async function controlAsNobody(controlPath: string, req: object): Promise<{ ok?: boolean; error?: string; thrown?: string }> {
  const client = path.join(dir, 'control-client.mjs');
  fs.copyFileSync(fileURLToPath(new URL('../packages/sidecar/dist/control-client.js', import.meta.url)), client);
  fs.chmodSync(client, 0o644);
  const script =
    'const { controlRequest } = await import(process.argv[1]);' +
    'try { process.stdout.write(JSON.stringify(await controlRequest(process.argv[2], JSON.parse(process.argv[3])))); }' +
    'catch (err) { process.stdout.write(JSON.stringify({ thrown: err.message })); }';
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, client, controlPath, JSON.stringify(req)], {
    cwd: dir,
    uid: NOBODY,
    gid: NOBODY,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const [status] = (await once(child, 'exit')) as [number | null];
  assert.equal(status, 0, `the client ran as uid ${NOBODY}: ${out}`);
  return JSON.parse(out) as { ok?: boolean; error?: string; thrown?: string };
}

function uniqueFile(tag: string): string {
  const f = path.join(dir, `${tag}-${randomBytes(4).toString('hex')}.txt`);
  fs.writeFileSync(f, `${tag}\n`);
  return f;
}

/** The syscall tracepoints the kernel runs BPF programs on for `pid`, as bpftool lists them. */
function tracepointsOf(pid: number): Set<string> {
  const r = spawnSync('bpftool', ['perf', 'list', '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `bpftool perf list failed (scripts/setup.sh installs bpftool): ${r.stderr}`);
  const links = JSON.parse(r.stdout) as Array<{ pid: number; tracepoint?: string }>;
  return new Set(links.filter((l) => l.pid === pid && l.tracepoint).map((l) => l.tracepoint!));
}

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One connection to a control socket: send lines, read response lines, see it close. */
class ControlConnection {
  private readonly lines: AsyncIterator<string>;
  readonly closed: Promise<unknown>;

  constructor(private readonly socket: net.Socket) {
    this.lines = readline.createInterface({ input: socket })[Symbol.asyncIterator]();
    this.closed = once(socket, 'close');
  }

  static async open(socketPath: string): Promise<ControlConnection> {
    const socket = net.connect(socketPath);
    await once(socket, 'connect');
    return new ControlConnection(socket);
  }

  async send(line: string): Promise<{ ok: boolean; error?: string; groups?: Record<string, boolean>; stats?: Record<string, unknown> }> {
    this.socket.write(line + '\n');
    const r = await this.lines.next();
    assert.ok(!r.done, `the connection closed without answering ${line}`);
    return JSON.parse(r.value) as { ok: boolean; error?: string };
  }

  destroy(): void {
    this.socket.destroy();
  }
}

test('probes: usage errors exit 2, a missing sidecar exits 1, both say what to do', async () => {
  const help = await agentrace(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /probes detach G\.\.\./);
  assert.match(help.stdout, /--probes LIST[\s\S]*context group[\s\S]*always attached/);

  const unknown = await agentrace(['probes', 'detach', 'bogus', '--control', path.join(dir, 'none.sock')]);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown probe group "bogus"; groups are file, net, process, io \(or all\)[\s\S]*agentrace --help/);

  const context = await agentrace(['probes', 'detach', 'context']);
  assert.equal(context.status, 2);
  assert.match(context.stderr, /context group is always attached/);

  const noGroup = await agentrace(['probes', 'attach']);
  assert.equal(noGroup.status, 2);
  assert.match(noGroup.stderr, /name at least one probe group/);

  const badSub = await agentrace(['probes', 'frobnicate']);
  assert.equal(badSub.status, 2);
  assert.match(badSub.stderr, /unknown probes command "frobnicate"/);

  const badStart = await agentrace(['sidecar', '--probes', 'file,bogus']);
  assert.equal(badStart.status, 2);
  assert.match(badStart.stderr, /unknown probe group "bogus"/);

  const missing = path.join(dir, 'no-sidecar', 'control.sock');
  const none = await agentrace(['probes', 'status', '--control', missing]);
  assert.equal(none.status, 1);
  assert.equal(none.stderr, `agentrace: no sidecar at ${missing}: start \`agentrace sidecar\` or pass --control\n`);
  const viaEnv = await agentrace(['probes'], { env: { ...process.env, AGENTRACE_CONTROL: missing } });
  assert.equal(viaEnv.status, 1);
  assert.match(viaEnv.stderr, /no sidecar at .*no-sidecar\/control\.sock/);
});

test('probes detach/attach file at run time: the kernel drops and regains the open tracepoints, opens meanwhile make no spans, sidecar and agent keep running', async (t) => {
  if (!requireBpf(t)) return;
  const socketPath = path.join(dir, 'runtime.sock');
  const controlPath = path.join(dir, 'runtime-control.sock');
  const spans: ExportSpan[] = [];
  const logs: string[] = [];
  const toolsStarted: string[] = [];
  const sidecar = await Sidecar.start({
    socketPath,
    controlSocketPath: controlPath,
    exporters: createExporters(resolveOtlpConfig({ file: path.join(dir, 'runtime.jsonl') }, {})),
    onSpans: (batch) => spans.push(...batch),
    onToolStart: (spanId) => toolsStarted.push(spanId),
    log: (line) => logs.push(line),
  });
  const actor = await Actor.start();
  actors.push(actor);
  const opened = (file: string): boolean => spans.some((s) => s.attributes['file.path'] === file);
  try {
    assert.equal(sidecar.controlSocketPath, controlPath);
    assert.equal(fs.statSync(controlPath).mode & 0o777, 0o600, 'the control socket is root-only');

    // A tracked process with a tool span running on its main thread.
    assert.equal((await actor.do({ op: 'sidecarConnect', path: socketPath })).ok, true);
    await actor.do({ op: 'sidecarSend', frame: { t: 'hello', sdk: 'test', runtime: 'node', resource: { 'service.name': 'control-test' } }, waitFor: 'welcome' });
    const spanId = randomBytes(8).toString('hex');
    const started = await actor.do({
      op: 'sidecarSend',
      frame: {
        t: 'start',
        tid: actor.pid,
        trace: randomBytes(16).toString('hex'),
        span: spanId,
        name: 'execute_tool read_files',
        kind: 1,
        start: [Math.floor(Date.now() / 1000), 0],
        attrs: {},
        flags: 1,
        export: true,
      },
    });
    assert.deepEqual(started.received, [], 'the span was accepted');
    // The sidecar writes the thread's span into the kernel when it reads the frame.
    await until('the sidecar to take the tool span', () => toolsStarted.includes(spanId));

    const before = uniqueFile('before');
    await actor.do({ op: 'open', path: before });
    await until('the open made before detaching', () => opened(before));
    const openTps = ['sys_enter_openat', 'sys_exit_openat'];
    for (const tp of openTps) assert.ok(tracepointsOf(process.pid).has(tp), `${tp} attached at start`);

    const detached = await agentrace(['probes', 'detach', 'file', '--control', controlPath]);
    assert.equal(detached.status, 0, detached.stderr);
    assert.match(detached.stdout, /file\s+detached/);
    assert.match(detached.stdout, /net\s+attached/);
    const kernelNow = tracepointsOf(process.pid);
    for (const tp of openTps) assert.ok(!kernelNow.has(tp), `${tp} is no longer attached`);
    assert.ok(kernelNow.has('sys_enter_connect'), 'the other groups stay attached');

    const status = await agentrace(['probes', 'status', '--json', '--control', controlPath]);
    assert.equal(status.status, 0, status.stderr);
    const s = JSON.parse(status.stdout) as {
      ok: boolean;
      groups: Record<string, boolean>;
      stats: { probes: { events: number }; socket: { open: number }; export: Record<string, { exported: number; failed: number }>; health: { healthy: boolean } };
    };
    assert.deepEqual(Object.keys(s.stats.export), ['traces', 'logs', 'metrics'], 'export counts per signal');
    assert.equal(s.stats.health.healthy, true);
    // `agentrace status` is the same question, in words
    const words = await agentrace(['status', '--control', controlPath]);
    assert.equal(words.status, 0, words.stderr);
    assert.match(words.stdout, /^export:\n  traces +\d+ exported, 0 failed, 0 dropped\n  logs +\d+ exported, 0 failed, 0 dropped\n  metrics +\d+ collections exported, 0 failed, 0 dropped$/m);
    assert.match(words.stdout, /^health: ok$/m);
    assert.deepEqual(s.groups, { file: false, net: true, process: true, context: true, io: true });
    assert.equal(typeof s.stats.probes.events, 'number', 'bigint counters arrive as numbers');
    assert.ok(s.stats.probes.events >= 1);
    assert.equal(s.stats.socket.open, 1, 'the agent is still connected');

    const during = uniqueFile('during');
    await actor.do({ op: 'openMany', path: during, count: 20 });
    // The sidecar still traces what stays attached: the connect comes out.
    await actor.do({ op: 'connect', host: '127.0.0.1', port: tcpPort });
    await until('the connect while file is detached', () => spans.some((x) => x.attributes['network.peer.port'] === tcpPort));

    const attached = await agentrace(['probes', 'attach', 'file', '--control', controlPath]);
    assert.equal(attached.status, 0, attached.stderr);
    assert.match(attached.stdout, /file\s+attached/);
    for (const tp of openTps) assert.ok(tracepointsOf(process.pid).has(tp), `${tp} attached again`);

    const afterwards = uniqueFile('after');
    await actor.do({ op: 'open', path: afterwards });
    // Events arrive in ring-buffer order: once this open is here, any made
    // while the group was detached would have arrived before it.
    await until('the open made after attaching again', () => opened(afterwards));
    assert.equal(opened(during), false, 'no open span for the 20 opens made while file was detached');

    const human = await agentrace(['probes', '--control', controlPath]);
    assert.equal(human.status, 0, human.stderr);
    assert.match(human.stdout, /^probe groups of the sidecar at .*runtime-control\.sock:\n {2}file +attached\n {2}net +attached\n {2}process +attached\n {2}io +attached\n {2}context +attached {2}\(always/);
    assert.match(human.stdout, /counters:\n[\s\S]*probes +events \d+, ringbufDrops 0/);

    const stats = sidecar.stats();
    assert.equal(stats.socket.connections, 1, 'the agent never reconnected');
    assert.equal(stats.socket.open, 1);
    assert.deepEqual(sidecar.probeStatus(), { file: true, net: true, process: true, context: true, io: true });
    assert.ok(logs.includes('probes detached: file') && logs.includes('probes attached: file'), logs.join('\n'));
  } finally {
    await actor.exit(0);
    await sidecar.stop();
  }
  assert.equal(fs.existsSync(controlPath), false, 'stop removes the control socket');
});

test('control socket: unknown op or group answered with an error; a malformed line closes that connection only; other users are refused', async (t) => {
  if (!requireBpf(t)) return;
  const sub = path.join(dir, 'protocol');
  fs.mkdirSync(sub, { mode: 0o755 });
  fs.chmodSync(dir, 0o755); // so that only the socket's own mode keeps another user out
  const socketPath = path.join(sub, 'agent.sock');
  const controlPath = path.join(sub, 'control.sock');
  const logs: string[] = [];
  const sidecar = await Sidecar.start({
    socketPath,
    controlSocketPath: controlPath,
    probeGroups: ['net', 'io'],
    exporters: createExporters(resolveOtlpConfig({ file: path.join(dir, 'protocol.jsonl') }, {})),
    log: (line) => logs.push(line),
  });
  try {
    const conn = await ControlConnection.open(controlPath);
    const start = await conn.send('{"op":"status"}');
    assert.equal(start.ok, true);
    assert.deepEqual(start.groups, { file: false, net: true, process: false, context: true, io: true }, 'probeGroups chose what starts attached');

    const badOp = await conn.send('{"op":"reboot"}');
    assert.equal(badOp.ok, false);
    assert.match(badOp.error ?? '', /unknown op "reboot"; ops are status, attach, detach/);
    const badGroup = await conn.send('{"op":"attach","groups":["file","disk"]}');
    assert.equal(badGroup.ok, false);
    assert.match(badGroup.error ?? '', /unknown probe group "disk"/);
    assert.equal(badGroup.groups?.file, false, 'nothing was attached');
    const noContext = await conn.send('{"op":"detach","groups":["context"]}');
    assert.equal(noContext.ok, false);
    assert.equal(sidecar.probeStatus().context, true);
    const attach = await conn.send('{"op":"attach","groups":["all"]}');
    assert.deepEqual(attach, { ok: true, groups: { file: true, net: true, process: true, context: true, io: true } });

    const malformed = await conn.send('{"op": status}');
    assert.equal(malformed.ok, false);
    assert.match(malformed.error ?? '', /malformed request: not JSON/);
    await conn.closed;
    conn.destroy();

    const notAnObject = await ControlConnection.open(controlPath);
    assert.match((await notAnObject.send('["status"]')).error ?? '', /malformed request: a request is a JSON object/);
    await notAnObject.closed;

    const huge = await ControlConnection.open(controlPath);
    (huge as unknown as { socket: net.Socket }).socket.write('x'.repeat(100 * 1024));
    await huge.closed;

    // Still serving: a new control connection and an agent connection work.
    const again = await ControlConnection.open(controlPath);
    assert.equal((await again.send('{"op":"detach","groups":["process"]}')).groups?.process, false);
    again.destroy();
    const agent = net.connect(socketPath);
    await once(agent, 'connect');
    agent.destroy();
    assert.equal(logs.filter((l) => /closed a connection that sent a malformed request/.test(l)).length, 3, logs.join('\n'));

    // Another user: the socket's mode refuses the connection, and the client says to run as root.
    const denied = await controlAsNobody(controlPath, { op: 'status' });
    assert.match(String(denied.thrown), /permission denied on .*control\.sock: the control socket is root-only; run as root/);
    // Should the mode ever be loosened, the peer's uid is still checked.
    fs.chmodSync(controlPath, 0o666);
    const loosened = await controlAsNobody(controlPath, { op: 'detach', groups: ['all'] });
    assert.equal(loosened.ok, false);
    assert.match(String(loosened.error), /uid 65534 may not control the probes: run as root/);
    assert.equal(sidecar.probeStatus().net, true, 'nothing was detached');
  } finally {
    await sidecar.stop();
  }
});

test('agentrace sidecar --probes: chosen groups at start, control socket beside the agent socket', async (t) => {
  if (!requireBpf(t)) return;
  const sub = path.join(dir, 'daemon');
  fs.mkdirSync(sub);
  const socketPath = path.join(sub, 'agentrace.sock');
  const controlPath = path.join(sub, 'control.sock');
  const env = { ...process.env };
  delete env.AGENTRACE_CONTROL;
  const daemon = spawn(bin, ['sidecar', '--probes', 'net,process', '--socket', socketPath, '--otlp-file', path.join(sub, 'traces.jsonl')], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env,
  });
  children.push(daemon);
  let stderr = '';
  daemon.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  // The socket file appears a moment before the daemon prints its start line.
  await until(`the daemon's control socket and start line (stderr: ${stderr})`, () => fs.existsSync(controlPath) && /probes attached/.test(stderr), 15_000);
  assert.match(stderr, /probes attached; listening on .*; control on .*daemon\/control\.sock \(probe groups context, net, process\)/);

  const status = await agentrace(['probes', 'status', '--json', '--control', controlPath]);
  assert.equal(status.status, 0, status.stderr);
  assert.deepEqual((JSON.parse(status.stdout) as { groups: object }).groups, { file: false, net: true, process: true, context: true, io: false });
  const tps = tracepointsOf(daemon.pid!);
  assert.ok(tps.has('sys_enter_connect') && !tps.has('sys_enter_openat') && !tps.has('sys_enter_read'), [...tps].join(', '));

  daemon.kill('SIGTERM');
  const [code] = await once(daemon, 'exit');
  assert.equal(code, 0, stderr);
  assert.equal(fs.existsSync(controlPath), false, 'the control socket is removed');
});

test('agentrace run: serves a control socket and hands it to the command as AGENTRACE_CONTROL', async (t) => {
  if (!requireBpf(t)) return;
  const env = { ...process.env };
  delete env.AGENTRACE_CONTROL;
  const r = await agentrace(
    ['run', '--quiet', '--probes', 'file,io', '--otlp-file', path.join(dir, 'run.jsonl'), '--', '/bin/sh', '-c', '"$0" probes status --json && "$0" probes detach io', bin],
    { env },
  );
  assert.equal(r.status, 0, r.stderr);
  const [statusLine, ...table] = r.stdout.split('\n');
  const status = JSON.parse(statusLine!) as { groups: object; stats: object };
  assert.deepEqual(status.groups, { file: true, net: false, process: false, context: true, io: true });
  assert.match(table.join('\n'), /io\s+detached/);
});
