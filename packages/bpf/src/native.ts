// Loads the libbpf addon and states its exact shape. Nothing outside this
// package sees these raw types: probes.ts wraps them.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { messageOf } from '@agentrace/protocol';
import { AddonLoadError, BpfError } from './errors.js';

export interface NativeProgramInfo {
  name: string;
  section: string;
}

export interface NativeMapInfo {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
}

export interface NativeBpfObject {
  load(): void;
  /** load() on the libuv threadpool; nothing else may be called until it settles (close() is deferred to then). */
  loadAsync(): Promise<void>;
  programs(): NativeProgramInfo[];
  maps(): NativeMapInfo[];
  setMaxEntries(mapName: string, maxEntries: number): void;
  /** Sets a `const volatile` global (.rodata) before load(); `value` has its exact size. */
  setConstant(name: string, value: Buffer): void;
  /** Attaches a program; a cgroup program (cgroup/connect4, ...) to the cgroup v2 directory `cgroupPath`. */
  attach(progName: string, cgroupPath?: string): void;
  detach(progName: string): void;
  isAttached(progName: string): boolean;
  /** With `offset` (from resolveFunctions), funcName only names the probe. */
  attachUprobe(progName: string, binaryPath: string, funcName: string, retprobe?: boolean, offset?: number): void;
  detachUprobe(progName: string, binaryPath: string, funcName: string): void;
  mapUpdate(mapName: string, key: Buffer, value: Buffer, flags?: number): void;
  mapLookup(mapName: string, key: Buffer): Buffer | null;
  mapDelete(mapName: string, key: Buffer): boolean;
  mapKeys(mapName: string): Buffer[];
  /** Atomically sets or clears one bit of an mmap()able array of u64 words; returns whether it was set. */
  mapSetBit(mapName: string, bit: number, on: boolean): boolean;
  /** Takes every entry out of a hash map in batches: keys and values back to back. */
  mapDrain(mapName: string): { keys: Buffer; values: Buffer; count: number };
  /**
   * onBatch gets `count` samples back to back in `data`, and their (offset,
   * size) pairs in `bounds`. Both are reused for the next batch: read them
   * during the call only.
   */
  startRingBuffer(mapName: string, onBatch: (data: Buffer, bounds: Uint32Array, count: number) => void): void;
  pollRingBuffer(): number;
  stopRingBuffer(): void;
  close(): void;
  /** The fds of every attached link. */
  linkFds(): number[];
}

export interface NativeAddon {
  BpfObject: new (objectPath: string) => NativeBpfObject;
  numPossibleCpus(): number;
  monotonicNs(): bigint;
  libbpfVersion(): string;
  peerCredentials(fd: number): PeerCredentials;
  /** File offsets of function symbols of an ELF binary; names not found are left out. */
  resolveFunctions(binaryPath: string, names: string[]): Record<string, number>;
  /** Defined symbols of an ELF binary (names not found are left out), their first maxBytes bytes, and its TLS block. */
  readSymbols(binaryPath: string, names: string[], maxBytes: number): ElfSymbols;
  /** The class the addon throws its failures as. */
  setErrorClass(ctor: new (message: string, errnoName: string, errno: number, libbpfLog: string) => Error): void;
}

export interface ElfSymbol {
  /** st_value: an address, or for a TLS symbol its offset in the binary's TLS block. */
  value: number;
  size: number;
  type: 'func' | 'object' | 'tls' | 'other';
  /** Its first bytes (zeros for .bss); null for TLS symbols and where they cannot be read. */
  bytes: Buffer | null;
  /** Where its bytes are in the file; -1 when they are not (.bss, TLS). */
  offset: number;
}

export interface ElfSymbols {
  symbols: Record<string, ElfSymbol>;
  /** The binary's PT_TLS segment, if it has one. */
  tls: { memsz: number; align: number; vaddr: number } | null;
}

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** The package root: dist/ and src/ both sit one level below it. */
export const packageRoot: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The BPF object the build produces. */
export const defaultObjectPath: string = path.join(packageRoot, 'out', 'agentrace.bpf.o');

const addonPath = path.join(packageRoot, 'build', 'Release', 'agentrace_bpf.node');

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  if (!addon) {
    try {
      addon = createRequire(import.meta.url)(addonPath) as NativeAddon;
    } catch (cause) {
      throw new AddonLoadError(
        `cannot load the agentrace native addon at ${addonPath}: ${messageOf(cause)}; ` +
          'build it with `pnpm -C packages/bpf build` (needs libbpf-dev, clang, make, g++)',
        { cause },
      );
    }
    addon.setErrorClass(BpfError);
  }
  return addon;
}
