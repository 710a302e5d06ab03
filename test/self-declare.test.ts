// Self-declaration (issue 10): the SDK's first slot registration makes a
// process nobody tracked yet traced from that very write, before any
// round trip on the socket. A process that never says hello is forgotten
// after a grace period, and counted; and declaring itself gives a process
// no way to put its activity under a span another process announced.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Sidecar, createExporters, resolveOtlpConfig, resolveOtlpMetricsConfig, type SidecarOptions } from '@agentrace/sidecar';
import { requireBpf } from './support/bpf.js';
import { Actor } from './support/actor.js';
import { readOtlpFile, readOtlpSums } from './support/otlp.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-declare-'));
const actors: Actor[] = [];
after(() => {
  for (const a of actors) a.kill();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function startActor(): Promise<Actor> {
  const a = await Actor.start();
  actors.push(a);
  return a;
}

async function startSidecar(name: string, extra: Partial<SidecarOptions> = {}): Promise<{ sidecar: Sidecar; socketPath: string; file: string; log: string[] }> {
  const socketPath = path.join(dir, `${name}.sock`);
  const file = path.join(dir, `${name}.jsonl`);
  const log: string[] = [];
  const traces = resolveOtlpConfig({ file }, {});
  const exporters = createExporters(traces);
  const metrics = resolveOtlpMetricsConfig({ file }, {}, traces);
  const sidecar = await Sidecar.start({ socketPath, exporters, metrics, log: (l) => log.push(l), ...extra });
  return { sidecar, socketPath, file, log };
}

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function file(tag: string): string {
  const f = path.join(dir, `${tag}-${randomBytes(4).toString('hex')}.txt`);
  fs.writeFileSync(f, `${tag}\n`);
  return f;
}

test('a process that registers a slot is traced from that write; one that never says hello is forgotten, and counted', async (t) => {
  if (!requireBpf(t)) return;
  const { sidecar, log } = await startSidecar('forget', { selfDeclaredGraceMs: 400 });
  t.after(() => sidecar.stop());
  const actor = await startActor();
  const unattributed = (): number => sidecar.stats().attribution.unattributed;

  // Not traced yet: its opens reach nobody.
  await actor.do({ op: 'open', path: file('before') });
  await sidecar.flush();
  assert.equal(unattributed(), 0, 'an untracked process is not traced');

  await actor.do({ op: 'slotRegister' });
  await until('the declaration', () => sidecar.stats().probes.declared === 1n);
  // Traced from that write on (no call runs in it, so its opens are unattributed).
  await actor.do({ op: 'open', path: file('declared') });
  await until('its open', () => {
    void sidecar.flush();
    return unattributed() >= 1;
  });

  // It never says hello: after the grace period it is forgotten, and counted.
  await until('the process to be forgotten', () => sidecar.stats().selfDeclaredForgotten === 1, 5000);
  assert.match(log.join('\n'), new RegExp(`pid ${actor.pid} \\(node actor\\.mjs\\) registered a thread slot but said no hello`));
  const after = unattributed();
  for (let i = 0; i < 5; i++) await actor.do({ op: 'open', path: file('forgotten') });
  await new Promise((r) => setTimeout(r, 200));
  await sidecar.flush();
  assert.equal(unattributed(), after, 'a forgotten process is traced no more');

  await sidecar.stop();
  assert.match(log.join('\n'), /1 self-declared processes forgotten \(no hello\)/, 'the shutdown line counts it');
});

test('a process that says hello after declaring itself is confirmed, not forgotten', async (t) => {
  if (!requireBpf(t)) return;
  const { sidecar, socketPath } = await startSidecar('confirm', { selfDeclaredGraceMs: 300 });
  t.after(() => sidecar.stop());
  const actor = await startActor();
  await actor.do({ op: 'slotRegister' });
  await until('the declaration', () => sidecar.stats().probes.declared === 1n);
  assert.equal((await actor.do({ op: 'sidecarConnect', path: socketPath })).ok, true);
  const hello = await actor.do({ op: 'sidecarSend', frame: { t: 'hello', sdk: 'test', runtime: 'node', resource: {} }, waitFor: 'welcome' });
  assert.equal(hello.received?.[0]?.t, 'welcome');
  await new Promise((r) => setTimeout(r, 900));
  assert.equal(sidecar.stats().selfDeclaredForgotten, 0);
  await actor.do({ op: 'open', path: file('confirmed') });
  const before = sidecar.stats().attribution.unattributed;
  await actor.do({ op: 'open', path: file('confirmed') });
  await until('its open, still traced', () => {
    void sidecar.flush();
    return sidecar.stats().attribution.unattributed > before;
  });
});

test("declaring itself lets a process attribute nothing to another process's span", async (t) => {
  if (!requireBpf(t)) return;
  const { sidecar, socketPath, file: otlp } = await startSidecar('forge');
  const victim = await startActor();
  const attacker = await startActor();
  const trace = randomBytes(16).toString('hex');
  const span = randomBytes(8).toString('hex');

  // The victim announces a call of its own, over the socket.
  assert.equal((await victim.do({ op: 'sidecarConnect', path: socketPath })).ok, true);
  await victim.do({ op: 'sidecarSend', frame: { t: 'hello', sdk: 'test', runtime: 'node', resource: { 'service.name': 'victim' } }, waitFor: 'welcome' });
  await victim.do({
    op: 'sidecarSend',
    frame: { t: 'start', tid: victim.pid, trace, span, name: 'execute_tool victim_tool', kind: 0, start: [Math.floor(Date.now() / 1000), 0], attrs: {}, flags: 1, export: true },
  });

  // The attacker declares itself and puts the victim's span in its own slot.
  await attacker.do({ op: 'slotRegister' });
  await attacker.do({ op: 'slotSet', traceId: trace, spanId: span });
  const forged = file('forged');
  await attacker.do({ op: 'open', path: forged });
  await until('the forged event to be refused', () => {
    void sidecar.flush();
    return sidecar.stats().attribution.refused >= 1;
  });
  assert.equal(sidecar.stats().probes.declared, 1n, 'only the attacker declared itself');

  await victim.do({ op: 'sidecarSend', frame: { t: 'end', span, end: [Math.floor(Date.now() / 1000) + 1, 0], status: { code: 0 } } });
  await new Promise((r) => setTimeout(r, 100));
  await sidecar.stop();
  const spans = readOtlpFile(otlp);
  assert.ok(spans.some((s) => s.spanId === span), 'the victim’s span is exported');
  assert.deepEqual(
    spans.filter((s) => s.attributes['file.path'] === forged).map((s) => s.parentSpanId),
    [],
    'nothing the attacker did is under the victim’s span',
  );
});

test('kernel events whose call is never announced wait, then count as dropped (unmatched): metric and shutdown line', async (t) => {
  if (!requireBpf(t)) return;
  const { sidecar, file: otlp, log } = await startSidecar('unmatched', { unmatchedTtlMs: 300 });
  t.after(() => sidecar.stop());
  const actor = await startActor();
  await actor.do({ op: 'slotRegister' });
  // A call the agent never announces (its start frame never comes).
  await actor.do({ op: 'slotSet', traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex') });
  for (let i = 0; i < 3; i++) await actor.do({ op: 'open', path: file('never-announced') });
  await actor.do({ op: 'slotClear' });
  await until('the events to wait for their call', () => {
    void sidecar.flush();
    return sidecar.stats().attribution.pending >= 3;
  });
  await until('them to be dropped as unmatched', () => sidecar.stats().attribution.expired >= 3, 3000);
  await sidecar.stop();
  const dropped = readOtlpSums(otlp).get('agentrace.events.dropped{agentrace.drop.reason=unmatched}');
  assert.equal(dropped, sidecar.stats().attribution.expired, 'the metric counts them');
  assert.match(log.join('\n'), new RegExp(`${sidecar.stats().attribution.expired} unmatched \\(their span was never announced\\)`));
});

test("a killed agent's descriptors leave the kernel with it (the ones it never closed)", async (t) => {
  if (!requireBpf(t)) return;
  const { sidecar, socketPath } = await startSidecar('killed');
  t.after(() => sidecar.stop());
  const actor = await startActor();
  // Its connection to the sidecar is a socket it connected: the kernel keeps an entry for it.
  assert.equal((await actor.do({ op: 'sidecarConnect', path: socketPath })).ok, true);
  await actor.do({ op: 'sidecarSend', frame: { t: 'hello', sdk: 'test', runtime: 'node', resource: {} }, waitFor: 'welcome' });
  await actor.do({ op: 'sidecarConnect', path: socketPath }); // tracked now: this one is remembered
  const entriesOf = (pid: number): number => {
    type Entry = { formatted?: { key?: { tgid?: number } } };
    // One map: its entries; several of that name (another sidecar's too): one object each.
    const dump = JSON.parse(execFileSync('bpftool', ['-j', 'map', 'dump', 'name', 'ar_fd_spans'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })) as Array<Entry & { elements?: Entry[] }>;
    return dump.flatMap((e) => e.elements ?? [e]).filter((e) => e.formatted?.key?.tgid === pid).length;
  };
  assert.ok(entriesOf(actor.pid) >= 1, 'the kernel keeps its socket');
  actor.kill(); // SIGKILL: nothing is closed by the process itself... the kernel closes, no close(2) runs
  await until('its entries to be swept', () => sidecar.stats().descriptorsForgotten >= 1, 6000);
  assert.equal(entriesOf(actor.pid), 0);
});

test("the resource's identity is the kernel's: a client's claims to pid, user, executable or container are replaced", async (t) => {
  if (!requireBpf(t)) return;
  const { sidecar, socketPath, file: otlp } = await startSidecar('identity');
  const actor = await startActor();
  const claims = {
    'service.name': 'mine',
    'process.pid': 1,
    'process.user.id': 4242,
    'process.executable.path': '/usr/bin/innocent',
    'process.command_line': 'innocent --flag',
    'container.id': 'f'.repeat(64),
  };
  assert.equal((await actor.do({ op: 'sidecarConnect', path: socketPath })).ok, true);
  await actor.do({ op: 'sidecarSend', frame: { t: 'hello', sdk: 'test', runtime: 'node', resource: claims }, waitFor: 'welcome' });
  const span = randomBytes(8).toString('hex');
  const now = Math.floor(Date.now() / 1000);
  await actor.do({ op: 'sidecarSend', frame: { t: 'start', tid: actor.pid, trace: randomBytes(16).toString('hex'), span, name: 'execute_tool t', kind: 0, start: [now, 0], attrs: {}, flags: 1, export: true } });
  await actor.do({ op: 'sidecarSend', frame: { t: 'end', span, end: [now + 1, 0], status: { code: 0 } } });
  await new Promise((r) => setTimeout(r, 100));
  await sidecar.stop();
  const exported = readOtlpFile(otlp).find((s) => s.spanId === span);
  assert.ok(exported, 'the span is exported');
  const r = exported.resource;
  assert.equal(r['service.name'], 'mine', 'what is not identity is the client’s to say');
  assert.equal(r['process.pid'], actor.pid);
  assert.equal(r['process.user.id'], process.getuid!());
  assert.equal(r['process.executable.path'], fs.realpathSync(process.execPath));
  assert.equal(r['process.command_line'], undefined);
  assert.equal(r['container.id'], undefined, 'not in a container: no container id, and not the claimed one');
  actor.kill();
});

test('a hello read after its process exited brings its spans, but tracks nothing (its pid may be someone else’s by then)', async (t) => {
  if (!requireBpf(t)) return;
  const { sidecar, socketPath, file: otlp } = await startSidecar('late-hello');
  t.after(() => sidecar.stop());
  // A short-lived agent: connects, writes its hello and one call, and exits
  // (without waiting for the sidecar to close its end: it cannot, yet).
  // execFileSync blocks this process (the sidecar's) until it has: the
  // kernel holds the connection and its bytes, and the sidecar reads them
  // only afterwards.
  const script = `import net from 'node:net';
    import { randomBytes } from 'node:crypto';
    import { encodeFrame } from '@agentrace/protocol';
    const now = () => [Math.floor(Date.now() / 1000), 0];
    const span = randomBytes(8);
    const s = net.connect(process.argv[1], () => {
      s.end(Buffer.concat([
        encodeFrame({ t: 'hello', sdk: 'test', runtime: 'node', resource: { 'service.name': 'short-lived' } }),
        encodeFrame({ t: 'start', tid: process.pid, trace: randomBytes(16), span, name: 'execute_tool quick', kind: 0, start: now(), attrs: {}, flags: 1, export: true }),
        encodeFrame({ t: 'end', span, end: now(), status: { code: 0 } }),
      ]), () => process.stdout.write(String(process.pid), () => process.exit(0)));
    });`;
  const pid = Number(execFileSync(process.execPath, ['--input-type=module', '-e', script, socketPath], { cwd: fileURLToPath(new URL('..', import.meta.url)), encoding: 'utf8' }));
  assert.ok(pid > 0);
  await until('the late hello to be read', () => sidecar.stats().helloAfterExit >= 1);
  // A live agent beside it, whose hello does track it: the map is read right.
  const live = await startActor();
  await live.do({ op: 'sidecarConnect', path: socketPath });
  await live.do({ op: 'sidecarSend', frame: { t: 'hello', sdk: 'test', runtime: 'node', resource: {} }, waitFor: 'welcome' });
  // The kernel keeps 15 characters of a map's name: ar_tracked_procs is ar_tracked_proc (one per loaded sidecar).
  const maps = (JSON.parse(execFileSync('bpftool', ['-j', 'map', 'show'], { encoding: 'utf8' })) as Array<{ id: number; name?: string }>).filter((m) => m.name === 'ar_tracked_proc');
  assert.ok(maps.length >= 1, 'the tracked-process map is found');
  type Entry = { formatted?: { key?: number } };
  const keys = maps.flatMap((m) => (JSON.parse(execFileSync('bpftool', ['-j', 'map', 'dump', 'id', String(m.id)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })) as Entry[]).map((e) => e.formatted?.key));
  assert.ok(keys.includes(live.pid), `the live agent ${live.pid} is tracked (entries: ${keys.join(', ')})`);
  assert.ok(!keys.includes(pid), `pid ${pid} is not tracked`);
  await sidecar.stop();
  const spans = readOtlpFile(otlp).filter((s) => s.name === 'execute_tool quick');
  assert.equal(spans.length, 1, 'its call is exported');
  assert.equal(spans[0]!.resource['process.pid'], pid);
});
