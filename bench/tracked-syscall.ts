// Per-syscall cost for a tracked thread, by probe kind: the loop's process
// tracked and its thread running a span (descriptors opened under it), next
// to the floor (bench/floor.bpf.c) and nothing attached, interleaved over
// rounds in one run (medians). The span is told two ways: by the thread map
// (the cheapest rung), and by the frame rung, which walks a Node 24
// thread's V8 async context at every syscall (the loop plays one with this
// node's layout: syscall_loop.c). Then a profile of both kinds of loops
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

const CONDITIONS: Condition[] = ['detached', 'floor', 'tracked', 'frame'];
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
  let frameProfiles: Map<Op, ProgramProfile[]>;
  let events: { written: bigint; consumed: number; dropped: bigint };
  let byFrame: number;
  let foreign: string;
  try {
    results = await lab.measure(CONDITIONS, ALL_OPS, rounds, opts.quick);
    events = lab.eventStats();
    byFrame = lab.consumedByFrame;
    profiles = await lab.profile('tracked', ALL_OPS, opts.quick);
    frameProfiles = await lab.profile('frame', ALL_OPS, opts.quick);
    foreign = lab.foreignNote();
  } finally {
    lab.close();
  }
  // A figure for a rung that did not run would be a lie.
  if (byFrame === 0) throw new Error('the frame loops produced no event attributed by the frame rung');

  const all = (op: Op, c: Condition): number[] => results.get(key(op, c))!;
  const m = (op: Op, c: Condition): number => median(all(op, c));
  const rows: string[][] = [];
  const goals: Goal[] = [];
  const gaps = new Map<Op, number>();
  const frameGaps = new Map<Op, number>();
  for (const op of ALL_OPS) {
    const floor = m(op, 'floor');
    const tracked = m(op, 'tracked');
    const gap = pairedDelta(all(op, 'tracked'), all(op, 'floor'));
    const frameGap = pairedDelta(all(op, 'frame'), all(op, 'floor'));
    gaps.set(op, gap);
    frameGaps.set(op, frameGap);
    rows.push([
      OPS[op].label,
      PROBE_KIND[op],
      m(op, 'detached').toFixed(0),
      floor.toFixed(0),
      tracked.toFixed(0),
      `**${signed(gap)}** (x${pairedRatio(all(op, 'tracked'), all(op, 'floor')).toFixed(2)})`,
      m(op, 'frame').toFixed(0),
      `${signed(frameGap)} (${signed(pairedDelta(all(op, 'frame'), all(op, 'tracked')))} over tracked)`,
    ]);
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
    table(['operation', 'probe kind', 'detached', 'floor', 'tracked', 'tracked − floor', 'frame', 'frame − floor'], rows),
    '',
    '"frame": the same loop whose span only the frame rung tells (a Node 24 thread whose V8 async context holds the call: thread-local isolate, frame, its table, two stores, the SDK\'s tag, the typed array, the record); "over tracked" is what that walk costs more than the thread map per syscall that asks the ladder (`getppid` asks nothing).',
    '',
    `Events: ${grouped(events.written)} written to the ring buffer and ${grouped(events.consumed)} consumed by this process during the timed rounds (${grouped(byFrame)} of them attributed by the frame rung), ${grouped(events.dropped)} lost to a full ring buffer (counted).`,
    '',
    `Rounds of one cell were up to ${(100 * Math.max(...[...results.values()].map(spread))).toFixed(0)}% apart (max − min over median, worst cell).`,
    '',
    'Profile of the tracked loops (one more loop per operation with `kernel.bpf_stats_enabled=1`; the',
    "kernel's own per-program run time, which leaves out the tracepoint's dispatch to the program):",
    '',
    profileTable(profiles, gaps),
    '',
    'The same for the frame loops (the rung walks the frame in `ar_running_span`, inside the programs listed):',
    '',
    profileTable(frameProfiles, frameGaps),
    '',
    foreign,
    '',
    'Reproduce: `pnpm bench --only tracked-syscall` (root).',
  ].join('\n');
  return { id: 'tracked-syscall', title: 'Per-syscall cost for a tracked thread', markdown, goals };
}
