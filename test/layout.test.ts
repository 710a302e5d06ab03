// The TS decoder's offsets (packages/bpf/src/layout.ts) against the compiled
// BPF object's BTF and the enums of agentrace.h: if a struct changes on one
// side only, this fails. Needs the build, not BPF privileges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SLOT_SPAN_NOBODY } from '@agentrace/sdk/internal';
import { AttrSource, EventKind, AggKind, AGG_KIND_COUNT, HIST_BUCKETS, Stat, STAT_COUNT, SLOT_MAGIC, SLOT_SIZE, defaultObjectPath, layouts } from '@agentrace/bpf';

const header = fs.readFileSync(
  fileURLToPath(new URL('../packages/bpf/src/bpf/agentrace.h', import.meta.url)),
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
