// Host tax: what agentrace's attached probes cost the syscalls of a process
// it does NOT track (every other process on the host), against the bare
// syscall-tracepoint floor. Conditions, interleaved over rounds in one run
// (medians): detached (nothing of ours attached), floor (bench/floor.bpf.c's
// empty programs on an unused syscall's tracepoints), and agentrace attached
// with the loop untracked. Then a profile of the untracked loops
// (kernel.bpf_stats_enabled) says which programs ran and for how long.
//
//   pnpm bench --only host-tax         (root)
import type { BenchOptions, BenchResult, Goal } from './support/result.js';
import { SyscallLab, key, type Condition } from './support/syscall-lab.js';
import { ALL_OPS, OPS, type Op } from './support/syscall-loop.js';
import { median, pairedDelta, pairedRatio, signed, spread } from './support/stats.js';
import { table } from './support/markdown.js';
import { profileTable } from './support/profile-table.js';
import type { ProgramProfile } from './support/bpf-profile.js';

const CONDITIONS: Condition[] = ['detached', 'floor', 'bare', 'untracked'];
const GOAL_NS = 10;

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const rounds = opts.quick ? 3 : 7;
  const lab = SyscallLab.load();
  let results: Map<string, number[]>;
  let profiles: Map<Op, ProgramProfile[]>;
  let foreign: string;
  try {
    results = await lab.measure(CONDITIONS, ALL_OPS, rounds, opts.quick);
    profiles = await lab.profile('untracked', ALL_OPS, opts.quick);
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
    const detached = m(op, 'detached');
    const floor = m(op, 'floor');
    const bare = m(op, 'bare');
    const untracked = m(op, 'untracked');
    const gap = pairedDelta(all(op, 'untracked'), all(op, 'floor'));
    // What agentrace's own code costs beyond running any program at its attach points.
    const own = pairedDelta(all(op, 'untracked'), all(op, 'bare'));
    gaps.set(op, gap);
    rows.push([
      OPS[op].label,
      detached.toFixed(0),
      `${floor.toFixed(0)} (${signed(floor - detached)})`,
      `${bare.toFixed(0)} (${signed(pairedDelta(all(op, 'bare'), all(op, 'floor')))})`,
      untracked.toFixed(0),
      `**${signed(own)}**`,
      `${signed(gap)} (x${pairedRatio(all(op, 'untracked'), all(op, 'floor')).toFixed(2)})`,
    ]);
    goals.push({
      name: `host tax: ${OPS[op].label}`,
      goal: `untracked within ${GOAL_NS} ns of the floor`,
      measured: `${signed(own)} ns over empty programs on the same tracepoints; ${signed(gap)} ns over the floor of one unrelated tracepoint`,
      met: own <= GOAL_NS,
    });
  }

  const markdown = [
    `ns per operation, median of ${rounds} interleaved rounds, each a fresh loop process; differences (and ratios) are medians of the rounds' own. Two floors: "floor" is bench/floor.bpf.c, an empty program on one syscall no loop makes (PLATFORM.md's floor: the traced syscall path every process takes while any syscall tracepoint is attached); "bare" is an empty program on every attach point agentrace's attached programs use (bench/support/bare.ts generates it from them): what running any program there costs. "untracked − bare" is agentrace's own early "not tracked, return", the goal's measure.`,
    '',
    table(['operation', 'detached', 'floor', 'bare (same tracepoints, empty)', 'agentrace attached, untracked', 'untracked − bare', 'untracked − floor'], rows),
    '',
    `Rounds of one cell were up to ${(100 * Math.max(...[...results.values()].map(spread))).toFixed(0)}% apart (max − min over median, worst cell).`,
    '',
    'Profile of the untracked loops (one more loop per operation with `kernel.bpf_stats_enabled=1`; the',
    "kernel's own per-program run time, which leaves out the tracepoint's dispatch to the program):",
    '',
    profileTable(profiles, gaps),
    '',
    foreign,
    '',
    'Reproduce: `pnpm bench --only host-tax` (root).',
  ].join('\n');
  return { id: 'host-tax', title: 'Host tax: syscalls of an untracked process', markdown, goals };
}
