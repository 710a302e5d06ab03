#!/usr/bin/env node
// Generates src/abi.generated.ts, user space's one view of the kernel ABI,
// from the BTF of the compiled BPF object: every struct of agentrace.h (size;
// each member's offset, width, signedness, array length), every enum, the
// map and program names. It also generates the thread slot's layout for the
// SDK, which cannot depend on this package, into @agentrace/protocol
// (../protocol/src/thread-slot.generated.ts). Run by the build (`make`) with
// --check: a header changed without regenerating fails the build, saying
// what differs.
//
//   node scripts/gen-abi.mjs [--check] [OBJECT] [OUTPUT] [SLOT_OUTPUT]
//   (defaults: out/agentrace.bpf.o, src/abi.generated.ts,
//    ../protocol/src/thread-slot.generated.ts)
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);
const check = args.includes('--check');
const [objectArg, outputArg, slotArg] = args.filter((a) => !a.startsWith('--'));
const object = path.resolve(objectArg ?? path.join(root, 'out', 'agentrace.bpf.o'));
const output = path.resolve(outputArg ?? path.join(root, 'src', 'abi.generated.ts'));
const slotOutput = path.resolve(slotArg ?? path.join(root, '..', 'protocol', 'src', 'thread-slot.generated.ts'));

/** The object's BTF as bpftool prints it. */
function btf(file) {
  let json;
  try {
    json = execFileSync(process.env.BPFTOOL ?? 'bpftool', ['-j', 'btf', 'dump', 'file', file], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  } catch (err) {
    throw new Error(`cannot read the BTF of ${file} with bpftool (${err.message.split('\n')[0]}); build it first (make)`);
  }
  return JSON.parse(json).types;
}

/** The struct and enum names agentrace.h declares: the ABI (the .bpf.h files hold the kernel side's own). */
function abiNames(header) {
  const text = fs.readFileSync(header, 'utf8');
  return {
    structs: new Set([...text.matchAll(/^struct (ar_\w+) \{/gm)].map((m) => m[1])),
    enums: new Set([...text.matchAll(/^enum (ar_\w+) \{/gm)].map((m) => m[1])),
  };
}

export function generate(file, header = path.join(root, 'src', 'bpf', 'agentrace.h')) {
  const types = btf(file);
  const names = abiNames(header);
  const byId = new Map(types.map((t) => [t.id, t]));
  const strip = (id) => {
    let t = byId.get(id);
    while (t && (t.kind === 'TYPEDEF' || t.kind === 'CONST' || t.kind === 'VOLATILE')) t = byId.get(t.type_id);
    return t;
  };
  /** A member's type: a scalar (u8..s64), bytes (a char array), a struct, or an array of scalars. */
  const describe = (typeId, where) => {
    const t = strip(typeId);
    if (!t) throw new Error(`${where}: type ${typeId} is not in the BTF`);
    if (t.kind === 'INT') return { type: `${t.encoding === 'SIGNED' ? 's' : 'u'}${t.size * 8}`, size: t.size };
    if (t.kind === 'ENUM') return { type: `u${t.size * 8}`, size: t.size };
    if (t.kind === 'STRUCT') return { type: `struct ${t.name}`, size: t.size };
    if (t.kind === 'ARRAY') {
      const elem = describe(t.type_id, where);
      if (elem.type === 'u8' || elem.type === 's8') return { type: 'bytes', size: t.nr_elems, count: t.nr_elems };
      return { type: elem.type, size: elem.size * t.nr_elems, count: t.nr_elems };
    }
    throw new Error(`${where}: a ${t.kind} member; agentrace.h uses fixed-width integers, arrays and its own structs only`);
  };

  const structs = {};
  for (const t of types.filter((x) => x.kind === 'STRUCT' && names.structs.has(x.name)).sort((a, b) => a.name.localeCompare(b.name))) {
    const fields = {};
    for (const m of t.members) {
      if (m.bits_offset % 8 !== 0 || m.bitfield_size) throw new Error(`struct ${t.name}.${m.name}: bit fields are not part of the ABI`);
      fields[m.name] = { offset: m.bits_offset / 8, ...describe(m.type_id, `struct ${t.name}.${m.name}`) };
    }
    structs[t.name] = { size: t.size, fields };
  }
  const enums = {};
  for (const t of types.filter((x) => x.kind === 'ENUM' && names.enums.has(x.name)).sort((a, b) => a.name.localeCompare(b.name))) {
    enums[t.name] = Object.fromEntries(t.values.map((v) => [v.name, v.val]));
  }
  const datasec = (name) => {
    const sec = types.find((x) => x.kind === 'DATASEC' && x.name === name);
    return (sec?.vars ?? []).map((v) => byId.get(v.type_id).name).sort();
  };
  const maps = datasec('.maps');
  for (const [kind, wanted, found] of [['struct', names.structs, structs], ['enum', names.enums, enums]]) {
    for (const name of wanted) {
      if (!(name in found)) throw new Error(`${kind} ${name} of agentrace.h is not in the object's BTF: reference it in agentrace.bpf.c (see the ar_btf_* variables there)`);
    }
  }
  const programs = types.filter((x) => x.kind === 'FUNC' && x.linkage === 'global').map((x) => x.name).sort();
  return { structs, enums, maps, programs, defines: defines(header) };
}

/** The #defines of agentrace.h the slot needs (BTF keeps no macros): its magic and the "nobody's" span id. */
function defines(header) {
  const text = fs.readFileSync(header, 'utf8');
  const one = (name, pattern) => {
    const m = text.match(new RegExp(`^#define ${name} ${pattern}`, 'm'));
    if (!m) throw new Error(`agentrace.h has no #define ${name} of the expected form`);
    return m[1];
  };
  return {
    AR_SLOT_SIZE: Number(one('AR_SLOT_SIZE', '(\\d+)')),
    AR_SLOT_MAGIC: one('AR_SLOT_MAGIC', '"([^"]*)"'),
    AR_SPAN_NOBODY: one('AR_SPAN_NOBODY', '0x([0-9a-fA-F]+)ULL').toLowerCase(),
    AR_CALL_RECORD_SIZE: Number(one('AR_CALL_RECORD_SIZE', '(\\d+)')),
    AR_CALL_RECORD_TAG: one('AR_CALL_RECORD_TAG', '"([^"]*)"'),
    AR_CALL_RECORD_TAG_U64: one('AR_CALL_RECORD_TAG_U64', '0x([0-9a-fA-F]+)ULL').toLowerCase(),
    AR_FRAME_KEY_TAG: Number(one('AR_FRAME_KEY_TAG', '(\\d+)')),
  };
}

/** The slot module of @agentrace/protocol: struct ar_thread_slot and its defines, for the SDK. */
export function renderSlot(abi, source) {
  const slot = abi.structs.ar_thread_slot;
  if (!slot) throw new Error('struct ar_thread_slot is not in the ABI');
  const d = abi.defines;
  if (d.AR_SLOT_SIZE !== slot.size) throw new Error(`AR_SLOT_SIZE is ${d.AR_SLOT_SIZE} but sizeof(struct ar_thread_slot) is ${slot.size}`);
  if (Buffer.byteLength(d.AR_SLOT_MAGIC) !== slot.fields.trace_id.size) throw new Error(`AR_SLOT_MAGIC must be exactly ${slot.fields.trace_id.size} bytes (it overlays trace_id)`);
  if (d.AR_SPAN_NOBODY.length !== slot.fields.span_id.size * 2) throw new Error(`AR_SPAN_NOBODY must be ${slot.fields.span_id.size} bytes`);
  const record = abi.structs.ar_call_record;
  if (!record) throw new Error('struct ar_call_record is not in the ABI');
  if (d.AR_CALL_RECORD_SIZE !== record.size) throw new Error(`AR_CALL_RECORD_SIZE is ${d.AR_CALL_RECORD_SIZE} but sizeof(struct ar_call_record) is ${record.size}`);
  if (Buffer.byteLength(d.AR_CALL_RECORD_TAG) !== record.fields.tag.size) throw new Error(`AR_CALL_RECORD_TAG must be exactly ${record.fields.tag.size} bytes`);
  if (Buffer.from(d.AR_CALL_RECORD_TAG, 'latin1').readBigUInt64LE(0).toString(16) !== d.AR_CALL_RECORD_TAG_U64) throw new Error('AR_CALL_RECORD_TAG_U64 is not AR_CALL_RECORD_TAG read little-endian');
  if (!Number.isInteger(d.AR_FRAME_KEY_TAG) || d.AR_FRAME_KEY_TAG <= 0 || d.AR_FRAME_KEY_TAG >= 2 ** 30) throw new Error('AR_FRAME_KEY_TAG must be a positive 31-bit integer (a Smi everywhere)');
  const fields = Object.entries(slot.fields).filter(([field]) => !field.startsWith('_'));
  return [
    `// GENERATED by packages/bpf/scripts/gen-abi.mjs from the BTF of ${source}`,
    '// and the #defines of agentrace.h: do not edit. Change the header, then',
    '// `make abi` in packages/bpf.',
    '//',
    "// The thread slot (struct ar_thread_slot): 32 bytes of a thread's memory the",
    '// kernel reads to know which span the thread runs (OTEP 4947 thread context',
    '// record, little-endian).',
    '',
    '/** sizeof(struct ar_thread_slot): also the length of the registration write. */',
    `export const SLOT_BYTES = ${slot.size};`,
    '/** AR_SLOT_MAGIC: exactly 16 ASCII bytes over trace_id in the registration write; the kernel matches on it. */',
    `export const SLOT_MAGIC = '${d.AR_SLOT_MAGIC}';`,
    '/** AR_SPAN_NOBODY: the span id a slot holds while the agent runs what is nobody\'s (hex). */',
    `export const SLOT_SPAN_NOBODY = '${d.AR_SPAN_NOBODY}';`,
    "/** Where each field of the slot is (its byte offset). */",
    `export const SLOT_LAYOUT = { ${fields.map(([field, f]) => `${field}: ${f.offset}`).join(', ')} } as const;`,
    "/** Each field's size in bytes. */",
    `export const SLOT_FIELD_BYTES = { ${fields.map(([field, f]) => `${field}: ${f.size}`).join(', ')} } as const;`,
    '',
    '// The call record (struct ar_call_record): on Node with AsyncContextFrame, the',
    "// store of the SDK's AsyncLocalStorage while a call runs; the kernel reads it",
    "// through V8's async context (the frame rung), with no JavaScript per await.",
    '',
    '/** sizeof(struct ar_call_record): an OTEP 4947 record (the slot\'s layout), then the tag. */',
    `export const CALL_RECORD_BYTES = ${record.size};`,
    '/** AR_CALL_RECORD_TAG: 8 ASCII bytes at CALL_RECORD_TAG_OFFSET. */',
    `export const CALL_RECORD_TAG = '${d.AR_CALL_RECORD_TAG}';`,
    `export const CALL_RECORD_TAG_OFFSET = ${record.fields.tag.offset};`,
    "/** AR_FRAME_KEY_TAG: the Smi the SDK's AsyncLocalStorage holds in a field of its own. */",
    `export const FRAME_KEY_TAG = ${d.AR_FRAME_KEY_TAG};`,
    '',
  ].join('\n');
}

export function render(abi, source) {
  const lines = [
    `// GENERATED by packages/bpf/scripts/gen-abi.mjs from the BTF of ${source}:`,
    '// do not edit. Change src/bpf/agentrace.h, then `make abi` (plain `make`',
    '// fails while this file differs from the object it builds).',
    '',
    "/** A member's type: a fixed-width integer, a byte array, one of agentrace.h's structs. */",
    "export type AbiType = 'u8' | 'u16' | 'u32' | 'u64' | 's8' | 's16' | 's32' | 's64' | 'bytes' | `struct ${string}`;",
    '',
    'export interface AbiField {',
    '  readonly offset: number;',
    '  /** Bytes, the whole array for an array. */',
    '  readonly size: number;',
    '  /** The element type for an array of integers. */',
    '  readonly type: AbiType;',
    '  /** Elements, for an array. */',
    '  readonly count?: number;',
    '}',
    '',
    'export interface AbiStruct {',
    '  readonly size: number;',
    '  readonly fields: Readonly<Record<string, AbiField>>;',
    '}',
    '',
    'export const structs = {',
    ...Object.entries(abi.structs).flatMap(([name, st]) => [
      `  ${name}: {`,
      `    size: ${st.size},`,
      '    fields: {',
      ...Object.entries(st.fields).map(
        ([field, f]) => `      ${field}: { offset: ${f.offset}, size: ${f.size}, type: '${f.type}'${f.count !== undefined ? `, count: ${f.count}` : ''} },`,
      ),
      '    },',
      '  },',
    ]),
    '} as const satisfies Record<string, AbiStruct>;',
    '',
    "/** Integer fields' readers at a struct's base offset: the width and signedness are the header's (64-bit ones give a bigint). */",
    'export const read = {',
    ...Object.entries(abi.structs).flatMap(([name, st]) => {
      const ints = Object.entries(st.fields).filter(([field, f]) => READERS[f.type] && f.count === undefined && !field.startsWith('_'));
      if (ints.length === 0) return [];
      return [
        `  ${name}: {`,
        ...ints.map(([field, f]) => `    ${field}: (b: Buffer, base: number): ${f.size === 8 ? 'bigint' : 'number'} => b.${READERS[f.type]}(base + ${f.offset}),`),
        '  },',
      ];
    }),
    '} as const;',
    '',
    '/**',
    " * 64-bit integer fields' readers as a number, without a bigint (the hot path): exact while",
    ' * the value is within ±2^53 (an fd or -errno, open flags, a count), not for a nanosecond clock.',
    ' */',
    'export const readNumber = {',
    ...Object.entries(abi.structs).flatMap(([name, st]) => {
      const wide = Object.entries(st.fields).filter(([field, f]) => (f.type === 'u64' || f.type === 's64') && f.count === undefined && !field.startsWith('_'));
      if (wide.length === 0) return [];
      return [
        `  ${name}: {`,
        ...wide.map(
          ([field, f]) =>
            `    ${field}: (b: Buffer, base: number): number => b.${f.type === 's64' ? 'readInt32LE' : 'readUInt32LE'}(base + ${f.offset + 4}) * 0x100000000 + b.readUInt32LE(base + ${f.offset}),`,
        ),
        '  },',
      ];
    }),
    '} as const;',
    '',
    'export const enums = {',
    ...Object.entries(abi.enums).map(([name, values]) => `  ${name}: { ${Object.entries(values).map(([k, v]) => `${k}: ${v}`).join(', ')} },`),
    '} as const;',
    '',
    '/** The maps of the object, by name. */',
    `export const maps = [${abi.maps.map((m) => `'${m}'`).join(', ')}] as const;`,
    '',
    '/** Its programs, by name. */',
    `export const programs = [${abi.programs.map((m) => `'${m}'`).join(', ')}] as const;`,
    '',
  ];
  return lines.join('\n');
}

const READERS = {
  u8: 'readUInt8',
  s8: 'readInt8',
  u16: 'readUInt16LE',
  s16: 'readInt16LE',
  u32: 'readUInt32LE',
  s32: 'readInt32LE',
  u64: 'readBigUInt64LE',
  s64: 'readBigInt64LE',
};

/** What differs between two renderings, line by line (the first few). */
export function difference(committed, fresh) {
  const a = committed.split('\n');
  const b = fresh.split('\n');
  const out = [];
  for (let i = 0; i < Math.max(a.length, b.length) && out.length < 8; i++) {
    if (a[i] !== b[i]) out.push(`  line ${i + 1}: committed ${JSON.stringify(a[i] ?? '')}, the object says ${JSON.stringify(b[i] ?? '')}`);
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  try {
    const abi = generate(object);
    const files = [
      [output, render(abi, 'out/agentrace.bpf.o')],
      [slotOutput, renderSlot(abi, 'out/agentrace.bpf.o')],
    ];
    let stale = false;
    for (const [file, fresh] of files) {
      if (check) {
        const committed = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
        if (committed !== fresh) {
          stale = true;
          process.stderr.write(
            `gen-abi: ${path.relative(process.cwd(), file)} differs from the BTF of ${path.relative(process.cwd(), object)} ` +
              `(agentrace.h changed?): run \`make abi\` in packages/bpf and commit the result.\n${difference(committed, fresh).join('\n')}\n`,
          );
        }
      } else {
        fs.writeFileSync(file, fresh);
        process.stderr.write(`gen-abi: wrote ${path.relative(process.cwd(), file)}\n`);
      }
    }
    if (stale) process.exit(1);
  } catch (err) {
    process.stderr.write(`gen-abi: ${err.message}\n`);
    process.exit(2);
  }
}
