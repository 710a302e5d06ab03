// The sidecar end to end on the real kernel: an agent using @agentrace/sdk
// connects over the real socket; its tool calls' opens, connects and child
// processes come out of the OTLP file under the right tool spans.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Sidecar, createExporters, resolveOtlpConfig } from '@agentrace/sidecar';
import { FrameDecoder, type ErrorMessage, type Message } from '@agentrace/protocol';
import { requireBpf } from './support/bpf.js';
import { requireBothNodes, runtimes } from './support/runtimes.js';
import { Actor } from './support/actor.js';
import { startDnsServer, type DnsServer } from './support/dns-server.js';
import { ancestry, readOtlpFile, type FlatSpan } from './support/otlp.js';

const agentScript = fileURLToPath(new URL('./fixtures/tool-agent.mjs', import.meta.url));

let dir: string;
let tcp: net.Server;
let tcpPort: number;
let dnsServer: DnsServer;
const children: Array<{ kill: () => void }> = [];
/** Every sidecar started, stopped at the end even when its test failed midway (one left serving would keep this file from exiting). */
const sidecars: Sidecar[] = [];

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-sidecar-'));
  tcp = net.createServer((s) => s.destroy()).listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  tcpPort = (tcp.address() as net.AddressInfo).port;
  dnsServer = await startDnsServer();
});

after(async () => {
  await Promise.all(sidecars.map((s) => s.stop()));
  for (const c of children) c.kill();
  tcp.close();
  dnsServer?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function startSidecar(name: string): Promise<{ sidecar: Sidecar; socketPath: string; file: string }> {
  const socketPath = path.join(dir, `${name}.sock`);
  const file = path.join(dir, `${name}.jsonl`);
  const exporters = createExporters(resolveOtlpConfig({ file }, {}));
  const sidecar = await Sidecar.start({ socketPath, exporters, log: () => {} });
  sidecars.push(sidecar);
  return { sidecar, socketPath, file };
}


const lookupName = `svc-${randomBytes(4).toString('hex')}.agentrace.test`;

/** Runs the agent with a private /etc/hosts, so its lookups never leave the machine. */
async function runAgent(socketPath: string, plan: object, node = process.execPath): Promise<number | null> {
  const hosts = path.join(dir, 'hosts');
  fs.writeFileSync(hosts, `127.0.0.1 localhost\n127.0.0.9 ${lookupName}\n`);
  const full = { lookupName, resolveName: `r-${lookupName}`, asyncPath: uniqueFile('async'), ...plan };
  const script = 'mount --bind "$0" /etc/hosts && exec "$@"';
  const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, hosts, node, agentScript, JSON.stringify(full)], {
    env: { ...process.env, AGENTRACE_SOCKET: socketPath },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push({ kill: () => child.exitCode === null && child.kill('SIGKILL') });
  const [code] = (await once(child, 'exit')) as [number | null];
  return code;
}

function uniqueFile(tag: string): string {
  const f = path.join(dir, `${tag}-${randomBytes(4).toString('hex')}.txt`);
  fs.writeFileSync(f, `${tag}\n`);
  return f;
}

function toolSpan(spans: FlatSpan[], tool: string): FlatSpan {
  const s = spans.find((x) => x.name === `execute_tool ${tool}`);
  assert.ok(s, `no span "execute_tool ${tool}" among ${spans.map((x) => x.name).join(', ')}`);
  return s;
}

function assertUnder(span: FlatSpan | undefined, tool: FlatSpan, spans: FlatSpan[], what: string): void {
  assert.ok(span, `${what}: no such span`);
  assert.equal(span.traceId, tool.traceId, `${what}: same trace as its tool`);
  const chain = ancestry(span, spans).map((s) => s.spanId);
  assert.ok(chain.includes(tool.spanId), `${what}: ${span.name} is not under ${tool.name}`);
  for (const other of spans.filter((s) => s.name.startsWith('execute_tool') && s !== tool)) {
    assert.ok(!chain.includes(other.spanId), `${what}: also under ${other.name}`);
  }
}

test('the agent runs on Node 20 and Node 24 (in CI)', (t) => requireBothNodes(t));

for (const [runtime, node] of runtimes) for (const parallel of [false, true]) {
  test(`each tool call's opens (sync and threadpool), connect, name lookup, DNS query and child process are exported under it (${parallel ? 'parallel' : 'sequential'} calls, agent on ${runtime})`, async (t) => {
    if (!requireBpf(t)) return;
    const { sidecar, socketPath, file } = await startSidecar(`${parallel ? 'parallel' : 'sequential'}-${runtime.replace(/\W+/g, '')}`);
    const openPath = uniqueFile('open');
    const shellFile = uniqueFile('shell');
    let code: number | null;
    try {
      code = await runAgent(socketPath, { openPath, connectPort: tcpPort, shellFile, parallel }, node);
      await sidecar.settle(2000);
    } finally {
      await sidecar.stop();
    }
    assert.equal(code, 0, 'the agent ran');
    const spans = readOtlpFile(file);

    const openTool = toolSpan(spans, 'open_file');
    assert.equal(openTool.kind, 1, 'INTERNAL');
    assert.equal(openTool.attributes['gen_ai.operation.name'], 'execute_tool');
    assert.equal(openTool.attributes['gen_ai.tool.name'], 'open_file');
    assert.equal(openTool.attributes['gen_ai.tool.call.id'], 'call-open');
    const open = spans.find((s) => s.attributes['file.path'] === openPath);
    assertUnder(open, openTool, spans, 'the open');
    assert.equal(open!.parentSpanId, openTool.spanId);
    assert.equal(open!.resource['service.name'] !== undefined, true, 'kernel spans carry the agent resource');

    const connectTool = toolSpan(spans, 'connect_tcp');
    const connect = spans.find((s) => s.attributes['network.peer.port'] === tcpPort);
    assertUnder(connect, connectTool, spans, 'the connect');
    assert.equal(connect!.kind, 3, 'CLIENT');
    assert.equal(connect!.attributes['network.peer.address'], '127.0.0.1');
    assert.equal(connect!.attributes['network.transport'], 'tcp');
    assert.ok(['ok', 'in_progress'].includes(connect!.attributes['agentrace.connect.result'] as string));

    const lookupTool = toolSpan(spans, 'lookup_name');
    const lookup = spans.find((s) => s.attributes['dns.question.name'] === lookupName);
    assertUnder(lookup, lookupTool, spans, 'the name lookup');
    assert.equal(lookup!.parentSpanId, lookupTool.spanId);
    assert.equal(lookup!.attributes['agentrace.dns.result'], 'ok');
    assert.equal(lookup!.attributes['agentrace.attribution'], 'work', 'getaddrinfo ran on the threadpool');

    const resolveTool = toolSpan(spans, 'resolve_name');
    const query = spans.find((s) => s.attributes['dns.question.name'] === `r-${lookupName}`);
    assertUnder(query, resolveTool, spans, 'the DNS query to port 53');
    assert.equal(query!.attributes['network.transport'], 'udp');
    assert.equal(query!.attributes['agentrace.dns.question.type'], 'A');

    const asyncTool = toolSpan(spans, 'read_async');
    const asyncOpen = spans.find((s) => s.name === 'open' && String(s.attributes['file.path']).includes('/async-'));
    assertUnder(asyncOpen, asyncTool, spans, 'the fs.promises open');
    assert.equal(asyncOpen!.attributes['agentrace.attribution'], 'work');

    const shellTool = toolSpan(spans, 'run_shell');
    const sh = spans.find((s) => s.attributes['process.executable.path'] === '/bin/sh');
    assertUnder(sh, shellTool, spans, 'the shell process');
    assert.deepEqual(sh!.attributes['process.command_args'], ['/bin/sh', '-c', `cat ${shellFile}; exit 0`]);
    assert.equal(sh!.attributes['process.exit.code'], 0);
    const catOpen = spans.find((s) => s.attributes['file.path'] === shellFile);
    assertUnder(catOpen, shellTool, spans, "the shell's child's open");
    const cat = spans.find((s) => s.spanId === catOpen!.parentSpanId);
    assert.match(String(cat?.attributes['process.executable.path']), /\/cat$/, 'the open hangs under the cat process span');
    // cat's loader and locale opens are counted on its span, the libraries it
    // loaded listed; none is a span of its own.
    assert.ok(Number(cat!.attributes['agentrace.process.runtime_opens']) >= 2, `cat's runtime opens are counted: ${JSON.stringify(cat!.attributes)}`);
    assert.ok((cat!.attributes['agentrace.process.libraries'] as string[]).some((l) => /\/libc\.so\.6$/.test(l)), 'libc is among the libraries cat loaded');
    const underCat = spans.filter((s) => s.parentSpanId === cat!.spanId && s.name === 'open').map((s) => String(s.attributes['file.path']));
    assert.deepEqual(underCat, [shellFile], 'the only open span under cat is the file it was asked to read');

    for (const s of spans.filter((x) => !x.name.startsWith('execute_tool'))) {
      const parent = spans.find((p) => p.spanId === s.parentSpanId);
      assert.ok(parent, `${s.name} has its parent in the export`);
      assert.equal(s.traceId, parent.traceId, `${s.name} is in its parent's trace`);
    }
  });
}

test('nothing is exported from a process that is not traced', async (t) => {
  if (!requireBpf(t)) return;
  const { sidecar, socketPath, file } = await startSidecar('untraced');
  const quiet = await Actor.start();
  children.push(quiet);
  const secret = uniqueFile('untraced');
  try {
    await quiet.do({ op: 'open', path: secret });
    await quiet.do({ op: 'connect', host: '127.0.0.1', port: tcpPort });
    await quiet.do({ op: 'spawn', file: '/bin/sh', args: ['-c', `cat ${secret} >/dev/null`] });
    // A traced agent runs after it, so the export is known to be complete.
    assert.equal(await runAgent(socketPath, { openPath: uniqueFile('o'), connectPort: tcpPort, shellFile: uniqueFile('s'), parallel: false }), 0);
    await sidecar.settle(2000);
  } finally {
    await quiet.exit(0);
    await sidecar.stop();
  }
  const spans = readOtlpFile(file);
  assert.ok(spans.some((s) => s.name === 'execute_tool open_file'), 'the traced agent was exported');
  assert.deepEqual(spans.filter((s) => s.attributes['process.pid'] === quiet.pid), []);
  assert.deepEqual(spans.filter((s) => s.attributes['file.path'] === secret), []);
});

test('a client cannot announce spans for, or tag, another process', async (t) => {
  if (!requireBpf(t)) return;
  const { sidecar, socketPath, file } = await startSidecar('trust');
  const victim = await Actor.start();
  const mallory = await Actor.start();
  children.push(victim, mallory);
  const span = (): { trace: string; span: string } => ({ trace: randomBytes(16).toString('hex'), span: randomBytes(8).toString('hex') });
  const start = (ids: { trace: string; span: string }, tid: number) => ({
    t: 'start',
    tid,
    ...ids,
    name: 'execute_tool x',
    kind: 1,
    start: [Math.floor(Date.now() / 1000), 0],
    attrs: {},
    flags: 1,
    export: true,
  });
  const secret = uniqueFile('forged');
  try {
    for (const a of [victim, mallory]) {
      assert.equal((await a.do({ op: 'sidecarConnect', path: socketPath })).ok, true);
      const hello = await a.do({ op: 'sidecarSend', frame: { t: 'hello', sdk: 'test', runtime: 'node', resource: { 'service.name': 'test' } }, waitFor: 'welcome' });
      assert.deepEqual(hello.received?.map((m) => [m.t, m.pid]), [['welcome', a.pid]], 'welcome carries the kernel-verified pid');
    }

    // Mallory announces a span on one of the victim's threads: refused.
    const onVictim = await mallory.do({ op: 'sidecarSend', frame: start(span(), victim.pid), waitFor: 'error' });
    assert.equal(onVictim.received?.[0]?.code, 'EPERM');
    assert.match(onVictim.received?.[0]?.message ?? '', /not a thread of process/);

    // The victim announces a span; mallory cannot re-announce it as hers.
    const victims = span();
    const ok = await victim.do({ op: 'sidecarSend', frame: start(victims, victim.pid) });
    assert.deepEqual(ok.received, []);
    const hijack = await mallory.do({ op: 'sidecarSend', frame: start(victims, mallory.pid), waitFor: 'error' });
    assert.equal(hijack.received?.[0]?.code, 'EPERM');

    // Mallory publishes the victim's span in her own thread slot and opens a
    // file: the kernel attributes it to that span, the sidecar refuses it.
    await mallory.do({ op: 'slotRegister' });
    await mallory.do({ op: 'slotSet', traceId: victims.trace, spanId: victims.span });
    await mallory.do({ op: 'open', path: secret });
    await sidecar.settle(300);
    const stats = sidecar.stats();
    assert.ok(stats.attribution.refused >= 1, `refused ${stats.attribution.refused}`);
    assert.ok(stats.spansRefused >= 2);
  } finally {
    await victim.exit(0);
    await mallory.exit(0);
    await sidecar.stop();
  }
  const spans = readOtlpFile(file);
  assert.deepEqual(spans.filter((s) => s.attributes['file.path'] === secret), [], 'the forged open was not exported');
  assert.deepEqual(spans.filter((s) => s.attributes['process.pid'] === mallory.pid), []);
});

test('a span grafted into another process’s trace is marked; propagation within a process and context from outside are not', async (t) => {
  if (!requireBpf(t)) return;
  fs.chmodSync(dir, 0o755); // mallory is any local user: she reaches the socket and her file
  const { sidecar, socketPath, file } = await startSidecar('graft');
  const victim = await Actor.start();
  const mallory = await Actor.start({ uid: 65534 });
  children.push(victim, mallory);
  const now = (): [number, number] => [Math.floor(Date.now() / 1000), 0];
  const id = (n: number): string => randomBytes(n).toString('hex');
  const start = (pid: number, trace: string, span: string, name: string, parent?: string) => ({
    t: 'start', tid: pid, trace, span, ...(parent ? { parent } : {}), name: `execute_tool ${name}`, kind: 0, start: now(),
    attrs: { 'gen_ai.tool.name': name, 'agentrace.parent.unverified': false }, flags: 1, export: true,
  });
  const end = (span: string) => ({ t: 'end', span, end: now(), status: { code: 0 } });
  /** Announces a span, runs an open under it (thread slot), ends it. */
  const call = async (a: Actor, trace: string, span: string, name: string, parent?: string): Promise<string> => {
    const f = uniqueFile(name);
    assert.deepEqual((await a.do({ op: 'sidecarSend', frame: start(a.pid, trace, span, name, parent) })).received, []);
    await a.do({ op: 'slotSet', traceId: trace, spanId: span });
    assert.equal((await a.do({ op: 'open', path: f })).ok, true);
    await a.do({ op: 'slotClear' });
    return f;
  };
  const trace = id(16);
  const [v, c, m1, m2, own, outside] = [id(8), id(8), id(8), id(8), id(8), id(8)];
  const ownTrace = id(16);
  const files: Record<string, string> = {};
  try {
    for (const a of [victim, mallory]) {
      assert.equal((await a.do({ op: 'sidecarConnect', path: socketPath })).ok, true);
      await a.do({ op: 'sidecarSend', frame: { t: 'hello', sdk: 'test', runtime: 'node', resource: { 'service.name': 'victim-agent', 'process.pid': 1 } }, waitFor: 'welcome' });
      await a.do({ op: 'slotRegister' });
    }
    // The victim's call, and a call it nests under it (propagation within one process).
    files.v = await call(victim, trace, v, 'victim_tool');
    files.c = await call(victim, trace, c, 'nested_tool', v);
    // Mallory, as nobody: a span under the victim's live call, and one in its trace under a span she never saw announced.
    files.m1 = await call(mallory, trace, m1, 'victim_tool', v);
    files.m2 = await call(mallory, trace, m2, 'victim_tool', id(8));
    // Her own trace, nested under her own span; and a trace nobody here announced (context from outside).
    files.own = await call(mallory, ownTrace, own, 'own_tool');
    files.outside = await call(mallory, id(16), outside, 'outside_tool', id(8));
    for (const [a, s] of [[victim, c], [victim, v], [mallory, m1], [mallory, m2], [mallory, own], [mallory, outside]] as const) {
      assert.deepEqual((await a.do({ op: 'sidecarSend', frame: end(s) })).received, []);
    }
    await sidecar.settle(300);
  } finally {
    await victim.exit(0);
    await mallory.exit(0);
    await sidecar.stop();
  }
  const spans = readOtlpFile(file);
  const marked = (s: FlatSpan | undefined): unknown => s?.attributes['agentrace.parent.unverified'];
  const tool = (spanId: string): FlatSpan | undefined => spans.find((s) => s.spanId === spanId);
  const openOf = (f: string): FlatSpan | undefined => spans.find((s) => s.name === 'open' && s.attributes['file.path'] === f);
  for (const [key, spanId, graft] of [['v', v, false], ['c', c, false], ['m1', m1, true], ['m2', m2, true], ['own', own, false], ['outside', outside, false]] as const) {
    const span = tool(spanId);
    const open = openOf(files[key]!);
    assert.ok(span, `${key}: its tool span was exported`);
    assert.ok(open, `${key}: its open was exported`);
    assert.equal(open.parentSpanId, spanId, `${key}: the open hangs under its call`);
    assert.equal(marked(span), graft ? true : undefined, `${key}: tool span marked ${graft}`);
    assert.equal(marked(open), graft ? true : undefined, `${key}: open marked ${graft}`);
  }
  // Who announced it is the kernel's word: the victim's name, but mallory's pid and uid.
  const m = tool(m1)!;
  assert.equal(m.resource['service.name'], 'victim-agent');
  assert.equal(m.resource['process.pid'], mallory.pid);
  assert.equal(m.resource['process.user.id'], 65534);
});

test('a malformed frame closes that connection only', async (t) => {
  if (!requireBpf(t)) return;
  const { sidecar, socketPath } = await startSidecar('malformed');
  try {
    const bad = net.connect(socketPath);
    await once(bad, 'connect');
    const replies: Message[] = [];
    const decoder = new FrameDecoder();
    bad.on('data', (chunk: Buffer) => replies.push(...decoder.push(chunk)));
    bad.write(Buffer.from([0, 0, 0, 3, 1, 0xc1, 0xc1])); // version 1, body not msgpack
    await once(bad, 'close');
    assert.equal(replies.length, 1);
    assert.equal(replies[0]?.t, 'error');
    assert.equal((replies[0] as ErrorMessage).code, 'EBADMSG', 'the sidecar says why before closing');
    const good = net.connect(socketPath);
    await once(good, 'connect');
    good.destroy();
    assert.equal(sidecar.stats().socket.protocolErrors, 1);
  } finally {
    await sidecar.stop();
  }
});
