// Where one node binary's V8 keeps what the frame rung reads (frame.bpf.h):
// found in the binary's own symbols, never assumed per Node version.
//
// - the thread's Isolate*: the thread-local v8::internal::g_current_isolate_,
//   at a fixed offset from the thread pointer in the executable's static
//   TLS block (x86-64 variant II: the block ends at the thread pointer);
// - where the isolate keeps its continuation-preserved embedder data (the
//   running AsyncContextFrame) and the undefined value: the two
//   displacements of v8::Isolate::SetContinuationPreservedEmbedderData,
//   which is `lea UNDEFINED(%rdi),%rax; ...; mov %rax,CPED(%rdi)`;
// - heap object layouts: V8's postmortem constants (v8dbg_*), which Node
//   builds in for debuggers.
//
// What cannot be found (a stripped binary, V8 in a shared libnode, pointer
// compression, other code) is a reason, not an exception: the SDK then keeps
// its async hook. What is found is still proved per thread by the kernel at
// the thread's registration before it is used (ar_frame_check).
import { structs } from './abi.generated.js';
import { native, type ElfSymbols } from './native.js';
import { messageOf } from '@agentrace/protocol';

export interface V8Layout {
  /** The thread's Isolate* is at fsbase + this (negative). */
  isolateTls: number;
  /** Isolate: the continuation-preserved embedder data (the running frame). */
  cped: number;
  /** Isolate: the slot of the undefined value. */
  undefinedRoot: number;
  /** JSMap: its OrderedHashMap (the first field after a JSObject's header). */
  table: number;
  /** FixedArray: element 0. */
  fixedArrayData: number;
  /** JSTypedArray: external_pointer. */
  typedArrayData: number;
}

export type V8LayoutResult = { ok: true; layout: V8Layout } | { ok: false; reason: string };

const ISOLATE_TLS = '_ZN2v88internal18g_current_isolate_E';
const SET_CPED = '_ZN2v87Isolate36SetContinuationPreservedEmbedderDataENS_5LocalINS_5ValueEEE';
const CONSTANTS = {
  heapObjectTag: 'v8dbg_HeapObjectTag',
  heapObjectTagMask: 'v8dbg_HeapObjectTagMask',
  smiShiftSize: 'v8dbg_SmiShiftSize',
  jsObjectElements: 'v8dbg_class_JSObject__elements__Object',
  fixedArrayData: 'v8dbg_class_FixedArray__data__uintptr_t',
  typedArrayData: 'v8dbg_class_JSTypedArray__external_pointer__uintptr_t',
} as const;

/** Every symbol the reader looks up: what a stripped node must keep (deploy/build-image.sh). */
export const v8LayoutSymbols: readonly string[] = [ISOLATE_TLS, SET_CPED, ...Object.values(CONSTANTS)];

/** How many bytes of the setter are searched for its two instructions. */
const SETTER_BYTES = 48;

/**
 * The displacements of `lea d(%rdi),%rax` (the undefined value's slot) and
 * `mov %rax,d(%rdi)` (the embedder data) in the setter's first bytes, with
 * an 8- or 32-bit displacement; undefined if either is missing.
 */
export function setterDisplacements(code: Buffer): { undefinedRoot: number; cped: number } | undefined {
  const find = (opcode: number): number | undefined => {
    for (let i = 0; i + 3 <= code.length; i++) {
      if (code[i] !== 0x48 || code[i + 1] !== opcode) continue;
      const modrm = code[i + 2]!;
      // reg = rax (000), rm = rdi (111); mod 10: disp32, mod 01: disp8
      if ((modrm & 0x3f) !== 0x07) continue;
      if (modrm >> 6 === 2 && i + 7 <= code.length) return code.readInt32LE(i + 3);
      if (modrm >> 6 === 1 && i + 4 <= code.length) return code.readInt8(i + 3);
    }
    return undefined;
  };
  const undefinedRoot = find(0x8d); // lea
  const cped = find(0x89); // mov r/m64, r64
  if (undefinedRoot === undefined || cped === undefined) return undefined;
  return { undefinedRoot, cped };
}

/** x86-64 TLS variant II: the executable's block ends at the thread pointer, aligned as glibc places it. */
export function staticTlsOffset(symbolValue: number, tls: { memsz: number; align: number; vaddr: number }): number {
  const align = Math.max(tls.align, 1);
  const firstByte = (align - (tls.vaddr % align)) % align;
  const blockOffset = Math.ceil((tls.memsz - firstByte) / align) * align + firstByte;
  return symbolValue - blockOffset;
}

/** Reads the layout of the V8 in `binaryPath` (the agent's /proc/PID/exe), named `shownAs` in reasons. */
export function readV8Layout(path: string, shownAs: string = path): V8LayoutResult {
  const binaryPath = shownAs;
  if (process.arch !== 'x64') return { ok: false, reason: `the frame reader knows x86-64 only (this is ${process.arch})` };
  let elf;
  try {
    elf = native().readSymbols(path, [...v8LayoutSymbols], SETTER_BYTES);
  } catch (err) {
    return { ok: false, reason: messageOf(err) };
  }
  const { symbols, tls } = elf;
  const isolate = symbols[ISOLATE_TLS];
  if (!isolate || isolate.type !== 'tls' || !tls) {
    return { ok: false, reason: `${binaryPath} has no thread-local ${ISOLATE_TLS} in its own TLS block (stripped, or V8 in a shared libnode)` };
  }
  const setter = symbols[SET_CPED];
  if (!setter?.bytes) return { ok: false, reason: `${binaryPath} has no v8::Isolate::SetContinuationPreservedEmbedderData (a Node without AsyncContextFrame, or stripped)` };
  const disp = setterDisplacements(setter.bytes);
  if (!disp) return { ok: false, reason: `v8::Isolate::SetContinuationPreservedEmbedderData of ${binaryPath} is not the code the reader knows (pointer compression, or another V8)` };
  const values: Partial<Record<keyof typeof CONSTANTS, number>> = {};
  for (const [key, name] of Object.entries(CONSTANTS) as Array<[keyof typeof CONSTANTS, string]>) {
    const s = symbols[name];
    if (!s?.bytes || s.bytes.length !== 4) return { ok: false, reason: `${binaryPath} has no V8 postmortem constant ${name} (built without v8_postmortem_support, or stripped)` };
    values[key] = s.bytes.readInt32LE(0);
  }
  const v = values as Record<keyof typeof CONSTANTS, number>;
  if (v.heapObjectTag !== 1 || v.heapObjectTagMask !== 3 || v.smiShiftSize !== 31) {
    return { ok: false, reason: `the V8 of ${binaryPath} tags values otherwise (heap tag ${v.heapObjectTag}/${v.heapObjectTagMask}, Smi shift ${v.smiShiftSize}: pointer compression?)` };
  }
  return {
    ok: true,
    layout: {
      isolateTls: staticTlsOffset(isolate.value, tls),
      cped: disp.cped,
      undefinedRoot: disp.undefinedRoot,
      table: v.jsObjectElements + 8,
      fixedArrayData: v.fixedArrayData,
      typedArrayData: v.typedArrayData,
    },
  };
}

/** Symbols of an ELF binary by name (those not found are left out), their first `maxBytes` bytes, and its TLS block. */
export function readElfSymbols(binaryPath: string, names: string[], maxBytes = 64): ElfSymbols {
  return native().readSymbols(binaryPath, names, maxBytes);
}

/** The layout as the kernel's struct ar_v8_layout. */
export function encodeV8Layout(l: V8Layout): Buffer {
  const s = structs.ar_v8_layout;
  const b = Buffer.alloc(s.size);
  b.writeBigInt64LE(BigInt(l.isolateTls), s.fields.isolate_tls.offset);
  b.writeUInt32LE(l.cped, s.fields.cped.offset);
  b.writeUInt32LE(l.undefinedRoot, s.fields.undefined_root.offset);
  b.writeUInt32LE(l.table, s.fields.table.offset);
  b.writeUInt32LE(l.fixedArrayData, s.fields.fixed_array_data.offset);
  b.writeUInt32LE(l.typedArrayData, s.fields.typed_array_data.offset);
  return b;
}
