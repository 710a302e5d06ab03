// The frame reader's V8 layout, read from node binaries (no BPF needed):
// what it finds in Node 24 agrees with the binary's own code, what it cannot
// read is a reason, never a guess.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readElfSymbols, readV8Layout, setterDisplacements, staticTlsOffset } from '@agentrace/bpf';
import { node20, node24, requireNode24 } from './support/runtimes.js';
import { nodeWithConstant } from './support/patched-node.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-v8-layout-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the setter: lea UNDEFINED(%rdi),%rax and mov %rax,CPED(%rdi), with 32- or 8-bit displacements; a 32-bit store is not it', () => {
  // V8 13.6 (Node 24): lea 0x2a0(%rdi),%rax; test %rsi,%rsi; cmove %rax,%rsi; mov (%rsi),%rax; mov %rax,0x278(%rdi); ret
  const v13 = Buffer.from('488d87a00200004885f6480f44f0488b0648898778020000c3', 'hex');
  assert.deepEqual(setterDisplacements(v13), { undefinedRoot: 0x2a0, cped: 0x278 });
  const short = Buffer.from('488d4710488b06488947f8c3', 'hex'); // lea 0x10(%rdi); mov (%rsi),%rax; mov %rax,-0x8(%rdi)
  assert.deepEqual(setterDisplacements(short), { undefinedRoot: 0x10, cped: -8 });
  const compressed = Buffer.from('488d87a00200008b0689877802000000c3', 'hex'); // mov %eax,0x278(%rdi): 32-bit slots
  assert.equal(setterDisplacements(compressed), undefined);
});

test('static TLS, x86-64 variant II: the block ends at the thread pointer, placed as glibc places it', () => {
  assert.equal(staticTlsOffset(0x108, { memsz: 0x1a8, align: 8, vaddr: 0x6b835b0 }), 0x108 - 0x1a8);
  assert.equal(staticTlsOffset(0, { memsz: 0x10, align: 64, vaddr: 0x1000 }), -64);
  // a block that does not start aligned keeps its first byte's misalignment
  assert.equal(staticTlsOffset(0, { memsz: 0x10, align: 16, vaddr: 0x1008 }), -0x18);
});

test("Node 24's layout: the isolate's thread-local is where the binary's own Isolate::GetCurrent reads it", (t) => {
  requireNode24(t);
  if (!node24) return;
  const r = readV8Layout(node24);
  assert.ok(r.ok, r.ok ? '' : r.reason);
  // Isolate::GetCurrent: mov %fs:DISP32,%rax (64 48 8b 04 25 DISP32)
  const name = '_ZN2v87Isolate10GetCurrentEv';
  const code = readElfSymbols(node24, [name], 64).symbols[name]?.bytes;
  assert.ok(code, `${node24} has ${name}`);
  const at = code.indexOf(Buffer.from('64488b0425', 'hex'));
  assert.ok(at >= 0, `${name} reads %fs: ${code.toString('hex')}`);
  assert.equal(r.layout.isolateTls, code.readInt32LE(at + 5));
  assert.ok(r.layout.cped > 0 && r.layout.cped % 8 === 0 && r.layout.undefinedRoot > r.layout.cped, JSON.stringify(r.layout));
  assert.deepEqual([r.layout.table, r.layout.fixedArrayData], [24, 16], 'a JSMap keeps its table after map, properties and elements; a FixedArray its elements after map and length');
});

test('what the reader cannot read is a reason: Node 20 has no AsyncContextFrame setter; a V8 that tags values otherwise; not an ELF', (t) => {
  requireNode24(t);
  if (node20) {
    const r = readV8Layout(node20);
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.reason, /SetContinuationPreservedEmbedderData/);
  }
  if (!node24) return;
  const compressed = nodeWithConstant(node24, dir, 'v8dbg_SmiShiftSize', () => 0);
  const r = readV8Layout(compressed);
  assert.equal(r.ok, false);
  assert.match(r.ok ? '' : r.reason, /Smi shift 0: pointer compression\?/);
  fs.rmSync(compressed);
  const text = path.join(dir, 'not-elf');
  fs.writeFileSync(text, '#!/bin/sh\n');
  const n = readV8Layout(text);
  assert.equal(n.ok, false);
  assert.match(n.ok ? '' : n.reason, /not an ELF file/);
});
