// What counts as a process's runtime opening files on its own (folded into
// its process span), and how the fold counts them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttrSource, type FileOpenEvent, type NetConnectEvent } from '@agentrace/bpf';
import { foldRuntime, isRuntimeConnect, isRuntimeOpen, processSpan, type ProcessRecord } from '../src/kernel-spans.js';

test("the loader's and libc's opens are the runtime's; what a program asks for is not", () => {
  for (const f of [
    '/etc/ld.so.cache',
    '/etc/ld.so.preload',
    '/lib/x86_64-linux-gnu/libc.so.6',
    '/usr/lib/x86_64-linux-gnu/libselinux.so.1',
    '/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libpcre2-8.so.0.11.2',
    '/tmp/plugin.so',
    '/usr/lib/locale/locale-archive',
    '/usr/share/locale/locale.alias',
    '/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache',
  ]) {
    assert.ok(isRuntimeOpen(f), f);
  }
  for (const f of ['/etc/passwd', '/tmp/notes.md', '/home/u/.ssh/id_rsa', '/etc/ld.so.conf', '/tmp/x.so.txt', '/srv/some.sock', '/usr/lib/locale']) {
    assert.ok(!isRuntimeOpen(f), f);
  }
});

function open(path: string, ret: number): FileOpenEvent {
  return { kind: 'file.open', pid: 7, tid: 7, comm: 'ls', tsNs: 1n, span: null, attrSource: AttrSource.Process, path, flags: 0, mode: 0, dfd: -100, ret, latencyNs: 10n };
}

/** The record of an `ls` a tool call ran. */
function lsRecord(): ProcessRecord {
  return {
    spanId: 'cccccccccccccccc',
    pid: 7,
    parentPid: 1,
    startNs: 1n,
    parent: { traceId: '0af7651916cd43dd8448eb211c80319c', parentSpanId: 'aaaaaaaaaaaaaaaa', resource: {}, toolSpanId: 'aaaaaaaaaaaaaaaa' },
    comm: 'ls',
    attrSource: AttrSource.Process,
  };
}

test('the fold counts every runtime open and failure, lists each loaded library once, and caps the list', () => {
  const rec = lsRecord();
  assert.equal(foldRuntime(rec, open('/etc/passwd', 3)), false, 'what the program asked for is not folded');
  assert.equal(rec.runtime, undefined);
  assert.ok(foldRuntime(rec, open('/etc/ld.so.cache', 3)));
  assert.ok(foldRuntime(rec, open('/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libc.so.6', -2)));
  assert.ok(foldRuntime(rec, open('/lib/x86_64-linux-gnu/libc.so.6', 3)));
  assert.ok(foldRuntime(rec, open('/lib/x86_64-linux-gnu/libc.so.6', 3)));
  for (let i = 0; i < 70; i++) assert.ok(foldRuntime(rec, open(`/usr/lib/lib${i}.so`, 3)));
  const span = processSpan(rec, 2n, { exitCode: 0, signal: 0 });
  assert.equal(span.attributes['agentrace.process.runtime_opens'], 74);
  assert.equal(span.attributes['agentrace.process.runtime_opens.failed'], 1);
  const libs = span.attributes['agentrace.process.libraries'] as string[];
  assert.equal(libs.length, 64);
  assert.equal(libs[0], '/lib/x86_64-linux-gnu/libc.so.6', 'a failed search is not a loaded library; a repeat is listed once');
  assert.equal(span.attributes['agentrace.process.libraries.omitted'], 7);
});

test("libc's connects to nscd are the runtime's, counted on the process span; other connects are not", () => {
  const connect = (peer: NetConnectEvent['peer']): NetConnectEvent => ({ kind: 'net.connect', pid: 7, tid: 7, comm: 'ls', tsNs: 1n, span: null, attrSource: AttrSource.Process, ret: -2, fd: 3, latencyNs: 10n, transport: 'unix', peer, verdict: 'none', rule: 0 });
  assert.ok(isRuntimeConnect(connect({ family: 'unix', path: '/var/run/nscd/socket', abstract: false })));
  assert.ok(isRuntimeConnect(connect({ family: 'unix', path: '/run/nscd/socket', abstract: false })));
  assert.ok(!isRuntimeConnect(connect({ family: 'unix', path: '/run/docker.sock', abstract: false })));
  assert.ok(!isRuntimeConnect(connect({ family: 'unix', path: '/var/run/nscd/socket', abstract: true })));
  assert.ok(!isRuntimeConnect(connect({ family: 'inet', address: '127.0.0.1', port: 53 })));
  const rec = lsRecord();
  const nscd = connect({ family: 'unix', path: '/var/run/nscd/socket', abstract: false });
  assert.ok(foldRuntime(rec, nscd));
  assert.ok(foldRuntime(rec, nscd));
  assert.equal(foldRuntime(rec, connect({ family: 'inet', address: '127.0.0.1', port: 53 })), false);
  const span = processSpan(rec, 2n, { exitCode: 0, signal: 0 });
  assert.equal(span.attributes['agentrace.process.nscd_connects'], 2);
  assert.equal(span.attributes['agentrace.process.runtime_opens'], 0);
});
