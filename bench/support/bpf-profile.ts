// Per-program BPF run time, from the kernel's own accounting: with the
// kernel.bpf_stats_enabled sysctl on, every program run adds to its
// run_time_ns and run_cnt, which `bpftool prog show -j` reports. A profile
// is the difference of two readings around one loop, divided by its
// iterations: how many times each program ran per operation and for how long.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

const SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

interface BpftoolProg {
  id: number;
  type?: string;
  name?: string;
  run_time_ns?: number;
  run_cnt?: number;
}

function listPrograms(): BpftoolProg[] {
  let out: string;
  try {
    out = execFileSync('bpftool', ['prog', 'show', '-j'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    throw new Error(`\`bpftool prog show -j\` failed: ${(err as Error).message}; install bpftool (scripts/setup.sh does)`, { cause: err });
  }
  return JSON.parse(out) as BpftoolProg[];
}

/** Ids of every BPF program loaded on the host now. */
export function loadedProgramIds(): Set<number> {
  return new Set(listPrograms().map((p) => p.id));
}

const TRACING_TYPES = new Set(['tracepoint', 'raw_tracepoint', 'tracing', 'kprobe', 'perf_event']);

/**
 * Names of the tracing programs loaded on the host by others (not in
 * `ours`): if any is attached to a syscall tracepoint, the "detached" column
 * already pays the floor.
 */
export function foreignTracingPrograms(ours: ReadonlySet<number>): string[] {
  return listPrograms()
    .filter((p) => !ours.has(p.id) && TRACING_TYPES.has(p.type ?? ''))
    .map((p) => `${p.name ?? `#${p.id}`} (${p.type})`);
}

/**
 * The programs named `names` that were loaded since `before` was read: those
 * of the object this process just loaded, not another agentrace running on the host.
 */
export function ownPrograms(before: Set<number>, names: readonly string[]): Map<number, string> {
  const wanted = new Set(names);
  const out = new Map<number, string>();
  for (const p of listPrograms()) {
    if (!before.has(p.id) && p.name !== undefined && wanted.has(p.name)) out.set(p.id, p.name);
  }
  return out;
}

/** Every program loaded since `before` was read, by id (e.g. those of a sidecar started since). */
export function programsLoadedSince(before: Set<number>): Map<number, string> {
  const out = new Map<number, string>();
  for (const p of listPrograms()) if (!before.has(p.id)) out.set(p.id, p.name ?? `#${p.id}`);
  return out;
}

export interface ProgramCounters {
  runs: number;
  ns: number;
}

function read(programs: ReadonlyMap<number, string>): Map<number, ProgramCounters> {
  const out = new Map<number, ProgramCounters>();
  for (const p of listPrograms()) {
    if (programs.has(p.id)) out.set(p.id, { runs: p.run_cnt ?? 0, ns: p.run_time_ns ?? 0 });
  }
  return out;
}

export interface ProgramProfile {
  name: string;
  /** Runs per loop iteration. */
  runsPerOp: number;
  /** Average ns per run. */
  nsPerRun: number;
  /** ns per loop iteration (runs per op × ns per run). */
  nsPerOp: number;
}

/**
 * Runs `fn` (one loop of `iterations` operations) with the programs' run
 * time counted, and returns what each program cost per operation; programs
 * that ran less than once per 100 operations (other processes' syscalls) are
 * left out.
 */
export async function profileLoop(
  programs: ReadonlyMap<number, string>,
  iterations: number,
  fn: () => Promise<unknown>,
): Promise<ProgramProfile[]> {
  const before = read(programs);
  await fn();
  const after = read(programs);
  const rows: ProgramProfile[] = [];
  for (const [id, a] of after) {
    const b = before.get(id) ?? { runs: 0, ns: 0 };
    const runs = a.runs - b.runs;
    if (runs < iterations / 100) continue;
    const ns = a.ns - b.ns;
    rows.push({ name: programs.get(id)!, runsPerOp: runs / iterations, nsPerRun: ns / runs, nsPerOp: ns / iterations });
  }
  return rows.sort((x, y) => y.nsPerOp - x.nsPerOp);
}

/**
 * Runs `fn` with kernel.bpf_stats_enabled on, then puts the sysctl back as
 * it was. Statistics cost two clock reads per program run, so timed rounds
 * are never run inside this.
 */
export async function withBpfStats<T>(fn: () => Promise<T>): Promise<T> {
  let previous: string;
  try {
    previous = fs.readFileSync(SYSCTL, 'utf8').trim();
    fs.writeFileSync(SYSCTL, '1');
  } catch (err) {
    throw new Error(`cannot enable ${SYSCTL} (needs root): ${(err as Error).message}`, { cause: err });
  }
  // Interrupted (Ctrl-C), the process would exit without its finally blocks: put the sysctl back first.
  const onSignal = (signal: NodeJS.Signals): void => {
    fs.writeFileSync(SYSCTL, previous);
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await fn();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    fs.writeFileSync(SYSCTL, previous);
  }
}
