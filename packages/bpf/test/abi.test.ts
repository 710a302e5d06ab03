// The kernel ABI has one source, agentrace.h: user space reads it from
// packages/bpf/src/abi.generated.ts, generated from the compiled object's BTF
// by packages/bpf/scripts/gen-abi.mjs. Here: the generated file is what the
// object says (the build checks it too), the check fails when the header
// changes without regenerating, layout.ts and the SDK's slot follow it, and
// the header's enums and constants agree with what TS uses. Needs the build
// (and clang, to compile a changed header), not BPF privileges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { SLOT_BYTES, SLOT_LAYOUT, SLOT_MAGIC as PROTOCOL_SLOT_MAGIC, SLOT_SPAN_NOBODY } from '@agentrace/protocol';
import { read, readNumber, structs } from '../src/abi.generated.js';
import { AttrSource, EventKind, AggKind, AGG_KIND_COUNT, HIST_BUCKETS, Stat, STAT_COUNT, SLOT_MAGIC, SLOT_SIZE, defaultObjectPath, layouts } from '@agentrace/bpf';

const header = fs.readFileSync(
  fileURLToPath(new URL('../src/bpf/agentrace.h', import.meta.url)),
  'utf8',
);

interface BtfMember {
  name: string;
  bits_offset: number;
}
interface BtfType {
  kind: string;
  name: string;
  size?: number;
  members?: BtfMember[];
}

function btfStructs(): Map<string, BtfType> {
  const out = execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', defaultObjectPath], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const types = (JSON.parse(out) as { types: BtfType[] }).types;
  return new Map(types.filter((t) => t.kind === 'STRUCT').map((t) => [t.name, t]));
}

test('every struct of agentrace.h has a TS layout equal to the object BTF', () => {
  assert.ok(fs.existsSync(defaultObjectPath), `${path.relative(process.cwd(), defaultObjectPath)} is not built`);
  const structs = btfStructs();
  const declared = [...header.matchAll(/^struct (ar_\w+) \{/gm)].map((m) => m[1]!);
  assert.ok(declared.length >= 8, `found only ${declared.length} structs in agentrace.h`);
  assert.deepEqual(
    [...declared].sort(),
    Object.keys(layouts).sort(),
    'layout.ts must describe exactly the structs of agentrace.h',
  );
  for (const name of declared) {
    const btf = structs.get(name);
    assert.ok(btf, `struct ${name} is not in the object's BTF (keep it referenced in agentrace.bpf.c)`);
    const ts = layouts[name as keyof typeof layouts];
    assert.equal(ts.size, btf.size, `sizeof(struct ${name})`);
    const cOffsets = Object.fromEntries((btf.members ?? []).map((m) => [m.name, m.bits_offset / 8]));
    assert.deepEqual(ts.fields, cOffsets, `member offsets of struct ${name}`);
  }
});

function headerEnum(prefix: string): Record<string, number> {
  const re = new RegExp(`^\\s*${prefix}(\\w+) = (\\d+),`, 'gm');
  return Object.fromEntries([...header.matchAll(re)].map((m) => [m[1]!, Number(m[2])]));
}

const camel = (s: string): string =>
  s.toLowerCase().replace(/(^|_)([a-z])/g, (_m, _u: string, c: string) => c.toUpperCase());

test('event kinds, attribution sources and counters match the header enums', () => {
  const kinds = headerEnum('AR_EV_');
  assert.ok(Object.keys(kinds).length >= 5);
  assert.deepEqual(Object.fromEntries(Object.entries(kinds).map(([k, v]) => [camel(k), v])), EventKind);
  const sources = headerEnum('AR_ATTR_');
  assert.deepEqual(Object.fromEntries(Object.entries(sources).map(([k, v]) => [camel(k), v])), AttrSource);
  const { KINDS, ...agg } = headerEnum('AR_AGG_');
  assert.equal(KINDS, AGG_KIND_COUNT);
  assert.deepEqual(Object.fromEntries(Object.entries(agg).map(([k, v]) => [camel(k), v])), AggKind);
  assert.equal(Number(/#define AR_HIST_BUCKETS (\d+)/.exec(header)?.[1]), HIST_BUCKETS);
  const { MAX, ...stats } = headerEnum('AR_STAT_');
  assert.equal(MAX, STAT_COUNT);
  assert.deepEqual(Object.fromEntries(Object.entries(stats).map(([k, v]) => [camel(k), v])), Stat);
});

test('the slot magic and size agree between the header, its word constants and TS', () => {
  const magic = /#define AR_SLOT_MAGIC "([^"]+)"/.exec(header)?.[1];
  const lo = /#define AR_SLOT_MAGIC_LO (0x[0-9a-f]+)ULL/.exec(header)?.[1];
  const hi = /#define AR_SLOT_MAGIC_HI (0x[0-9a-f]+)ULL/.exec(header)?.[1];
  const size = /#define AR_SLOT_SIZE (\d+)/.exec(header)?.[1];
  assert.equal(magic, SLOT_MAGIC);
  assert.equal(Buffer.from(SLOT_MAGIC).length, 16, 'the magic covers trace_id exactly');
  const bytes = Buffer.from(SLOT_MAGIC);
  assert.equal(BigInt(lo!), bytes.readBigUInt64LE(0), 'AR_SLOT_MAGIC_LO');
  assert.equal(BigInt(hi!), bytes.readBigUInt64LE(8), 'AR_SLOT_MAGIC_HI');
  assert.equal(Number(size), SLOT_SIZE);
  assert.equal(layouts.ar_thread_slot.size, SLOT_SIZE);
  // The SDK's "nobody's" span id is the kernel's.
  const nobody = /#define AR_SPAN_NOBODY (0x[0-9a-f]+)ULL/.exec(header)?.[1];
  assert.equal(BigInt(nobody!), Buffer.from(SLOT_SPAN_NOBODY, 'hex').readBigUInt64LE(0), 'AR_SPAN_NOBODY');
});

const bpfDir = fileURLToPath(new URL('../', import.meta.url));
const genAbi = path.join(bpfDir, 'scripts', 'gen-abi.mjs');
const generated = path.join(bpfDir, 'src', 'abi.generated.ts');

test('abi.generated.ts is what gen-abi makes of the built object', () => {
  const r = spawnSync(process.execPath, [genAbi, '--check', defaultObjectPath, generated], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

test('the check fails, naming what differs, when a field of agentrace.h changes width without regenerating', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-abi-'));
  try {
    fs.cpSync(path.join(bpfDir, 'src', 'bpf'), path.join(dir, 'bpf'), { recursive: true });
    const header = path.join(dir, 'bpf', 'agentrace.h');
    const text = fs.readFileSync(header, 'utf8');
    // struct ar_file_open_event's mode: __u32 -> __u16 (the path after it moves up two bytes)
    const changed = text.replace(/(struct ar_file_open_event \{[^}]*?)__u32 mode;/s, '$1__u16 mode;');
    assert.notEqual(changed, text, 'the test found the field to change');
    fs.writeFileSync(header, changed);
    const object = path.join(dir, 'changed.bpf.o');
    const arch = process.arch === 'arm64' ? 'arm64' : 'x86';
    const cc = spawnSync(
      'clang',
      ['-g', '-O2', '-Wall', '-Werror', '-target', 'bpf', `-D__TARGET_ARCH_${arch}`, `-I${path.join(bpfDir, 'out')}`, `-I${path.join(dir, 'bpf')}`, '-c', path.join(dir, 'bpf', 'agentrace.bpf.c'), '-o', object],
      { encoding: 'utf8' },
    );
    assert.equal(cc.status, 0, `clang: ${cc.stderr}`);
    const r = spawnSync(process.execPath, [genAbi, '--check', object, generated], { encoding: 'utf8' });
    assert.equal(r.status, 1, `the check passed a changed header: ${r.stderr}`);
    assert.match(r.stderr, /abi\.generated\.ts differs from the BTF of .*changed\.bpf\.o \(agentrace\.h changed\?\): run `make abi`/);
    assert.match(r.stderr, /committed "      mode: \{ offset: 92, size: 4, type: 'u32' \},", the object says "      mode: \{ offset: 92, size: 2, type: 'u16' \},"/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the slot module the SDK reads (@agentrace/protocol) is the ABI's struct ar_thread_slot and the header's defines", () => {
  assert.equal(PROTOCOL_SLOT_MAGIC, SLOT_MAGIC);
  const slot = structs.ar_thread_slot;
  assert.equal(SLOT_BYTES, slot.size);
  for (const [field, offset] of Object.entries(SLOT_LAYOUT)) {
    assert.equal(offset, slot.fields[field as keyof typeof slot.fields].offset, `ar_thread_slot.${field}`);
  }
  assert.equal(slot.fields.valid.type, 'u8');
  assert.equal(slot.fields.trace_flags.type, 'u8');
});

test('the generated readers read each field at its offset with its width and sign; the number readers are exact within ±2^53', () => {
  const f = structs.ar_file_open_event.fields;
  const buf = Buffer.alloc(structs.ar_file_open_event.size + 8, 0xaa);
  const base = 8; // readers take the struct's base in a larger buffer (a ring-buffer batch)
  buf.writeBigInt64LE(-13n, base + f.ret.offset); // -EACCES
  buf.writeBigUInt64LE(2n ** 40n + 5n, base + f.flags.offset);
  buf.writeBigUInt64LE(2n ** 63n + 7n, base + f.latency_ns.offset);
  buf.writeInt32LE(-100, base + f.dfd.offset); // AT_FDCWD
  buf.writeUInt32LE(0o644, base + f.mode.offset);
  assert.equal(read.ar_file_open_event.ret(buf, base), -13n);
  assert.equal(readNumber.ar_file_open_event.ret(buf, base), -13);
  assert.equal(readNumber.ar_file_open_event.flags(buf, base), 2 ** 40 + 5);
  assert.equal(read.ar_file_open_event.latency_ns(buf, base), 2n ** 63n + 7n, 'a 64-bit clock stays a bigint');
  assert.equal(read.ar_file_open_event.dfd(buf, base), -100);
  assert.equal(read.ar_file_open_event.mode(buf, base), 0o644);
  for (const v of [0n, 1n, -1n, 2n ** 53n - 1n, -(2n ** 53n) + 1n, 2n ** 32n, -(2n ** 32n)]) {
    buf.writeBigInt64LE(v, base + f.ret.offset);
    assert.equal(readNumber.ar_file_open_event.ret(buf, base), Number(v), String(v));
  }
});
