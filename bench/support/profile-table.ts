// The per-op BPF profile as a markdown table: which of agentrace's programs
// ran per operation, how often, for how long each.
import type { ProgramProfile } from './bpf-profile.js';
import { table } from './markdown.js';
import { OPS, type Op } from './syscall-loop.js';

export function profileTable(profiles: ReadonlyMap<Op, ProgramProfile[]>, gaps?: ReadonlyMap<Op, number>): string {
  const header = ['operation', 'programs run per operation: runs × average ns', 'BPF ns per operation'];
  if (gaps) header.push('measured above the floor');
  const rows = [...profiles].map(([op, progs]) => {
    const list = progs.length
      ? progs.map((p) => `${p.name} ${p.runsPerOp === 1 || Math.abs(p.runsPerOp - 1) < 0.02 ? '' : `${p.runsPerOp.toFixed(2)} × `}${p.nsPerRun.toFixed(0)}`).join(', ')
      : 'none';
    const total = progs.reduce((sum, p) => sum + p.nsPerOp, 0);
    const row = [OPS[op].label, list, total.toFixed(0)];
    const gap = gaps?.get(op);
    if (gaps) row.push(gap === undefined ? '' : `${gap.toFixed(0)}`);
    return row;
  });
  return table(header, rows);
}
