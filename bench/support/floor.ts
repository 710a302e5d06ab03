// The floor: bench/floor.bpf.c (empty programs on the acct syscall's
// tracepoints), built here with clang against packages/bpf's vmlinux.h and
// loaded with the addon's BpfObject, apart from agentrace's own object.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { native, packageRoot, type NativeBpfObject } from '../../packages/bpf/src/native.js';
import { benchDir, buildIfStale, outDir } from './build.js';

export function bpfArch(): string {
  const m = execFileSync('uname', ['-m'], { encoding: 'utf8' }).trim();
  return m === 'x86_64' ? 'x86' : m === 'aarch64' ? 'arm64' : m;
}

export function buildFloor(): string {
  const src = path.join(benchDir, 'floor.bpf.c');
  const vmlinux = path.join(packageRoot, 'out', 'vmlinux.h');
  if (!fs.existsSync(vmlinux)) {
    throw new Error(`${vmlinux} is missing: build packages/bpf first (pnpm -s build, or scripts/setup.sh)`);
  }
  const obj = path.join(outDir, 'floor.bpf.o');
  const args = ['-target', 'bpf', '-O2', '-g', '-Wall', `-D__TARGET_ARCH_${bpfArch()}`, `-I${path.dirname(vmlinux)}`, '-c', src, '-o', obj];
  return buildIfStale(obj, [src, vmlinux], 'clang', args);
}

/** A loaded object of empty programs, attached and detached as a whole (the floor, bare.ts). */
export class EmptyPrograms {
  /** Names of the object's programs. */
  readonly programs: readonly string[];
  private attached = false;

  private constructor(private readonly obj: NativeBpfObject) {
    this.programs = obj.programs().map((p) => p.name);
  }

  /** Loads the object at `objectPath`; attaches nothing. */
  static load(objectPath: string): EmptyPrograms {
    const obj = new (native().BpfObject)(objectPath);
    try {
      obj.load();
    } catch (err) {
      obj.close();
      throw err;
    }
    return new EmptyPrograms(obj);
  }

  attach(): void {
    for (const p of this.programs) this.obj.attach(p);
    this.attached = true;
  }

  detach(): void {
    if (!this.attached) return;
    for (const p of this.programs) this.obj.detach(p);
    this.attached = false;
  }

  close(): void {
    this.obj.close();
  }
}

/** Builds (if stale) and loads the floor object; attaches nothing. */
export function loadFloor(): EmptyPrograms {
  return EmptyPrograms.load(buildFloor());
}
