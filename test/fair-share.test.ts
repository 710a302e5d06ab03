// One local user cannot blind the sidecar for the others (issue 11). As
// uid 65534, a flood: connections that announce thousands of calls they
// never end, and connections that park unfinished 1 MiB frames. Meanwhile a
// root agent makes 250 tool calls: every one is exported with its open, the
// flood's refusals are counted by reason, and the daemon's memory stays
// within what its limits allow.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { once } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { encodeFrame } from '@agentrace/protocol';
import { requireBpf } from './support/bpf.js';
import { readOtlpFile } from './support/otlp.js';

const NOBODY = 65534;
const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'bin', 'agentrace');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-fair-'));
fs.chmodSync(dir, 0o755); // the flood's user reaches the socket, as any local user would
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

function started(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Bytes only: it prints its pid, reads what to send from stdin, sends it on many connections, and holds them. */
const FLOODER = `
const net = require('node:net');
process.stdout.write(process.pid + '\\n');
let input = '';
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', () => {
  const plan = JSON.parse(input);
  const held = plan.held.map((b) => Buffer.from(b, 'base64'));
  const header = Buffer.alloc(5);
  header.writeUInt32BE(plan.parkedBytes + 1, 0);
  header.writeUInt8(1, 4);
  const socks = [];
  for (let i = 0; i < plan.connections; i++) {
    const s = net.connect(plan.socket, () => s.write(held[i]));
    s.on('error', () => {});
    socks.push(s);
  }
  for (let i = 0; i < plan.parked; i++) {
    const s = net.connect(plan.socket, () => { s.write(header); s.write(Buffer.alloc(plan.parkedBytes - 16, 0x61)); });
    s.on('error', () => {});
    socks.push(s);
  }
  setTimeout(() => process.stdout.write('flooding\\n'), 500);
  setInterval(() => {}, 1000);
});
`;

function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

test('a flood from an unprivileged user: a root agent’s 250 calls are all exported, refusals counted, memory bounded', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const socket = path.join(dir, 'agentrace.sock');
  const otlp = path.join(dir, 'traces.jsonl');
  // Limits tighter than the defaults, so that the bound they set is one a flood could reach.
  const limits = ['unfinished-bytes=32Mi', 'spans-in-flight=20000', 'connections=512', 'attribute-chars-in-flight=8Mi', 'ended-spans=4Ki'].flatMap((l) => ['--limit', l]);
  const daemon = started(spawn(bin, ['sidecar', '--socket', socket, '--control', path.join(dir, 'control.sock'), '--otlp-file', otlp, ...limits], { stdio: ['ignore', 'ignore', 'pipe'] }));
  let stderr = '';
  daemon.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 20_000;
  while (!/probes attached; listening/.test(stderr) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.match(stderr, /probes attached; listening/);
  const boundMb = Number(/agents can make it hold (\d+) MB at most/.exec(stderr)?.[1]);
  assert.ok(boundMb > 0, stderr);
  const idleMb = rssMb(daemon.pid!);

  // The flood, as nobody.
  const flooder = started(spawn(process.execPath, ['-e', FLOODER], { uid: NOBODY, gid: NOBODY, cwd: dir, stdio: ['pipe', 'pipe', 'inherit'] }));
  const lines = readline.createInterface({ input: flooder.stdout! })[Symbol.asyncIterator]();
  const floodPid = Number((await lines.next()).value);
  // 70 connections, each announcing 1,000 calls of its own that it never ends: 70,000, more than the
  // 65,536 that all agents together may hold, and far over the user's share.
  const held: string[] = [];
  for (let c = 0; c < 70; c++) {
    const frames = [encodeFrame({ t: 'hello', sdk: 'flood', runtime: 'node', resource: { 'service.name': 'victim' } })];
    for (let i = 0; i < 1000; i++) {
      frames.push(encodeFrame({ t: 'start', tid: floodPid, trace: randomBytes(16), span: randomBytes(8), name: 'execute_tool held', kind: 0, start: [1, 0], attrs: {}, flags: 1, export: true }));
    }
    held.push(Buffer.concat(frames).toString('base64'));
  }
  flooder.stdin!.end(JSON.stringify({ socket, held, connections: held.length, parked: 120, parkedBytes: 1024 * 1024 - 64 }));
  assert.equal((await lines.next()).value, 'flooding');

  // The root agent, meanwhile.
  const files = fs.mkdtempSync(path.join(dir, 'files-'));
  for (let i = 0; i < 250; i++) fs.writeFileSync(path.join(files, `f${i}`), `${i}\n`);
  const agentScript = `import fs from 'node:fs';
    import { traceTool, shutdown } from '@agentrace/sdk';
    const open_file = traceTool('open_file', (p) => fs.readFileSync(p, 'utf8'));
    for (let i = 0; i < 250; i++) open_file(process.argv[1] + '/f' + i);
    await shutdown();`;
  const agent = started(spawn(process.execPath, ['--input-type=module', '-e', agentScript, files], { cwd: root, env: { ...process.env, AGENTRACE_SOCKET: socket }, stdio: ['ignore', 'ignore', 'inherit'] }));
  let peakMb = rssMb(daemon.pid!);
  const sampler = setInterval(() => (peakMb = Math.max(peakMb, rssMb(daemon.pid!))), 100);
  const [code] = await once(agent, 'exit');
  assert.equal(code, 0, 'the agent ran');

  const problems = (): string[] => {
    const spans = fs.existsSync(otlp) ? readOtlpFile(otlp) : [];
    const calls = spans.filter((s) => s.name === 'execute_tool open_file' && s.resource['process.pid'] === agent.pid);
    const opened = new Set(spans.filter((s) => s.name === 'open' && calls.some((c) => c.spanId === s.parentSpanId)).map((s) => s.attributes['file.path']));
    const out: string[] = [];
    if (calls.length !== 250) out.push(`${calls.length} of 250 calls exported`);
    const missing = Array.from({ length: 250 }, (_, i) => path.join(files, `f${i}`)).filter((f) => !opened.has(f));
    if (missing.length) out.push(`${missing.length} opens missing under their calls`);
    return out;
  };
  const until = Date.now() + 30_000;
  while (problems().length && Date.now() < until) await new Promise((r) => setTimeout(r, 250));
  clearInterval(sampler);
  assert.deepEqual(problems(), []);

  flooder.kill('SIGKILL');
  daemon.kill('SIGTERM');
  await once(daemon, 'exit');
  // Refused and cut, and said so.
  assert.match(stderr, /spans refused: \d+ \([^)]*\d+ in_flight_user/, stderr);
  assert.match(stderr, /agent socket: \d+ connections refused \(over their share\), \d+ closed for an unfinished frame, [1-9]\d* for the unfinished-bytes budget/, stderr);
  // Held spans are capped per user (16,384), unfinished frames at 32 MiB: within what the limits allow on top of an idle daemon.
  assert.ok(peakMb - idleMb < boundMb, `the daemon grew by ${(peakMb - idleMb).toFixed(0)} MB, over the ${boundMb} MB its limits allow (idle ${idleMb.toFixed(0)} MB, peak ${peakMb.toFixed(0)} MB)`);
  t.diagnostic(`daemon RSS: idle ${idleMb.toFixed(0)} MB, peak under the flood ${peakMb.toFixed(0)} MB; its limits allow ${boundMb} MB on top of idle`);
});
