// Per-syscall cost for a tracked thread, by probe kind: the loop's process
// tracked and its thread running a span (descriptors opened under it), next
// to the floor (bench/floor.bpf.c) and nothing attached, interleaved over
// rounds in one run (medians). Then a profile of the tracked loops
// (kernel.bpf_stats_enabled): which programs ran per operation and for how
// long, which is what explains a gap.
//
//   pnpm bench --only tracked-syscall        (root)
import type { BenchOptions, BenchResult, Goal } from './support/result.js';
import { SyscallLab, key, type Condition } from './support/syscall-lab.js';
import { ALL_OPS, OPS, type Op } from './support/syscall-loop.js';
import { grouped, median, pairedDelta, pairedRatio, signed, spread } from './support/stats.js';
import { table } from './support/markdown.js';
import { profileTable } from './support/profile-table.js';
import type { ProgramProfile } from './support/bpf-profile.js';

const CONDITIONS: Condition[] = ['detached', 'floor', 'tracked'];
const GOAL_NS = 150;
const PROBE_KIND: Record<Op, string> = {
  getppid: 'none',
  open: 'file open, io close',
  read: 'io read',
  write: 'io write',
  connect: 'net connect',
  jsonrpc: 'io write, read, write: the pipe rung',
  connect4: 'net connect (bench/policy.ts)',
  sendto4: 'io sendto (bench/policy.ts)',
};

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const rounds = opts.quick ? 3 : 7;
  const lab = SyscallLab.load();
  let results: Map<string, number[]>;
  let profiles: Map<Op, ProgramProfile[]>;
  let events: { written: bigint; consumed: number; dropped: bigint };
  let foreign: string;
  try {
    results = await lab.measure(CONDITIONS, ALL_OPS, rounds, opts.quick);
    events = lab.eventStats();
    profiles = await lab.profile('tracked', ALL_OPS, opts.quick);
    foreign = lab.foreignNote();
  } finally {
    lab.close();
  }

  const all = (op: Op, c: Condition): number[] => results.get(key(op, c))!;
  const m = (op: Op, c: Condition): number => median(all(op, c));
  const rows: string[][] = [];
  const goals: Goal[] = [];
  const gaps = new Map<Op, number>();
  for (const op of ALL_OPS) {
    const floor = m(op, 'floor');
    const tracked = m(op, 'tracked');
    const gap = pairedDelta(all(op, 'tracked'), all(op, 'floor'));
    gaps.set(op, gap);
    rows.push([OPS[op].label, PROBE_KIND[op], m(op, 'detached').toFixed(0), floor.toFixed(0), tracked.toFixed(0), `**${signed(gap)}** (x${pairedRatio(all(op, 'tracked'), all(op, 'floor')).toFixed(2)})`]);
    goals.push({
      name: `tracked syscall: ${OPS[op].label}`,
      goal: `under ${GOAL_NS} ns above the floor`,
      measured: `${signed(gap)} ns (floor ${floor.toFixed(0)}, tracked ${tracked.toFixed(0)})`,
      met: gap < GOAL_NS,
    });
  }

  const markdown = [
    `ns per operation, median of ${rounds} interleaved rounds, each a fresh loop process (tracked, with a span set for its thread, before it opens anything); "tracked − floor" is the median of the rounds' differences (and ratios).`,
    '',
    table(['operation', 'probe kind', 'detached', 'floor', 'tracked', 'tracked − floor'], rows),
    '',
    `Events: ${grouped(events.written)} written to the ring buffer and ${grouped(events.consumed)} consumed by this process during the timed rounds, ${grouped(events.dropped)} lost to a full ring buffer (counted).`,
    '',
    `Rounds of one cell were up to ${(100 * Math.max(...[...results.values()].map(spread))).toFixed(0)}% apart (max − min over median, worst cell).`,
    '',
    'Profile of the tracked loops (one more loop per operation with `kernel.bpf_stats_enabled=1`; the',
    "kernel's own per-program run time, which leaves out the tracepoint's dispatch to the program):",
    '',
    profileTable(profiles, gaps),
    '',
    foreign,
    '',
    'Reproduce: `pnpm bench --only tracked-syscall` (root).',
  ].join('\n');
  return { id: 'tracked-syscall', title: 'Per-syscall cost for a tracked thread', markdown, goals };
}
