// What the per-tool policy's hooks cost (issue 18), for the two syscalls they
// decide on the network: TCP connects to a closed loopback port
// (bench/syscall_loop.c connect4: the cgroup connect hooks run, nothing
// listens) and UDP sends to an address (sendto4: the sendto tracepoint and
// the cgroup sendmsg hooks run, the datagram is dropped); and for opens
// (open: open+close of /dev/null; a files rule loaded: the openat
// tracepoints' policy programs run, and a tracked call's open has its path
// walked from the dentry and looked up). Each by a process
// agentrace does not track (the host tax: a bit test and one hash miss) and
// by a tracked one whose thread runs a call (its call and tool are read from
// the slot, the hook looks up its rules and the destination), with and
// without the policy group attached, interleaved over rounds.
//
//   pnpm bench --only policy        (root)
import { POLICY_DEFAULT_TOOL, type PolicyTables } from '@agentrace/bpf';
import { loadedProgramIds, ownPrograms, profileLoop, withBpfStats, type ProgramProfile } from './support/bpf-profile.js';
import type { BenchOptions, BenchResult, Goal } from './support/result.js';
import { SyscallLab } from './support/syscall-lab.js';
import { OPS, iterationsFor, type Op } from './support/syscall-loop.js';
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
const NET_OPS = ['connect4', 'sendto4', 'open'] as const satisfies readonly Op[];
type NetOp = (typeof NET_OPS)[number];
const WHAT: Record<NetOp, string> = { connect4: 'connect', sendto4: 'send', open: 'open' };
/** The programs that run on each op, for the profile. */
const PROGRAMS: Record<NetOp, string[]> = {
  connect4: ['policy_connect4', 'net_connect_enter', 'net_connect_exit'],
  sendto4: ['policy_sendmsg4', 'policy_sendto_enter', 'policy_sendto_exit', 'io_sendto_enter', 'io_sendto_exit'],
  open: ['policy_openat_enter', 'policy_openat_exit', 'file_openat_enter', 'file_openat_exit'],
};
/** Calls no pattern names go by the default: 127.0.0.1 allowed, and opens anywhere (audit), so each connect, send and open is decided in full and goes on. */
const TABLES: PolicyTables = {
  tools: [{ tool: POLICY_DEFAULT_TOOL, netMode: 'enforce', netRule: 1, execMode: 'none', execRule: 0, filesMode: 'audit', filesRule: 2, filesRestricts: { open: true, write: true } }],
  net: [
    { tool: POLICY_DEFAULT_TOOL, protocol: 'tcp', address: '127.0.0.1', prefix: 32, ports: [] },
    { tool: POLICY_DEFAULT_TOOL, protocol: 'udp', address: '127.0.0.1', prefix: 32, ports: [] },
  ],
  exec: [],
  hosts: [],
  files: [
    { tool: POLICY_DEFAULT_TOOL, access: 'open', prefix: '/' },
    { tool: POLICY_DEFAULT_TOOL, access: 'write', prefix: '/' },
  ],
};

const key = (op: NetOp, c: Condition): string => `${op}:${c}`;

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const rounds = opts.quick ? 3 : 7;
  const before = loadedProgramIds();
  const lab = SyscallLab.load();
  const programs = ownPrograms(before, [...new Set(Object.values(PROGRAMS).flat())]);
  const results = new Map<string, number[]>();
  const profiles = new Map<string, ProgramProfile[]>();
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
          for (const op of NET_OPS) record(results, key(op, c), await lab.run(op, iterationsFor(op, opts.quick), c.startsWith('tracked') ? 'tracked' : 'untracked'));
        } finally {
          if (lab.probes.policyAttached()) lab.probes.detachPolicy();
        }
      }
    }
    // Where the time goes: the programs' own run time per operation (bpf_stats).
    await withBpfStats(async () => {
      for (const c of ['untracked+policy', 'tracked+policy'] as const) {
        lab.set('untracked');
        attach();
        try {
          for (const op of NET_OPS) {
            const n = iterationsFor(op, opts.quick);
            const mine = new Map([...programs].filter(([, name]) => PROGRAMS[op].includes(name)));
            profiles.set(key(op, c), await profileLoop(mine, n, () => lab.run(op, n, c.startsWith('tracked') ? 'tracked' : 'untracked')));
          }
        } finally {
          lab.probes.detachPolicy();
        }
      }
    });
  } finally {
    lab.close();
  }
  const sections: string[] = [];
  const goals: Goal[] = [];
  for (const op of NET_OPS) {
    const of = (c: Condition): number[] => results.get(key(op, c))!;
    const tax = pairedDelta(of('untracked+policy'), of('untracked'));
    const tracked = pairedDelta(of('tracked+policy'), of('tracked'));
    const cells = CONDITIONS.map(of);
    const noise = Math.max(...cells.map((xs) => Math.max(...xs) - Math.min(...xs)));
    const hookNs = (c: Condition): number => (profiles.get(key(op, c)) ?? []).filter((p) => p.name.startsWith('policy_')).reduce((sum, p) => sum + p.nsPerOp, 0);
    const profileText = (c: Condition): string => (profiles.get(key(op, c)) ?? []).map((p) => `${p.name} ${p.nsPerRun.toFixed(0)} ns`).join(', ') || 'none ran';
    const within = Math.abs(tax) < noise;
    // rounds more than 10% apart say nothing about a tax of a few hundred ns: not a pass
    const informative = noise < 0.1 * median(of('untracked'));
    sections.push(
      [
        `**${OPS[op].label}**: ns per operation, median of ${rounds} interleaved rounds of ${iterationsFor(op, opts.quick)}, each a fresh loop process.`,
        '',
        table(['condition', `ns per ${WHAT[op]}`], CONDITIONS.map((c) => [LABEL[c], median(of(c)).toFixed(0)])),
        '',
        `The policy group, paired by round: ${signed(tax)} ns per ${WHAT[op]} of an untracked process (the host tax), ${signed(tracked)} ns per ${WHAT[op]} of a tracked one in a call; rounds of one cell were up to ${noise.toFixed(0)} ns (${(100 * Math.max(...cells.map(spread))).toFixed(0)}%) apart, so the host tax is ${within ? 'within' : 'OVER'} noise${informative ? '' : ' (too noisy to tell: rounds more than 10% apart)'}. ` +
          `The programs' own run time per ${WHAT[op]} (kernel.bpf_stats_enabled, one more loop each): untracked: ${profileText('untracked+policy')}; tracked in a call: ${profileText('tracked+policy')}.`,
      ].join('\n'),
    );
    goals.push({
      name: `policy: host tax on ${WHAT[op]}s`,
      goal: `untracked ${WHAT[op]}s within noise`,
      measured: `${signed(tax)} ns per ${WHAT[op]}, rounds ${noise.toFixed(0)} ns apart${informative ? '' : ' (too noisy to tell)'}; the policy programs ${hookNs('untracked+policy').toFixed(0)} ns of BPF`,
      met: within && informative,
    });
  }
  const markdown = [
    "The policy's rules let 127.0.0.1 through and allow opens under /, so a tracked call's connect, send or open is decided in full and goes on.",
    '',
    ...sections.flatMap((s) => [s, '']),
    'Reproduce: `pnpm bench --only policy` (root).',
  ].join('\n');
  return { id: 'policy', title: 'Per-tool policy: the connect, send and open hooks', markdown, goals };
}
