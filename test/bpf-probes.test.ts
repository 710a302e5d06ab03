// The kernel package against the real kernel: tracked processes' opens,
// connects, execs and exits arrive decoded; children inherit their span;
// untracked processes are invisible; groups detach and re-attach live.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import {
  AttrSource,
  HIST_BUCKETS,
  Probes,
  type ProbesOptions,
  type FileOpenEvent,
  type KernelEvent,
  type NetConnectEvent,
  type ProcExecEvent,
  type ProcExitEvent,
  type ProcForkEvent,
  type DnsLookupEvent,
  type DnsQueryEvent,
  type SpanRef,
} from '@agentrace/bpf';
import { Actor } from './support/actor.js';
import { startDnsServer } from './support/dns-server.js';
import { EventLog, requireBpf, takeSummaries } from './support/bpf.js';

const isOpen = (p: string) => (e: KernelEvent): e is FileOpenEvent => e.kind === 'file.open' && e.path === p;
const isExit = (pid: number) => (e: KernelEvent): e is ProcExitEvent => e.kind === 'proc.exit' && e.pid === pid;
const newSpan = (): SpanRef => ({ traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex') });

let dir: string;
let tcp: net.Server;
let tcpPort: number;
let tcp6: net.Server | undefined;
let tcp6Port = 0;
let unixServer: net.Server;
let unixPath: string;
const actors: Actor[] = [];

async function startActor(): Promise<Actor> {
  const a = await Actor.start();
  actors.push(a);
  return a;
}

/** Loads the probes (closed when the test ends) and attaches every group. */
function loadProbes(t: { after: (fn: () => void) => void }, options: ProbesOptions = {}): Probes {
  const probes = Probes.load(options);
  t.after(() => probes.close());
  probes.attach('all');
  return probes;
}

function withProbes(t: { after: (fn: () => void) => void }): { probes: Probes; log: EventLog } {
  const probes = loadProbes(t);
  return { probes, log: new EventLog(probes) };
}

/** A new empty file in the test directory. */
function emptyFile(tag: string): string {
  const file = path.join(dir, `${tag}-${randomBytes(4).toString('hex')}`);
  fs.writeFileSync(file, '');
  return file;
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-bpf-'));
  tcp = net.createServer((s) => s.destroy()).listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  tcpPort = (tcp.address() as net.AddressInfo).port;
  try {
    tcp6 = net.createServer((s) => s.destroy()).listen(0, '::1');
    await once(tcp6, 'listening');
    tcp6Port = (tcp6.address() as net.AddressInfo).port;
  } catch {
    tcp6 = undefined; // no IPv6 loopback here; the IPv6 case says so below
  }
  unixPath = path.join(dir, 'peer.sock');
  unixServer = net.createServer((s) => s.destroy()).listen(unixPath);
  await once(unixServer, 'listening');
});

after(() => {
  for (const a of actors) a.kill();
  tcp.close();
  tcp6?.close();
  unixServer.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a tracked process: open, connect, exec and exit arrive decoded with the right fields', async (t) => {
  if (!requireBpf(t)) return;
  const { probes, log } = withProbes(t);
  const actor = await startActor();
  const span = newSpan();
  probes.track(actor.pid);
  probes.setThreadSpan(actor.pid, actor.pid, span);

  const file = path.join(dir, `open-${randomBytes(4).toString('hex')}`);
  fs.writeFileSync(file, 'x');
  const missing = path.join(dir, 'does-not-exist');
  assert.deepEqual(await actor.do({ op: 'open', path: file }), { ok: true });
  assert.deepEqual(await actor.do({ op: 'open', path: missing }), { ok: false, code: 'ENOENT' });
  assert.equal((await actor.do({ op: 'connect', host: '127.0.0.1', port: tcpPort })).ok, true);
  assert.equal((await actor.do({ op: 'connect', path: unixPath })).ok, true);
  if (tcp6) assert.equal((await actor.do({ op: 'connect', host: '::1', port: tcp6Port })).ok, true);
  assert.equal((await actor.do({ op: 'spawn', file: '/bin/sh', args: ['-c', 'exit 3'] })).status, 3);
  await actor.exit(5);

  const open = await log.waitFor(isOpen(file), 'the open of the file');
  assert.equal(open.pid, actor.pid);
  assert.equal(open.tid, actor.pid);
  // the actor runs on this Node; Node 24 names its main thread MainThread, older ones leave the binary's name
  assert.equal(open.comm, Number(process.versions.node.split('.')[0]) >= 24 ? 'MainThread' : 'node');
  assert.ok(open.ret >= 0, `open returned ${open.ret}`);
  assert.equal(open.flags & 3, fs.constants.O_RDONLY);
  assert.deepEqual(open.span, span);
  assert.equal(open.attrSource, AttrSource.Thread);
  assert.ok(open.latencyNs > 0n);
  const wallMs = Number(probes.toEpochNs(open.tsNs) / 1_000_000n);
  assert.ok(Math.abs(wallMs - Date.now()) < 60_000, `event time ${new Date(wallMs).toISOString()} is not now`);

  const failed = await log.waitFor(isOpen(missing), 'the failed open');
  assert.equal(failed.ret, -2, 'ENOENT is -2');

  const connects = log.of(actor.pid).filter((e): e is NetConnectEvent => e.kind === 'net.connect');
  const v4 = connects.find((e) => e.peer.family === 'inet');
  assert.ok(v4, `no IPv4 connect among ${JSON.stringify(connects.map((c) => c.peer))}`);
  assert.deepEqual(v4.peer, { family: 'inet', address: '127.0.0.1', port: tcpPort });
  assert.ok(v4.ret === 0 || v4.ret === -115, `connect returned ${v4.ret} (0 or -EINPROGRESS expected)`);
  assert.ok(v4.fd >= 0);
  assert.equal(v4.transport, 'tcp');
  assert.deepEqual(v4.span, span);
  const ux = connects.find((e) => e.peer.family === 'unix');
  assert.deepEqual(ux?.peer, { family: 'unix', abstract: false, path: unixPath });
  assert.equal(ux?.transport, 'unix');
  assert.equal(ux?.ret, 0);
  if (tcp6) {
    const v6 = connects.find((e) => e.peer.family === 'inet6');
    assert.deepEqual(v6?.peer, { family: 'inet6', address: '::1', port: tcp6Port });
  } else {
    t.diagnostic('no IPv6 loopback on this machine: the IPv6 connect was not exercised');
  }

  const fork = log.of(actor.pid).find((e): e is ProcForkEvent => e.kind === 'proc.fork');
  assert.ok(fork, 'the fork of the child');
  const exec = await log.waitFor(
    (e): e is ProcExecEvent => e.kind === 'proc.exec' && e.pid === fork.childPid,
    'the exec of /bin/sh',
  );
  assert.equal(exec.filename, '/bin/sh');
  assert.deepEqual(exec.args, ['/bin/sh', '-c', 'exit 3']);
  assert.equal(exec.ret, 0);
  assert.deepEqual(exec.span, span);
  const childExit = await log.waitFor(isExit(fork.childPid), 'the exit of the child');
  assert.equal(childExit.exitCode, 3);
  assert.equal(childExit.signal, 0);

  const exit = await log.waitFor(isExit(actor.pid), 'the exit of the actor');
  assert.equal(exit.exitCode, 5);
  assert.equal(probes.isTracked(actor.pid), false, 'an exited process is untracked');
  assert.equal(probes.threadSpan(actor.pid, actor.pid), null, 'thread state is cleaned up at exit');
  assert.equal(probes.stats().ringbufDrops, 0n);
});

test('a child of a tracked process is tracked and inherits the span it was forked under', async (t) => {
  if (!requireBpf(t)) return;
  const { probes, log } = withProbes(t);
  const actor = await startActor();
  const span = newSpan();
  probes.track(actor.pid);
  probes.setThreadSpan(actor.pid, actor.pid, span);

  const file = path.join(dir, `child-${randomBytes(4).toString('hex')}`);
  fs.writeFileSync(file, 'y');
  // dash forks cat (it is not the last command), so cat is a grandchild.
  const r = await actor.do({ op: 'spawn', file: '/bin/sh', args: ['-c', `cat ${file} > /dev/null; exit 7`] });
  assert.equal(r.status, 7);

  const open = await log.waitFor(isOpen(file), 'the grandchild opening the file');
  assert.notEqual(open.pid, actor.pid);
  assert.equal(open.comm, 'cat');
  assert.deepEqual(open.span, span, 'the grandchild carries the span its ancestor was forked under');
  assert.equal(open.attrSource, AttrSource.Process);

  const forks = log.events.filter((e): e is ProcForkEvent => e.kind === 'proc.fork');
  const sh = forks.find((f) => f.pid === actor.pid);
  assert.ok(sh, 'the actor forked the shell');
  assert.ok(forks.some((f) => f.pid === sh.childPid && f.childPid === open.pid), 'the shell forked cat');
  assert.equal((await log.waitFor(isExit(sh.childPid), 'the shell exit')).exitCode, 7);
  await log.waitFor(isExit(open.pid), 'the cat exit');
  assert.equal(probes.isTracked(sh.childPid), false, 'exited children are untracked');
  assert.equal(probes.isTracked(open.pid), false);
  assert.equal(probes.isTracked(actor.pid), true, 'the actor is still tracked');
  await actor.exit(0);
});

test('an untracked process produces no events', async (t) => {
  if (!requireBpf(t)) return;
  const { probes, log } = withProbes(t);
  const quiet = await startActor();
  const tracked = await startActor();
  probes.track(tracked.pid);

  const file = path.join(dir, `quiet-${randomBytes(4).toString('hex')}`);
  fs.writeFileSync(file, 'z');
  await quiet.do({ op: 'open', path: file });
  await quiet.do({ op: 'connect', host: '127.0.0.1', port: tcpPort });
  await quiet.do({ op: 'spawn', file: '/bin/sh', args: ['-c', `cat ${file} > /dev/null`] });
  await quiet.exit(0);

  // The tracked actor acts after the quiet one is done: once its event is
  // here, anything the quiet one caused would be too.
  const marker = path.join(dir, 'marker');
  fs.writeFileSync(marker, '');
  await tracked.do({ op: 'open', path: marker });
  const seen = await log.waitFor(isOpen(marker), 'the tracked marker open');
  assert.equal(seen.pid, tracked.pid);
  assert.equal(seen.span, null, 'no span was set, so none is attributed');
  assert.equal(seen.attrSource, AttrSource.None);

  // Only that a node started (so that its threadpool can be hooked in time), with no span: nothing it did.
  assert.deepEqual(log.of(quiet.pid).map((e) => [e.kind, e.comm, e.span]), [['runtime.exec', 'node', null]]);
  assert.deepEqual(log.events.filter((e) => e.kind === 'file.open' && e.path === file), []);
  const foreign = log.events.filter((e) => e.pid !== tracked.pid && e.kind !== 'runtime.exec');
  assert.deepEqual(foreign, [], 'no other process\'s events');
  // The shell the quiet one spawned and its cat are no node: not even that.
  assert.ok(log.events.every((e) => e.kind !== 'runtime.exec' || e.comm.startsWith('node')));
  await tracked.exit(0);
});

test('detaching a group stops its events; re-attaching brings them back without reloading', async (t) => {
  if (!requireBpf(t)) return;
  const { probes, log } = withProbes(t);
  const actor = await startActor();
  probes.track(actor.pid);
  const files = [1, 2, 3].map((i) => path.join(dir, `toggle-${i}`));
  for (const f of files) fs.writeFileSync(f, '');
  const [f1, f2, f3] = files as [string, string, string];

  await actor.do({ op: 'open', path: f1 });
  await log.waitFor(isOpen(f1), 'the open while attached');

  probes.detach('file');
  assert.equal(probes.isAttached('file'), false);
  assert.equal(probes.isAttached('net'), true);
  await actor.do({ op: 'open', path: f2 });
  // The connect probe is still attached: its event proves the actor got past
  // the open and that the ring buffer was drained after it.
  await actor.do({ op: 'connect', host: '127.0.0.1', port: tcpPort });
  await log.waitFor((e) => e.kind === 'net.connect' && e.pid === actor.pid, 'the connect barrier');
  assert.equal(log.events.filter(isOpen(f2)).length, 0, 'no open event while the file group is detached');

  probes.attach('file');
  assert.equal(probes.isAttached('file'), true);
  await actor.do({ op: 'open', path: f3 });
  const back = await log.waitFor(isOpen(f3), 'the open after re-attaching');
  assert.equal(back.pid, actor.pid);
  await actor.exit(0);
});

test('a thread that exits leaves no per-thread state behind', async (t) => {
  if (!requireBpf(t)) return;
  const { probes } = withProbes(t);
  const actor = await startActor();
  probes.track(actor.pid);
  const tasks = () => new Set(fs.readdirSync(`/proc/${actor.pid}/task`).map(Number));
  const beforeTids = tasks();
  await actor.do({ op: 'startThread' });
  const newTids = [...tasks()].filter((tid) => !beforeTids.has(tid));
  assert.ok(newTids.length > 0, 'the worker thread appeared');
  for (const tid of newTids) probes.setThreadSpan(actor.pid, tid, newSpan());
  await actor.do({ op: 'stopThread' });
  // A worker's own helper threads may outlive it briefly; wait for them.
  const deadline = Date.now() + 5000;
  while (newTids.some((tid) => fs.existsSync(`/proc/${actor.pid}/task/${tid}`)) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const gone = newTids.filter((tid) => !fs.existsSync(`/proc/${actor.pid}/task/${tid}`));
  assert.ok(gone.length > 0, 'at least the worker thread exited');
  for (const tid of gone) assert.equal(probes.threadSpan(actor.pid, tid), null, `thread ${tid} still has a span`);
  assert.equal(probes.isTracked(actor.pid), true, 'a thread exit does not untrack the process');
  await actor.exit(0);
});

test('a registered thread slot attributes by memory alone, and overrules the thread map', async (t) => {
  if (!requireBpf(t)) return;
  const { probes, log } = withProbes(t);
  const actor = await startActor();
  probes.track(actor.pid);
  const mapSpan = newSpan();
  probes.setThreadSpan(actor.pid, actor.pid, mapSpan);
  const [a, b] = [newSpan(), newSpan()];
  const files = ['slot-a', 'slot-b', 'slot-none'].map((n) => path.join(dir, `${n}-${randomBytes(4).toString('hex')}`));
  for (const f of files) fs.writeFileSync(f, '');
  const [fa, fb, fnone] = files as [string, string, string];

  await actor.do({ op: 'slotRegister' });
  await actor.do({ op: 'slotSet', ...a });
  await actor.do({ op: 'open', path: fa });
  await actor.do({ op: 'slotSet', ...b });
  await actor.do({ op: 'open', path: fb });
  await actor.do({ op: 'slotClear' });
  await actor.do({ op: 'open', path: fnone });

  const ea = await log.waitFor(isOpen(fa), 'the open under slot span a');
  assert.deepEqual([ea.span, ea.attrSource], [a, AttrSource.Slot]);
  const eb = await log.waitFor(isOpen(fb), 'the open under slot span b');
  assert.deepEqual([eb.span, eb.attrSource], [b, AttrSource.Slot]);
  const en = await log.waitFor(isOpen(fnone), 'the open with the slot cleared');
  assert.deepEqual(
    [en.span, en.attrSource],
    [null, AttrSource.None],
    'a registered slot is authoritative: empty means no span, the thread map is not asked',
  );
  await actor.exit(0);
});

test('work submitted to the libuv threadpool carries its span to the thread that runs it', async (t) => {
  if (!requireBpf(t)) return;
  const { probes, log } = withProbes(t);
  const actor = await startActor();
  const exe = fs.realpathSync(`/proc/${actor.pid}/exe`);
  const hooked = probes.attachWorkProbes(exe);
  assert.deepEqual(hooked.missing, [], `libuv functions not hooked in ${exe}`);
  assert.ok(hooked.attached.includes('uv__work_submit') && hooked.attached.includes('uv__fs_work'));
  assert.equal(hooked.noThreadpool, false);
  // A binary without libuv (a shell) says so, so the sidecar does not read it again for each process that runs it.
  const sh = probes.attachWorkProbes(fs.realpathSync('/bin/sh'));
  assert.equal(sh.noThreadpool, true);
  assert.deepEqual(sh.attached, []);
  assert.match(sh.missing[0]?.reason ?? '', /no function symbol uv__work_submit/);
  probes.track(actor.pid);
  const [a, b] = [newSpan(), newSpan()];
  const [fa, fb] = ['work-a', 'work-b'].map((n) => path.join(dir, `${n}-${randomBytes(4).toString('hex')}`)) as [string, string];
  fs.writeFileSync(fa, 'a');
  fs.writeFileSync(fb, 'b');

  probes.setThreadSpan(actor.pid, actor.pid, a);
  await actor.do({ op: 'openAsync', path: fa });
  probes.setThreadSpan(actor.pid, actor.pid, b);
  await actor.do({ op: 'openAsync', path: fb });
  probes.clearThreadSpan(actor.pid, actor.pid);
  const none = emptyFile('work-none');
  await actor.do({ op: 'openAsync', path: none });

  const ea = await log.waitFor(isOpen(fa), 'the threadpool open under span a');
  assert.notEqual(ea.tid, actor.pid, 'fs.promises opens on a threadpool thread');
  assert.deepEqual([ea.span, ea.attrSource], [a, AttrSource.Work]);
  const eb = await log.waitFor(isOpen(fb), 'the threadpool open under span b');
  assert.deepEqual([eb.span, eb.attrSource], [b, AttrSource.Work]);
  const en = await log.waitFor(isOpen(none), 'the threadpool open with no span');
  assert.deepEqual([en.span, en.attrSource], [null, AttrSource.None], 'a reused work item does not keep an old span');
  await actor.exit(0);
});

test('a name lookup on the threadpool arrives with its name, result and span', async (t) => {
  if (!requireBpf(t)) return;
  const { probes, log } = withProbes(t);
  const name = `tool-${randomBytes(4).toString('hex')}.agentrace.test`;
  const hosts = path.join(dir, 'hosts');
  fs.writeFileSync(hosts, `127.0.0.1 localhost\n127.0.0.7 ${name}\n`);
  const actor = await Actor.start({ hostsFile: hosts });
  actors.push(actor);
  const exe = fs.realpathSync(`/proc/${actor.pid}/exe`);
  assert.deepEqual(probes.attachWorkProbes(exe).missing, []);
  const libc = fs
    .readFileSync(`/proc/${actor.pid}/maps`, 'utf8')
    .split('\n')
    .map((l) => l.split(/\s+/)[5] ?? '')
    .find((p) => /\/libc[.-][^/]*so/.test(p));
  assert.ok(libc, 'the actor maps a libc');
  assert.deepEqual(probes.attachDnsProbes(libc), { ok: true });
  probes.track(actor.pid);
  const span = newSpan();
  probes.setThreadSpan(actor.pid, actor.pid, span);

  assert.deepEqual(await actor.do({ op: 'lookup', name }), { ok: true, address: '127.0.0.7' });
  const e = await log.waitFor((x): x is DnsLookupEvent => x.kind === 'dns.lookup' && x.name === name, 'the lookup');
  assert.equal(e.pid, actor.pid);
  assert.notEqual(e.tid, actor.pid, 'dns.lookup runs getaddrinfo on a threadpool thread');
  assert.equal(e.ret, 0);
  assert.deepEqual([e.span, e.attrSource], [span, AttrSource.Work]);
  assert.ok(e.latencyNs > 0n);
  await actor.exit(0);
});

test('I/O on a descriptor belongs to the call that uses it: taken over by a later call, nobody\'s once its owner ended', async (t) => {
  if (!requireBpf(t)) return;
  const { probes } = withProbes(t);
  const actor = await startActor();
  probes.track(actor.pid);
  const [opener, user] = [newSpan(), newSpan()];
  const file = path.join(dir, `io-${randomBytes(4).toString('hex')}`);

  probes.setThreadSpan(actor.pid, actor.pid, opener);
  const { fd } = await actor.do({ op: 'openKeep', path: file, flags: 'w+' });
  assert.ok(typeof fd === 'number' && fd >= 0);
  // Another call uses the descriptor: from now on its I/O is that call's (a
  // pooled connection passes to the call that writes a request on it).
  probes.setThreadSpan(actor.pid, actor.pid, user);
  assert.equal((await actor.do({ op: 'writeFd', fd, bytes: 1000 })).written, 1000);
  assert.equal((await actor.do({ op: 'writeFd', fd, bytes: 234 })).written, 234);
  // Outside any call (as libuv reads a response): still the last user's, while it runs.
  probes.clearThreadSpan(actor.pid, actor.pid);
  assert.equal((await actor.do({ op: 'readFd', fd, bytes: 4096 })).read, 1234);
  // The user ended: I/O outside any call on what it owned is nobody's.
  probes.markEnded(user.spanId);
  assert.equal((await actor.do({ op: 'readFd', fd, bytes: 100 })).read, 100);
  // A call that uses it again takes it back.
  probes.setThreadSpan(actor.pid, actor.pid, opener);
  assert.equal((await actor.do({ op: 'writeFd', fd, bytes: 7 })).written, 7);
  probes.clearThreadSpan(actor.pid, actor.pid);
  await actor.do({ op: 'closeFd', fd });
  // After close the descriptor number is forgotten: reusing it counts nothing.
  const again = await actor.do({ op: 'openKeep', path: file, flags: 'r' });
  await actor.do({ op: 'readFd', fd: again.fd!, bytes: 10 });

  const summaries = takeSummaries(probes, [opener.spanId, user.spanId]);
  const mine = summaries.get(opener.spanId)?.aggregates;
  const theirs = summaries.get(user.spanId)?.aggregates;
  assert.ok(mine && theirs, 'both calls have aggregates');
  // Node may read /proc/self/maps of its own under a span now and then:
  // reads and opens are at least the test's own, writes exactly.
  assert.deepEqual([theirs.write!.calls, theirs.write!.bytes, theirs.write!.errors], [2, 1234, 0], 'the user’s writes');
  assert.ok(theirs.read!.calls >= 1 && theirs.read!.errors === 0, `reads: ${JSON.stringify(theirs.read)}`);
  assert.equal(theirs.read!.bytes % 1234, 0, `only the read made while it ran (1234 B), not the 100 B after it ended: ${theirs.read!.bytes}`);
  assert.deepEqual([mine.write!.calls, mine.write!.bytes], [1, 7], 'the opener’s write after it took the descriptor back');
  assert.equal(mine.read, undefined, 'no read counts to the opener: it did not own the descriptor then');
  assert.ok(mine.open!.calls >= 1 && mine.open!.errors === 0);
  for (const [kind, a] of [...Object.entries(mine), ...Object.entries(theirs)]) {
    assert.equal(a.latencyBuckets.length, HIST_BUCKETS);
    assert.equal(a.latencyBuckets.reduce((x, y) => x + y, 0), a.calls, `${kind}: the histogram holds every call`);
    assert.ok(a.latencySumNs > 0, `${kind}: latency measured`);
    // Each call lands in the bucket of its own duration: no bucket can hold
    // more time than its calls times its upper bound.
    const upper = a.latencyBuckets.reduce((t, n, i) => t + n * 2 ** (i + 1), 0);
    assert.ok(a.latencySumNs <= upper, `${kind}: sum ${a.latencySumNs} fits the buckets (${upper})`);
  }
  assert.deepEqual({ ...summaries.get(opener.spanId)?.events, emitted: 0 }, { emitted: 0, capped: 0, ringbufDrops: 0, mapFull: 0, ambiguous: 0 }, 'nothing lost, capped or ambiguous');
  assert.ok((summaries.get(opener.spanId)?.events.emitted ?? 0) >= 1, 'the open was emitted');
  assert.equal(takeSummaries(probes, [opener.spanId]).size, 0, 'taking the summaries resets them');
  await actor.exit(0);
});

test('a descriptor that carries a second call\'s request while the first is unanswered is flagged ambiguous, never guessed', async (t) => {
  if (!requireBpf(t)) return;
  const { probes } = withProbes(t);
  const actor = await startActor();
  probes.track(actor.pid);
  const [first, second, later] = [newSpan(), newSpan(), newSpan()];
  const file = path.join(dir, `pipelined-${randomBytes(4).toString('hex')}`);
  probes.setThreadSpan(actor.pid, actor.pid, first);
  const fd = (await actor.do({ op: 'openKeep', path: file, flags: 'w+' })).fd!;
  await actor.do({ op: 'writeFd', fd, bytes: 10 }); // the first call's request
  probes.setThreadSpan(actor.pid, actor.pid, second);
  await actor.do({ op: 'writeFd', fd, bytes: 20 }); // a second request before any answer: pipelined
  probes.clearThreadSpan(actor.pid, actor.pid);
  await actor.do({ op: 'readFd', fd, bytes: 30 }); // the answers, read by nobody's call
  probes.markEnded(first.spanId);
  probes.markEnded(second.spanId);
  probes.setThreadSpan(actor.pid, actor.pid, later);
  await actor.do({ op: 'writeFd', fd, bytes: 5 }); // the flag stays with the descriptor
  probes.clearThreadSpan(actor.pid, actor.pid);
  await actor.do({ op: 'closeFd', fd });
  const s = takeSummaries(probes, [first.spanId, second.spanId, later.spanId]);
  assert.ok((s.get(first.spanId)?.events.ambiguous ?? 0) >= 1, `the first call is flagged: ${JSON.stringify(s.get(first.spanId)?.events)}`);
  assert.ok((s.get(second.spanId)?.events.ambiguous ?? 0) >= 2, `the second call's I/O after the overlap is flagged: ${JSON.stringify(s.get(second.spanId)?.events)}`);
  assert.ok((s.get(later.spanId)?.events.ambiguous ?? 0) >= 1, 'so is a later call on the same descriptor');
  await actor.exit(0);
});

test('a DNS query sent to port 53 (dns.resolve, c-ares) arrives with its question and span', async (t) => {
  if (!requireBpf(t)) return;
  const { probes, log } = withProbes(t);
  const server = await startDnsServer();
  t.after(() => server.close());
  const actor = await startActor();
  probes.track(actor.pid);
  const span = newSpan();
  probes.setThreadSpan(actor.pid, actor.pid, span);
  const name = `q-${randomBytes(4).toString('hex')}.agentrace.test`;
  assert.deepEqual(await actor.do({ op: 'resolve', name, server: '127.0.0.1' }), { ok: false, code: 'ENOTFOUND' });
  assert.ok(server.asked.includes(name), 'the query reached the local server');
  const q = await log.waitFor((e): e is DnsQueryEvent => e.kind === 'dns.query' && e.name === name, 'the query');
  assert.equal(q.pid, actor.pid);
  assert.equal(q.transport, 'udp');
  assert.equal(q.port, 53);
  assert.equal(q.questionType, 1, 'an A query');
  assert.deepEqual(q.span, span);
  await actor.exit(0);
});

test('a full ring buffer loses events only with a count: written + dropped = produced, and every written one arrives', async (t) => {
  if (!requireBpf(t)) return;
  // One page of ring buffer holds about a dozen open events; nobody reads it
  // while the actor opens, so most are dropped.
  const probes = loadProbes(t, { ringBufferBytes: 4096 });
  // Any node starting on this machine meanwhile would add its event: not this test's.
  probes.detachProgram('context_runtime_exec');
  const actor = await startActor();
  probes.track(actor.pid);
  const file = emptyFile('flood');
  const count = 500;
  const before = probes.stats();
  await actor.do({ op: 'openMany', path: file, count });
  const after = probes.stats();
  const written = after.events - before.events;
  const dropped = after.ringbufDrops - before.ringbufDrops;
  assert.ok(dropped > 0n, 'the ring buffer overflowed');
  // Beside the opens the actor may do something of its own (a lazy open of
  // Node's, seen under load): a few events at most, counted like the rest.
  const surplus = written + dropped - BigInt(count);
  assert.ok(surplus >= 0n && surplus <= 3n, `${written} written + ${dropped} dropped for ${count} opens (+${surplus} of the actor's own)`);

  const received: KernelEvent[] = [];
  probes.onEvents((batch) => received.push(...batch));
  probes.drain();
  assert.equal(BigInt(received.length), written, 'every event written reached user space');
  const opens = received.filter(isOpen(file)).length;
  assert.ok(BigInt(opens) + dropped >= BigInt(count), `${opens} opens arrived + ${dropped} dropped cover the ${count} opens`);
  await actor.exit(0);
});

test('a full ring buffer is counted on the span whose events were lost, and its aggregates still count every call', async (t) => {
  if (!requireBpf(t)) return;
  const probes = loadProbes(t, { ringBufferBytes: 4096, maxEventsPerSpan: 0 });
  const actor = await startActor();
  probes.track(actor.pid);
  const span = newSpan();
  probes.setThreadSpan(actor.pid, actor.pid, span);
  const file = emptyFile('flood-span');
  const count = 500;
  const before = probes.stats();
  await actor.do({ op: 'openMany', path: file, count });
  const after = probes.stats();
  const dropped = Number(after.ringbufDrops - before.ringbufDrops);
  assert.ok(dropped > 0, 'the ring buffer overflowed');

  const received: KernelEvent[] = [];
  probes.onEvents((batch) => received.push(...batch));
  probes.drain();
  const underSpan = received.filter((e) => e.span?.spanId === span.spanId).length;
  const arrived = received.filter(isOpen(file)).length;
  const summary = takeSummaries(probes, [span.spanId]).get(span.spanId);
  assert.ok(summary);
  assert.deepEqual(summary.events, { emitted: underSpan, capped: 0, ringbufDrops: dropped, mapFull: 0, ambiguous: 0 }, 'every event of the span arrived or was counted lost');
  // Beside the opens the actor may do something of its own under the span
  // (a lazy open of Node's, seen now and then): a few events at most, in
  // every count alike.
  const surplus = arrived + dropped - count;
  assert.ok(surplus >= 0 && surplus <= 3, `${arrived} arrived + ${dropped} lost = ${count} opens (+${surplus} of the actor's own)`);
  const opens = summary.aggregates.open?.calls ?? 0;
  assert.ok(opens >= count && opens <= count + 3, `the in-kernel aggregate saw every open, lost events included (${opens} for ${count})`);
  await actor.exit(0);
});

test('a backlog arrives in bounded batches, complete; closing from inside a batch stops delivery safely', async (t) => {
  if (!requireBpf(t)) return;
  const probes = loadProbes(t, { ringBufferBytes: 16 * 1024 * 1024, maxEventsPerSpan: 0 });
  const actor = await startActor();
  probes.track(actor.pid);
  const span = newSpan();
  probes.setThreadSpan(actor.pid, actor.pid, span);
  const file = emptyFile('backlog');
  await actor.do({ op: 'openMany', path: file, count: 10_000 });
  const batches: number[] = [];
  const received: KernelEvent[] = [];
  probes.onEvents((batch) => {
    batches.push(batch.length);
    received.push(...batch);
  });
  probes.drain();
  const opens = received.filter(isOpen(file));
  assert.equal(opens.length, 10_000, 'every open of the backlog arrived');
  assert.ok(batches.length >= 3 && Math.max(...batches) <= 4096, `batches of at most 4096: ${batches.join(', ')}`);
  assert.ok(opens.every((e) => e.span?.spanId === span.spanId && e.pid === actor.pid));

  const second = Probes.load({ ringBufferBytes: 16 * 1024 * 1024, maxEventsPerSpan: 0 });
  let closedAfter = 0;
  second.onEvents((batch) => {
    closedAfter += batch.length;
    second.close(); // libbpf is still walking the ring: the free must wait
  });
  second.attach('all');
  second.track(actor.pid);
  await actor.do({ op: 'openMany', path: file, count: 10_000 });
  assert.equal(second.drain(), 0, 'a closed object delivers nothing');
  await new Promise((r) => setImmediate(r));
  assert.ok(closedAfter > 0 && closedAfter <= 4096, `one batch was delivered before the close (${closedAfter})`);
  await actor.exit(0);
});

test('a full aggregate map is counted, globally and on the span it failed for', async (t) => {
  if (!requireBpf(t)) return;
  const probes = loadProbes(t, { maxSpanAggregates: 1 });
  const actor = await startActor();
  probes.track(actor.pid);
  const span = newSpan();
  probes.setThreadSpan(actor.pid, actor.pid, span);
  const file = path.join(dir, `aggfull-${randomBytes(4).toString('hex')}`);
  const before = probes.stats();
  // The open takes the map's one entry; its two writes find it full.
  const { fd } = await actor.do({ op: 'openKeep', path: file, flags: 'w+' });
  assert.ok(typeof fd === 'number');
  await actor.do({ op: 'writeFd', fd, bytes: 10 });
  await actor.do({ op: 'writeFd', fd, bytes: 10 });
  await actor.do({ op: 'closeFd', fd });
  const summary = takeSummaries(probes, [span.spanId]).get(span.spanId);
  assert.ok(summary);
  assert.deepEqual(Object.keys(summary.aggregates), ['open']);
  // (at least: Node may read /proc/self/maps of its own under the span)
  assert.ok(summary.events.mapFull >= 2, `both writes were counted as lost on the span (${summary.events.mapFull})`);
  assert.equal(probes.stats().aggFull - before.aggFull, BigInt(summary.events.mapFull), 'globally as on the span');
  await actor.exit(0);
});

test('a span over its event cap emits no more events, and counts the rest', async (t) => {
  if (!requireBpf(t)) return;
  const probes = loadProbes(t, { maxEventsPerSpan: 10 });
  assert.equal(probes.maxEventsPerSpan(), 10);
  const received: KernelEvent[] = [];
  probes.onEvents((batch) => received.push(...batch));
  const actor = await startActor();
  probes.track(actor.pid);
  const [capped, fresh] = [newSpan(), newSpan()];
  probes.setThreadSpan(actor.pid, actor.pid, capped);
  const file = emptyFile('cap');
  const before = probes.stats();
  await actor.do({ op: 'openMany', path: file, count: 100 });
  // Another span on the same thread has a cap of its own.
  probes.setThreadSpan(actor.pid, actor.pid, fresh);
  await actor.do({ op: 'openMany', path: file, count: 3 });
  probes.drain();
  // Node may open /proc/self/maps of its own now and then: a few events at
  // most, under whichever span runs; the cap counts them like the rest.
  const under = (id: string): KernelEvent[] => received.filter((e) => e.span?.spanId === id);
  const own = (id: string): number => under(id).filter((e) => !isOpen(file)(e)).length;
  const opens = received.filter(isOpen(file));
  assert.equal(under(capped.spanId).length, 10, 'the capped span emitted exactly its cap');
  assert.equal(opens.filter((e) => e.span?.spanId === fresh.spanId).length, 3);
  const cappedCount = Number(probes.stats().capped - before.capped);
  assert.ok(cappedCount >= 90 && cappedCount <= 93, `90 opens over the cap (${cappedCount})`);
  const summaries = takeSummaries(probes, [capped.spanId, fresh.spanId]);
  assert.deepEqual(summaries.get(capped.spanId)?.events, { emitted: 10, capped: cappedCount, ringbufDrops: 0, mapFull: 0, ambiguous: 0 });
  const calls = summaries.get(capped.spanId)?.aggregates.open?.calls ?? 0;
  assert.ok(calls >= 100 && calls <= 103, `the aggregate counts all 100 opens (${calls})`);
  assert.deepEqual(summaries.get(fresh.spanId)?.events, { emitted: 3 + own(fresh.spanId), capped: 0, ringbufDrops: 0, mapFull: 0, ambiguous: 0 });

  const ownBefore = own(capped.spanId);
  probes.setMaxEventsPerSpan(0); // no cap, at once
  probes.setThreadSpan(actor.pid, actor.pid, capped);
  await actor.do({ op: 'openMany', path: file, count: 20 });
  probes.drain();
  assert.equal(received.filter(isOpen(file)).filter((e) => e.span?.spanId === capped.spanId).length, 10 - ownBefore + 20);
  assert.throws(() => probes.setMaxEventsPerSpan(-1), /from 0 \(no cap\)/);
  await actor.exit(0);
});

test('detaching a group unlinks its programs at once; context stays whole while io is detached', async (t) => {
  if (!requireBpf(t)) return;
  const probes = loadProbes(t);
  assert.deepEqual(probes.attachedGroups(), ['file', 'net', 'process', 'context', 'io']);
  probes.detach('file');
  assert.equal(probes.isAttached('file'), false);
  assert.deepEqual(probes.attachedGroups(), ['net', 'process', 'context', 'io']);
  const received: KernelEvent[] = [];
  probes.onEvents((batch) => received.push(...batch));
  const actor = await startActor();
  probes.track(actor.pid);
  probes.setThreadSpan(actor.pid, actor.pid, newSpan());
  const file = emptyFile('detach');
  await actor.do({ op: 'openMany', path: file, count: 5 });
  probes.drain();
  assert.equal(received.filter(isOpen(file)).length, 0, 'no open is seen while file is detached');
  probes.attach('file');
  await actor.do({ op: 'openMany', path: file, count: 5 });
  probes.drain();
  assert.equal(received.filter(isOpen(file)).length, 5, 'opens are seen again once attached');
  // io's write probe registers slots too; without io, context's own does.
  probes.detach('io');
  assert.deepEqual([probes.isAttached('io'), probes.isAttached('context')], [false, true]);
  probes.attach('io');
  assert.deepEqual([probes.isAttached('io'), probes.isAttached('context')], [true, true]);
  assert.throws(() => probes.detach('fs' as never), /unknown probe group "fs"; groups are file, net, process, context, io/);
  await actor.exit(0);
});
