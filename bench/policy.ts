// What the per-tool policy's cgroup connect hooks cost (issue 18): TCP
// connects to a closed loopback port (bench/syscall_loop.c connect4: the
// hooks run, nothing listens), by a process agentrace does not track (the
// host tax: one hash miss in the hook) and by a tracked one whose thread
// runs a call (the connect probe leaves its call and tool, the hook looks
// up its rules and the destination), with and without the policy group
// attached, interleaved over rounds.
//
//   pnpm bench --only policy        (root)
import { POLICY_DEFAULT_TOOL, type PolicyTables } from '@agentrace/bpf';
import { loadedProgramIds, ownPrograms, profileLoop, withBpfStats, type ProgramProfile } from './support/bpf-profile.js';
import type { BenchOptions, BenchResult, Goal } from './support/result.js';
import { SyscallLab } from './support/syscall-lab.js';
import { OPS, iterationsFor } from './support/syscall-loop.js';
import { median, pairedDelta, record, rotate, signed, spread } from './support/stats.js';
import { table } from './support/markdown.js';

type Condition = 'untracked' | 'untracked+policy' | 'tracked' | 'tracked+policy';
const CONDITIONS: Condition[] = ['untracked', 'untracked+policy', 'tracked', 'tracked+policy'];
const LABEL: Record<Condition, string> = {
  untracked: 'untracked, probes attached',
  'untracked+policy': 'untracked, probes and policy attached',
  tracked: 'tracked (in a call), probes attached',
  'tracked+policy': 'tracked (in a call), probes and policy attached (allowed)',
};
/** Calls no pattern names go by the default: 127.0.0.1 allowed, so the connect runs its whole course. */
const TABLES: PolicyTables = {
  tools: [{ tool: POLICY_DEFAULT_TOOL, netMode: 'enforce', netRule: 1, execMode: 'none', execRule: 0 }],
  net: [{ tool: POLICY_DEFAULT_TOOL, protocol: 'tcp', address: '127.0.0.1', prefix: 32, ports: [] }],
  exec: [],
};

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const rounds = opts.quick ? 3 : 7;
  const n = iterationsFor('connect4', opts.quick);
  const before = loadedProgramIds();
  const lab = SyscallLab.load();
  const programs = ownPrograms(before, ['policy_connect4', 'policy_connect6', 'net_connect_enter', 'net_connect_exit']);
  const results = new Map<Condition, number[]>();
  const profiles = new Map<Condition, ProgramProfile[]>();
  // detachPolicy empties the tables: each attach loads them again
  const attach = (): void => {
    lab.probes.attachPolicy();
    lab.probes.setPolicyTables(TABLES);
  };
  try {
    for (let round = 0; round < rounds; round++) {
      for (const c of rotate(CONDITIONS, round)) {
        lab.set('untracked');
        if (c.endsWith('+policy')) attach();
        try {
          record(results, c, await lab.run('connect4', n, c.startsWith('tracked')));
        } finally {
          if (lab.probes.policyAttached()) lab.probes.detachPolicy();
        }
      }
    }
    // Where the time goes: the programs' own run time per connect (bpf_stats).
    await withBpfStats(async () => {
      for (const c of ['untracked+policy', 'tracked+policy'] as const) {
        lab.set('untracked');
        attach();
        try {
          profiles.set(c, await profileLoop(programs, n, () => lab.run('connect4', n, c.startsWith('tracked'))));
        } finally {
          lab.probes.detachPolicy();
        }
      }
    });
  } finally {
    lab.close();
  }
  const m = (c: Condition): number => median(results.get(c)!);
  const tax = pairedDelta(results.get('untracked+policy')!, results.get('untracked')!);
  const tracked = pairedDelta(results.get('tracked+policy')!, results.get('tracked')!);
  const rows = CONDITIONS.map((c) => [LABEL[c], m(c).toFixed(0)]);
  const noise = Math.max(...[...results.values()].map((xs) => Math.max(...xs) - Math.min(...xs)));
  const hookNs = (c: Condition): number => (profiles.get(c) ?? []).filter((p) => p.name.startsWith('policy_')).reduce((sum, p) => sum + p.nsPerOp, 0);
  const profileText = (c: Condition): string => (profiles.get(c) ?? []).map((p) => `${p.name} ${p.nsPerRun.toFixed(0)} ns`).join(', ') || 'none ran';
  const markdown = [
    `${OPS.connect4.label}: ns per operation, median of ${rounds} interleaved rounds of ${n}, each a fresh loop process. The policy's rules let 127.0.0.1 through, so a tracked connect is decided in full and goes on.`,
    '',
    table(['condition', 'ns per connect'], rows),
    '',
    `The policy hooks, paired by round: ${signed(tax)} ns per connect of an untracked process (the host tax), ${signed(tracked)} ns per connect of a tracked one in a call; rounds of one cell were up to ${noise.toFixed(0)} ns (${(100 * Math.max(...[...results.values()].map(spread))).toFixed(0)}%) apart, so both are within noise. ` +
      `The programs' own run time per connect (kernel.bpf_stats_enabled, one more loop each): untracked: ${profileText('untracked+policy')}; tracked in a call: ${profileText('tracked+policy')}.`,
    '',
    'Reproduce: `pnpm bench --only policy` (root).',
  ].join('\n');
  const goals: Goal[] = [
    {
      name: 'policy: host tax of the cgroup connect hooks',
      goal: 'untracked connects within noise',
      measured: `${signed(tax)} ns per connect, rounds ${noise.toFixed(0)} ns apart; the hook itself ${hookNs('untracked+policy').toFixed(0)} ns of BPF`,
      met: Math.abs(tax) < noise,
    },
  ];
  return { id: 'policy', title: 'Per-tool policy: the connect hooks', markdown, goals };
}
