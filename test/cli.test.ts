// bin/agentrace as a user runs it: the demo agent under `run`, exit codes,
// `sidecar` until SIGTERM, and usage errors.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { programs } from '@agentrace/bpf';
import { requireBpf } from './support/bpf.js';
import { readOtlpFile, readOtlpLogs } from './support/otlp.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'bin', 'agentrace');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-cli-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function agentrace(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(bin, args, { cwd: dir, encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `agentrace sidecar ARGS`, stopped by its pid when the test ends; resolves once it serves (socket and start line). */
async function startDaemon(t: { after: (fn: () => void) => void }, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ daemon: ChildProcess; stderr: () => string }> {
  const daemon = spawn(bin, ['sidecar', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  t.after(() => {
    if (daemon.exitCode === null) daemon.kill('SIGKILL');
  });
  let stderr = '';
  daemon.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const socketPath = args[args.indexOf('--socket') + 1]!;
  const deadline = Date.now() + 15_000;
  // The socket file appears a moment before the start line: wait for both.
  while (!(fs.existsSync(socketPath) && /probes attached; listening on/.test(stderr)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return { daemon, stderr: () => stderr };
}

test('--help and usage errors', () => {
  const help = agentrace(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /agentrace run \[options\] -- CMD|run \[options\] -- CMD/);
  const bad = agentrace(['sidecar', '--bogus']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--bogus[\s\S]*agentrace --help/);
  const noCmd = agentrace(['run']);
  assert.equal(noCmd.status, 2);
  assert.match(noCmd.stderr, /run needs a command after --/);
});

test('a bad --policy file is refused with its line and reason, and nothing runs', () => {
  const policy = path.join(dir, 'bad-policy.yaml');
  fs.writeFileSync(policy, 'version: 1\ntools:\n  fetch_url:\n    network:\n      mode: block\n      allow: []\n');
  const marker = path.join(dir, 'ran-despite-bad-policy');
  const r = agentrace(['run', '--policy', policy, '--', 'touch', marker]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`--policy: ${policy.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:\\d+: tools\\.fetch_url\\.network\\.mode: `));
  assert.equal(fs.existsSync(marker), false, 'the command did not run');
  const missing = agentrace(['sidecar', '--policy', path.join(dir, 'no-such-policy.yaml')]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /no-such-policy\.yaml: cannot read it \(ENOENT\)/);
});

test('run: the example agent, its tree and its OTLP file', (t) => {
  if (!requireBpf(t)) return;
  const file = path.join(dir, 'demo.jsonl');
  const r = agentrace(['run', '--otlp-file', file, '--', process.execPath, path.join(root, 'examples/agent/agent.mjs')]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /forecast for Lisbon: sunny/);
  for (const tool of ['fetch_url', 'read_file', 'run_shell']) assert.match(r.stderr, new RegExp(`execute_tool ${tool}`));
  assert.match(r.stderr, /connect 127\.0\.0\.1:\d+/);
  assert.match(r.stderr, /process sh .*\[\/bin\/sh -c df -h \/ \| tail -n 1\]\s+exit 0/);
  const spans = readOtlpFile(file);
  assert.match(r.stderr, new RegExp(`agentrace: ${spans.length} spans written to OTLP file ${file}\n`), 'the count is what the file holds');
  const fetchTool = spans.find((s) => s.name === 'execute_tool fetch_url');
  const connect = spans.find((s) => s.name.startsWith('connect 127.0.0.1'));
  assert.equal(connect?.parentSpanId, fetchTool?.spanId, 'the connect is a child of fetch_url');

  // The same events as log records, in the same file, with their tool call's ids.
  const logs = readOtlpLogs(file);
  const tool = (name: string) => spans.find((s) => s.name === `execute_tool ${name}`)!;
  const connectLog = logs.find((l) => l.eventName === 'agentrace.network.connect' && l.attributes['network.peer.port'] === connect!.attributes['network.peer.port']);
  assert.ok(connectLog, `a connect log record: ${logs.map((l) => l.eventName).join(', ')}`);
  assert.deepEqual([connectLog.traceId, connectLog.spanId], [fetchTool!.traceId, fetchTool!.spanId]);
  assert.equal(connectLog.body, connect!.name);
  assert.equal(connectLog.resource['process.pid'], connect!.resource['process.pid']);
  const exec = logs.find((l) => l.eventName === 'agentrace.process.exec');
  assert.equal(exec?.spanId, tool('run_shell').spanId, 'the shell is run_shell\'s');
  const open = logs.find((l) => l.eventName === 'agentrace.file.open' && /agentrace-example-notes-\d+\.txt$/.test(String(l.attributes['file.path'])));
  assert.equal(open?.spanId, tool('read_file').spanId, 'the notes are read_file\'s');
  // One record per event span, no more.
  assert.equal(logs.length, spans.filter((s) => /^(open|connect|getaddrinfo|dns query|process)\b/.test(s.name)).length);

  const quiet = path.join(dir, 'demo-nologs.jsonl');
  const r2 = agentrace(['run', '--quiet', '--logs', 'none', '--otlp-file', quiet, '--', process.execPath, path.join(root, 'examples/agent/agent.mjs')]);
  assert.equal(r2.status, 0, r2.stderr);
  assert.ok(readOtlpFile(quiet).length > 0 && readOtlpLogs(quiet).length === 0, '--logs none: spans, no log records');
});

test("run --policy: the README's policy for the example agent; the agent runs as before, each connect and exec decided under its own call", (t) => {
  if (!requireBpf(t)) return;
  const policy = path.join(root, 'examples/agent/policy.yaml');
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  assert.ok(readme.includes(fs.readFileSync(policy, 'utf8')), 'the README shows examples/agent/policy.yaml as it is');
  const file = path.join(dir, 'demo-policy.jsonl');
  const r = agentrace(['run', '--quiet', '--policy', policy, '--otlp-file', file, '--', process.execPath, path.join(root, 'examples/agent/agent.mjs')]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /forecast for Lisbon: sunny/);
  assert.match(r.stdout, /disk: \S+/, "run_shell's df and tail ran");
  const spans = readOtlpFile(file);
  const tool = (name: string) => spans.find((s) => s.name === `execute_tool ${name}`)!;
  const connect = spans.find((s) => s.name.startsWith('connect 127.0.0.1') && s.parentSpanId === tool('fetch_url').spanId);
  assert.equal(connect?.attributes['agentrace.policy.decision'], 'allowed');
  assert.match(String(connect?.attributes['agentrace.policy.rule']), /^tools\.fetch_url\.network \(.*policy\.yaml:\d+\)$/);
  const execs = spans.filter((s) => s.name.startsWith('process ') && s.attributes['agentrace.policy.kind'] === 'exec');
  assert.deepEqual(
    execs.map((s) => [String(s.attributes['process.executable.path']).replace(/^.*\//, ''), s.attributes['agentrace.policy.decision']]).sort(),
    [['df', 'allowed'], ['sh', 'allowed'], ['tail', 'allowed']],
  );
  // nothing it opens for writing is outside /tmp: no files decision, in calls or outside them
  assert.deepEqual(spans.filter((s) => s.attributes['agentrace.policy.kind'] === 'files').map((s) => s.name), []);
  assert.deepEqual(readOtlpLogs(file).filter((r) => r.attributes['agentrace.policy.kind'] === 'files').map((r) => r.body), []);
});

test('sidecar --policy: SIGHUP and `agentrace policy reload` read the file again; a bad one is refused with its line and the running policy stays', async (t) => {
  if (!requireBpf(t)) return;
  const socketPath = path.join(dir, 'policy-daemon.sock');
  const control = path.join(dir, 'policy-control.sock');
  const policy = path.join(dir, 'daemon-policy.yaml');
  const good = 'version: 1\ntools:\n  fetch_url:\n    network: { mode: enforce, allow: [{ cidr: 127.0.0.1 }] }\n';
  fs.writeFileSync(policy, good);
  const { daemon, stderr } = await startDaemon(t, ['--socket', socketPath, '--control', control, '--otlp-file', path.join(dir, 'policy-daemon.jsonl'), '--policy', policy]);
  fs.writeFileSync(policy, `${good}    exec: { mode: enforce, allow: [] }\n`);
  daemon.kill('SIGHUP');
  assert.ok(await until(() => /SIGHUP: policy reload refused/.test(stderr()), 10_000), stderr());
  assert.match(stderr(), /SIGHUP: policy reload refused, the running policy stays: .*daemon-policy\.yaml:5:\d+: .*enforce is not possible here/);
  const refused = agentrace(['policy', 'reload', '--control', control]);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /refused: policy reload refused, the running policy stays: .*daemon-policy\.yaml:5/);
  fs.writeFileSync(policy, `${good}    exec: { mode: kill, allow: [/bin/sh] }\n`);
  daemon.kill('SIGHUP');
  assert.ok(await until(() => /policy: reloaded .*daemon-policy\.yaml \(2 rules, generation 2\)/.test(stderr()), 10_000), stderr());
  const reloaded = agentrace(['policy', 'reload', '--control', control]);
  assert.equal(reloaded.status, 0, reloaded.stderr);
  assert.match(reloaded.stdout, /policy reloaded from .*daemon-policy\.yaml \(2 rules\), in force for the next decision/);
  assert.equal(agentrace(['policy', 'nonsense']).status, 2);
  daemon.kill('SIGTERM');
  assert.equal((await once(daemon, 'exit'))[0], 0);
});

test('run: spans a collector never took are not claimed as written', async (t) => {
  if (!requireBpf(t)) return;
  // A loopback port nobody listens on any more: every export is refused.
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const r = agentrace(['run', '--quiet', '--otlp-endpoint', `http://127.0.0.1:${port}`, '--', process.execPath, path.join(root, 'examples/agent/agent.mjs')], {
    OTEL_EXPORTER_OTLP_TIMEOUT: '500',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /agentrace: export: .*ECONNREFUSED/, 'the failure is said');
  assert.match(r.stderr, new RegExp(`agentrace: 0 spans written to OTLP http/protobuf http://127\\.0\\.0\\.1:${port}/v1/traces; (\\d+) spans NOT written \\(\\1 failed, 0 dropped`));
  assert.doesNotMatch(r.stderr, /[1-9]\d* spans? written/);
});

test('run: exits with the command’s code; 127 when it cannot start', (t) => {
  if (!requireBpf(t)) return;
  const file = path.join(dir, 'codes.jsonl');
  assert.equal(agentrace(['run', '--quiet', '--otlp-file', file, '--', '/bin/sh', '-c', 'exit 7']).status, 7);
  assert.equal(agentrace(['run', '--quiet', '--otlp-file', file, '--', '/bin/sh', '-c', 'kill -TERM $$']).status, 143);
  const missing = agentrace(['run', '--quiet', '--otlp-file', file, '--', path.join(dir, 'no-such-command')]);
  assert.equal(missing.status, 127);
  assert.match(missing.stderr, /cannot run .*no-such-command.*ENOENT/);
});

/** BPF links of agentrace's programs attached on the host now (the kernel keeps 15 characters of a program's name). */
function agentraceLinks(): number {
  const names = new Set(programs.map((p) => p.slice(0, 15)));
  const progs = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8', maxBuffer: 64 << 20 })) as Array<{ id: number; name?: string }>;
  const ours = new Set(progs.filter((p) => p.name !== undefined && names.has(p.name)).map((p) => p.id));
  const links = JSON.parse(execFileSync('bpftool', ['-j', 'link', 'show'], { encoding: 'utf8', maxBuffer: 64 << 20 })) as Array<{ prog_id: number }>;
  return links.filter((l) => ours.has(l.prog_id)).length;
}

/** Processes holding a `run`'s links while the kernel detaches them (Probes.close's helper). */
function detachHelpers(): number {
  let n = 0;
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes("process.stdin.resume().on('end'")) n++;
    } catch {
      // gone meanwhile
    }
  }
  return n;
}

async function until(what: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!what()) {
    if (Date.now() > deadline) return false;
    await new Promise((res) => setTimeout(res, 100));
  }
  return true;
}

test('run: the probes are detached after the command, by a helper the user does not wait for; nothing stays attached', async (t) => {
  if (!requireBpf(t)) return;
  // The runs of the tests before may still be detaching (the kernel lets go
  // of a link a moment after its last fd closes): from a quiet host.
  assert.ok(await until(() => detachHelpers() === 0, 20_000), 'the helpers of earlier runs exit');
  let before = agentraceLinks();
  let stableSince = Date.now();
  assert.ok(
    await until(() => {
      const n = agentraceLinks();
      if (n !== before) [before, stableSince] = [n, Date.now()];
      return Date.now() - stableSince >= 1000;
    }, 20_000),
    "agentrace's links on the host settle",
  );
  const r = agentrace(['run', '--quiet', '--otlp-file', path.join(dir, 'teardown.jsonl'), '--', '/bin/sh', '-c', 'exit 3']);
  assert.equal(r.status, 3, r.stderr);
  // The helper exits once run has closed its copies; the kernel detaches then.
  assert.ok(await until(() => detachHelpers() === 0, 20_000), "run's helper exits");
  let now = agentraceLinks();
  await until(() => (now = agentraceLinks()) <= before, 20_000);
  assert.ok(now <= before, `agentrace's links on the host: ${before} before run, ${now} 20 s after`);
});

test('sidecar: serves until SIGTERM, then flushes, removes its socket and exits 0', async (t) => {
  if (!requireBpf(t)) return;
  const socketPath = path.join(dir, 'daemon.sock');
  const file = path.join(dir, 'daemon.jsonl');
  const { daemon, stderr: err } = await startDaemon(t, ['--socket', socketPath, '--otlp-file', file]);
  assert.ok(fs.existsSync(socketPath), `no socket; stderr: ${err()}`);
  assert.match(err(), /probes attached; listening on/);

  const agent = spawn(process.execPath, [path.join(root, 'examples/agent/agent.mjs')], {
    env: { ...process.env, AGENTRACE_SOCKET: socketPath },
    stdio: 'ignore',
  });
  assert.deepEqual(await once(agent, 'exit'), [0, null]);
  daemon.kill('SIGTERM');
  const [code] = await once(daemon, 'exit');
  assert.equal(code, 0);
  assert.equal(fs.existsSync(socketPath), false, 'the socket is removed');
  const names = readOtlpFile(file).map((s) => s.name);
  for (const tool of ['fetch_url', 'read_file', 'run_shell']) assert.ok(names.includes(`execute_tool ${tool}`), names.join(', '));
});

test('sidecar: --limit and AGENTRACE_LIMITS set the limits; the start line states the memory they bound; a bad limit is a usage error', async (t) => {
  const bad = agentrace(['sidecar', '--limit', 'conections=3']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown limit "conections"; the limits are connections, /);
  if (!requireBpf(t)) return;
  const socketPath = path.join(dir, 'limits.sock');
  const { daemon, stderr } = await startDaemon(t, ['--socket', socketPath, '--otlp-file', path.join(dir, 'limits.jsonl'), '--limit', 'connections=2'], {
    AGENTRACE_LIMITS: 'spans-in-flight=1Ki,connections=1000',
  });
  // 2 connections (the flag wins over the variable) × 32 KiB, 1,024 spans × 4 KiB, 64 Mi characters × 2,
  // 64 MiB unfinished, 16,384 ended × 6 KiB, one exporter’s 2,048 × (6 KiB + 2 × 16 Ki): 368.1 MiB.
  assert.match(stderr(), /agents can make it hold 369 MB at most/, stderr());
  const net = await import('node:net');
  const socks = await Promise.all([0, 1, 2].map(async () => {
    const s = net.connect(socketPath);
    s.on('error', () => {});
    await once(s, 'connect');
    return s;
  }));
  // The third is over the limit: told so, and closed.
  const [reply] = await once(socks[2]!, 'data');
  assert.match(String(reply), /connections/);
  for (const s of socks) s.destroy();
  daemon.kill('SIGTERM');
  const [code] = await once(daemon, 'exit');
  assert.equal(code, 0);
  assert.match(stderr(), /agent socket: 1 connections refused/);
});
